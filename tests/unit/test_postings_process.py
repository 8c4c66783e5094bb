"""The postings helper process (`engine.postings_process`): it gives byte for byte the postings
the writer would build, for every kind of text and analyzer, in order under concurrent
writers; a store takes large batches' postings from it once it is ready; and a helper that is
killed, cannot start, sits idle, or belongs to a forked parent never costs a write anything
but the time of building its postings in the writer."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from langchain_core.documents import Document

from vectordb_manager import LocalVectorStore
from vectordb_manager.embeddings import HashingEmbeddings
from vectordb_manager.engine import postings_process
from vectordb_manager.engine.analyzer import Analyzer
from vectordb_manager.engine.postings import Postings
from vectordb_manager.engine.postings_process import Helper

_WORDS = [
    *("running", "dogs", "The", "NASA", "PutObject", "HTTPServer", "utf8Decode", "PDFs"),
    *("ERR_CONN_RESET", "v2.3.1", "s3:PutObject", "don't", "l'homme", "Straße", "ﬁles"),
    *("東京都", "これは本です", "서울시", "हिन्दी", "café", "cafe\u0301", "\uff11\uff12"),
    *("x\x00y", "\x01", "a\ud800b", "\udfff", "😀emoji", "(paren),", "A", "is", "mIxEd"),
]
_ANALYZERS = [
    Analyzer(),
    Analyzer(stem=False, stopwords=["dogs", "the"]),
    Analyzer(language="french", stopwords=False),
]


def _texts(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    words = [
        *_WORDS,
        *(f"w{i}" for i in range(50)),
        *(str(rng.randrange(10**6)) for _ in range(50)),
    ]
    return [
        "" if rng.random() < 0.05 else " ".join(rng.choices(words, k=rng.randint(1, 20)))
        for _ in range(count)
    ]


@pytest.fixture
def helper() -> Iterator[Helper]:
    h = Helper()
    h.started.wait()  # (ready, or gone: the tests say which they expect)
    yield h
    h.stop()


@pytest.fixture
def own_slot(monkeypatch: pytest.MonkeyPatch) -> Iterator[postings_process._Slot]:
    """This test's own process-wide helper slot (its helper stopped after it)."""
    slot = postings_process._Slot()
    monkeypatch.setattr(postings_process, "_slot", slot)
    yield slot
    if slot.helper is not None:
        slot.helper.stop()


def _not_in_the_writer(*_: object) -> Postings:
    raise AssertionError("the writer built postings the helper was sent")


_FIRST_IDS = [f"first-{i}" for i in range(postings_process.MIN_TEXTS)]


def _ready_helper(store: LocalVectorStore) -> Helper:
    """Start the process's helper through a large write of the store, and wait until it is ready."""
    store.add_texts(_texts(99, postings_process.MIN_TEXTS), ids=_FIRST_IDS)
    helper = postings_process.current()
    assert helper is not None, "a large batch starts the helper"
    helper.started.wait()
    assert helper.ready and not helper.gone
    return helper


def _helped_and_plain(tmp_path: Path) -> tuple[LocalVectorStore, LocalVectorStore, Helper]:
    """A store whose helper is ready and one that builds its postings in the writer, both
    holding the same first large batch."""
    helped = LocalVectorStore(HashingEmbeddings(16), tmp_path / "helped")
    plain = LocalVectorStore(HashingEmbeddings(16), tmp_path / "plain", keyword_process=False)
    helper = _ready_helper(helped)
    plain.add_texts(_texts(99, postings_process.MIN_TEXTS), ids=_FIRST_IDS)
    return helped, plain, helper


@pytest.mark.parametrize("analyzer", _ANALYZERS, ids=["default", "no-stem", "french"])
def test_the_helper_sends_the_postings_the_writer_builds(
    helper: Helper, analyzer: Analyzer
) -> None:
    assert helper.ready
    for seed in range(3):
        texts = _texts(seed, 300)
        ahead = helper.submit(texts, analyzer)
        assert ahead is not None
        assert (
            ahead.future.result()
            == Postings.build(texts, Analyzer.from_json(analyzer.to_json())).encode()
        )
        got = ahead.result(analyzer, len(texts))
        assert got is not None and got.equals(Postings.build(texts, analyzer))
    assert helper.answered == 3


def test_postings_are_refused_for_other_rows_or_another_analyzer(helper: Helper) -> None:
    texts = _texts(5, 300)
    ahead = helper.submit(texts, Analyzer())
    assert ahead is not None
    assert ahead.result(Analyzer(stem=False), len(texts)) is None  # (the writer builds its own)
    assert ahead.result(Analyzer(), len(texts) - 1) is None
    assert ahead.result(Analyzer(), len(texts)) is not None


def test_concurrent_writers_each_get_their_own_texts_postings(helper: Helper) -> None:
    failures: list[str] = []

    def writer(n: int) -> None:
        for round_ in range(5):
            texts = _texts(100 * n + round_, 260 + n)
            ahead = helper.submit(texts, _ANALYZERS[n % 3])
            assert ahead is not None
            if ahead.future.result() != Postings.build(texts, _ANALYZERS[n % 3]).encode():
                failures.append(f"writer {n} round {round_}")

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert helper.answered == 20


def test_a_store_takes_large_batches_postings_from_the_helper(
    tmp_path: Path, own_slot: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    helped, plain, helper = _helped_and_plain(tmp_path)
    batches = [(_texts(seed, 400), [f"{seed}-{i}" for i in range(400)]) for seed in range(3)]
    for texts, ids in batches:
        plain.add_texts(texts, ids=ids)
    with monkeypatch.context() as m:  # (the writer builds none: they are the helper's)
        m.setattr(Postings, "build", _not_in_the_writer)
        for texts, ids in batches:
            helped.add_texts(texts, ids=ids)
    assert helper.answered == 3
    helped.add_texts(["few texts stay in the writer"], ids=["few"])  # (under MIN_TEXTS)
    plain.add_texts(["few texts stay in the writer"], ids=["few"])
    assert helper.answered == 3
    helped.verify()  # (compares every segment's postings with those of its texts)
    for query in ("running dogs", "東京都", "PutObject", "w7 w8", "writer"):
        assert helped.keyword_search_with_score(query, k=20) == plain.keyword_search_with_score(
            query, k=20
        )
    reopened = LocalVectorStore(HashingEmbeddings(16), tmp_path / "helped")
    assert reopened.keyword_search_with_score("dogs", k=5) == plain.keyword_search_with_score(
        "dogs", k=5
    )


def test_gathered_rows_have_the_postings_of_their_texts() -> None:
    """`Postings.gather`: any rows of any parts, in any order, equal `build` of their texts."""
    rng = random.Random(7)
    for trial in range(60):
        analyzer = _ANALYZERS[trial % 3]
        groups = [_texts(100 * trial + w, rng.randint(1, 40)) for w in range(rng.randint(1, 4))]
        parts = {w: Postings.build(g, analyzer) for w, g in enumerate(groups)}
        every = [(w, i) for w, g in enumerate(groups) for i in range(len(g))]
        picks = rng.sample(every, rng.randint(0, len(every)))
        got = Postings.gather(parts, picks)
        assert got.equals(Postings.build([groups[w][i] for w, i in picks], analyzer)), picks
    empty = Postings.build(["", "the is"], Analyzer())  # (rows without terms)
    assert Postings.gather({0: empty}, [(0, 1)]).equals(Postings.build(["the is"], Analyzer()))


def _same_keyword_results(a: LocalVectorStore, b: LocalVectorStore) -> None:
    """Every match with its score (in any order among equal scores: a group commit orders
    its rows otherwise than the same writes one by one)."""
    for query in ("running dogs", "東京都", "PutObject", "w7 w8", "w3", "café"):
        found = [
            sorted((round(score, 9), doc.id, doc.page_content) for doc, score in hits)
            for hits in (s.keyword_search_with_score(query, k=2000) for s in (a, b))
        ]
        assert found[0] == found[1] and found[0]


def test_a_write_of_partly_unchanged_rows_takes_the_helpers_postings_of_the_rest(
    tmp_path: Path, own_slot: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    helped, plain, helper = _helped_and_plain(tmp_path)
    first = _texts(1, 400)
    ids = [f"a-{i}" for i in range(400)]
    again = first[:150] + _texts(2, 150) + _texts(3, 100)  # unchanged, changed, new
    again_ids = ids[:300] + [f"b-{i}" for i in range(100)]
    for store in (helped, plain):
        store.add_texts(first, ids=ids)
    with monkeypatch.context() as m:
        m.setattr(Postings, "build", _not_in_the_writer)
        helped.add_texts(again, ids=again_ids)
    plain.add_texts(again, ids=again_ids)
    assert helper.answered == 2  # (the first large write started it)
    assert helped.stats()["documents"] == plain.stats()["documents"] == 256 + 500
    helped.verify()
    _same_keyword_results(helped, plain)
    _same_keyword_results(LocalVectorStore(HashingEmbeddings(16), tmp_path / "helped"), plain)


def test_a_group_commit_gathers_its_writes_postings_from_the_helper(
    tmp_path: Path, own_slot: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    helped, plain, helper = _helped_and_plain(tmp_path)
    # three writes queue while the test holds the writers' lock, so one commit takes them all;
    # the last one rewrites some of the first one's ids (the group keeps its records)
    writes = [
        (_texts(10, 300), [f"x-{i}" for i in range(300)]),
        (_texts(11, 280), [f"y-{i}" for i in range(280)]),
        (_texts(12, 290), [f"x-{i}" for i in range(100)] + [f"z-{i}" for i in range(190)]),
    ]
    engine = helped._engine
    version = engine.version
    errors: list[BaseException] = []

    def write(texts: list[str], ids: list[str]) -> None:
        try:
            helped.add_texts(texts, ids=ids)
        except BaseException as exc:  # (reported below)
            errors.append(exc)

    with monkeypatch.context() as m:
        m.setattr(Postings, "build", _not_in_the_writer)
        threads = []
        with engine._write_lock:
            for texts, ids in writes:  # (queued in this order)
                queued = len(engine._queue)
                threads.append(threading.Thread(target=write, args=(texts, ids)))
                threads[-1].start()
                while len(engine._queue) == queued:  # (until this write waits in the queue)
                    assert threads[-1].is_alive(), errors
                    threads[-1].join(0.001)
        for t in threads:
            t.join()
    assert errors == []
    assert engine.version == version + 1  # (one commit)
    assert helper.answered == 3
    for texts, ids in writes:
        plain.add_texts(texts, ids=ids)
    assert helped.stats()["documents"] == plain.stats()["documents"] == 256 + 300 + 280 + 190
    helped.verify()
    _same_keyword_results(helped, plain)
    assert helped.get_by_ids(["x-5"])[0].page_content == writes[2][0][5]


def test_a_killed_helper_costs_a_write_nothing_and_a_new_one_starts(
    tmp_path: Path, own_slot: object
) -> None:
    store = LocalVectorStore(HashingEmbeddings(16), tmp_path / "s")
    helper = _ready_helper(store)
    texts = _texts(1, 300)
    store.add_texts(texts[:280], ids=[f"a{i}" for i in range(280)])
    assert helper.answered == 1
    # killed between the texts sent and the postings taken: the writer builds them
    engine = store.engine
    ahead = engine.postings_ahead(texts)
    assert ahead is not None
    os.kill(helper.process.pid, signal.SIGKILL)
    helper.process.wait()
    assert ahead.result(engine._analyzer, len(texts)) is None
    assert helper.gone
    vectors = store.embeddings.embed_documents(texts)
    engine.upsert(
        [f"b{i}" for i in range(len(texts))],
        texts,
        [{}] * len(texts),
        np.asarray(vectors, np.float32),
        postings=ahead,
    )
    store.verify()
    assert len(store.keyword_search("running", k=1000)) == sum(
        "running" in t.split()
        for t in [*texts[:280], *texts, *_texts(99, postings_process.MIN_TEXTS)]
    )
    # it had answered before: the next large write starts another (built in the writer meanwhile)
    store.add_texts(_texts(2, 300))
    again = postings_process.current()
    assert again is not None and again is not helper
    again.started.wait()
    store.add_texts(_texts(3, 300))
    assert again.answered == 1
    store.verify()


def test_a_helper_that_cannot_start_is_not_started_again(
    tmp_path: Path,
    own_slot: postings_process._Slot,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken = tmp_path / "python-broken"
    broken.write_text("#!/bin/sh\nexit 3\n")
    broken.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(broken))
    store = LocalVectorStore(HashingEmbeddings(16), tmp_path / "s")
    store.add_texts(_texts(1, 300))  # starts it (its postings built in the writer)
    first = own_slot.helper
    assert first is not None
    first.started.wait()
    assert first.gone and not first.ready
    with caplog.at_level("INFO", logger=postings_process.__name__):
        store.add_texts(_texts(2, 300))
        store.add_texts(_texts(3, 300))
    assert own_slot.disabled and own_slot.helper is None
    assert "ended without answering" in caplog.text
    assert not postings_process.available()
    store.verify()
    assert store.engine.count() == 900


def test_no_helper_in_a_frozen_application(
    tmp_path: Path, own_slot: postings_process._Slot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    store = LocalVectorStore(HashingEmbeddings(16), tmp_path / "s")
    store.add_texts(_texts(1, 300))
    assert own_slot.helper is None
    assert store.keyword_search("running", k=1)


def test_an_idle_helper_exits_and_the_next_large_write_starts_another(
    tmp_path: Path, own_slot: postings_process._Slot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postings_process, "IDLE_SECONDS", 0.2)
    store = LocalVectorStore(HashingEmbeddings(16), tmp_path / "s")
    helper = _ready_helper(store)
    store.add_texts(_texts(1, 300))
    assert helper.answered == 1
    assert helper.process.wait() == 0  # (it exits on its own once idle)
    helper.stop()  # (its reader is done)
    assert helper.gone
    store.add_texts(_texts(2, 300))
    assert own_slot.helper is not None and own_slot.helper is not helper
    store.verify()


def test_the_helper_ends_with_the_process_that_started_it(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys
        sys.path[:0] = {sys.path!r}
        from vectordb_manager import LocalVectorStore
        from vectordb_manager.embeddings import HashingEmbeddings
        from vectordb_manager.engine import postings_process
        store = LocalVectorStore(HashingEmbeddings(8), {str(tmp_path / "s")!r})
        texts = [f"text {{i}} of many words" for i in range(300)]
        store.add_texts(texts)
        helper = postings_process.current()
        helper.started.wait()
        store.add_texts(texts)
        assert helper.answered == 1, helper.answered
        print(helper.process.pid)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    pid = int(done.stdout.split()[-1])
    with pytest.raises(ProcessLookupError):  # (waited for at exit: gone, and reaped)
        os.kill(pid, 0)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_starts_its_own_helper(
    helper: Helper, own_slot: postings_process._Slot
) -> None:
    own_slot.helper = helper
    texts = _texts(7, 300)
    expected = Postings.build(texts, Analyzer()).encode()
    pid = os.fork()
    if pid == 0:  # the child: its parent's helper is forgotten; it starts its own
        ok = False
        try:
            assert postings_process.current() is None
            assert postings_process.submit(texts, Analyzer()) is None  # (starting)
            mine = postings_process.current()
            assert mine is not None and mine is not helper
            mine.started.wait()
            ahead = postings_process.submit(texts, Analyzer())
            ok = ahead is not None and ahead.future.result() == expected
            postings_process.shutdown()
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    ahead = helper.submit(texts, Analyzer())  # the parent's still answers it
    assert ahead is not None and ahead.future.result() == expected
    own_slot.helper = None


async def test_async_adds_and_apply_take_the_helpers_postings(
    tmp_path: Path, own_slot: object
) -> None:
    store = LocalVectorStore(HashingEmbeddings(16), tmp_path / "s")
    helper = _ready_helper(store)
    texts = _texts(11, 300)
    await store.aadd_texts(texts, ids=[f"async-{i}" for i in range(len(texts))])
    assert helper.answered == 1
    docs = [Document(page_content=t, id=f"doc-{i}") for i, t in enumerate(_texts(12, 300))]
    store.apply(docs, delete=["async-0"])
    assert helper.answered == 2
    store.verify()
    plain = LocalVectorStore(HashingEmbeddings(16), tmp_path / "plain", keyword_process=False)
    plain.add_texts(_texts(99, postings_process.MIN_TEXTS), ids=_FIRST_IDS)
    await plain.aadd_texts(texts, ids=[f"async-{i}" for i in range(len(texts))])
    plain.apply(docs, delete=["async-0"])
    for query in ("running dogs", "Straße", "w3"):
        assert store.keyword_search_with_score(query, k=30) == plain.keyword_search_with_score(
            query, k=30
        )


def test_texts_that_are_not_strings_are_not_sent(helper: Helper) -> None:
    assert helper.submit(["a text", None] * 200, Analyzer()) is None  # type: ignore[list-item]
    assert helper.submit(["lone \udc80 surrogates travel", "fine"] * 200, Analyzer()) is not None
    texts = _texts(21, 300)
    ahead = helper.submit(texts, Analyzer())
    assert ahead is not None and ahead.future.result() == Postings.build(texts, Analyzer()).encode()
