"""Uploads: files in a multipart request, ingested as ``vectordb ingest`` ingests files.

The body limit is ``max_upload_bytes`` (`server.limits`). The files are staged under
``upload_dir/COLLECTION/NAME`` (``NAME`` as uploaded, a relative path) and handed to
`VectorDatabaseManager.ingest`, so the formats, the splitting, the incremental behaviour
(uploading an unchanged file again embeds and writes nothing; a changed one replaces its
chunks) and the per-file report are the CLI's. The chunks' ``source`` is the file's name as
uploaded with ``source_names=true``; otherwise the staged path, which is the same for every
upload of one name on servers sharing ``upload_dir``. Uploads to one collection
are ingested one at a time (per server); the staged files are removed afterwards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path, PurePosixPath
from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile

from vectordb_manager.ingestion import IngestReport
from vectordb_manager.processing.files import PathInput
from vectordb_manager.server.deps import State, WriteCollection
from vectordb_manager.server.errors import ApiError
from vectordb_manager.server.models import IngestResponse
from vectordb_manager.server.vectors_only import require_model

router = APIRouter(prefix="/collections/{name}", tags=["documents"])


@router.post("/upload", summary="Upload files for ingestion")
def upload(
    collection: WriteCollection,
    state: State,
    files: Annotated[
        list[UploadFile],
        File(description="Files (.txt .md .html .json .jsonl .csv .pdf .docx ...)"),
    ],
    source_names: Annotated[
        bool,
        Form(
            description="true: each chunk's source metadata is its file's name as uploaded "
            "(e.g. docs/guide.md), the same from any server; false: the staged path"
        ),
    ] = False,
) -> IngestResponse:
    """Ingest the uploaded files into the collection: load, split, embed and store
    them, incrementally. The report names every file as uploaded and says why any failed
    or was skipped; a failed file leaves what the collection held for it unchanged. A file
    uploaded again under the same name (and ``source_names`` alike) replaces its chunks:
    unchanged, nothing is embedded or written."""
    require_model(collection.spec, "embed uploaded files")
    names = [_upload_name(f.filename) for f in files]
    if len(set(names)) != len(names):
        raise ApiError("invalid_input", "two uploaded files have the same name; rename one")
    folder = state.settings.staging_dir / collection.name
    with collection.upload_lock:
        staged = [folder.joinpath(*PurePosixPath(name).parts) for name in names]
        try:
            for sent, path in zip(files, staged, strict=True):
                path.parent.mkdir(parents=True, exist_ok=True)
                with path.open("wb") as out:
                    shutil.copyfileobj(sent.file, out, 1 << 20)
            sources: dict[PathInput, str] | None = None
            if source_names:
                sources = dict(zip(staged, names, strict=True))
            report = collection.manager.ingest(staged, sources=sources)
        finally:
            for path in staged:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            _prune(folder)
    return _response(report, {str(p): n for p, n in zip(staged, names, strict=True)})


def _upload_name(filename: str | None) -> str:
    """A file's name as uploaded, as a safe relative path (400 ``invalid_input`` if not)."""
    raw = (filename or "").replace("\\", "/")
    parts = [p for p in raw.split("/") if p]
    if not parts or any(p in (".", "..") or "\x00" in p for p in parts) or raw.startswith("/"):
        raise ApiError(
            "invalid_input",
            f"uploaded file name {filename!r} is not a relative file name; give each file a "
            "name like 'notes.md' or 'docs/guide.md' (no '..', not absolute)",
        )
    return "/".join(parts)


def _prune(folder: Path) -> None:
    """Remove the staging folders left empty."""
    for current, _, _ in sorted(os.walk(folder), key=lambda w: -len(w[0])):
        with contextlib.suppress(OSError):
            os.rmdir(current)


def _response(report: IngestReport, names: dict[str, str]) -> IngestResponse:
    def name(path: str) -> str:
        return names.get(path, path)

    summary = str(report)
    for path, shown in names.items():
        summary = summary.replace(path, shown)
    return IngestResponse(
        ok=report.ok,
        files_seen=report.files_seen,
        files_added=[name(p) for p in report.files_added],
        files_updated=[name(p) for p in report.files_updated],
        files_unchanged=[name(p) for p in report.files_unchanged],
        files_skipped={name(p): why for p, why in report.files_skipped.items()},
        files_failed={name(p): why.replace(p, name(p)) for p, why in report.files_failed.items()},
        chunks_added=report.chunks_added,
        chunks_removed=report.chunks_removed,
        texts_embedded=report.texts_embedded,
        seconds=report.seconds,
        summary=summary,
    )
