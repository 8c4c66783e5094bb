"""A child process for crash and multi-process tests: writes to a store and acknowledges.

Usage: python -m tests.integration.writer_child STORE PREFIX COUNT [--deletes]
STORE is a directory, or s3://bucket/prefix with the endpoint in $VDBM_S3_ENDPOINT.
Prints "ADD <id>" after each add returns, "DELETING <id>" before a delete starts and
"DEL <id>" after it returns, each line in one write(2) (`say`), so that a kill never leaves
half a line (``print`` makes two writes of a line when $PYTHONUNBUFFERED is set).

Or: python -m tests.integration.writer_child --fork-server
A writer factory for tests that start many writers one after another: it imports the package
once, then for each command read from stdin it acts and answers on stdout:

* ``fork STORE PREFIX COUNT [--deletes]``: forks a writer, which opens the store itself and
  prints what a writer above prints (to this process's stdout), then ``FAILED`` if it raises;
* ``kill``: SIGKILLs that writer, reaps it and prints ``EXIT <wait status>``, so that nothing
  the writer printed can follow that line.

At the end of its input it kills a writer still running, and exits.

A forked writer is a process of its own like any other (only the interpreter's start-up and
imports, about a second, are shared), so killing it is a real crash.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback

from tests.helpers import keyword_of
from vectordb_manager import LocalVectorStore, S3VectorStore
from vectordb_manager.embeddings import HashingEmbeddings
from vectordb_manager.vectorstores.engine_store import EngineVectorStore


def open_store(spec: str) -> EngineVectorStore:
    emb = HashingEmbeddings(64)
    if spec.startswith("s3://"):
        bucket, _, prefix = spec[len("s3://") :].partition("/")
        return S3VectorStore(
            emb, bucket, prefix, endpoint_url=os.environ["VDBM_S3_ENDPOINT"], region_name="us-east-1",
            aws_access_key_id="testing", aws_secret_access_key="testing",
            max_attempts=10, commit_attempts=1000,
        )
    return LocalVectorStore(emb, spec, commit_attempts=1000)


def say(line: str) -> None:
    """Write ``line`` and its newline to stdout at once (a pipe takes a short write whole)."""
    os.write(sys.stdout.fileno(), f"{line}\n".encode())


def write(args: list[str]) -> None:
    """Write as ``STORE PREFIX COUNT [--deletes]`` says, acknowledging on stdout."""
    spec, prefix, count = args[0], args[1], int(args[2])
    deletes = "--deletes" in args
    store = open_store(spec)
    for i in range(count):
        doc_id = f"{prefix}-{i}"
        texts = [f"text {prefix} number {i} {keyword_of(doc_id)}",
                 f"extra {prefix} {i} {keyword_of(doc_id + '-x')}"]
        store.add_texts(texts,
                        [{"i": i}, {"i": i, "extra": True}], ids=[doc_id, doc_id + "-x"])
        say(f"ADD {doc_id}")
        if deletes and i % 3 == 2:
            victim = f"{prefix}-{i - 1}"
            say(f"DELETING {victim}")
            store.delete([victim])
            say(f"DEL {victim}")


def serve() -> None:
    """The ``--fork-server`` loop (see the module docstring)."""
    writer: int | None = None
    for line in sys.stdin:
        command, *args = line.split()
        if command == "fork" and writer is None:
            writer = os.fork()
            if writer == 0:  # the writer: never returns into this loop
                code = 0
                try:
                    write(args)
                except BaseException:
                    traceback.print_exc()
                    say("FAILED")  # wakes a test waiting for acknowledgements
                    code = 1
                finally:
                    os._exit(code)
        elif command == "kill" and writer is not None:
            os.kill(writer, signal.SIGKILL)  # a writer that ended already is a zombie: no-op
            _, status = os.waitpid(writer, 0)
            writer = None
            say(f"EXIT {status}")
        else:
            raise SystemExit(f"unexpected command {line!r}")
    if writer is not None:  # the test ended early: its writer goes with this server
        os.kill(writer, signal.SIGKILL)
        os.waitpid(writer, 0)


def main() -> None:
    if sys.argv[1:] == ["--fork-server"]:
        serve()
    else:
        write(sys.argv[1:])


if __name__ == "__main__":
    main()
