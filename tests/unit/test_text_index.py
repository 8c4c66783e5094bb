"""The keyword index (issue 12, engine part): BM25 scores against a reference written here,
filtered keyword search against brute force, stores written without postings, the analyzer
in the manifest, and damaged ``postings`` sections.

The reference is the formula of `text_index` computed directly, in Python floats, over the
documents a model of the store holds: terms from `index_terms` (the store's analyzer), the
distinct terms of the query, N, df and the mean length over the live documents.
"""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.helpers import rewrite_section
from vectordb_manager import ConfigurationError, IntegrityError
from vectordb_manager.engine.analyzer import Analyzer
from vectordb_manager.engine.compaction import CompactionPolicy
from vectordb_manager.engine.core import Engine
from vectordb_manager.engine.format import unpack_sections
from vectordb_manager.engine.manifest import KEYWORD_INDEX
from vectordb_manager.engine.postings import Postings, index_terms
from vectordb_manager.engine.text_index import K1 as ENGINE_K1
from vectordb_manager.engine.text_index import B as ENGINE_B
from vectordb_manager.storage.base import Storage
from vectordb_manager.storage.local import LocalStorage

DIM = 8
K1, B = 1.5, 0.75  # the documented constants (Lucene's and bm25s's defaults)
WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "theta", "kappa", "lambda", "sigma", "omega", "river", "mountain", "cloud", "server", "error", "timeout", "ERR_CONN_RESET", "v2.3.1", "s3:PutObject", "running", "runs", "ran"]
QUERIES = [
    "alpha",
    "beta gamma",
    "server error timeout",
    "ERR_CONN_RESET",
    "running river",
    "omega omega sigma",
    "mountains clouds",
    "nothing-matches-this",
    "alpha beta gamma delta epsilon",
]


class Model:
    """What the store should hold: id -> (text, metadata)."""

    def __init__(self) -> None:
        self.docs: dict[str, tuple[str, dict[str, Any]]] = {}

    def put(self, doc_id: str, text: str, meta: dict[str, Any]) -> None:
        self.docs.pop(doc_id, None)
        self.docs[doc_id] = (text, meta)


def reference(
    model: Model, query: str, analyzer: Analyzer, keep: Callable[[dict[str, Any]], bool]
) -> dict[str, float]:
    """BM25 (Lucene's idf, k1, b) over the live documents, for those passing ``keep``."""
    counts = {d: Counter(index_terms(analyzer, t)) for d, (t, _) in model.docs.items()}
    n = len(counts)
    if not n:
        return {}
    avg = sum(sum(c.values()) for c in counts.values()) / n
    scores: dict[str, float] = {}
    for term in set(index_terms(analyzer, query)):
        df = sum(1 for c in counts.values() if term in c)
        if not df:
            continue
        idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
        for d, c in counts.items():
            tf = c.get(term, 0)
            if tf and keep(model.docs[d][1]):
                length = sum(c.values())
                scores[d] = scores.get(d, 0.0) + idf * tf / (tf + K1 * (1 - B + B * length / avg))
    return scores


def check(
    engine: Engine,
    model: Model,
    flt: Any = None,
    keep: Callable[[dict[str, Any]], bool] = lambda m: True,
) -> None:
    """Every query's hits equal the reference: the same documents and scores, best first."""
    for query in QUERIES:
        want = reference(model, query, engine.analyzer, keep)
        hits = engine.keyword_search(query, len(model.docs) + 3, flt)
        got = {h.document.id: h.score for h in hits}
        assert got.keys() == want.keys(), query
        for doc_id, score in want.items():
            assert got[doc_id] == pytest.approx(score, rel=1e-9), (query, doc_id)
        scores = [h.score for h in hits]
        assert scores == sorted(scores, reverse=True)
        assert all(h.document.page_content == model.docs[h.document.id][0] for h in hits)
        top = engine.keyword_search(query, 3, flt)  # the best k of the same ranking
        assert [h.document.id for h in top] == [h.document.id for h in hits[:3]]


def text(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 12)))


def vectors(rng: random.Random, n: int) -> np.ndarray:
    return np.random.default_rng(rng.randrange(1 << 30)).normal(size=(n, DIM)).astype(np.float32)


def write(engine: Engine, model: Model, rng: random.Random, ids: list[str]) -> None:
    texts = [text(rng) for _ in ids]
    metas = [{"n": rng.randrange(6), "tag": rng.choice("xyz")} for _ in ids]
    engine.apply(ids, texts, metas, vectors(rng, len(ids)))
    for doc_id, t, m in zip(ids, texts, metas, strict=True):
        model.put(doc_id, t, m)


def delete(engine: Engine, model: Model, ids: list[str]) -> None:
    engine.delete(ids)
    for doc_id in ids:
        model.docs.pop(doc_id, None)


def churn(engine: Engine, model: Model, rng: random.Random, rounds: int) -> Iterator[None]:
    """Adds, upserts (new texts for existing ids) and deletes, one commit each."""
    for r in range(rounds):
        write(engine, model, rng, [f"d{r}-{i}" for i in range(rng.randint(1, 8))])
        yield
        if model.docs and r % 2:
            write(engine, model, rng, rng.sample(sorted(model.docs), min(2, len(model.docs))))
            yield
        if model.docs and r % 3 == 2:
            delete(engine, model, rng.sample(sorted(model.docs), min(3, len(model.docs))))
            yield


def local(path: Path, **kw: Any) -> Engine:
    kw.setdefault("compaction", CompactionPolicy(enabled=False))
    return Engine(LocalStorage(path), **kw)


def features(path: Path) -> list[str]:
    latest = sorted(path.glob("manifests/*.json"))[-1]
    return json.loads(latest.read_text())["features"]  # type: ignore[no-any-return]


def sections(path: Path) -> list[list[str]]:
    """Each segment's sections but ``values`` (the value columns, which every segment with
    rows has: see test_value_index.py)."""
    latest = json.loads(sorted(path.glob("manifests/*.json"))[-1].read_text())
    out = []
    for seg in latest["segments"]:
        found = unpack_sections((path / seg["file"]["path"]).read_bytes(), "s")
        out.append(sorted(set(found) - {"values"}))
    return out


# -- scores ------------------------------------------------------------------------------------


def test_the_constants_are_the_documented_ones() -> None:
    assert (ENGINE_K1, ENGINE_B) == (K1, B)


def scenario(storage: Storage, reopen: Callable[[], Engine], seed: int) -> None:
    """The reference after every change, across segments, deletes, upserts, compaction and
    reopening (shared with the S3 test)."""
    rng = random.Random(seed)
    model = Model()
    engine = Engine(storage, compaction=CompactionPolicy(enabled=False))
    for _ in churn(engine, model, rng, 8):
        check(engine, model)
    assert len(engine.stats()) and engine.stats()["segments"] > 3
    check(reopen(), model)
    write(engine, model, rng, ["late-1", "late-2"])  # seen by a reopened store, not compacted
    engine.compact()
    assert engine.stats()["segments"] == 1
    check(engine, model)
    again = reopen()
    check(again, model)
    for _ in churn(again, model, rng, 4):  # on top of the compacted segment
        check(again, model)
    again.verify()
    check(reopen(), model)


def test_scores_equal_the_reference_through_changes_compaction_and_reopening(
    tmp_path: Path,
) -> None:
    scenario(LocalStorage(tmp_path), lambda: local(tmp_path), seed=1)


def test_scores_in_memory_and_with_automatic_compaction(tmp_path: Path) -> None:
    rng = random.Random(2)
    for engine in (Engine(None), local(tmp_path, compaction=CompactionPolicy(min_weight=4))):
        model = Model()
        for _ in churn(engine, model, rng, 12):
            check(engine, model)
        engine.compact()
        check(engine, model)


def test_ties_go_to_the_older_document_and_k_cuts_the_ranking(tmp_path: Path) -> None:
    engine = local(tmp_path)
    rng = random.Random(3)
    for i in range(6):  # one commit each: equal texts, equal scores
        engine.apply([f"t{i}"], ["alpha beta"], [{}], vectors(rng, 1))
    engine.apply(["other"], ["gamma"], [{}], vectors(rng, 1))
    hits = engine.keyword_search("alpha", 4)
    assert [h.document.id for h in hits] == ["t0", "t1", "t2", "t3"]
    assert len({h.score for h in hits}) == 1
    engine.apply(["t1"], ["alpha beta again"], [{}], vectors(rng, 1))  # replaced: now newest
    ids = [h.document.id for h in engine.keyword_search("beta", 10)]
    assert ids[:5] == ["t0", "t2", "t3", "t4", "t5"] and ids[-1] == "t1"


def test_rare_terms_among_many_documents(tmp_path: Path) -> None:
    """Queries whose postings are few next to the slots (scored sparsely) and many (scored
    into a buffer of every slot) both equal the reference."""
    rng = random.Random(14)
    engine = local(tmp_path)
    model = Model()
    filler = [f"filler{i}" for i in range(300)]
    for batch in range(4):
        ids = [f"m{batch}-{i}" for i in range(150)]
        texts = [" ".join(rng.choices(filler, k=rng.randint(3, 20))) for _ in ids]
        for i in rng.sample(range(len(ids)), 5):
            texts[i] += " " + rng.choice(["zircon", "quartz", "basalt"])
        engine.apply(ids, texts, [{"n": 0, "tag": "x"}] * len(ids), vectors(rng, len(ids)))
        for doc_id, t in zip(ids, texts, strict=True):
            model.put(doc_id, t, {"n": 0, "tag": "x"})
    delete(engine, model, rng.sample(sorted(model.docs), 40))
    queries = ["zircon quartz", "zircon basalt quartz", "filler1 filler2 filler3 zircon"]
    for query in queries:
        want = reference(model, query, engine.analyzer, lambda m: True)
        got = {h.document.id: h.score for h in engine.keyword_search(query, 1000)}
        assert got.keys() == want.keys() and len(want) > 5
        assert all(got[d] == pytest.approx(w, rel=1e-9) for d, w in want.items())
        best = sorted(want, key=lambda d: -want[d])[:4]
        assert [h.document.id for h in engine.keyword_search(query, 4)] == best


def test_queries_without_terms_find_nothing(tmp_path: Path) -> None:
    engine = local(tmp_path)
    assert engine.keyword_search("alpha", 3) == []  # an empty store
    engine.apply(["a"], ["the alpha and the omega"], [{}], vectors(random.Random(4), 1))
    for query in ("", "   ", "the and of", "!!!", "zzz-unknown"):
        assert engine.keyword_search(query, 3) == []
    assert [h.document.id for h in engine.keyword_search("The ALPHA", 3)] == ["a"]


def test_identifier_queries_match(tmp_path: Path) -> None:
    engine = local(tmp_path)
    texts = ["failed with ERR_CONN_RESET", "upgrade to v2.3.1 now", "plain words only"]
    engine.apply(["e", "v", "p"], texts, [{}, {}, {}], vectors(random.Random(5), 3))
    assert [h.document.id for h in engine.keyword_search("err_conn_reset", 3)] == ["e"]
    assert engine.keyword_search("v2.3.1", 3)[0].document.id == "v"


# -- filters -----------------------------------------------------------------------------------


def random_filter(rng: random.Random) -> tuple[Any, Callable[[dict[str, Any]], bool]]:
    """A filter and the brute-force test it stands for."""
    n, tag = rng.randrange(6), rng.choice("xyzw")
    choices: list[tuple[Any, Callable[[dict[str, Any]], bool]]] = [
        ({"n": n}, lambda m: m["n"] == n),
        ({"tag": tag}, lambda m: m["tag"] == tag),
        ({"n": {"$gt": n}}, lambda m: m["n"] > n),
        ({"n": {"$in": [n, n + 1]}}, lambda m: m["n"] in (n, n + 1)),
        ({"$and": [{"tag": tag}, {"n": {"$lte": n}}]}, lambda m: m["tag"] == tag and m["n"] <= n),
        ({"$or": [{"tag": tag}, {"n": n}]}, lambda m: m["tag"] == tag or m["n"] == n),
        ({"tag": {"$ne": tag}}, lambda m: m["tag"] != tag),
    ]
    flt, keep = rng.choice(choices)
    if rng.random() < 0.2:  # a function of the metadata
        return keep, keep
    return flt, keep


def test_filtered_keyword_search_equals_brute_force_over_the_passing_documents(
    tmp_path: Path,
) -> None:
    rng = random.Random(6)
    engine = local(tmp_path)
    model = Model()
    for step, _ in enumerate(churn(engine, model, rng, 10)):
        for _ in range(3):
            flt, keep = random_filter(rng)
            check(engine, model, flt, keep)
        if step == 8:
            engine.compact()
    flt, keep = {"n": 99}, (lambda m: False)
    check(engine, model, flt, keep)


# -- stores without postings, and the analyzer -------------------------------------------------


def test_a_store_without_postings_gets_them_on_demand_and_persisted_by_compaction(
    tmp_path: Path,
) -> None:
    rng = random.Random(7)
    model = Model()
    old = local(tmp_path, keyword_index=False)
    for _ in churn(old, model, rng, 5):
        pass
    assert all("postings" not in s for s in sections(tmp_path))
    assert KEYWORD_INDEX not in features(tmp_path)
    check(old, model)  # built in memory from the texts
    old.compact()  # a store that does not want the index does not get it persisted
    assert all("postings" not in s for s in sections(tmp_path))

    engine = local(tmp_path)  # opened by a release that writes the index
    assert engine.state.text.from_texts
    check(engine, model)
    for _ in churn(engine, model, rng, 2):
        check(engine, model)
    assert KEYWORD_INDEX in features(tmp_path)
    engine.compact()
    assert sections(tmp_path) == [["ids", "postings", "records", "vectors"]]
    check(engine, model)
    engine.verify()
    reopened = local(tmp_path)
    assert not reopened.state.text.from_texts  # read from the file, nothing analyzed
    check(reopened, model)


def test_compaction_persists_postings_of_a_single_old_segment(tmp_path: Path) -> None:
    model = Model()
    old = local(tmp_path, keyword_index=False)
    write(old, model, random.Random(8), [f"x{i}" for i in range(20)])
    old.compact()
    assert sections(tmp_path) == [["ids", "records", "vectors"]]
    engine = local(tmp_path)
    engine.compact()  # one segment, no tombstones: still rewritten for its postings
    assert sections(tmp_path) == [["ids", "postings", "records", "vectors"]]
    check(local(tmp_path), model)


def test_the_analyzer_is_recorded_and_a_different_one_refused(tmp_path: Path) -> None:
    plain = Analyzer(stem=False, stopwords=False)
    engine = local(tmp_path, analyzer=plain)
    engine.apply(["a"], ["the runs"], [{}], vectors(random.Random(9), 1))
    latest = json.loads(sorted(tmp_path.glob("manifests/*.json"))[-1].read_text())
    assert Analyzer.from_json(latest["analyzer"]) == plain
    again = local(tmp_path)  # no analyzer given: the store's
    assert again.analyzer == plain
    assert [h.document.id for h in again.keyword_search("the", 1)] == ["a"]  # not a stopword
    assert again.keyword_search("run", 1) == []  # not stemmed
    with pytest.raises(ConfigurationError, match="analyzer"):
        local(tmp_path, analyzer=Analyzer())
    assert local(tmp_path, analyzer=Analyzer(stem=False, stopwords=False)).count() == 1


def test_a_store_recording_no_analyzer_takes_the_first_writers(tmp_path: Path) -> None:
    """A store from before the keyword index records no analyzer: a writer opening it with
    one records it; another writer that opened it meanwhile with another one is refused
    when it commits (nothing written), and reopened it takes the recorded one."""
    rng = random.Random(15)
    local(tmp_path, keyword_index=False).apply(["a"], ["runs"], [{}], vectors(rng, 1))
    for manifest in tmp_path.glob("manifests/*.json"):
        doc = json.loads(manifest.read_text())
        del doc["analyzer"]
        manifest.write_text(json.dumps(doc))
    plain = Analyzer(stem=False, stopwords=False)
    first, second = local(tmp_path, analyzer=plain), local(tmp_path)
    assert (first.analyzer, second.analyzer) == (plain, Analyzer())
    first.apply(["b"], ["running"], [{}], vectors(rng, 1))
    with pytest.raises(ConfigurationError, match="another writer recorded text analyzer"):
        second.apply(["c"], ["ran"], [{}], vectors(rng, 1))
    reopened = local(tmp_path)
    assert reopened.analyzer == plain and sorted(reopened.ids()) == ["a", "b"]
    assert [h.document.id for h in reopened.keyword_search("running", 3)] == ["b"]


def test_a_recorded_analyzer_this_release_cannot_use_is_refused(tmp_path: Path) -> None:
    local(tmp_path).apply(["a"], ["text"], [{}], vectors(random.Random(10), 1))
    manifest = sorted(tmp_path.glob("manifests/*.json"))[-1]
    doc = json.loads(manifest.read_text())
    for bad in ({"language": "klingon"}, {"no_such_setting": 1}):
        doc["analyzer"] = bad
        manifest.write_text(json.dumps(doc))
        with pytest.raises(IntegrityError, match="analyzer"):
            local(tmp_path)
    doc["analyzer"] = {"language": ["not", "a", "scalar"]}
    manifest.write_text(json.dumps(doc))
    with pytest.raises(IntegrityError, match=r"analyzer\.language"):
        local(tmp_path)


def test_an_older_reader_refuses_a_store_with_postings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vectordb_manager.engine import manifest as manifest_module

    local(tmp_path).apply(["a"], ["text"], [{}], vectors(random.Random(11), 1))
    monkeypatch.setattr(manifest_module, "SUPPORTED_FEATURES", frozenset())
    with pytest.raises(IntegrityError, match="keyword-index"):
        local(tmp_path)


# -- damaged postings --------------------------------------------------------------------------


def _store(path: Path) -> Model:
    model = Model()
    write(local(path), model, random.Random(12), [f"r{i}" for i in range(30)])
    return model


def _postings(path: Path) -> bytes:
    seg = sorted(path.glob("segments/*.seg"))[0]
    return bytes(unpack_sections(seg.read_bytes(), "s")["postings"])


def _mutations(data: bytes, rng: random.Random) -> Iterator[tuple[str, bytes]]:
    head = np.frombuffer(data[:32], dtype="<u8").tolist()
    for i, name in enumerate(("rows", "terms", "postings", "vocabulary bytes")):
        for value in (0, head[i] + 1, max(head[i] - 1, 0), 2**63, 2**64 - 1):
            if value != head[i]:
                fields = list(head)
                fields[i] = value
                yield f"{name}={value}", np.array(fields, "<u8").tobytes() + data[32:]
    yield "truncated", data[:-1]
    yield "header only", data[:32]
    yield "short", data[:7]
    yield "appended", data + b"\x01"
    yield "continued", data[:-1] + b"\x81"
    for _ in range(60):
        at = rng.randrange(32, len(data))
        flipped = bytearray(data)
        flipped[at] ^= 1 << rng.randrange(8)
        yield f"flip at {at}", bytes(flipped)


def test_damaged_postings_sections_are_refused(tmp_path: Path) -> None:
    """Re-signed (the checksums agree) damaged sections: refused when decoded, by the first
    keyword search and by verify(); an undamaged change of the postings that no longer
    matches the texts is found by verify(). Never another exception."""
    model = _store(tmp_path)
    pristine = _postings(tmp_path)
    store = tmp_path / "store"
    rng = random.Random(13)
    for what, data in _mutations(pristine, rng):
        try:
            decoded = Postings.decode(data, len(model.docs), "s")
        except IntegrityError:
            decoded = None
        if decoded is not None:  # a flip that still decodes: another valid index
            assert decoded.encode() == data or what.startswith("flip"), what
        if what.startswith("flip") and rng.random() > 0.2:
            continue  # a sample of the flips end to end (each opens a store)
        if store.exists():
            for f in store.rglob("*"):
                if f.is_file():
                    f.unlink()
        _copy(tmp_path, store)
        rewrite_section(store, "postings", data)
        try:
            engine = local(store)
        except IntegrityError:
            continue  # the cheap checks at opening
        if decoded is None:
            with pytest.raises(IntegrityError):
                engine.keyword_search("alpha", 3)
        with pytest.raises(IntegrityError):
            engine.verify()


def test_valid_postings_of_other_texts_are_found_by_verify(tmp_path: Path) -> None:
    model = _store(tmp_path)
    other = Postings.build(["omega"] * len(model.docs), Analyzer())
    rewrite_section(tmp_path, "postings", other.encode())
    engine = local(tmp_path)
    assert len(engine.keyword_search("omega", 100)) == len(model.docs)  # believed until...
    with pytest.raises(IntegrityError, match="not those of its records' texts"):
        engine.verify()


def test_postings_in_a_segment_without_rows_are_refused(tmp_path: Path) -> None:
    from vectordb_manager.engine.format import pack_sections, read_segment
    from vectordb_manager.engine.manifest import FileRef, SegmentRef

    data = bytes(pack_sections({"deletes": b'["a"]', "postings": Postings.build([], Analyzer()).encode()}))
    ref = SegmentRef("a" * 32, 0, 1, FileRef.of("segments/" + "a" * 32 + ".seg", data))
    import io

    with pytest.raises(IntegrityError, match="sections"):
        read_segment(ref, io.BytesIO(data), DIM)


def _copy(src: Path, dst: Path) -> None:
    for f in src.rglob("*"):
        if f.is_file() and dst not in f.parents:
            target = dst / f.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(f.read_bytes())


def test_postings_round_trip_and_repeated_entries_add_up() -> None:
    texts = ["alpha beta alpha", "", "beta " * 300, "é✓ unicode ünïcode", "gamma"]
    p = Postings.build(texts, Analyzer())
    assert p.terms == sorted(p.terms) and p.lengths.tolist()[:3] == [3, 0, 300]
    again = Postings.decode(p.encode(), len(texts), "s")
    assert again.equals(p)
    beta = p.terms.index("beta")
    span = slice(int(p.offsets[beta]), int(p.offsets[beta + 1]))
    assert p.rows[span].tolist() == [0, 2] and p.tfs[span].tolist() == [1, 300]
    merged = Postings.from_triples(
        ["b", "a", "c"],
        np.array([0, 1, 0, 2, 0]),
        np.array([1, 0, 1, 2, 0]),
        np.array([2, 3, 4, 1, 1]),
        np.array([3, 6, 1]),
    )
    assert merged.terms == ["a", "b", "c"]
    assert merged.rows.tolist() == [0, 0, 1, 2] and merged.tfs.tolist() == [3, 1, 6, 1]
    with pytest.raises(IntegrityError, match="covers 5 rows"):
        Postings.decode(p.encode(), 4, "s")


def test_select_equals_the_postings_built_from_the_selected_texts() -> None:
    """Compaction's `TextIndex.select` over blocks merged by searches, pending blocks, and
    slots left out (deleted, or outside the selection) gives the postings of the selected
    texts, as `Postings.build` of them gives."""
    from vectordb_manager.engine.text_index import TextIndex

    rng = random.Random(11)
    analyzer = Analyzer()
    index = TextIndex(analyzer)
    texts: list[str] = []
    for size in (5, 9, 3, 12, 1, 7, 20, 4, 6):  # blocks of these many slots
        batch = [text(rng) + " " + rng.choice(["naïve café", "東京都", "x.y-z", ""]) for _ in range(size)]
        index.add(len(texts), size, Postings.build(batch, analyzer))
        texts.extend(batch)
        if len(texts) in (14, 29, 30):
            index.search("alpha", 3)  # the pending blocks become blocks, merged as they come
    assert len(index._blocks) > 1 and index._pending  # both kinds, in slot order
    for slot in (2, 20, 21, 60):
        index.kill(slot)  # (select takes the slots it is given, dead or not)
    slots = list(range(len(texts)))
    choices = [
        slots,
        slots[9:40],
        slots[:14],
        sorted(rng.sample(slots, 30)),
        [s for s in slots if s % 3],
        [slots[-1]],
        [],
    ]
    for chosen in choices:
        got = index.select(chosen)
        want = Postings.build([texts[s] for s in chosen], Analyzer())
        assert got.equals(want), chosen
        assert got.encode() == want.encode()


def test_varints_of_every_length_read_back() -> None:
    from vectordb_manager.engine.postings import _read_varints, _varints

    edges = [0, 1, 127, 128, 300, 2**14 - 1, 2**14, 2**21 - 1, 2**21, 2**28 - 1, 2**28, 2**32 - 1]
    for values in (edges, edges[:3], [5] * 10, []):
        data = _varints(np.asarray(values, dtype=np.uint32))
        assert _read_varints(memoryview(data), len(values), "s").tolist() == values
    assert _varints(np.asarray([300, 2**32 - 1], dtype=np.uint32)) == bytes(
        [0xAC, 0x02, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F]
    )
