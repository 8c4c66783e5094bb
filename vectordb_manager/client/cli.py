"""``vectordb --server URL --collection NAME COMMAND``: commands answered by a running
`vectordb serve` instead of a store opened here, so repeated commands skip opening the store
and loading the model.

`add_remote_options` adds ``--server``, ``--collection`` and ``--api-key-env`` to the CLI's
main parser and wraps the commands that can run remotely (``ingest``, ``search``, ``stats``,
``get``, ``delete``, ``verify``, ``compact``): with ``--server`` (or ``VECTORDB_SERVER_URL``)
they send their request to the server; without it they run as before. ``ingest --server``
uploads the files, named by their path relative to ``--base`` (default: the current
directory), which becomes their chunks' ``source``: ingesting the same files again from
there is incremental, as locally. The key is read from the
environment variable ``--api-key-env`` names (default ``VECTORDB_API_KEY``), never from a
flag. Other commands refuse ``--server``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from vectordb_manager.errors import InvalidInputError

Command = Callable[[argparse.Namespace], int]
REMOTE_COMMANDS = ("ingest", "search", "stats", "get", "delete", "verify", "compact")


def add_remote_options(parser: argparse.ArgumentParser, subparsers: Any) -> None:
    """Add the remote options to the CLI's ``parser`` and route its ``subparsers``'
    commands to the server when ``--server`` is given."""
    parser.add_argument(
        "--server",
        metavar="URL",
        default=os.environ.get("VECTORDB_SERVER_URL"),
        help="send the command to a running `vectordb serve` (e.g. http://localhost:8000) "
        "instead of opening the store here; also VECTORDB_SERVER_URL",
    )
    parser.add_argument(
        "--collection",
        metavar="NAME",
        default=os.environ.get("VECTORDB_COLLECTION"),
        help="with --server: the collection to use; also VECTORDB_COLLECTION",
    )
    parser.add_argument(
        "--api-key-env",
        dest="api_key_env",
        metavar="VAR",
        default="VECTORDB_API_KEY",
        help="with --server: the environment variable holding the API key "
        "(default VECTORDB_API_KEY)",
    )
    subparsers.choices["ingest"].add_argument(
        "--base",
        metavar="DIR",
        help="with --server: name each file (its chunks' source) by its path relative to DIR "
        "(default: the current directory)",
    )
    for name, sub in subparsers.choices.items():
        local = sub.get_default("func")
        if local is not None:
            sub.set_defaults(func=_routed(name, local))


def _routed(name: str, local: Command) -> Command:
    def run(args: argparse.Namespace) -> int:
        if not getattr(args, "server", None):
            if getattr(args, "base", None):
                raise InvalidInputError(
                    "--base names the files uploaded to a server; it applies with --server"
                )
            return local(args)
        if name not in REMOTE_COMMANDS:
            raise InvalidInputError(
                f"{name} runs on a store opened here, not through --server; leave --server "
                f"out (remote commands: {', '.join(REMOTE_COMMANDS)})"
            )
        return REMOTE[name](args)

    return run


def _client(args: argparse.Namespace) -> tuple[Any, str]:
    from vectordb_manager.client.admin import VectorDBClient

    if not args.collection:
        raise InvalidInputError(
            "--server needs --collection NAME (or VECTORDB_COLLECTION): the collection to use"
        )
    return VectorDBClient(args.server, api_key=os.environ.get(args.api_key_env)), args.collection


def _path(collection: str, tail: str = "") -> str:
    from urllib.parse import quote

    return f"/collections/{quote(collection, safe='')}{tail}"


def remote_ingest(args: argparse.Namespace) -> int:
    from vectordb_manager.ingestion import IngestReport

    if args.cleanup:
        raise InvalidInputError(
            "--cleanup works on a store opened here; through --server, delete the documents "
            "of removed files with `vectordb --server ... delete`"
        )
    if getattr(args, "temporal", None):
        raise InvalidInputError(
            "--temporal runs the ingestion on Temporal workers, which open the store "
            "themselves; --server uploads the files to a server, which ingests them: use one "
            "of the two"
        )
    admin, name = _client(args)
    answer = admin.upload(name, args.paths, base=args.base or os.getcwd(), source_names=True)
    fields = {k: answer[k] for k in IngestReport.__dataclass_fields__ if k in answer}
    report = IngestReport(**fields)
    if args.json:
        _print_json(report.to_dict())
    else:
        print(report)
    return 0 if report.ok else 1


def remote_search(args: argparse.Namespace) -> int:
    admin, name = _client(args)
    body: dict[str, Any] = {"text": args.query, "k": args.k}
    if args.filter:
        try:
            body["filter"] = json.loads(args.filter)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(
                f'--filter is not valid JSON ({exc}); e.g. \'{{"source": "a.txt"}}\''
            ) from None
    if args.mode:
        body["mode"] = args.mode
    if args.fusion is not None:
        body["fusion"] = args.fusion
    if args.alpha is not None:
        body["alpha"] = args.alpha
    answer = admin.transport.request("POST", _path(name, "/query"), json=body, repeatable=True)
    hits = answer["results"]
    if args.json:
        _print_json([{k: h[k] for k in ("id", "text", "metadata", "score")} for h in hits])
        return 0
    if not hits:
        print("no results")
    for rank, hit in enumerate(hits, 1):
        source = hit["metadata"].get("source", "")
        snippet = " ".join(hit["text"].split())[:160]
        print(f"{rank}. [{hit['score']:.3f}] {hit['id']}  {source}\n   {snippet}")
    return 0


def remote_stats(args: argparse.Namespace) -> int:
    admin, name = _client(args)
    info = admin.describe_collection(name)
    stats = {**info.pop("stats"), **{k: v for k, v in info.items() if k != "embedding"}}
    stats["embedding"] = info["embedding"]
    if args.json:
        _print_json(stats)
    else:
        for key, value in stats.items():
            print(f"{key:>16}: {value}")
    return 0


def remote_get(args: argparse.Namespace) -> int:
    admin, name = _client(args)
    answer = admin.transport.request(
        "POST", _path(name, "/documents/get"), json={"ids": args.ids}, repeatable=True
    )
    if args.json:
        _print_json(answer["documents"])
    else:
        for doc in answer["documents"]:
            meta = json.dumps(doc["metadata"], ensure_ascii=False)
            print(f"{doc['id']}\n  metadata: {meta}\n  {doc['text']}")
    if answer["missing"]:
        print(f"vectordb: not found: {', '.join(answer['missing'])}", file=sys.stderr)
        return 1
    return 0


def remote_delete(args: argparse.Namespace) -> int:
    admin, name = _client(args)
    body = {"ids": args.ids}
    deleted = admin.transport.request(
        "POST", _path(name, "/documents/delete"), json=body, repeatable=True
    )
    print(f"deleted {deleted['deleted']} of {len(args.ids)} documents")
    return 0


def remote_verify(args: argparse.Namespace) -> int:
    admin, name = _client(args)
    report = admin.verify(name)
    print("OK: " + ", ".join(f"{k}={v}" for k, v in report.items()))
    return 0


def remote_compact(args: argparse.Namespace) -> int:
    admin, name = _client(args)
    if admin.compact(name):
        stats = admin.describe_collection(name)["stats"]
        print(f"compacted: {stats['segments']} segment(s), version {stats['version']}")
    else:
        print("nothing to compact: the store is one segment with no deleted records")
    return 0


REMOTE: dict[str, Command] = {
    "ingest": remote_ingest,
    "search": remote_search,
    "stats": remote_stats,
    "get": remote_get,
    "delete": remote_delete,
    "verify": remote_verify,
    "compact": remote_compact,
}


def _print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2))


__all__ = ["REMOTE_COMMANDS", "add_remote_options"]
