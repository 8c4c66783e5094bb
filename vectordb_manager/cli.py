"""The ``vectordb`` command: a thin shell over `VectorDatabaseManager`.

Each command parses its arguments, calls one library method, and turns the package's errors
into a one-line message and a non-zero exit code (set ``VECTORDB_DEBUG=1`` for tracebacks).
Configuration comes from, in rising precedence: defaults, ``--config FILE`` (JSON, TOML or
YAML), ``VECTORDB_*`` environment variables, and flags.

Only ``ingest`` and ``import-faiss`` create a store (and ``migrate`` its target); every
other command opens an existing one and fails with "no store at ..." where there is none,
writing nothing.
``--verbose`` logs the package (and botocore) at DEBUG level on stderr, credentials redacted.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

from vectordb_manager.config import SEARCH_MODES, VectorDBConfig, load_config_file
from vectordb_manager.engine.options import DISTANCES, INDEX_TYPES
from vectordb_manager.errors import InvalidInputError, VectorDBError
from vectordb_manager.vectorstores.fusion import FUSIONS

# flag -> config field, for the options every command takes
_CONFIG_FLAGS = {
    "storage": "storage_type",
    "path": "local_path",
    "bucket": "s3_bucket",
    "prefix": "s3_prefix",
    "endpoint_url": "s3_endpoint_url",
    "region": "aws_region",
    "profile": "aws_profile",
    "provider": "embedding_provider",
    "model": "embedding_model",
    "distance": "distance_metric",
    "index": "index_type",
    "chunk_size": "chunk_size",
    "chunk_overlap": "chunk_overlap",
    "text_language": "text_language",
    "text_stemming": "text_stemming",
    "text_stopwords": "text_stopwords",
    "mode": "search_mode",  # search's --mode
}


def build_config(args: argparse.Namespace, environ: dict[str, str] | None = None) -> VectorDBConfig:
    """Defaults < --config file < VECTORDB_* environment < flags."""
    values: dict[str, Any] = {}
    if args.config:
        values.update(load_config_file(args.config))
    values.update(VectorDBConfig.env_overrides(environ=environ))
    for flag, fld in _CONFIG_FLAGS.items():
        value = getattr(args, flag, None)
        if value is not None:
            values[fld] = value
    return VectorDBConfig.from_dict(values)


def _manager(args: argparse.Namespace, *, create: bool = False) -> Any:
    """The manager of the configured store; without ``create``, an existing store only
    (`StoreNotFoundError`, and nothing is written, where there is none)."""
    from vectordb_manager.manager import VectorDatabaseManager

    return VectorDatabaseManager(build_config(args), create=create)


def _print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2, default=_json_default))


def _json_default(value: Any) -> Any:
    """What JSON has no type for: dates and datetimes as ISO 8601, anything else as text."""
    return value.isoformat() if isinstance(value, date) else str(value)


def _doc_json(doc: Any, score: float | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": doc.id, "text": doc.page_content, "metadata": doc.metadata}
    if score is not None:
        out["score"] = score
    return out


# -- commands --------------------------------------------------------------------------------
def cmd_ingest(args: argparse.Namespace) -> int:
    report = _manager(args, create=True).ingest(
        args.paths, cleanup=args.cleanup, progress=not args.quiet
    )
    print(report)
    return 0 if report.ok else 1


def cmd_search(args: argparse.Namespace) -> int:
    try:
        filter_ = json.loads(args.filter) if args.filter else None
    except json.JSONDecodeError as exc:
        raise InvalidInputError(
            f'--filter is not valid JSON ({exc}); e.g. \'{{"source": "a.txt"}}\''
        ) from None
    options: dict[str, Any] = {}
    if args.fusion is not None:
        options["fusion"] = args.fusion
    if args.alpha is not None:
        options["alpha"] = args.alpha
    manager = _manager(args)
    if options and manager.config.search_mode != "hybrid":
        raise InvalidInputError(
            "--fusion and --alpha apply to hybrid search; add --mode hybrid"
        )
    hits = manager.search_with_scores(args.query, k=args.k, filter=filter_, **options)
    if args.json:
        _print_json([_doc_json(doc, score) for doc, score in hits])
        return 0
    if not hits:
        print("no results")
    for rank, (doc, score) in enumerate(hits, 1):
        source = doc.metadata.get("source", "")
        snippet = " ".join(doc.page_content.split())[:160]
        print(f"{rank}. [{score:.3f}] {doc.id}  {source}\n   {snippet}")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    stats = _manager(args).stats()
    if args.json:
        _print_json(stats)
    else:
        for key, value in stats.items():
            print(f"{key:>16}: {value}")
    return 0


def cmd_get(args: argparse.Namespace) -> int:
    docs = _manager(args).get(args.ids)
    missing = sorted(set(args.ids) - {d.id for d in docs})
    if args.json:
        _print_json([_doc_json(d) for d in docs])
    else:
        for doc in docs:
            meta = json.dumps(doc.metadata, ensure_ascii=False, default=_json_default)
            print(f"{doc.id}\n  metadata: {meta}\n  {doc.page_content}")
    if missing:
        print(f"vectordb: not found: {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    deleted = _manager(args).delete(args.ids)
    print(f"deleted {deleted} of {len(args.ids)} documents")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    report = _manager(args).verify()
    print("OK: " + ", ".join(f"{k}={v}" for k, v in report.items()))
    return 0


def cmd_vacuum(args: argparse.Namespace) -> int:
    removed = _manager(args).vacuum(older_than=args.older_than)
    for name in removed:
        print(f"removed {name}")
    print(
        f"removed {len(removed)} unreferenced file{'' if len(removed) == 1 else 's'} "
        f"(files younger than {args.older_than:g} s are kept)"
    )
    return 0


def cmd_compact(args: argparse.Namespace) -> int:
    manager = _manager(args)
    before = manager.stats()
    if manager.compact():
        after = manager.stats()
        print(
            f"compacted: {before['segments']} segments merged into {after['segments']}, "
            f"{before['tombstones']} deleted records dropped (version {after['version']})"
        )
    else:
        print("nothing to compact: the store is one segment with no deleted records")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    manager = _manager(args)
    target = VectorDBConfig.from_dict(
        {**manager.config.to_dict(include_secrets=True), **load_config_file(args.to)}
    )
    copied = manager.switch_backend(target, migrate=not args.no_copy, progress=not args.quiet)
    where = manager.vector_store.stats()["location"] or "memory"
    print(f"copied {copied} documents to the {target.storage_type} store {where}")
    return 0


def cmd_import_faiss(args: argparse.Namespace) -> int:
    from vectordb_manager.vectorstores.faiss_import import import_langchain_faiss_to

    config = build_config(args)
    store, count = import_langchain_faiss_to(
        config,
        args.dir,
        distance=args.distance,
        index=args.index,
        index_name=args.index_name,
        allow_dangerous_deserialization=args.allow_dangerous_deserialization,
        progress=not args.quiet,
    )
    stats = store.stats()
    print(
        f"imported {count} documents from {args.dir} into {stats['location'] or 'memory'} "
        f"(distance={stats['distance']}, index={stats['index']})"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vectordb",
        description="Manage a vectordb-manager vector store: ingest files, search, inspect.",
    )
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
    parser.add_argument(
        "--distance", choices=DISTANCES, help="distance (new stores)"
    )
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
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
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
        return p

    p = command("ingest", cmd_ingest, "load, split, embed and store files and directories")
    p.add_argument("paths", nargs="+", metavar="PATH", help="files or directories")
    p.add_argument(
        "--cleanup",
        choices=["incremental", "full"],
        default=None,
        help="full: also remove documents of files gone from these directories",
    )
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
        choices=FUSIONS,
        help="hybrid only: rrf (reciprocal rank fusion, the default) or weighted",
    )
    p.add_argument(
        "--alpha",
        type=float,
        help="hybrid only: the vector side's weight, 0 (keyword only) to 1 (vector only); "
        "default 0.5",
    )
    p.add_argument("--json", action="store_true", help="print results as JSON")
    p = command("stats", cmd_stats, "show counts and settings of the store")
    p.add_argument("--json", action="store_true", help="print as JSON")
    p = command("get", cmd_get, "show documents by id")
    p.add_argument("ids", nargs="+", metavar="ID", help="document ids")
    p.add_argument("--json", action="store_true", help="print as JSON")
    p = command("delete", cmd_delete, "delete documents by id")
    p.add_argument("ids", nargs="+", metavar="ID", help="document ids")
    command("verify", cmd_verify, "check every checksum and that index and records agree")
    p = command("migrate", cmd_migrate, "copy the store (documents and vectors) to another backend")
    p.add_argument("--to", required=True, metavar="CONFIG", help="config file of the target store")
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
        return int(args.func(args))
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


if __name__ == "__main__":
    sys.exit(main())
