"""The text analyzer of the keyword index: a text to the terms it is indexed and searched by.

A store records its analyzer in its manifest (`Analyzer.to_json`), so queries are always
analyzed exactly as its documents were; `Analyzer.from_json` refuses anything it does not know.
This docstring is the reference for what ``terms`` returns.

Tokenizer ``"unicode-words-1"``
-------------------------------
1. **Normalization.** The text is put in Unicode NFKC form (``"ﬁle"`` is ``"file"``, full-width
   digits are ASCII digits, ``"é"`` is one character). ASCII text is already normal.
2. **Tokens.** A word is a run of letters, digits and underscores of any script, with the
   combining marks that belong to it (Devanagari vowel signs and the like). Everything else
   separates words: spaces, punctuation, apostrophes (``"don't"`` is ``don``, ``t``;
   ``"l'homme"`` is ``l``, ``homme``). Trailing punctuation never glues to a word (``"end."``
   is ``end``). Numbers are words (``"2024"``, ``"42"``); a comma splits them (``"1,000"`` is
   ``1``, ``000``).
3. **Identifiers.** Words joined by ``.`` ``:`` ``-`` or ``/`` *between* two word characters
   form one token, as do words containing ``_``: ``ERR_CONN_RESET``, ``v2.3.1``,
   ``s3:PutObject``, ``user-id``, ``a/b``, ``3.14``, ``2024-01-15``, ``__init__``. An identifier
   gives its **whole** (case-folded only: never stemmed, never dropped as a stopword) and
   then its **parts** (split at ``_ . : - /``), each analysed like a word. So a query for
   the whole identifier and a query for one of its parts both match, and the exact whole
   scores higher (it matches one more, rarer, term). A token with no letter or digit (``___``)
   gives nothing.
4. **camelCase.** A word mixing cases at a boundary (``PutObject``, ``iPhone``,
   ``HTTPServer``, ``utf8Decode``) gives the word itself, analysed like any word, then its
   case parts (``put``, ``object``; ``http``, ``server``; ``utf8``, ``decode``), each analysed
   like a word. Acronym plurals stay whole (``PDFs``, ``URLs``); ``Hello`` and ``NASA`` are
   plain words. The word itself is analysed from its folded form, so ``PutObjects`` and
   ``putobjects`` give the same first term.
5. **Scripts without spaces.** A run of Han, Hiragana, Katakana or Hangul characters becomes
   its overlapping character bigrams (``"東京都"`` is ``東京``, ``京都``); a run of one character
   stays that character. Other scripts' words are not affected (``"東京2020"`` is ``東京``,
   ``2020``). The bigrams are never stemmed; they are dropped if they are stopwords.
6. **Words** are case-folded (``str.casefold``: ``"Straße"`` is ``strasse``), dropped if they
   are stopwords, then stemmed with the language's Snowball stemmer (``"running dogs"`` is
   ``run``, ``dog``).

``terms`` returns the terms in text order (an identifier's whole before its parts), repeats
kept: the index counts them. An empty text, one of only spaces or punctuation, or one of only
stopwords gives ``[]`` (the engine answers such a query with no results). The same analyzer
always gives a query the terms a document with the same text was indexed with.

Languages, stemming and stopwords
---------------------------------
``language`` is a Snowball name (``Stemmer.algorithms()``: ``"english"``, ``"german"``,
``"french"``, ``"russian"``, ...), or, with ``stem=False``, also a language that has only a
stopword list (``"chinese"``, ``"japanese"``, ``"korean"``, ``"ukrainian"``, ...). ISO 639-1
codes (``"en"``, ``"de"``) and any case are accepted and recorded as the full name.
``stem=False`` keeps words as folded (for code and identifiers).

``stopwords=True`` drops the language's list: for English, the 33 words of Lucene's and
Elasticsearch's English stop set plus ``s`` and ``t`` (what apostrophes leave); for other
languages, the list of the ``stop-words`` package. Its English list (1,333 words) is not used
because it holds content words (``computer``, ``system``, ``index``, ``null``, ``http``,
``test``, ``run``). A Snowball language without a list (``"basque"``, ``"tamil"``, ...) drops
nothing. ``stopwords=False`` keeps every word; a list of words (``stopwords=["foo", "bar"]``)
replaces the language's list and is recorded in the manifest (`default_stopwords` gives a
language's list to extend). A stopword entry is split like text, and a piece holding a digit is
never a stopword: numbers always stay.

Speed: one regular-expression pass finds the tokens; each distinct token is analysed once and
remembered (a bounded cache per analyzer, in two generations), so a text costs a dictionary
lookup per token. `terms_batch` and `token_terms` analyse a batch's new tokens together (the
plain words stemmed in one call). Indexing (`Postings.build`) goes through the analyzer's
`term_table` instead: no regular expression over ASCII texts (cut at whitespace), one lookup
per piece, the pieces' terms as lasting ids (engine/term_table.py).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from itertools import chain, repeat
from typing import Any

import Stemmer
from stop_words import AVAILABLE_LANGUAGES as _STOP_WORDS_LANGUAGES
from stop_words import LANGUAGE_MAPPING, get_stop_words

from vectordb_manager.engine.term_table import TermTable
from vectordb_manager.errors import ConfigurationError

TOKENIZER = "unicode-words-1"
"""The tokenizer's tag in the manifest: a change to how texts are split is a new tag."""

CACHE_SIZE = 100_000
"""Distinct tokens an analyzer remembers in each of its cache's two generations."""

TABLE_SIZE = 200_000
"""Distinct pieces of text (and terms) an analyzer's `term_table` holds before it starts
again (about 240 bytes each: ~50 MB at most)."""

_KEYS = frozenset({"tokenizer", "language", "stem", "stopwords"})

# Lucene's and Elasticsearch's English stop set, plus what apostrophes leave ("it's", "don't")
_ENGLISH_STOPWORDS = (
    *("a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into"),
    *("is", "it", "no", "not", "of", "on", "or", "such", "that", "the", "their", "then"),
    *("there", "these", "they", "this", "to", "was", "will", "with", "s", "t"),
)

_SNOWBALL = frozenset(Stemmer.algorithms())
_STOP_LISTS = frozenset(_STOP_WORDS_LANGUAGES)
_LANGUAGES = _SNOWBALL | _STOP_LISTS
_STOP_LIST_OF = {"porter": "english", "dutch_porter": "dutch"}  # Snowball variants
_CODES = {
    **LANGUAGE_MAPPING,
    "hy": "armenian",
    "eu": "basque",
    "eo": "esperanto",
    "et": "estonian",
    "ga": "irish",
    "lt": "lithuanian",
    "ne": "nepali",
    "no": "norwegian",
    "sr": "serbian",
    "st": "sesotho",
    "ta": "tamil",
    "yi": "yiddish",
}

# Han (with its radicals, marks and supplementary planes), Hiragana, Katakana and Hangul
_CJK = (
    "\u1100-\u11ff\u3005-\u3007\u3021-\u3029\u3038-\u303c\u3041-\u3096\u3099-\u309f"
    "\u30a1-\u30fa\u30fc-\u30ff\u3131-\u318e\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\ua960-\ua97f\uac00-\ud7ff"
    "\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f"
)
_JOINERS = r"[.:\-/]"
_SPLIT = re.compile(r"[_.:\-/]+")
_DIGIT = re.compile(r"\d")
# possessive: what follows a word is optional, so the greedy match is the first and only one
# tried (the same tokens, without the backtracking bookkeeping: about 40% faster)
_ASCII_TOKEN = re.compile(rf"\w++(?:{_JOINERS}\w++)*+", re.ASCII)
# ASCII characters that are never inside a token (neither word characters nor joiners): bytes
# translated to spaces by this table, so that whitespace alone separates tokens' pieces
_APART = bytes(
    c if chr(c).isascii() and (chr(c).isalnum() or chr(c) in "_.:-/") else 32 for c in range(256)
)
_APART_BREAKS = _APART[:1] + b"\x01" + _APART[2:]
_WORD_TOKEN = re.compile(rf"\w++(?:{_JOINERS}\w++)*+")


@cache
def _mark_ranges(*, bmp_only: bool = False) -> str:
    """The combining marks (Mn, Mc, Me) as a character-class body. Python's ``\\w`` lacks
    them, which would cut Devanagari or Tamil words apart at every vowel sign."""
    ranges: list[str] = []
    start = last = -2
    # no marks below U+0300, in the CJK planes or past the variation selectors
    planes: Iterable[int] = chain(range(0x300, 0x20000), range(0xE0000, 0xE1000))
    if bmp_only:
        planes = range(0x300, 0x10000)
    for code in planes:
        if unicodedata.category(chr(code))[0] == "M":
            if code != last + 1:
                if start >= 0:
                    ranges.append(f"{chr(start)}-{chr(last)}")
                start = code
            last = code
    ranges.append(f"{chr(start)}-{chr(last)}")
    return "".join(ranges)


@cache
def _unicode_token() -> re.Pattern[str]:
    """The token pattern for non-ASCII text: a CJK run, or words (with their marks) joined
    by ``_ . : - /``. Built on first use (it reads the Unicode tables, ~15 ms)."""
    char = rf"[^\W{_CJK}]"
    word = rf"{char}++(?:[{_mark_ranges()}]++{char}*+)*+"
    return re.compile(rf"[{_CJK}]++|{word}(?:{_JOINERS}{word})*+")


@cache
def _is_cjk() -> re.Pattern[str]:
    return re.compile(rf"[{_CJK}]")


@cache
def _has_mark() -> re.Pattern[str]:
    """A mark of the BMP (a class of the BMP alone is a fast bitmap); text with characters
    beyond the BMP takes the full pattern anyway."""
    return re.compile(rf"[{_mark_ranges(bmp_only=True)}]")


def _require_language(language: object, stem: bool) -> str:
    if not isinstance(language, str):
        raise ConfigurationError(
            f"analyzer language must be a string such as 'english', not {language!r}"
        )
    name = language.strip().lower()
    name = str(_CODES.get(name, name))
    if name not in _LANGUAGES:
        raise ConfigurationError(
            f"unknown analyzer language {language!r}; Snowball stemmers: "
            f"{', '.join(sorted(_SNOWBALL))}; with stem=False also: "
            f"{', '.join(sorted(_STOP_LISTS - _SNOWBALL))}"
        )
    if stem and name not in _SNOWBALL:
        raise ConfigurationError(
            f"there is no Snowball stemmer for {name!r}; pass stem=False (words are kept as "
            f"they are) or one of: {', '.join(sorted(_SNOWBALL))}"
        )
    return name


def _require_stopwords(stopwords: object) -> bool | tuple[str, ...]:
    if isinstance(stopwords, bool):
        return stopwords
    if isinstance(stopwords, str) or not isinstance(stopwords, Iterable):
        raise ConfigurationError(
            f"analyzer stopwords must be True, False or a list of words, not {stopwords!r}"
        )
    words = list(stopwords)
    bad = [w for w in words if not isinstance(w, str) or not w.strip()]
    if bad:
        raise ConfigurationError(f"analyzer stopwords must be non-empty strings; got {bad[0]!r}")
    return tuple(sorted({unicodedata.normalize("NFKC", w.strip()).casefold() for w in words}))


def default_stopwords(language: str) -> tuple[str, ...]:
    """The stopwords ``stopwords=True`` drops for ``language`` (empty if it has none); a
    starting point for a custom list."""
    name = _require_language(language, stem=False)
    name = _STOP_LIST_OF.get(name, name)
    if name == "english":
        return _ENGLISH_STOPWORDS
    if name not in _STOP_LISTS:
        return ()
    return tuple(get_stop_words(name))


@dataclass(frozen=True)
class Analyzer:
    """How texts become terms (see the module's docstring for the rules).

    ``language``: a Snowball name such as ``"english"`` (or, with ``stem=False``, a language
    with only a stopword list); ``stem``: Snowball-stem words (False for code and
    identifiers); ``stopwords``: drop the language's stopwords (True), keep every word
    (False), or drop the words given. Invalid settings raise `ConfigurationError` (a
    `ValueError`). Two analyzers are equal when their `to_json` are.
    """

    language: str = "english"
    stem: bool = True
    stopwords: bool | Sequence[str] = True

    def __post_init__(self) -> None:
        if not isinstance(self.stem, bool):
            raise ConfigurationError(f"analyzer stem must be True or False, not {self.stem!r}")
        object.__setattr__(self, "language", _require_language(self.language, self.stem))
        object.__setattr__(self, "stopwords", _require_stopwords(self.stopwords))

    def terms(self, text: str) -> list[str]:
        """The terms of ``text``, in order, repeats kept (they are term frequencies); ``[]``
        for a text with no words or only stopwords."""
        return list(chain.from_iterable(map(self._cache.__getitem__, self.tokens(text))))

    def terms_batch(self, texts: Sequence[str]) -> list[list[str]]:
        """`terms` of each text (the batch's new tokens are analysed together, once)."""
        token_lists = [self.tokens(text) for text in texts]
        self.learn(chain.from_iterable(token_lists))
        get = self._cache.__getitem__
        return [list(chain.from_iterable(map(get, tokens))) for tokens in token_lists]

    def tokens(self, text: str) -> list[str]:
        """The tokens of ``text`` (step 2 and 3 of the rules), before any is analysed: its
        terms are those of each token (`token_terms`), in order."""
        if not isinstance(text, str):
            raise TypeError(f"text to analyze must be a string, not {type(text).__name__}")
        if text.isascii():
            return _ASCII_TOKEN.findall(text)
        text = unicodedata.normalize("NFKC", text)
        # the full pattern only where there are combining marks (it is half as fast);
        # CJK runs inside the simpler pattern's tokens are cut out in `_analyze_token`
        marks = _has_mark().search(text) or max(text) > "\uffff"
        pattern = _unicode_token() if marks else _WORD_TOKEN
        return pattern.findall(text)

    def pieces(self, text: str, *, breaks: bool = False) -> list[str]:
        """``text`` cut into pieces whose tokens, in order, are the text's (`tokens` of each
        piece): an ASCII text at whitespace and at the characters never inside a token (no
        regular expression: ``"(see foo.bar),"`` is ``see``, ``foo.bar``), any other text
        into its tokens. ``breaks``: an ASCII text's ``"\\x01"`` characters are kept (as
        pieces of their own when spaces surround them; they have no tokens)."""
        if type(text) is str and text.isascii():
            table = _APART_BREAKS if breaks else _APART
            return text.encode("ascii").translate(table).decode("ascii").split()
        return self.tokens(text)

    def token_terms(
        self, tokens: Sequence[str], *, remember: bool = True
    ) -> list[tuple[str, ...]]:
        """The terms of each of these tokens (of `tokens`), the new ones analysed together
        (and remembered in the token cache, unless ``remember`` is false: the `term_table`
        keeps its own). A token given twice is analysed twice when new."""
        found = list(map(self._cache.get, tokens))
        if None in found:
            missing = [i for i, terms in enumerate(found) if terms is None]
            learned = self._analyze_new([tokens[i] for i in missing], remember)
            if len(learned) == len(found):
                return learned
            for i, terms in zip(missing, learned, strict=True):
                found[i] = terms
        return found  # type: ignore[return-value]

    def learn(self, tokens: Iterable[str]) -> None:
        """Analyse the tokens not yet known, together (and remember their terms)."""
        cache = self._cache
        self._analyze_new([t for t in dict.fromkeys(tokens) if t not in cache])

    def _analyze_new(self, new: list[str], remember: bool = True) -> list[tuple[str, ...]]:
        """The terms of these distinct tokens the cache does not hold (remembered, or not):
        plain words (ASCII letters and digits, no case boundary) are case-folded, filtered and
        stemmed in one call; the others analysed one by one."""
        cache = self._cache
        if remember and cache.has_old:  # (tokens still in use come back from the old generation)
            old = list(map(cache.revive, new))
            if any(terms is not None for terms in old):
                fresh = [t for t, terms in zip(new, old, strict=True) if terms is None]
                it = iter(self._analyze_new(fresh) if fresh else ())
                return [next(it) if terms is None else terms for terms in old]
        simple = [t for t in new if _is_plain(t)]
        if len(simple) == len(new):
            rest = []
        else:
            plain = set(simple)
            rest = [t for t in new if t not in plain]
        stop = self._stop_set
        folded = [t.lower() for t in simple]
        kept = [f for f in folded if f not in stop]
        stems = self._stemmer.stemWords(kept) if self._stemmer is not None else kept
        stem_of = dict(zip(kept, zip(stems), strict=True))  # each word's terms: (its stem,)
        plain_terms: list[tuple[str, ...]] = list(map(stem_of.get, folded, repeat(())))
        if remember:
            cache.store(simple, plain_terms)  # (first: the others' parts are often among them)
        if not rest:
            return plain_terms
        rest_terms = [self._analyze_token(t) for t in rest]
        if remember:
            cache.store(rest, rest_terms)
        terms_of = dict(zip(simple, plain_terms, strict=True))
        terms_of.update(zip(rest, rest_terms, strict=True))
        return list(map(terms_of.__getitem__, new))

    # -- what one token gives (computed once per distinct token, then cached) ------------

    def _analyze_token(self, token: str) -> tuple[str, ...]:
        if not token.isascii() and _is_cjk().search(token):
            pieces = _unicode_token().findall(token)
            if pieces != [token]:  # CJK runs apart from the words around them
                return tuple(chain.from_iterable(map(self._cache.__getitem__, pieces)))
            return self._bigrams(token)
        if _SPLIT.search(token):
            parts = [p for p in _SPLIT.split(token) if p]
            if not parts:
                return ()
            # a part has no CJK and no separator: its terms are its own as a token (cached)
            return (token.casefold(), *chain.from_iterable(map(self._cache.__getitem__, parts)))
        return tuple(self._analyze_word(token))

    def _analyze_word(self, word: str) -> list[str]:
        out = self._plain(word.casefold())
        pieces = _camel_parts(word)
        if len(pieces) > 1:
            for piece in pieces:
                out.extend(self._plain(piece.casefold()))
        return out

    def _plain(self, folded: str) -> list[str]:
        if folded in self._stop_set:
            return []
        return [self._stemmer.stemWord(folded)] if self._stemmer is not None else [folded]

    def _bigrams(self, run: str) -> tuple[str, ...]:
        grams = [run] if len(run) == 1 else [run[i : i + 2] for i in range(len(run) - 1)]
        stop = self._stop_set
        return tuple(g for g in grams if g not in stop)

    @cached_property
    def _cache(self) -> _TermCache:
        return _TermCache(self._analyze_token)

    @cached_property
    def term_table(self) -> TermTable:
        """Lasting ids of the texts' pieces and of their terms, for `Postings.build`."""
        return TermTable(self, TABLE_SIZE, _ASCII_TOKEN.findall)

    @cached_property
    def _stemmer(self) -> Any:
        # no cache of its own: `_cache` remembers every token's terms
        return Stemmer.Stemmer(self.language, 0) if self.stem else None

    @cached_property
    def _stop_set(self) -> frozenset[str]:
        if self.stopwords is False:
            return frozenset()
        entries = default_stopwords(self.language) if self.stopwords is True else self.stopwords
        words: set[str] = set()
        for entry in entries:
            # an entry is split like text ("l'" is l, "i.e." is i, e); numbers always stay
            folded = unicodedata.normalize("NFKC", entry).casefold()
            # (ASCII entries as `tokens` splits ASCII text: the Unicode pattern, ~80 ms to
            # build, only when a list needs it)
            pattern = _ASCII_TOKEN if folded.isascii() else _unicode_token()
            for token in pattern.findall(folded):
                words.update(w for w in _SPLIT.split(token) if w and not _DIGIT.search(w))
        return frozenset(words)

    def check(self) -> None:
        """Build the stemmer and the stopword set now: settings the libraries reject fail
        here (opening a store), not at its first keyword search."""
        _ = self._stemmer, self._stop_set

    # -- the manifest --------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The settings as recorded in a manifest: a small, stable dict."""
        stopwords = self.stopwords if isinstance(self.stopwords, bool) else list(self.stopwords)
        return {
            "tokenizer": TOKENIZER,
            "language": self.language,
            "stem": self.stem,
            "stopwords": stopwords,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Analyzer:
        """The analyzer a manifest records. `ValueError` (`ConfigurationError`) for anything
        this release does not know or did not write: unknown or missing keys, another
        tokenizer, bad or non-canonical values."""
        if not isinstance(data, dict):
            raise ConfigurationError(f"analyzer settings must be an object, not {data!r}")
        unknown = sorted(str(k) for k in set(data) - _KEYS)
        if unknown:
            raise ConfigurationError(
                f"analyzer settings have unknown keys {unknown}; they were written by a newer "
                "release: upgrade vectordb-manager to open this store"
            )
        missing = sorted(_KEYS - set(data))
        if missing:
            raise ConfigurationError(f"analyzer settings lack {missing}")
        if data["tokenizer"] != TOKENIZER:
            raise ConfigurationError(
                f"analyzer tokenizer {data['tokenizer']!r} is not known to this release (it "
                f"knows {TOKENIZER!r}); upgrade vectordb-manager or rebuild the keyword index"
            )
        stopwords = data["stopwords"]
        if not isinstance(stopwords, (bool, list)):
            raise ConfigurationError(
                f"analyzer stopwords must be true, false or a list, not {stopwords!r}"
            )
        analyzer = cls(language=data["language"], stem=data["stem"], stopwords=stopwords)
        if analyzer.to_json() != data:
            raise ConfigurationError(
                f"analyzer settings {data!r} are not as this release writes them "
                f"({analyzer.to_json()!r})"
            )
        return analyzer


class _TermCache(dict[str, tuple[str, ...]]):
    """Token -> its terms; a miss analyses the token. Two generations: past `CACHE_SIZE`
    tokens the cache becomes the old generation and starts again, taking back from the old
    one the tokens still in use (so a vocabulary near the bound does not thrash)."""

    def __init__(self, analyze: Any) -> None:
        super().__init__()
        self._analyze = analyze
        self._old: dict[str, tuple[str, ...]] = {}

    def __missing__(self, token: str) -> tuple[str, ...]:
        terms = self._old.get(token)
        if terms is None:
            terms = self._analyze(token)
        self._put(token, terms)
        return terms

    @property
    def has_old(self) -> bool:
        return bool(self._old)

    def revive(self, token: str) -> tuple[str, ...] | None:
        """The terms of ``token`` if the old generation knew it (it is taken back)."""
        terms = self._old.get(token)
        if terms is not None:
            self._put(token, terms)
        return terms

    def store(self, tokens: Sequence[str], terms: Sequence[tuple[str, ...]]) -> None:
        """Remember the terms of these new tokens."""
        if len(self) + len(tokens) <= CACHE_SIZE:
            self.update(zip(tokens, terms, strict=True))
            return
        for token, its in zip(tokens, terms, strict=True):
            self._put(token, its)

    def _put(self, token: str, terms: tuple[str, ...]) -> None:
        if len(self) >= CACHE_SIZE:
            self._old = dict(self)
            self.clear()
        self[token] = terms


def _is_plain(token: str) -> bool:
    """Whether ``token`` is ASCII letters and digits without a case boundary (as
    ``[A-Za-z0-9][a-z0-9]*|[A-Z0-9]+`` matches whole: lower case after the first character,
    or no lower case at all)."""
    return (
        token.isascii()
        and token.isalnum()
        and (token.islower() or token.isupper() or token.isdigit() or token[1:].islower())
    )


def _camel_parts(word: str) -> list[str]:
    """``word`` cut at its case boundaries (``PutObject`` is Put, Object; ``HTTPServer`` is
    HTTP, Server; ``utf8Decode`` is utf8, Decode); one piece when there is none."""
    if word.islower() or word.isupper() or not any(c.isupper() for c in word[1:]):
        return [word]
    pieces: list[str] = []
    start = 0
    for i in range(1, len(word)):
        before, here = word[i - 1], word[i]
        if not here.isupper():
            continue
        if before.islower() or before.isdigit():
            cut = True
        else:  # HTTPServer: the last capital of a run starts the next word, but PDFs stays
            rest = word[i + 1 :]
            cut = before.isupper() and rest[:1].islower() and rest != "s"
        if cut:
            pieces.append(word[start:i])
            start = i
    pieces.append(word[start:])
    return pieces
