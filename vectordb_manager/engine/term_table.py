"""`TermTable`: an analyzer's lasting ids for the pieces of text it has seen, and for their terms.

`Postings.build` turns a batch of texts into the term ids of every occurrence without a
Python step per term: each text is cut into *keys*, and the table gives each distinct key one
id for as long as it lives, with that key's terms as ids in a NumPy table (one row per key:
``flat[starts[k] : starts[k] + sizes[k]]``). A batch then costs one dictionary lookup per key
(a C-level ``map`` of ``dict.get``; the keys met for the first time get the next ids and are
analysed together) and NumPy for the rest.

A key is a piece of `Analyzer.pieces`: an ASCII text is cut at whitespace and at the
characters never inside a token, so that no regular expression runs over the texts
(``"(see foo.bar),"`` is ``see``, ``foo.bar``); the key's terms are then those of its tokens,
found once, when the key is new. A batch of ASCII texts is cut in one pass: joined around
`BREAK` (a key with no terms), each key's text is the number of breaks before it. Other texts
are normalised and cut into their tokens by `Analyzer.tokens`, and each token is a key. An
ASCII key is analysed the same way whichever kind of text it came from (an ASCII token is its
own only token), so the two kinds share one table. A key's terms are the terms `index_terms` keeps.

Bounded: past `TABLE_SIZE` keys or terms (checked after each batch) the table starts again
empty. The tokens it analyses are not also remembered in the analyzer's token cache. The ids
mean nothing outside the table, and one batch at a time uses it (`lock`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from itertools import chain, compress, filterfalse, repeat
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from vectordb_manager.engine.analyzer import Analyzer

I64 = np.ndarray[Any, np.dtype[np.int64]]

SEP = "\x00"  # the vocabulary's separator in the postings section: no term may hold it
BREAK = "\x01"  # between two texts cut in one pass: a key of its own, with no terms
_JOIN = f" {BREAK} "


class IdMap(dict[str, int]):
    """String -> id; a string met for the first time gets the next id and is noted in ``new``."""

    def __init__(self) -> None:
        super().__init__()
        self.new: list[str] = []

    def __missing__(self, key: str) -> int:
        self[key] = i = len(self)
        self.new.append(key)
        return i

    def ids(self, keys: Sequence[str]) -> I64:
        """The ids of ``keys``, as `__getitem__` gives them one by one, but with the new keys
        added together in C (no Python call per new key: a block of 1,000 texts brings ~1,000
        new terms, its numbers and names)."""
        new = list(dict.fromkeys(filterfalse(self.__contains__, keys)))
        if new:
            self.update(zip(new, range(len(self), len(self) + len(new)), strict=True))
            self.new += new
        return np.fromiter(map(self.__getitem__, keys), dtype=np.int64, count=len(keys))


class TermTable:
    """Key -> id -> the ids of its terms (see the module docstring)."""

    def __init__(
        self, analyzer: Analyzer, limit: int, ascii_tokens: Callable[[str], list[str]]
    ) -> None:
        self.analyzer = analyzer
        self.limit = limit
        self._ascii_tokens = ascii_tokens  # `Analyzer.tokens` of ASCII text
        self.lock = threading.Lock()
        self._keys: dict[str, int] = {}
        self._term_ids = IdMap()
        self.terms: list[str] = []  # term id -> term
        self._starts = _Column()  # per key: where its terms start in `_flat`
        self._sizes = _Column()  # per key: how many terms it has
        self._flat = _Column()  # the keys' term ids, one key after another

    def __len__(self) -> int:
        """Keys known."""
        return len(self._keys)

    def keys(self, texts: Sequence[str]) -> tuple[list[str], list[int] | None]:
        """The keys of each text, one after another, and how many each text has; or, for a
        batch of ASCII texts cut in one pass, the keys with `BREAK` between two texts and
        ``None`` for the counts (`occurrences` gives each key's text)."""
        joined = _JOIN.join(texts)
        if joined.isascii() and joined.count(BREAK) == len(texts) - 1:  # (no text holds it)
            return self.analyzer.pieces(joined, breaks=True), None
        flat: list[str] = []
        counts: list[int] = []
        pieces = self.analyzer.pieces
        for text in texts:
            keys = pieces(text)
            counts.append(len(keys))
            flat.extend(keys)
        return flat, counts

    def occurrences(self, keys: list[str], counts: list[int] | None) -> tuple[I64, I64]:
        """The term ids of every key's terms, in order, and the text each occurrence is in
        (the keys and counts of `keys`; hold `lock`, and read `terms` before the next batch)."""
        table = self._keys
        try:
            ids = np.fromiter(map(table.get, keys, repeat(-1)), dtype=np.int64, count=len(keys))
            new = np.flatnonzero(ids < 0)
            if len(new):  # (first met: ids in order of appearance, then their terms)
                at = new.tolist()
                fresh = list(dict.fromkeys(map(keys.__getitem__, at)))
                table.update(zip(fresh, range(len(table), len(table) + len(fresh)), strict=True))
                ids[new] = np.fromiter(
                    map(table.__getitem__, map(keys.__getitem__, at)), dtype=np.int64, count=len(at)
                )
                self._learn(fresh)
        except BaseException:  # (the new keys have no rows: forget everything)
            self.trim(force=True)
            raise
        sizes = self._sizes.values[ids]
        if counts is None:  # each key's text: how many breaks come before it
            texts = np.cumsum(ids == table.get(BREAK, -1))
        else:
            texts = np.repeat(np.arange(len(counts)), counts)
        return self._flat.values[ranges(self._starts.values[ids], sizes)], np.repeat(texts, sizes)

    def trim(self, *, force: bool = False) -> None:
        """Start again if past the bound (after a batch: its ids are no longer needed)."""
        if force or len(self._keys) > self.limit or len(self.terms) > self.limit:
            self._keys = {}
            self._term_ids = IdMap()
            self.terms = []
            self._starts, self._sizes, self._flat = _Column(), _Column(), _Column()

    def _learn(self, new: list[str]) -> None:
        """The terms of these new keys (the last ids given), as rows of the table."""
        # an ASCII key of letters and digits is one token, a non-ASCII key is a token: the
        # others are cut into their tokens (laid out after the first kind, no list for each)
        several = [i for i, k in enumerate(new) if k.isascii() and not k.isalnum()]
        one = np.ones(len(new), dtype=bool)
        one[several] = False
        tokens = list(compress(new, one.tolist()))
        counts = [1] * len(tokens)
        if several:
            split = list(map(self._ascii_tokens, map(new.__getitem__, several)))
            tokens.extend(chain.from_iterable(split))
            counts.extend(map(len, split))
        # (a token met twice among them is analysed twice: the same terms, no dictionary)
        found = self.analyzer.token_terms(tokens, remember=False)  # (kept here)
        every = list(chain.from_iterable(found))
        if "" in every or SEP in "".join(every):  # (no analyzer makes them)
            found = [tuple(t for t in ts if t and SEP not in t) for ts in found]
            every = list(chain.from_iterable(found))
        term_ids = self._term_ids
        ids = term_ids.ids(every)
        if term_ids.new:
            self.terms.extend(term_ids.new)
            term_ids.new = []
        per_token = np.fromiter(map(len, found), dtype=np.int64, count=len(found))
        ends = np.cumsum(np.asarray(counts, dtype=np.int64))
        total = np.concatenate([[0], np.cumsum(per_token)])
        laid = total[ends] - total[ends - counts]  # terms of each key, as laid out
        order = np.concatenate([np.flatnonzero(one), several]).astype(np.int64)
        sizes = np.empty(len(new), dtype=np.int64)
        starts = np.empty(len(new), dtype=np.int64)
        sizes[order] = laid
        starts[order] = len(self._flat) + total[ends] - laid
        self._starts.extend(starts)
        self._sizes.extend(sizes)
        self._flat.extend(ids)


class _Column:
    """An int64 array that grows at its end, into room that doubles: extending it copies
    what it holds only when the room runs out, not on every batch."""

    def __init__(self) -> None:
        self._room: I64 = np.zeros(0, dtype=np.int64)
        self._used = 0

    def __len__(self) -> int:
        return self._used

    @property
    def values(self) -> I64:
        return self._room[: self._used]

    def extend(self, more: I64) -> None:
        need = self._used + len(more)
        if need > len(self._room):
            room = np.empty(max(need, 2 * len(self._room), 1024), dtype=np.int64)
            room[: self._used] = self.values
            self._room = room
        self._room[self._used : need] = more
        self._used = need


def ranges(starts: I64, lens: I64) -> I64:
    """``starts[i] .. starts[i] + lens[i]`` for every i, concatenated."""
    offsets = np.cumsum(lens) - lens
    out: I64 = np.arange(int(lens.sum()), dtype=np.int64) + np.repeat(starts - offsets, lens)
    return out


__all__ = ["SEP", "IdMap", "TermTable", "ranges"]
