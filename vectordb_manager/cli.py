"""The ``vectordb`` command: a thin shell over `VectorDatabaseManager`.

Each command parses its arguments, calls one library method, and turns the package's errors
into a one-line message and a non-zero exit code (set ``VECTORDB_DEBUG=1`` for tracebacks).
Configuration comes from, in rising precedence: defaults, ``--config FILE`` (JSON, TOML or
YAML), ``VECTORDB_*`` environment variables, and flags.

Only ``ingest`` and ``import-faiss`` create a store (and ``migrate`` its target); every
other command opens an existing one and fails with "no store at ..." where there is none,
writing nothing.
``--verbose`` logs the package (and botocore) at DEBUG level on stderr, credentials redacted.

Every command takes ``--json``: its result as JSON on stdout, alone (progress bars and logs go
to stderr). Progress bars show on the long commands (``ingest``, ``migrate``,
``import-faiss``) unless ``-q``; the embedding model's own bars (huggingface_hub's downloads,
transformers' "Loading weights") show only there too. Output cut short by its reader
(``vectordb stats | head -1``) ends the command quietly, as the Python documentation's "Note on
SIGPIPE" recommends.

The commands themselves are in `commands`. The command line starts quickly: this module
imports only the configuration; each command imports what it uses, and ``stats`` reads the
store's manifest alone (`store_info`).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from vectordb_manager.commands import (
    build_config,
    cmd_compact,
    cmd_delete,
    cmd_get,
    cmd_import_faiss,
    cmd_ingest,
    cmd_migrate,
    cmd_search,
    cmd_stats,
    cmd_vacuum,
    cmd_verify,
    model_bars_off,
)
from vectordb_manager.config import SEARCH_MODES
from vectordb_manager.engine.options import DISTANCES, INDEX_TYPES
from vectordb_manager.errors import VectorDBError
from vectordb_manager.workflows.command import add_ingest_options, add_worker_parser

# `vectorstores.fusion.FUSIONS` (a test keeps them equal): that module needs NumPy, which
# ``vectordb --help`` should not wait for
_FUSIONS = ("rrf", "weighted")
# the commands that show progress bars (unless -q), and those that may load the model
_PROGRESS_COMMANDS = frozenset({"ingest", "migrate", "import-faiss"})
_EMBEDDING_COMMANDS = frozenset({"ingest"})  # and search, where it loads a library's model


class _Version(argparse.Action):
    """``--version``: the installed distribution's version (read only when asked for)."""

    def __init__(self, option_strings: Sequence[str], dest: str, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> NoReturn:
        print(f"{parser.prog} {package_version()}")
        parser.exit()


def package_version() -> str:
    """The version of the installed ``vectordb-manager`` (the package's own ``__version__``
    when it runs from a source tree that is not installed)."""
    from importlib import metadata

    try:
        return metadata.version("vectordb-manager")
    except metadata.PackageNotFoundError:
        from vectordb_manager import __version__

        return __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vectordb",
        description="Manage a vectordb-manager vector store: ingest files, search, inspect.",
    )
    parser.add_argument("--version", action=_Version, help="print the version and exit")
    parser.add_argument("--config", metavar="FILE", help="configuration file (.json, .toml, .yaml)")
    parser.add_argument(
        "--storage", choices=["local", "s3", "memory"], help="where the store lives"
    )
    parser.add_argument("--path", help="local store directory (storage=local)")
    parser.add_argument("--bucket", help="S3 bucket (storage=s3)")
    parser.add_argument("--prefix", help="S3 key prefix (storage=s3)")
    parser.add_argument("--endpoint-url", dest="endpoint_url", help="S3-compatible endpoint URL")
    parser.add_argument("--region", help="AWS region")
    parser.add_argument("--profile", help="AWS named profile")
    parser.add_argument(
        "--provider", choices=["huggingface", "openai", "fake"], help="embedding provider"
    )
    parser.add_argument("--model", help="embedding model name")
    parser.add_argument("--distance", choices=DISTANCES, help="distance (new stores)")
    parser.add_argument("--index", choices=INDEX_TYPES, help="index type")
    parser.add_argument("--chunk-size", dest="chunk_size", type=int, help="characters per chunk")
    parser.add_argument(
        "--chunk-overlap", dest="chunk_overlap", type=int, help="overlap between chunks"
    )
    parser.add_argument(
        "--text-language",
        dest="text_language",
        help="keyword index: the language of the texts (stopwords, stemming), e.g. english",
    )
    parser.add_argument(
        "--text-stemming",
        dest="text_stemming",
        action=argparse.BooleanOptionalAction,
        help="keyword index: reduce words to their stems (off for code and identifiers)",
    )
    parser.add_argument(
        "--text-stopwords",
        dest="text_stopwords",
        action=argparse.BooleanOptionalAction,
        help="keyword index: leave out the language's stopwords",
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress bars (neither ours nor the embedding model's)",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="log what the package (and botocore, for S3) does on stderr; credentials redacted",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        name: str, func: Callable[[argparse.Namespace], int], help_: str
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(func=func)
        p.add_argument(
            "--json",
            action="store_true",
            help="print the result as JSON on stdout (progress and logs go to stderr)",
        )
        # -q and -v after the command too (``vectordb ingest docs -q``); unset here, the
        # value given before the command stands
        p.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                       help="as before the command")  # fmt: skip
        p.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                       help="as before the command")  # fmt: skip
        return p

    p = command("ingest", cmd_ingest, "load, split, embed and store files and directories")
    p.add_argument("paths", nargs="+", metavar="PATH", help="files or directories")
    p.add_argument(
        "--cleanup",
        choices=["incremental", "full"],
        default=None,
        help="full: also remove documents of files gone from these directories",
    )
    add_ingest_options(p)  # --temporal ADDRESS [--task-queue Q] [--wait]
    p = command("search", cmd_search, "find the documents closest to a query")
    p.add_argument("query", metavar="QUERY", help="the question or text to search for")
    p.add_argument("-k", type=int, default=4, help="how many results (default 4)")
    p.add_argument("--filter", metavar="JSON", help='metadata filter, e.g. \'{"file_type": "md"}\'')
    p.add_argument(
        "--mode",
        choices=SEARCH_MODES,
        help="vector: closest by meaning (scores: relevance 0-1); keyword: BM25 on the "
        "query's words (scores: BM25); hybrid: both fused (default: the configuration's "
        "search_mode, else vector)",
    )
    p.add_argument(
        "--fusion",
        choices=_FUSIONS,
        help="hybrid only: rrf (reciprocal rank fusion, the default) or weighted",
    )
    p.add_argument(
        "--alpha",
        type=float,
        help="hybrid only: the vector side's weight, 0 (keyword only) to 1 (vector only); "
        "default 0.5",
    )
    command("stats", cmd_stats, "show counts and settings of the store (from its manifest)")
    p = command("get", cmd_get, "show documents by id")
    p.add_argument("ids", nargs="+", metavar="ID", help="document ids")
    p = command("delete", cmd_delete, "delete documents by id")
    p.add_argument("ids", nargs="+", metavar="ID", help="document ids")
    command("verify", cmd_verify, "check every checksum and that index and records agree")
    p = command("migrate", cmd_migrate, "copy the store (documents and vectors) to another backend")
    p.add_argument(
        "--to",
        required=True,
        metavar="TARGET",
        help="where to: a directory or s3://BUCKET/PREFIX (a store there with this one's "
        "settings), or a configuration file (.json, .toml, .yaml) of the target store",
    )
    p.add_argument("--no-copy", action="store_true", help="switch without copying documents")
    p = command(
        "vacuum",
        cmd_vacuum,
        "remove files that crashes or interrupted writes left behind (no manifest uses them)",
    )
    p.add_argument(
        "--older-than",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="only files at least this old, so no running writer owns them (default 600)",
    )
    p = command(
        "import-faiss",
        cmd_import_faiss,
        "copy a LangChain FAISS directory (FAISS.save_local) into the store at --path: "
        "documents, ids, metadata and vectors (nothing is embedded); distance and index "
        "follow the FAISS index unless --distance or --index is given",
    )
    p.add_argument("dir", metavar="DIR", help="the directory holding index.faiss and index.pkl")
    p.add_argument(
        "--index-name",
        dest="index_name",
        default="index",
        help="the index_name given to save_local (default: index)",
    )
    p.add_argument(
        "--allow-dangerous-deserialization",
        dest="allow_dangerous_deserialization",
        action="store_true",
        help="trust index.pkl: let it load classes beyond LangChain's docstore and document "
        "(running their code, as FAISS.load_local does); only for files you wrote yourself",
    )
    command(
        "compact",
        cmd_compact,
        "merge all segments into one and drop deleted records (faster opening, less space)",
    )
    from vectordb_manager.client.cli import add_remote_options  # --server URL
    from vectordb_manager.server.command import add_serve_parser  # `serve`: the HTTP service

    add_serve_parser(sub)
    add_worker_parser(sub)
    add_remote_options(parser, sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    _tolerate_unencodable_text()
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: logging.Handler | None = None
    levels = {name: logging.getLogger(name).level for name in _DEBUG_LOGGERS}
    try:
        if args.verbose:
            from vectordb_manager.storage.redact import configure_debug_logging

            handler = configure_debug_logging()
        bars = args.command in _PROGRESS_COMMANDS and not args.quiet
        with contextlib.ExitStack() as stack:
            if not bars and args.command in _EMBEDDING_COMMANDS:
                stack.enter_context(model_bars_off())
            code = int(args.func(args))
            sys.stdout.flush()  # here, so that a closed pipe is met below, not at exit
        return code
    except BrokenPipeError:
        return _stdout_closed()
    except VectorDBError as exc:
        return _fail(exc)
    except KeyboardInterrupt:
        print("vectordb: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # anything else is still one line, unless debugging
        if os.environ.get("VECTORDB_DEBUG"):
            raise
        return _fail(exc, unexpected=True)
    finally:
        if handler is not None:  # main may run again in this process (tests, notebooks)
            for name, level in levels.items():
                logging.getLogger(name).removeHandler(handler)
                logging.getLogger(name).setLevel(level)
            handler.close()


def run() -> NoReturn:
    """The program (the ``vectordb`` console script, ``python -m vectordb_manager``): `main`,
    then exit without the interpreter's teardown.

    Tearing down the modules the embedding model brings (torch, transformers) takes a second
    or more after the command is done; nothing is left to do by then once the stores' merges
    started by the last writes are done (`engine.maintenance.wait_for_all_upkeep`) and the
    logs and the streams flushed, so the process then ends at once (``os._exit``). An
    exception ``main`` lets through (``VECTORDB_DEBUG=1``) ends it the ordinary way, with its
    traceback.
    """
    code = main()
    maintenance = sys.modules.get("vectordb_manager.engine.maintenance")
    if maintenance is not None:  # a store was opened: its merges finish first
        maintenance.wait_for_all_upkeep()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def _stdout_closed() -> int:
    """The reader of stdout went away (``vectordb stats | head -1``): stop quietly, as the
    Python documentation's "Note on SIGPIPE" says: what is still buffered goes to devnull, so
    that flushing it at exit does not fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 1


# the loggers ``configure_debug_logging`` turns to DEBUG
_DEBUG_LOGGERS = ("vectordb_manager", "botocore", "boto3", "s3transfer", "urllib3")


def _tolerate_unencodable_text() -> None:
    """Print what cannot be encoded as backslash escapes instead of failing.

    File names that are not valid UTF-8 reach sources, reports and errors as lone
    surrogates (``"caf\\udce9.txt"``), which a strict UTF-8 stream refuses to write.
    """
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if callable(reconfigure):
            reconfigure(errors="backslashreplace")


def _fail(exc: BaseException, *, unexpected: bool = False) -> int:
    if os.environ.get("VECTORDB_DEBUG"):
        raise exc
    message = " ".join(str(exc).split()) or type(exc).__name__
    kind = f"{type(exc).__name__}: " if unexpected else ""
    print(f"vectordb: error: {kind}{message}", file=sys.stderr)
    return 2 if unexpected else 1


__all__ = ["build_config", "build_parser", "main", "package_version", "run"]

if __name__ == "__main__":
    run()
