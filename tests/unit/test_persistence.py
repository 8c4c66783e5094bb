"""Persistence: reopening, the format on disk, compaction, dimensions, odd ids (damaged and
hostile files: test_persistence_damage.py)."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

from tests.helpers import VectorTable, clustered, rewrite_section
from vectordb_manager import (
    ConfigurationError,
    DimensionMismatchError,
    IntegrityError,
    LocalVectorStore,
    StorageError,
)
from vectordb_manager.embeddings import HashingEmbeddings
from vectordb_manager.engine.compaction import CompactionPolicy
from vectordb_manager.engine.format import unpack_sections
from vectordb_manager.engine.records import Record
from vectordb_manager.engine.state import LAZY

EMB = HashingEmbeddings(64)


def open_store(path: Path, **kw: object) -> LocalVectorStore:
    return LocalVectorStore(EMB, path, **kw)  # type: ignore[arg-type]


def files(path: Path, pattern: str) -> list[Path]:
    return sorted(path.glob(pattern))


def test_reopen_round_trips_documents_exactly(tmp_path: Path) -> None:
    meta = {"s": "é\n", "n": 1, "f": 1.5, "b": False, "none": None, "l": [1, "x", [2]], "d": {"k": {}}}
    store = open_store(tmp_path)
    store.add_documents([Document(page_content="hello world", metadata=meta, id="a")])
    store.add_texts(["second text"], ids=["b"])
    again = open_store(tmp_path)
    assert again.get_by_ids(["a", "b"]) == [
        Document(page_content="hello world", metadata=meta, id="a"),
        Document(page_content="second text", metadata={}, id="b"),
    ]
    assert again.similarity_search("hello", k=1)[0].id == "a"


def test_layout_is_segments_plus_manifest_without_pickle(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.add_texts(["one", "two"], [{"k": 1}, {"k": 2}], ids=["1", "2"])
    store.delete(["1"])
    manifests = files(tmp_path, "manifests/*.json")
    latest = json.loads(manifests[-1].read_text())
    assert latest["format"] == "vectordb-manager" and latest["format_version"] == 1
    assert latest["dimension"] == 64 and latest["distance"] == "cosine"
    assert latest["live_count"] == 1 and len(latest["segments"]) == 2
    first, second = latest["segments"]
    sections = unpack_sections((tmp_path / first["file"]["path"]).read_bytes(), "seg")
    assert sorted(sections) == ["ids", "postings", "records", "values", "vectors"]
    assert json.loads(bytes(sections["ids"])) == ["1", "2"]
    rows = [json.loads(line) for line in bytes(sections["records"]).decode().splitlines()]
    assert [r["id"] for r in rows] == ["1", "2"] and rows[0]["metadata"] == {"k": 1}
    vec = np.load(io.BytesIO(bytes(sections["vectors"])), allow_pickle=False)
    assert vec.shape == (2, 64) and vec.dtype == np.float32
    deletes = unpack_sections((tmp_path / second["file"]["path"]).read_bytes(), "seg")
    assert sorted(deletes) == ["deletes"] and json.loads(bytes(deletes["deletes"])) == ["1"]
    for p in tmp_path.rglob("*"):
        if p.is_file():
            assert not p.read_bytes().startswith(b"\x80"), f"{p} looks like a pickle"


def test_persisting_costs_in_proportion_to_the_change(tmp_path: Path) -> None:
    store = open_store(tmp_path, compaction=CompactionPolicy(enabled=False))
    store.add_texts([f"text number {i}" for i in range(2000)])
    before = {p: p.stat().st_size for p in tmp_path.rglob("*") if p.is_file()}
    assert before
    store.add_texts(["one more"])
    after = {p: p.stat().st_size for p in tmp_path.rglob("*") if p.is_file()}
    assert all(after[p] == size for p, size in before.items()), "old files must never change"
    new_bytes = sum(size for p, size in after.items() if p not in before)
    assert new_bytes < sum(before.values()) / 20


def test_compaction_bounds_segments_and_keeps_everything(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    for i in range(120):
        store.add_texts([f"batch {i} a", f"batch {i} b"], ids=[f"{i}a", f"{i}b"])
        if i % 10 == 0:
            store.delete([f"{i}a"])
    store.wait_for_compaction()
    segs = store.stats()["segments"]
    assert segs <= 12, segs
    # old manifests stay for MANIFEST_RETENTION_SECONDS, then compaction removes them
    assert len(files(tmp_path, "manifests/*.json")) > 100
    store.engine.log.clock = lambda: time.time() + 3600
    store.compact()
    assert len(files(tmp_path, "manifests/*.json")) <= 10
    again = open_store(tmp_path)
    assert len(again) == 240 - 12
    assert again.get_by_ids(["0a", "0b", "119b"])[0].id == "0b"
    again.verify()
    referenced = set()
    latest = json.loads(files(tmp_path, "manifests/*.json")[-1].read_text())
    for s in latest["segments"]:
        referenced.add(s["file"]["path"])
    on_disk = {p.relative_to(tmp_path).as_posix() for p in tmp_path.glob("segments/*")}
    assert on_disk == referenced, "merged-away segment files are removed"


def test_full_compaction_saves_hnsw_snapshot_and_reopens_from_it(tmp_path: Path) -> None:
    emb = VectorTable(clustered(500, 32))
    store = LocalVectorStore(emb, tmp_path, index="hnsw")
    store.add_texts([f"d:{i}" for i in range(500)], ids=[str(i) for i in range(500)])
    store.delete([str(i) for i in range(100)])
    assert store.compact()
    latest = json.loads(files(tmp_path, "manifests/*.json")[-1].read_text())
    assert latest["index_snapshot"]["rows"] == 400 and len(latest["segments"]) == 1
    again = LocalVectorStore(emb, tmp_path, index="hnsw")
    assert len(again) == 400 and again.stats()["tombstones"] == 0
    assert again.similarity_search("d:250", k=1)[0].id == "250"
    assert again.similarity_search("d:50", k=1)[0].id != "50"  # deleted before compaction
    again.verify()


def test_dimension_mismatch_on_open_writes_nothing(tmp_path: Path) -> None:
    open_store(tmp_path).add_texts(["x"])
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(DimensionMismatchError, match="64-dimensional"):
        LocalVectorStore(HashingEmbeddings(32), tmp_path)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


class Opaque(Embeddings):
    """A model that cannot say its dimension before embedding."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [[float(len(t)), 1.0, 0.5] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return [float(len(text)), 1.0, 0.5]


def test_dimension_learned_from_first_add_when_model_cannot_say(tmp_path: Path) -> None:
    store = LocalVectorStore(Opaque(), tmp_path)
    assert store.stats()["dimension"] is None
    assert store.similarity_search("anything") == []
    store.add_texts(["a", "bb"])
    assert store.stats()["dimension"] == 3
    with pytest.raises(DimensionMismatchError, match="dimension 8"):
        store.add_embeddings([("c", [0.1] * 8)])
    again = LocalVectorStore(Opaque(), tmp_path)
    assert len(again) == 2 and again.stats()["dimension"] == 3
    with pytest.raises(DimensionMismatchError, match="dimension 2"):
        again.similarity_search_by_vector([1.0, 2.0])


def test_distance_mismatch_is_a_clear_error(tmp_path: Path) -> None:
    open_store(tmp_path, distance="l2").add_texts(["x"])
    with pytest.raises(ConfigurationError, match="distance='l2'"):
        open_store(tmp_path, distance="cosine")  # chosen, and not the store's
    assert len(open_store(tmp_path, distance="l2")) == 1


@pytest.mark.parametrize("distance", ["l2", "inner_product", "cosine"])
@pytest.mark.parametrize("index", ["hnsw", "ivf", "auto", "flat"])
def test_opening_adopts_the_recorded_distance_index_and_tuning(
    tmp_path: Path, distance: str, index: str
) -> None:
    built = open_store(tmp_path, distance=distance, index=index, hnsw_m=12, ivf_nprobe=3)
    built.add_texts(["red apples", "green pears", "blue sky"], ids=["a", "p", "s"])
    expected = built.similarity_search_with_score("red apples", k=3)
    reopened = open_store(tmp_path)  # nothing chosen: everything as recorded
    stats = reopened.stats()
    assert (stats["distance"], stats["requested_index"]) == (distance, index)
    assert (reopened.engine.params.hnsw_m, reopened.engine.params.ivf_nprobe) == (12, 3)
    assert reopened.similarity_search_with_score("red apples", k=3) == expected
    # a chosen tuning value replaces the recorded one; the others stay as recorded
    tuned = open_store(tmp_path, ef_search=77)
    assert (tuned.engine.params.hnsw_m, tuned.engine.params.ef_search) == (12, 77)
    # the same for the distance given explicitly; a new store still gets the defaults
    assert open_store(tmp_path, distance=distance).stats()["distance"] == distance
    fresh = open_store(tmp_path / "new").stats()
    assert (fresh["distance"], fresh["requested_index"]) == ("cosine", "flat")


def test_damaged_recorded_tuning_is_an_integrity_error(tmp_path: Path) -> None:
    open_store(tmp_path, index="hnsw").add_texts(["x"])
    manifest = files(tmp_path, "manifests/*.json")[-1]  # the newest
    doc = json.loads(manifest.read_text())
    doc["index"]["params"]["hnsw_m"] = 10**9  # FAISS would try to allocate it
    manifest.write_text(json.dumps(doc))
    with pytest.raises(IntegrityError, match="hnsw_m"):
        open_store(tmp_path)


ODD_IDS = ["a/b", "../../etc/passwd", "..", "/abs", "ünïcødé ✓", "line\nbreak", "x" * 1000, "nul\x00byte", " "]


def test_odd_ids_never_become_paths(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s")
    store.add_texts([f"text {i}" for i in range(len(ODD_IDS))], ids=ODD_IDS)
    outside = {p for p in tmp_path.rglob("*")} - {p for p in (tmp_path / "s").rglob("*")} - {tmp_path / "s"}
    assert outside == set()
    for p in (tmp_path / "s").rglob("*"):
        assert p.name.split(".")[0].isalnum() or p.name.startswith("0") or p.is_dir(), p
    again = open_store(tmp_path / "s")
    assert [d.id for d in again.get_by_ids(ODD_IDS)] == ODD_IDS
    again.delete(ODD_IDS[:3])
    assert len(open_store(tmp_path / "s")) == len(ODD_IDS) - 3


def test_unchanged_readd_writes_nothing(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.add_texts(["a", "b"], [{"x": 1}, {"x": 2}], ids=["1", "2"])
    version = store.stats()["version"]
    store.add_texts(["a", "b"], [{"x": 1}, {"x": 2}], ids=["1", "2"])
    assert store.stats()["version"] == version
    store.add_texts(["a", "b"], [{"x": 1}, {"x": 3}], ids=["1", "2"])
    assert store.stats()["version"] == version + 1
    assert open_store(tmp_path).get_by_ids(["2"])[0].metadata == {"x": 3}


def test_delete_all_with_none(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.add_texts(["a", "b", "c"])
    assert store.delete() is True
    assert len(store) == 0 and len(open_store(tmp_path)) == 0


def test_vacuum_removes_crash_leftovers_only_when_old(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.add_texts(["kept"], ids=["k"])
    orphan = tmp_path / "segments" / ("f" * 32 + ".records.jsonl")
    orphan.write_text("{}")
    temp = tmp_path / "manifests" / ".tmp-deadbeef"
    temp.write_text("partial")
    assert store.vacuum() == []  # too young: a writer may still own them
    assert orphan.exists() and temp.exists()
    removed = store.vacuum(older_than=0)
    assert sorted(removed) == sorted(["segments/" + orphan.name, "manifests/.tmp-deadbeef"])
    assert not orphan.exists() and not temp.exists()
    again = open_store(tmp_path)
    assert [d.id for d in again.get_by_ids(["k"])] == ["k"]
    again.verify()


def test_unusual_values_round_trip_exactly(tmp_path: Path) -> None:
    """Values the fast JSON path cannot write (huge integers, lone surrogates) still persist."""
    docs = [
        Document(page_content="lone \ud800 surrogate", metadata={"big": 2**70, "neg": -(2**65)}, id="s"),
        Document(page_content="emoji 😀 and \u2028 separator\nnewline", metadata={"f": 1e300, "tiny": 5e-324}, id="e"),
        Document(page_content="plain", metadata={"nested": {"a": [1, 2.5, None, True]}}, id="p"),
    ]
    store = open_store(tmp_path)
    store.add_documents(docs[:1])
    store.add_documents(docs[1:])
    again = open_store(tmp_path)
    assert again.get_by_ids(["s", "e", "p"]) == docs
    again.verify()


def test_ids_disagreeing_with_records_is_caught_by_verify(tmp_path: Path) -> None:
    open_store(tmp_path).add_texts(["alpha", "beta"], ids=["a", "b"])
    rewrite_section(tmp_path, "ids", b'["b","a"]')
    store = open_store(tmp_path)  # opening decodes only ids and vectors
    with pytest.raises(IntegrityError, match="disagree on the ids"):
        store.verify()


def test_records_decode_lazily_after_open(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.add_texts([f"text {i}" for i in range(50)], [{"n": i} for i in range(50)], ids=[str(i) for i in range(50)])
    again = open_store(tmp_path)
    assert all(r is LAZY for r in again.engine.state.recs)  # nothing decoded yet
    assert again.get_by_ids(["7"])[0].metadata == {"n": 7}
    assert sum(isinstance(r, Record) for r in again.engine.state.recs) == 1
    assert len(again.similarity_search("text", k=5, filter={"n": {"$lt": 10}})) == 5
    # answered from the value columns: only the records returned are decoded
    assert sum(isinstance(r, Record) for r in again.engine.state.recs) <= 6
    assert len(again.similarity_search("text", k=5, filter={"n": {"$ne": 3}})) == 5
    assert all(isinstance(r, Record) for r in again.engine.state.recs)  # a scan decodes in bulk


def test_other_model_of_same_dimension_is_refused_naming_both(tmp_path: Path) -> None:
    from langchain_core.embeddings import DeterministicFakeEmbedding

    open_store(tmp_path).add_texts(["x"])
    with pytest.raises(ConfigurationError, match=r"'hashing-bow-64'.*'DeterministicFakeEmbedding'.*reembed"):
        LocalVectorStore(DeterministicFakeEmbedding(size=64), tmp_path)
    opened = LocalVectorStore(DeterministicFakeEmbedding(size=64), tmp_path, check_embedding_model=False)
    assert len(opened) == 1


def test_a_failing_compaction_does_not_fail_the_committed_write(tmp_path: Path) -> None:
    store = open_store(tmp_path, index="hnsw", compaction={"min_weight": 1})
    store.add_texts(["first"], ids=["1"])
    storage = store.engine.storage
    real_write = storage.write  # type: ignore[union-attr]
    calls = [0]

    def write(name: str, data: bytes, **kwargs: Any) -> None:
        calls[0] += 1
        if calls[0] > 1:  # the commit's own segment succeeds; the compaction's write fails
            raise StorageError("disk full")
        real_write(name, data, **kwargs)

    storage.write = write  # type: ignore[union-attr,method-assign]
    store.add_texts(["second"], ids=["2"])  # commits, then compaction fails quietly
    store.wait_for_compaction()
    storage.write = real_write  # type: ignore[union-attr,method-assign]
    assert sorted(open_store(tmp_path).engine.ids()) == ["1", "2"]
    assert calls[0] >= 2, "compaction was not attempted"


def test_opening_reads_vectors_straight_into_the_index(tmp_path: Path) -> None:
    """No file is held whole and no second copy of the vectors is made: the Python-side
    allocations of an open stay well below the size of the vectors."""
    import tracemalloc

    n, dim = 20_000, 384
    vectors = clustered(n, dim)
    store = LocalVectorStore(VectorTable(vectors), tmp_path, index="flat")
    filler = "a longer text, as chunks of documents are. " * 5
    store.add_embeddings(
        [(f"d:{i} {filler}", vectors[i].tolist()) for i in range(n)], ids=[str(i) for i in range(n)]
    )
    del store
    tracemalloc.start()
    try:
        again = LocalVectorStore(VectorTable(vectors), tmp_path, index="flat")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    (seg,) = tmp_path.glob("segments/*.seg")
    records = unpack_sections(seg.read_bytes(), "seg")["records"].nbytes
    # what remains is the id list and map: a few dozen bytes an id
    assert peak < min(vectors.nbytes / 4, records / 2), (
        f"opening allocated {peak} bytes for {vectors.nbytes} of vectors, {records} of records"
    )
    assert len(again) == n
    hit = again.similarity_search_with_score_by_vector(vectors[123].tolist(), k=1)[0]
    assert hit[0].id == "123"


def test_records_stay_readable_after_their_file_is_compacted_away(tmp_path: Path) -> None:
    """A reader decodes records on demand from the files it opened; another writer's
    compaction removing those files must not change what the reader returns."""
    writer = open_store(tmp_path)
    writer.add_texts([f"text {i}" for i in range(20)], [{"n": i} for i in range(20)], ids=[str(i) for i in range(20)])
    reader = open_store(tmp_path)
    first = list(tmp_path.glob("segments/*.seg"))
    assert first
    writer.add_texts(["more"], ids=["m"])
    assert writer.compact()
    writer.engine.vacuum(older_than=0)  # replaced files are kept for a while, unless told
    assert not any(p.exists() for p in first)
    assert reader.get_by_ids(["3", "19"]) == [
        Document(page_content="text 3", metadata={"n": 3}, id="3"),
        Document(page_content="text 19", metadata={"n": 19}, id="19"),
    ]
    assert reader.similarity_search("text 5", k=1, filter={"n": 5})[0].metadata == {"n": 5}
    assert reader.engine.refresh() and len(reader) == 21


def test_value_index_is_built_without_decoding_every_record(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    n = 300
    store.add_texts(
        [f"text {i}" for i in range(n)],
        [{"bucket": i % 7, "name": f"n{i}"} for i in range(n)],
        ids=[str(i) for i in range(n)],
    )
    store.delete(["0", "7"])
    again = open_store(tmp_path)
    got = again.similarity_search("text", k=50, filter={"bucket": 0})
    assert sorted(int(d.id or -1) for d in got) == [i for i in range(14, n, 7)]
    recs = again.engine.state.recs
    assert sum(isinstance(r, Record) for r in recs) == len(got), "only the results were decoded"
    assert sorted(again.get_ids({"bucket": {"$in": [1, 2]}}), key=int) == [
        str(i) for i in range(n) if i % 7 in (1, 2)
    ]
    scanned = list(open_store(tmp_path).engine.state.scan_metas(chunk=16))
    assert scanned == list(open_store(tmp_path).engine.state.metas())
    assert len(scanned) == n - 2


def test_compaction_copies_records_as_stored_and_keeps_them_undecoded(tmp_path: Path) -> None:
    odd = {"s": "é\n\u2028", "big": 2**70, "f": 1.5, "l": [None, True]}
    expected = {}
    store = open_store(tmp_path)
    for batch in range(3):
        docs = [
            Document(page_content=f"text {batch}-{i}", metadata={**odd, "n": i}, id=f"{batch}-{i}")
            for i in range(20)
        ]
        store.add_documents(docs)
        expected.update({d.id: d for d in docs})
    reader = open_store(tmp_path)
    reader.get_by_ids(["0-3", "2-19"])  # some records decoded, the rest not
    reader.delete(["1-5", "0-0"])
    for gone in ("1-5", "0-0"):
        del expected[gone]
    assert reader.compact()
    recs = reader.engine.state.recs
    assert len(recs) == 58 and all(r is LAZY for r in recs)
    reader.verify()
    again = open_store(tmp_path)
    ids = list(expected)
    assert again.get_by_ids(ids) == [expected[i] for i in ids]
    assert reader.get_by_ids(ids) == [expected[i] for i in ids]


@pytest.mark.parametrize("big", [2**64, -(2**63) - 1, 2**70, 10**30])
def test_integers_beyond_64_bits_round_trip_exactly(tmp_path: Path, big: int) -> None:
    """orjson reads such integers as floats; records holding them must still come back exact."""
    meta = {"big": big, "nested": [big, {"x": big}], "note": "id 1234567890123456789012"}
    open_store(tmp_path).add_documents(
        [Document(page_content="t", metadata=meta, id="a"), Document(page_content="u", id="b")]
    )
    fresh = open_store(tmp_path)
    assert fresh.get_by_ids(["a"])[0].metadata == meta  # one record decoded alone
    scanned = open_store(tmp_path)
    assert scanned.get_ids({"big": big}) == ["a"]  # the value index parses records in bulk
    assert scanned.get_ids({"big": {"$gte": big}}) == ["a"]  # a scan decodes them all
    assert type(scanned.get_by_ids(["a"])[0].metadata["big"]) is int
    scanned.verify()


def test_writing_after_open_does_not_copy_the_whole_index(tmp_path: Path) -> None:
    """Opening leaves room in the index's storage: the next commits append in place instead
    of reallocating (which copies every vector: seconds, and twice the memory, at 1M)."""
    n, dim = 3000, 32
    vectors = clustered(n + 300, dim)
    store = LocalVectorStore(VectorTable(vectors), tmp_path, index="flat")
    store.add_embeddings([(f"d:{i}", vectors[i].tolist()) for i in range(n)])
    again = LocalVectorStore(VectorTable(vectors), tmp_path, index="flat")

    def address() -> int:
        index = again.engine.state.index
        assert index is not None
        return int(index.vectors().__array_interface__["data"][0])

    before = address()
    for start in range(n, n + 300, 100):
        again.add_embeddings([(f"d:{i}", vectors[i].tolist()) for i in range(start, start + 100)])
    assert address() == before
    assert len(again) == n + 300


def test_compactions_list_the_manifests_only_when_one_can_have_expired(tmp_path: Path) -> None:
    """Each compaction removes expired manifests; listing them all (a LIST on S3) is skipped
    while none of those kept can have expired yet."""
    store = open_store(tmp_path)
    engine = store.engine
    listings: list[str | None] = []
    compactions: list[bool] = []
    assert engine.log is not None
    real_list, real_propose = engine.log.storage.list, engine.log.propose

    def list_spy(prefix: str, start_after: str | None = None):  # type: ignore[no-untyped-def]
        if start_after is None:
            listings.append(prefix)
        return real_list(prefix, start_after)

    def propose_spy(proposed, **kwargs):  # type: ignore[no-untyped-def]
        merged = len(proposed.segments) <= store.stats()["segments"]  # a merge, not an add
        committed = real_propose(proposed, **kwargs)
        compactions.append(merged and committed)
        return committed

    engine.log.storage.list = list_spy  # type: ignore[method-assign]
    engine.log.propose = propose_spy  # type: ignore[method-assign]
    for i in range(60):
        store.add_texts([f"text {i}"], ids=[str(i)])
        store.wait_for_compaction()
    assert sum(compactions) >= 3
    assert listings == [], "opening listed them: not again until a manifest can expire"
    engine.log.clock = lambda: time.time() + 3600
    assert store.compact()
    assert listings == ["manifests/"]
    assert len(files(tmp_path, "manifests/*.json")) <= 10


def test_an_open_whose_index_cannot_be_allocated_fails_instead_of_waiting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The flat index's storage is allocated while the files are being read, and their
    vectors wait for it: when the allocation fails, the readers stop too and the open raises
    (it would hang if they kept waiting); a later open works."""
    from vectordb_manager.engine.index import VectorIndex

    store = open_store(tmp_path / "s", compaction=CompactionPolicy(background=False))
    for batch in range(3):
        store.add_texts([f"text {batch}-{i}" for i in range(20)])

    def no_memory(self: VectorIndex, rows: int) -> None:
        raise MemoryError(f"cannot allocate {rows} rows")

    with monkeypatch.context() as patched:
        patched.setattr(VectorIndex, "extend", no_memory)
        with pytest.raises(MemoryError, match="60 rows"):
            open_store(tmp_path / "s")
    assert len(open_store(tmp_path / "s")) == 60
