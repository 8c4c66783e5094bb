"""Batch analysis (`Analyzer.terms_batch`, `Analyzer.token_terms`, `Postings.build`) gives
exactly what analysing each text on its own gives, on seeded random texts of every kind of
token, also when the analyzer's token cache rolls over to a new generation mid-batch; and the
tokenizer's possessive patterns find the tokens the plain greedy ones do."""

from __future__ import annotations

import random
import re
from collections import Counter

import numpy as np
import pytest

from vectordb_manager.engine import analyzer as analyzer_module
from vectordb_manager.engine import postings as postings_module
from vectordb_manager.engine.analyzer import Analyzer
from vectordb_manager.engine.postings import Postings, index_terms
from vectordb_manager.engine.term_table import IdMap

_PIECES = [
    *("running", "dogs", "The", "the", "NASA", "Hello", "PutObject", "iPhone", "HTTPServer"),
    *("utf8Decode", "PDFs", "ERR_CONN_RESET", "v2.3.1", "s3:PutObject", "user-id", "a/b"),
    *("3.14", "2024-01-15", "__init__", "___", "don't", "l'homme", "1,000", "Straße", "ﬁles"),
    *("東京都", "東京2020", "これは本です", "서울시", "हिन्दी", "நன்றி", "Überprüfen", "café"),
    *("\uff11\uff12\uff13", "x\x00y", "end.", "(paren)", "A", "is", "it's", "Running", "RUNNING", "mIxEd"),
]


def _texts(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    words = [*_PIECES, *(f"w{i}" for i in range(60)), *(f"Word{i}x" for i in range(30))]
    return [" ".join(rng.choices(words, k=rng.randint(0, 25))) for _ in range(count)]


def _reference(texts: list[str], analyzer: Analyzer) -> Postings:
    """The postings of ``texts`` from each text's `index_terms`, counted in plain Python."""
    counts = [Counter(index_terms(analyzer, t)) for t in texts]
    terms = sorted({t for c in counts for t in c})
    offsets, rows, tfs = [0], [], []
    for term in terms:
        for row, c in enumerate(counts):
            if term in c:
                rows.append(row)
                tfs.append(c[term])
        offsets.append(len(rows))

    return Postings(
        terms,
        np.asarray(offsets, dtype=np.int64),
        np.asarray(rows, dtype=np.uint32),
        np.asarray(tfs, dtype=np.uint32),
        np.asarray([sum(c.values()) for c in counts], dtype=np.uint32),
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(
    "analyzer",
    [Analyzer(), Analyzer(stem=False), Analyzer(stopwords=False), Analyzer("german")],
    ids=["english", "no-stem", "no-stopwords", "german"],
)
def test_batch_analysis_equals_analysing_each_text(analyzer: Analyzer, seed: int) -> None:
    texts = _texts(seed, 120)
    fresh = Analyzer.from_json(analyzer.to_json())  # its own cache: analysed one by one
    expected = [fresh.terms(t) for t in texts]
    batch = Analyzer.from_json(analyzer.to_json())
    assert batch.terms_batch(texts) == expected
    built = Postings.build(texts, Analyzer.from_json(analyzer.to_json()))
    assert built.equals(_reference(texts, fresh))
    assert built.encode() == _reference(texts, fresh).encode()


def test_batch_analysis_across_cache_generations(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(analyzer_module, "CACHE_SIZE", 7)
    texts = _texts(3, 80)
    expected = [Analyzer().terms(t) for t in texts]
    analyzer = Analyzer()
    for _ in range(3):  # again and again: tokens come back from the old generation
        assert analyzer.terms_batch(texts) == expected
        assert [analyzer.terms(t) for t in texts] == expected
        assert Postings.build(texts, analyzer).equals(_reference(texts, Analyzer()))
        assert len(analyzer._cache) <= 7


def test_token_terms_are_the_terms_of_each_token() -> None:
    analyzer = Analyzer()
    tokens = analyzer.tokens("The PutObject call ran ERR_CONN_RESET; 東京都 running dogs")
    assert analyzer.token_terms(list(dict.fromkeys(tokens))) == [
        tuple(Analyzer().terms(t)) for t in dict.fromkeys(tokens)
    ]
    with pytest.raises(TypeError, match="must be a string"):
        analyzer.tokens(b"bytes")  # type: ignore[arg-type]


def test_the_possessive_token_patterns_find_what_greedy_ones_find() -> None:
    joiners = analyzer_module._JOINERS
    char = rf"[^\W{analyzer_module._CJK}]"
    word = rf"{char}+(?:[{analyzer_module._mark_ranges()}]+{char}*)*"
    greedy = [
        (re.compile(rf"\w+(?:{joiners}\w+)*", re.ASCII), analyzer_module._ASCII_TOKEN),
        (re.compile(rf"\w+(?:{joiners}\w+)*"), analyzer_module._WORD_TOKEN),
        (
            re.compile(rf"[{analyzer_module._CJK}]+|{word}(?:{joiners}{word})*"),
            analyzer_module._unicode_token(),
        ),
    ]
    rng = random.Random(5)
    alphabet = "ab_.:-/ 1Zé東京हिन्दीநன்றி\u0301\u093f-..//::__ "
    texts = ["".join(rng.choices(alphabet, k=rng.randint(0, 40))) for _ in range(3000)]
    texts += _texts(7, 200)
    for old, new in greedy:
        for text in texts:
            if old.flags & re.ASCII and not text.isascii():
                continue
            assert new.findall(text) == old.findall(text), text


def test_the_term_table_stays_within_its_bound_and_starts_again_correctly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`Postings.build` keeps lasting ids of the texts' pieces in the analyzer's term table;
    past `TABLE_SIZE` pieces or terms it starts again, and the postings stay exact."""
    monkeypatch.setattr(analyzer_module, "TABLE_SIZE", 40)
    analyzer = Analyzer()
    sizes = []
    for seed in range(8):
        texts = _texts(100 + seed, 30)
        assert Postings.build(texts, analyzer).equals(_reference(texts, Analyzer()))
        table = analyzer.term_table
        assert len(table) <= 40 and len(table.terms) <= 40
        sizes.append(len(table))
    assert 0 in sizes  # (it did start again)
    texts = _texts(3, 40)
    built = Postings.build(texts, analyzer)  # one batch past the bound: exact all the same
    assert built.equals(_reference(texts, Analyzer()))
    assert "running" not in analyzer._cache  # its words are in the table, not also the cache


def test_the_term_table_grows_over_many_batches_and_stays_exact() -> None:
    """Batch after batch on one analyzer, each with pieces never seen before (numbers, as
    document numbers are), the table grows past its first room and the postings of each
    batch stay exact."""
    analyzer = Analyzer()
    for seed in range(12):
        texts = [f"doc {seed * 1000 + i} {t} n{seed}x{i}" for i, t in enumerate(_texts(seed, 150))]
        assert Postings.build(texts, analyzer).equals(_reference(texts, Analyzer()))
    assert len(analyzer.term_table) > 3000  # (the room doubled on the way)


def test_plain_words_are_those_of_the_documented_pattern() -> None:
    """`_is_plain` (string methods, for speed) says what ``[A-Za-z0-9][a-z0-9]*|[A-Z0-9]+``
    matching whole says: ASCII letters and digits without a case boundary."""
    pattern = re.compile(r"[A-Za-z0-9][a-z0-9]*|[A-Z0-9]+")
    rng = random.Random(9)
    words = ["".join(rng.choices("aZ9_é-", k=rng.randint(0, 6))) for _ in range(20000)]
    words += ["", "a", "A", "1", "Ab1", "A1", "1A", "1a", "aB", "HTTPServer", "PDFs", "x2Y"]
    for word in words:
        assert analyzer_module._is_plain(word) == bool(pattern.fullmatch(word)), word


def test_the_pieces_of_a_text_hold_its_tokens_in_order() -> None:
    """`Analyzer.pieces` (how `Postings.build` cuts texts without a regular expression):
    the tokens of its pieces, one after another, are the text's, whatever characters it
    holds."""
    analyzer = Analyzer()
    rng = random.Random(4)
    ascii_chars = [chr(c) for c in range(128)]
    texts = ["".join(rng.choices(ascii_chars, k=rng.randint(0, 60))) for _ in range(3000)]
    texts += ["".join(rng.choices("ab_.:-/ ,()1Zé東\t\n'\"", k=rng.randint(0, 40))) for _ in range(2000)]
    texts += [*_texts(8, 200), "(see foo.bar), end. a..b -- __init__ x\x00y"]
    for text in texts:
        pieces = analyzer.pieces(text)
        assert [t for p in pieces for t in analyzer.tokens(p)] == analyzer.tokens(text), text
        assert all(p and not p.isspace() for p in pieces)
    assert analyzer.pieces("(see foo.bar), end.") == ["see", "foo.bar", "end."]


@pytest.mark.parametrize("chunk", [7, 8192])
def test_ascii_batches_cut_in_one_pass_give_each_texts_postings(
    monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    """A batch of ASCII texts is cut in one pass (the texts joined around a break): each
    occurrence still counts for its own text, with empty texts, texts of punctuation only,
    texts that end or start inside a token's characters, a batch where a text holds the break
    character itself (cut text by text instead), texts given as an iterator, and batches
    longer than the chunk of texts cut at a time."""
    monkeypatch.setattr(postings_module, "_CHUNK", chunk)
    rng = random.Random(11)
    ascii_chars = [chr(c) for c in range(2, 128)]
    texts = ["".join(rng.choices(ascii_chars, k=rng.randint(0, 40))) for _ in range(300)]
    texts += ["", "...", "a.", ".b", "-", "x" * 50, "", "end:", ":start", " \x02 "]
    rng.shuffle(texts)
    analyzer = Analyzer()
    assert Postings.build(texts, analyzer).equals(_reference(texts, Analyzer()))
    assert Postings.build(iter(texts), analyzer).equals(_reference(texts, Analyzer()))
    with_break = [*texts[:50], "a \x01 b\x01c", *texts[50:]]
    assert Postings.build(with_break, analyzer).equals(_reference(with_break, Analyzer()))
    mixed = [*texts[:20], "東京 café", *texts[20:40]]
    assert Postings.build(mixed, analyzer).equals(_reference(mixed, Analyzer()))
    assert Postings.build([], analyzer).row_count == 0
    assert Postings.build([""], analyzer).equals(_reference([""], Analyzer()))


def test_id_map_gives_in_one_call_the_ids_it_gives_one_by_one() -> None:
    """`IdMap.ids` (new keys added together) gives each key the id, and notes the new keys in
    the order, that `__getitem__` one key at a time does: keys met before, new keys, and a
    new key met twice in one call."""
    rng = random.Random(11)
    batched, single = IdMap(), IdMap()
    for _ in range(20):
        keys = [f"k{rng.randrange(300)}" for _ in range(rng.randrange(0, 60))]
        got = batched.ids(keys)
        assert got.dtype == np.int64
        assert got.tolist() == [single[k] for k in keys]
        assert batched.new == single.new and dict(batched) == dict(single)
    assert len(batched) > 100 and batched.ids([]).tolist() == []
