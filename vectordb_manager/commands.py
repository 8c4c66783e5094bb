"""The ``vectordb`` commands, one function each: parse nothing, call one library method, print.

`cli` parses the command line and calls ``cmd_<name>(args)``; each returns the exit code and
prints its result on stdout, as text or, with ``--json``, as JSON alone (progress and logs go to
stderr). A command imports the library it uses when it runs, so that the command line starts
without LangChain, FAISS or a model; ``stats`` reads the store's manifest alone
(`store_info.read_stats`). Errors are the package's (`cli.main` turns them into one line).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

from vectordb_manager.config import VectorDBConfig, load_config_file
from vectordb_manager.errors import InvalidInputError

_CONFIG_SUFFIXES = (".json", ".toml", ".yaml", ".yml")

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


@contextlib.contextmanager
def model_bars_off() -> Iterator[None]:
    """No progress bars from the embedding model's libraries while the command runs:
    huggingface_hub's (downloads) through its own switch, which transformers reads when it is
    imported (its "Loading weights" bar); transformers' own switch too if it is imported
    already. Both are switched back on afterwards (``main`` may run again in this process)."""
    try:
        from huggingface_hub.utils.tqdm import (
            are_progress_bars_disabled,
            disable_progress_bars,
            enable_progress_bars,
        )
    except ImportError:  # no huggingface extra: no such bars
        yield
        return
    hub_on = not are_progress_bars_disabled()
    loaded = sys.modules.get("transformers.utils.logging")
    transformers_on = loaded is not None and bool(loaded.is_progress_bar_enabled())
    disable_progress_bars()
    if loaded is not None and transformers_on:
        loaded.disable_progress_bar()
    try:
        yield
    finally:
        if hub_on:
            enable_progress_bars()
        now = sys.modules.get("transformers.utils.logging")  # perhaps imported meanwhile
        if now is not None and (transformers_on or (loaded is None and hub_on)):
            now.enable_progress_bar()


def print_json(value: Any) -> None:
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
    from vectordb_manager.workflows.command import cmd_ingest_temporal, refuse_without_temporal

    if args.temporal is not None:
        return cmd_ingest_temporal(args)
    refuse_without_temporal(args)
    report = _manager(args, create=True).ingest(
        args.paths, cleanup=args.cleanup, progress=not args.quiet
    )
    if args.json:
        print_json(report.to_dict())
    else:
        print(report)
    return 0 if report.ok else 1


def cmd_search(args: argparse.Namespace) -> int:
    from vectordb_manager.quick_search import EngineSearch, open_search, require_query

    require_query(args.query)  # before the store is opened or the model loaded
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
    # the engine alone where it can answer (no LangChain store or model class), else the
    # manager: the same results either way
    manager = open_search(build_config(args))
    if options and manager.config.search_mode != "hybrid":
        raise InvalidInputError("--fusion and --alpha apply to hybrid search; add --mode hybrid")
    with contextlib.ExitStack() as stack:
        if not isinstance(manager, EngineSearch):  # its model may be a library's, with bars
            stack.enter_context(model_bars_off())
        hits = manager.search_with_scores(args.query, k=args.k, filter=filter_, **options)
    if args.json:
        print_json([_doc_json(doc, score) for doc, score in hits])
        return 0
    if not hits:
        print("no results")
    for rank, (doc, score) in enumerate(hits, 1):
        source = doc.metadata.get("source", "")
        snippet = " ".join(doc.page_content.split())[:160]
        print(f"{rank}. [{score:.3f}] {doc.id}  {source}\n   {snippet}")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from vectordb_manager.store_info import read_stats

    stats = read_stats(build_config(args))  # the manifest alone: no segment, no model
    if args.json:
        print_json(stats)
    else:
        for key, value in stats.items():
            print(f"{key:>16}: {value}")
    return 0


def cmd_get(args: argparse.Namespace) -> int:
    docs = _manager(args).get(args.ids)
    missing = sorted(set(args.ids) - {d.id for d in docs})
    if args.json:
        print_json([_doc_json(d) for d in docs])
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
    if args.json:
        print_json({"deleted": deleted, "requested": len(args.ids)})
    else:
        print(f"deleted {deleted} of {len(args.ids)} documents")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    report = _manager(args).verify()
    if args.json:
        print_json({"ok": True, **report})
    else:
        print("OK: " + ", ".join(f"{k}={v}" for k, v in report.items()))
    return 0


def cmd_vacuum(args: argparse.Namespace) -> int:
    removed = _manager(args).vacuum(older_than=args.older_than)
    if args.json:
        print_json({"removed": removed, "older_than": args.older_than})
        return 0
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
    compacted = manager.compact()
    after = manager.stats() if compacted else before
    if args.json:
        print_json(
            {
                "compacted": compacted,
                "segments_before": before["segments"],
                "segments_after": after["segments"],
                "tombstones_dropped": before["tombstones"] - after["tombstones"],
                "version": after["version"],
            }
        )
    elif compacted:
        print(
            f"compacted: {before['segments']} segments merged into {after['segments']}, "
            f"{before['tombstones']} deleted records dropped (version {after['version']})"
        )
    else:
        print("nothing to compact: the store is one segment with no deleted records")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    manager = _manager(args)
    target = migration_target(manager.config, args.to)
    copied = manager.switch_backend(target, migrate=not args.no_copy, progress=not args.quiet)
    where = manager.vector_store.stats()["location"] or "memory"
    if args.json:
        print_json({"copied": copied, "storage_type": target.storage_type, "location": where})
    else:
        print(f"copied {copied} documents to the {target.storage_type} store {where}")
    return 0


def migration_target(source: VectorDBConfig, to: str) -> VectorDBConfig:
    """The configuration of the store ``migrate --to`` names: ``s3://BUCKET/PREFIX`` or a
    directory (a store's, an empty one, or one not yet made) is a store there with the
    source's settings; a ``.json``, ``.toml``, ``.yaml`` or ``.yml`` file is a configuration
    whose settings replace the source's. `InvalidInputError` for anything else."""
    if to.startswith("s3://"):
        bucket, _, prefix = to.removeprefix("s3://").partition("/")
        if not bucket:
            raise InvalidInputError(f"--to {to!r} names no bucket; use s3://BUCKET/PREFIX")
        return source.replace(storage_type="s3", s3_bucket=bucket, s3_prefix=prefix)
    path = Path(to).expanduser()
    if path.suffix.lower() in _CONFIG_SUFFIXES and not path.is_dir():
        return VectorDBConfig.from_dict(
            {**source.to_dict(include_secrets=True), **load_config_file(path)}
        )
    neither = (
        "give a configuration file (.json, .toml, .yaml or .yml), a store's directory, a new "
        "or empty directory, or s3://BUCKET/PREFIX"
    )
    if path.is_dir():
        if not (path / "manifests").is_dir() and any(path.iterdir()):
            raise InvalidInputError(
                f"--to {to}: the directory is not empty and holds no store (no manifests/); "
                + neither
            )
    elif path.exists():
        raise InvalidInputError(
            f"--to {to} is neither a configuration file nor a directory; " + neither
        )
    return source.replace(storage_type="local", local_path=str(path))


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
    if args.json:
        print_json({"imported": count, "source": args.dir, **stats})
        return 0
    print(
        f"imported {count} documents from {args.dir} into {stats['location'] or 'memory'} "
        f"(distance={stats['distance']}, index={stats['index']})"
    )
    return 0
