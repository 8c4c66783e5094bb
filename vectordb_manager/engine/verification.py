"""Verification: a store's files, re-read, must agree with each other and with memory.

`Engine.verify` rebuilds the state of the version in memory from its files without leaving
records undecoded (every checksum, every section, every record parsed), then checks that the
files and memory hold the same documents, records and vectors, that every record matches its
content hash, and that the index holds one vector per slot. Any difference is an
`IntegrityError` that names what differs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vectordb_manager.engine.format import canonical_json, content_hash
from vectordb_manager.engine.manifest import Manifest
from vectordb_manager.engine.state import StoreState
from vectordb_manager.errors import IntegrityError


def compare(fresh: StoreState, mem: StoreState) -> None:
    """`IntegrityError` unless the state read from the files equals the one in memory."""
    if set(fresh.slot) != set(mem.slot):
        missing = sorted(set(fresh.slot) - set(mem.slot))[:5]
        extra = sorted(set(mem.slot) - set(fresh.slot))[:5]
        raise IntegrityError(
            f"the files and memory disagree on which documents exist (only on disk: {missing}, "
            f"only in memory: {extra}); reopen the store"
        )
    fv = fresh.index.vectors() if fresh.index is not None else None
    mv = mem.index.vectors() if mem.index is not None else None
    for doc_id, a in fresh.slot.items():
        b = mem.slot[doc_id]
        if fresh.record(a)[:3] != mem.record(b)[:3]:
            raise IntegrityError(f"record {doc_id!r} differs between the files and memory")
        if fv is not None and mv is not None and not np.array_equal(fv[a], mv[b]):
            raise IntegrityError(f"the vector of {doc_id!r} differs between the files and memory")


def check_records(st: StoreState) -> None:
    """`IntegrityError` unless every record matches its content hash and the index holds a
    vector for every slot."""
    st.materialize()
    for slot, doc_id in enumerate(st.ids):
        if doc_id is None:
            continue
        text, meta, digest = st.record(slot)[:3]  # text, metadata, hash
        if digest != content_hash(text, canonical_json(meta)):
            raise IntegrityError(f"record {doc_id!r} does not match its content hash")
    if st.index is not None and st.index.ntotal != st.slots:
        raise IntegrityError(f"the index holds {st.index.ntotal} vectors for {st.slots} records")


def summary(st: StoreState, manifest: Manifest) -> dict[str, Any]:
    """What `Engine.verify` reports of a checked version: counts, version, segments, bytes."""
    return {
        "documents": st.live,
        "tombstones": st.dead,
        "version": manifest.version,
        "segments": len(manifest.segments),
        "bytes": sum(f.bytes for s in manifest.segments for f in s.files())
        + (manifest.snapshot.file.bytes if manifest.snapshot else 0),
    }
