"""The keyword index's analyzer: every rule of `vectordb_manager.engine.analyzer`'s docstring,
with concrete texts and the terms they give, and the strictness of its manifest form."""

from __future__ import annotations

import random
import unicodedata
from typing import Any

import pytest
import Stemmer

from vectordb_manager.engine import analyzer as analyzer_module
from vectordb_manager.engine.analyzer import TOKENIZER, Analyzer, default_stopwords
from vectordb_manager.errors import ConfigurationError

EN = Analyzer()


# -- words, case, stemming, stopwords ------------------------------------------------------


def test_english_words_are_folded_stemmed_and_stopwords_dropped() -> None:
    assert EN.terms("running dogs") == ["run", "dog"]
    assert EN.terms("The Dogs are RUNNING in the park.") == ["dog", "run", "park"]


def test_trailing_punctuation_does_not_glue_to_words() -> None:
    assert EN.terms("the end. The end! (end), 'end'; end?") == ["end"] * 5


def test_numbers_stay_terms() -> None:
    assert EN.terms("in 2024 there were 42 and 7 items") == ["2024", "were", "42", "7", "item"]
    assert EN.terms("1,000") == ["1", "000"]


def test_apostrophes_split_words() -> None:
    assert EN.terms("the dog's bone, it's not") == ["dog", "bone"]
    assert Analyzer("french").terms("l'homme d'affaires") == ["homm", "affair"]


def test_empty_whitespace_punctuation_and_only_stopwords_give_no_terms() -> None:
    for text in ("", "   \n\t", "!?.,;-- //", "the and of it is", "The AND Of"):
        assert EN.terms(text) == [], text


def test_stem_false_keeps_folded_words() -> None:
    assert Analyzer(stem=False).terms("Running DOGS") == ["running", "dogs"]
    assert Analyzer(stem=False).terms("the running") == ["running"]


def test_stopwords_false_keeps_every_word() -> None:
    assert Analyzer(stopwords=False).terms("the running dogs") == ["the", "run", "dog"]


def test_custom_stopwords_replace_the_language_list_and_are_normalised() -> None:
    analyzer = Analyzer(stopwords=["Dogs", "  cat ", "dogs"])
    assert analyzer.stopwords == ("cat", "dogs")
    assert analyzer.terms("the running dogs and a cat") == ["the", "run", "and", "a"]
    assert analyzer.to_json()["stopwords"] == ["cat", "dogs"]


def test_stopwords_are_dropped_before_stemming() -> None:
    # "running" is not a stopword though its stem "run" would be one here
    assert Analyzer(stopwords=["run"]).terms("running run") == ["run"]


def test_numbers_are_never_stopwords() -> None:
    assert Analyzer(stopwords=["10", "x"]).terms("10 x 11") == ["10", "11"]


def test_english_default_stopwords_are_the_short_function_word_list() -> None:
    # stop-words' English list would drop these content words; ours keeps them
    assert EN.terms("computer system index null http test run") == [
        "comput", "system", "index", "null", "http", "test", "run",
    ]  # fmt: skip
    assert set(default_stopwords("english")) >= {"the", "and", "of", "s", "t"}
    assert len(default_stopwords("english")) == 35


def test_languages_without_a_stopword_list_drop_nothing() -> None:
    assert default_stopwords("basque") == ()
    assert Analyzer("basque", stem=False).terms("eta etxea") == ["eta", "etxea"]


# -- other languages -----------------------------------------------------------------------


def test_german_french_russian_stemming_and_stopwords() -> None:
    assert Analyzer("german").terms("Die Häuser wurden gebaut") == ["haus", "wurd", "gebaut"]
    assert Analyzer("french").terms("Les maisons étaient construites") == [
        "maison", "construit",
    ]  # fmt: skip
    assert Analyzer("russian").terms("Красивые дома строились") == ["красив", "дом", "стро"]


def test_words_with_combining_marks_stay_whole() -> None:
    # Python's \w lacks Devanagari vowel signs: a naive split would cut these words apart
    assert Analyzer("hindi", stem=False, stopwords=False).terms("हिन्दी भाषा") == [
        "हिन्दी", "भाषा",
    ]  # fmt: skip
    assert Analyzer("hindi").terms("हिन्दी भाषा की") == ["हिन्द", "भाष"]


def test_language_codes_and_case_are_recorded_as_the_full_name() -> None:
    assert Analyzer("EN") == Analyzer("english")
    assert Analyzer(" German ").language == "german"


def test_every_snowball_language_builds() -> None:
    for language in Stemmer.algorithms():
        assert isinstance(Analyzer(language).terms("text 42"), list)


def test_stopword_only_languages_need_stem_false() -> None:
    with pytest.raises(ConfigurationError, match=r"no Snowball stemmer for 'chinese'.*stem=False"):
        Analyzer("chinese")
    assert Analyzer("chinese", stem=False).terms("我们的东西") == ["我们", "们的", "的东", "东西"]


def test_unknown_language_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown analyzer language 'klingon'.*english") as info:
        Analyzer("klingon")
    assert isinstance(info.value, ConfigurationError)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"language": 3}, "language must be a string"),
        ({"stem": "yes"}, "stem must be True or False"),
        ({"stopwords": "the"}, "stopwords must be True, False or a list"),
        ({"stopwords": 3}, "stopwords must be True, False or a list"),
        ({"stopwords": ["ok", ""]}, "non-empty strings"),
        ({"stopwords": ["ok", 3]}, "non-empty strings"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Analyzer(**kwargs)


def test_terms_of_a_non_string_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="must be a string, not NoneType"):
        EN.terms(None)  # type: ignore[arg-type]


# -- normalization -------------------------------------------------------------------------


def test_nfkc_ligatures_full_width_and_accents() -> None:
    assert EN.terms("\ufb01le") == ["file"]
    assert EN.terms("\uff11\uff12\uff13 \uff21\uff22\uff23") == ["123", "abc"]
    decomposed, composed = "cafe\u0301", "caf\u00e9"
    assert EN.terms(decomposed) == EN.terms(composed) == ["café"]
    assert Analyzer("german").terms("STRASSE Straße") == ["strass", "strass"]


# -- identifiers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ERR_CONN_RESET", ["err_conn_reset", "err", "conn", "reset"]),
        ("v2.3.1", ["v2.3.1", "v2", "3", "1"]),
        ("s3:PutObject", ["s3:putobject", "s3", "putobject", "put", "object"]),
        ("user-id", ["user-id", "user", "id"]),
        ("a/b", ["a/b", "b"]),  # the whole is never a stopword; the part "a" is
        ("__init__", ["__init__", "init"]),
        ("2024-01-15", ["2024-01-15", "2024", "01", "15"]),
        ("running_dogs", ["running_dogs", "run", "dog"]),  # parts are words: stemmed
        ("the-end.", ["the-end", "end"]),
        ("___", []),
    ],
)
def test_identifiers_give_their_whole_then_their_parts(text: str, expected: list[str]) -> None:
    assert EN.terms(text) == expected


def test_identifiers_in_prose() -> None:
    assert EN.terms("Got ERR_CONN_RESET from v2.3.1.") == [
        "got", "err_conn_reset", "err", "conn", "reset", "from", "v2.3.1", "v2", "3", "1",
    ]  # fmt: skip


def test_an_exact_identifier_query_shares_more_terms_than_a_part() -> None:
    doc = EN.terms("connection failed with ERR_CONN_RESET")
    exact, part = EN.terms("ERR_CONN_RESET"), EN.terms("reset")
    assert set(part) <= set(doc) and set(exact) <= set(doc)
    assert len(set(exact) & set(doc)) > len(set(part) & set(doc))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PutObject", ["putobject", "put", "object"]),
        ("HTTPServer", ["httpserver", "http", "server"]),
        ("XMLHttpRequest", ["xmlhttprequest", "xml", "http", "request"]),
        ("iPhone", ["iphon", "i", "phone"]),
        ("utf8Decode", ["utf8decod", "utf8", "decod"]),
        ("ID3Tag", ["id3tag", "id3", "tag"]),
        ("PDFs", ["pdfs"]),  # an acronym's plural is not cut
        ("Hello", ["hello"]),
        ("NASA", ["nasa"]),
    ],
)
def test_camel_case_gives_the_word_then_its_case_parts(text: str, expected: list[str]) -> None:
    assert EN.terms(text) == expected


def test_camel_case_word_matches_its_lower_case_spelling() -> None:
    assert EN.terms("PutObjects")[0] == EN.terms("putobjects")[0]


def test_code_analyzer_keeps_identifiers_and_words_unstemmed() -> None:
    code = Analyzer(stem=False, stopwords=False)
    assert code.terms("getUserIds(user_ids)") == [
        "getuserids", "get", "user", "ids", "user_ids", "user", "ids",
    ]  # fmt: skip


# -- scripts without spaces ----------------------------------------------------------------


def test_cjk_runs_become_overlapping_bigrams() -> None:
    assert EN.terms("東京都") == ["東京", "京都"]
    assert EN.terms("東") == ["東"]
    assert EN.terms("東京2020") == ["東京", "2020"]
    assert EN.terms("東京に行く") == ["東京", "京に", "に行", "行く"]
    assert EN.terms("カタカナ") == ["カタ", "タカ", "カナ"]
    assert EN.terms("한국어 텍스트") == ["한국", "국어", "텍스", "스트"]
    assert EN.terms("abc-東京_x") == ["abc", "東京", "_x", "x"]


def test_cjk_text_beside_combining_marks_and_emoji() -> None:
    # these take the full token pattern (marks / characters beyond the BMP)
    assert EN.terms("東京 cafe\u0301 \U0001f600 dogs") == ["東京", "café", "dog"]


def test_japanese_stopwords_drop_bigrams_that_are_stopwords() -> None:
    assert Analyzer("japanese", stem=False).terms("これは本です") == [
        "れは", "は本", "本で",
    ]  # fmt: skip


# -- consistency and the cache --------------------------------------------------------------


def test_a_query_gets_the_terms_its_document_text_was_indexed_with() -> None:
    text = "Überprüfen Sie ERR_CONN_RESET in s3:PutObject — 東京 running ﬁles, v2.3.1."
    indexer, searcher = Analyzer(), Analyzer.from_json(Analyzer().to_json())
    indexed = indexer.terms_batch([text, "other text"])[0]
    assert searcher.terms(text) == indexed == indexer.terms(text)


def test_terms_batch_is_terms_of_each_text() -> None:
    texts = ["running dogs", "", "ERR_CONN_RESET", "東京都"]
    assert EN.terms_batch(texts) == [EN.terms(t) for t in texts]


def test_the_cache_is_bounded_and_starting_again_changes_no_terms(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(analyzer_module, "CACHE_SIZE", 3)
    analyzer = Analyzer()
    text = "alpha beta gamma delta epsilon running dogs alpha"
    first = analyzer.terms(text)
    assert len(analyzer._cache) <= 3
    assert analyzer.terms(text) == first == Analyzer(stopwords=True).terms(text)
    assert first == ["alpha", "beta", "gamma", "delta", "epsilon", "run", "dog", "alpha"]


# -- the manifest form ---------------------------------------------------------------------


def test_to_json_is_small_and_stable() -> None:
    assert EN.to_json() == {
        "tokenizer": TOKENIZER,
        "language": "english",
        "stem": True,
        "stopwords": True,
    }
    assert TOKENIZER == "unicode-words-1"


@pytest.mark.parametrize(
    "analyzer",
    [
        Analyzer(),
        Analyzer("german", stem=False),
        Analyzer("korean", stem=False, stopwords=False),
        Analyzer("french", stopwords=["le", "la"]),
    ],
)
def test_round_trip_and_equality_by_json(analyzer: Analyzer) -> None:
    again = Analyzer.from_json(analyzer.to_json())
    assert again == analyzer and hash(again) == hash(analyzer)
    assert again.to_json() == analyzer.to_json()


def test_analyzers_with_different_settings_differ() -> None:
    assert Analyzer() != Analyzer(stem=False)
    assert Analyzer() != Analyzer(stopwords=["the"])
    assert Analyzer(stopwords=["b", "a"]) == Analyzer(stopwords=("a", "b"))


def _with(**changes: Any) -> dict[str, Any]:
    return {**EN.to_json(), **changes}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "must be an object"),
        ({**EN.to_json(), "lowercase": True}, "unknown keys \\['lowercase'\\].*upgrade"),
        ({k: v for k, v in EN.to_json().items() if k != "stem"}, "lack \\['stem'\\]"),
        (_with(tokenizer="unicode-words-2"), "tokenizer 'unicode-words-2' is not known"),
        (_with(tokenizer=None), "tokenizer None is not known"),
        (_with(language="klingon"), "unknown analyzer language 'klingon'"),
        (_with(language="chinese"), "no Snowball stemmer"),
        (_with(language="en"), "not as this release writes them"),
        (_with(stem="true"), "stem must be True or False"),
        (_with(stem=1), "stem must be True or False"),
        (_with(stopwords="the"), "stopwords must be true, false or a list"),
        (_with(stopwords=None), "stopwords must be true, false or a list"),
        (_with(stopwords=["the", 3]), "non-empty strings"),
        (_with(stopwords=["the", "a"]), "not as this release writes them"),  # not sorted
        (_with(stopwords=["The"]), "not as this release writes them"),  # not folded
    ],
)
def test_from_json_refuses_what_this_release_did_not_write(data: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Analyzer.from_json(data)


def test_the_fast_token_pattern_agrees_with_the_full_one() -> None:
    # text without combining marks takes a simpler pattern and cuts CJK runs out afterwards;
    # both must give the terms the full pattern gives
    rng = random.Random(7)
    alphabet = [*"aZ9_.:-/ '東京カ한é,", "ß", "İ", "\ufb01"]
    fast, full = Analyzer(), Analyzer()
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
        tokens = analyzer_module._unicode_token().findall(unicodedata.normalize("NFKC", text))
        expected = [term for token in tokens for term in full._cache[token]]
        assert fast.terms(text) == expected, text
