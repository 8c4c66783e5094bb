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
    helped = LocalVectorStore(HashingEmbeddings(16), tmp_path / "helped")
    plain = LocalVectorStore(HashingEmbeddings(16), tmp_path / "plain", keyword_process=False)
    helper = _ready_helper(helped)
    plain.add_texts(_texts(99, postings_process.MIN_TEXTS), ids=_FIRST_IDS)
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
