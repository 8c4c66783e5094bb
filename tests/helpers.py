"""Test helpers: embeddings that return given vectors, and brute-force references."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from vectordb_manager.engine.format import pack_sections, unpack_sections
from vectordb_manager.engine.manifest import sha256


class VectorTable(Embeddings):
    """Embeddings that look texts up in a table; a text of the form 'q:<i>' maps to query i."""

    def __init__(self, vectors: np.ndarray, queries: np.ndarray | None = None) -> None:
        self.vectors = vectors
        self.queries = queries if queries is not None else vectors
        self.size = vectors.shape[1]
        self.calls = 0

    def _one(self, text: str) -> list[float]:
        kind, _, num = text.partition(":")
        table = self.queries if kind == "q" else self.vectors
        return table[int(num)].tolist()  # type: ignore[no-any-return]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.calls += 1
        return [self._one(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._one(text)


def clustered(n: int, dim: int, seed: int = 0, centres: int = 20) -> np.ndarray:
    """Unit vectors around a few centres (like real embeddings, unlike uniform noise)."""
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centres, dim))
    x = c[rng.integers(0, centres, n)] + 0.3 * rng.normal(size=(n, dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)


def brute_force(
    vectors: np.ndarray,
    query: np.ndarray,
    k: int,
    distance: str,
    keep: Sequence[int] | None = None,
) -> list[int]:
    """Indices of the k nearest rows (among ``keep``), by exact NumPy arithmetic in float64."""
    idx = np.arange(len(vectors)) if keep is None else np.asarray(keep)
    x = vectors[idx].astype(np.float64)
    q = query.astype(np.float64)
    if distance == "l2":
        d = ((x - q) ** 2).sum(axis=1)
    elif distance == "cosine":
        d = -(x / np.linalg.norm(x, axis=1, keepdims=True)) @ (q / np.linalg.norm(q))
    else:
        d = -(x @ q)
    order = np.argsort(d, kind="stable")[:k]
    return [int(i) for i in idx[order]]


def passing(metas: Sequence[Mapping[str, Any]], test: Callable[[Mapping[str, Any]], bool]) -> list[int]:
    return [i for i, m in enumerate(metas) if test(m)]


def keyword_of(doc_id: str) -> str:
    """A word that only the document ``doc_id`` holds (of the concurrency tests' writers)."""
    return "kw" + doc_id.replace("-", "q")


def check_keywords(engine: Any, present: set[str], deleted: set[str]) -> None:
    """The keyword index agrees with the ids: each present document is the one match of its
    own word; no deleted one is found by its word."""
    for doc_id in present:
        hits = engine.keyword_search(keyword_of(doc_id), 3)
        assert [h.document.id for h in hits] == [doc_id], (doc_id, hits[:2])
    for doc_id in deleted:
        assert doc_id not in {h.document.id for h in engine.keyword_search(keyword_of(doc_id), 3)}


def write_concurrently(stores: Sequence[Any], rounds: int, delete_every: int = 4) -> set[str]:
    """Each store, in its own thread, adds ``rounds`` documents and deletes every
    ``delete_every``-th one it wrote before; returns the ids that must remain."""
    import threading

    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for i in range(rounds):
                doc_id = f"{n}-{i}"
                stores[n].add_texts([f"writer {n} text {i} {keyword_of(doc_id)}"], ids=[doc_id])
                if i % delete_every == delete_every - 1:
                    stores[n].delete([f"{n}-{i - 1}"])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    return {
        f"{n}-{i}"
        for n in range(len(stores))
        for i in range(rounds)
        if i % delete_every != delete_every - 2
    }


def named_by_manifests(path: Path) -> set[str]:
    """Every file that some manifest of the local store at ``path`` names."""
    names: set[str] = set()
    for manifest in os.scandir(path / "manifests"):
        if manifest.name.endswith(".json") and not manifest.name.startswith("."):  # as glob
            stat = manifest.stat()
            names |= _named_by(manifest.path, stat.st_size, stat.st_mtime_ns)
    return names


@functools.lru_cache(maxsize=4096)
def _named_by(manifest: str, size: int, mtime_ns: int) -> frozenset[str]:
    """The files one manifest names. Cached, for tests that check after every write: a
    manifest is written once (a create-only write), and its size and time are in the key."""
    doc = json.loads(Path(manifest).read_text())
    names = {s["file"]["path"] for s in doc["segments"]}
    if doc.get("index_snapshot"):
        names.add(doc["index_snapshot"]["file"]["path"])
    return frozenset(names)


# -- a store's files, changed as an attacker with write access would ----------------------
def segment_file(path: Path) -> Path:
    """The first segment file of the local store at ``path``."""
    return next(path.glob("segments/*.seg"))


def rewrite_section(store_path: Path, section: str, payload: bytes) -> None:
    """Replace one section of the first segment and fix the manifest's checksum, as an
    attacker who can write the store's files would."""
    target = segment_file(store_path)
    parts = {k: bytes(v) for k, v in unpack_sections(target.read_bytes(), "seg").items()}
    parts[section] = payload
    data = pack_sections(parts)
    target.write_bytes(data)
    manifest = sorted(store_path.glob("manifests/*.json"))[-1]
    doc = json.loads(manifest.read_text())
    ref = doc["segments"][0]["file"]
    ref["bytes"], ref["sha256"] = len(data), sha256(data)
    manifest.write_text(json.dumps(doc))
