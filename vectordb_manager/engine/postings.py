"""A segment's keyword postings: built from its texts, and its ``postings`` section's bytes.

For each term of the segment's texts (as the store's `Analyzer` gives them), the rows that
contain it, ascending, with the term's frequency in each; and each row's length in terms.
The section (docs/format.md) is compact, because it is stored next to the raw text:

```
4 x uint64 little-endian   rows, terms, postings, vocabulary bytes
vocabulary                 the terms, sorted (by code point), UTF-8, separated by NUL bytes
varints                    unsigned LEB128, in this order: each term's document frequency
                           (terms), each row's length (rows), each posting's row as the gap
                           from the term's previous row (the first one as itself), then each
                           posting's term frequency (postings each)
```

`decode` believes nothing: every count is bounded by the section's size before anything is
allocated, and the terms must be sorted and unique, every row inside the segment and ascending
within a term, every frequency at least 1, and each row's length the sum of its frequencies;
anything else is `IntegrityError`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vectordb_manager.engine.analyzer import Analyzer
from vectordb_manager.engine.term_table import SEP as _SEP
from vectordb_manager.engine.term_table import IdMap, ranges
from vectordb_manager.errors import IntegrityError

U32 = np.ndarray[Any, np.dtype[np.uint32]]
I64 = np.ndarray[Any, np.dtype[np.int64]]

_HEADER = 32
_CHUNK = 8192  # texts cut and looked up at a time (their pieces are held meanwhile)
_NONE: I64 = np.zeros(0, dtype=np.int64)
_MAX_VALUE = (1 << 32) - 1


def index_terms(analyzer: Analyzer, text: str) -> list[str]:
    """The terms ``text`` is indexed and searched by: the analyzer's, without empty ones or
    ones holding a NUL character (the vocabulary's separator; no analyzer makes them)."""
    terms = analyzer.terms(text)
    if _SEP in text or "" in terms:
        return [t for t in terms if t and _SEP not in t]
    return terms


@dataclass(frozen=True)
class Postings:
    """One segment's postings: ``terms`` sorted; term ``i``'s postings are
    ``rows[offsets[i]:offsets[i + 1]]`` (ascending) with frequencies ``tfs[...]``; ``lengths``
    is each row's length in terms."""

    terms: list[str]
    offsets: I64
    rows: U32
    tfs: U32
    lengths: U32

    @property
    def row_count(self) -> int:
        return len(self.lengths)

    @classmethod
    def build(cls, texts: Iterable[str], analyzer: Analyzer) -> Postings:
        """The postings of ``texts`` (row ``i`` is the ``i``-th text): the terms of
        `index_terms`, found through the analyzer's `TermTable` (each distinct piece of text
        analysed once; its occurrences expanded to its terms in NumPy), `_CHUNK` texts at a
        time."""
        table = analyzer.term_table
        found: list[I64] = []
        at: list[I64] = []
        n = 0
        with table.lock:
            source = iter(texts)
            while chunk := list(itertools.islice(source, _CHUNK)):
                keys, counts = table.keys(chunk)
                ids, rows = table.occurrences(keys, counts)
                found.append(ids)
                at.append(rows + n)
                n += len(chunk)
            term_ids = np.concatenate(found) if found else _NONE
            rows = np.concatenate(at) if at else _NONE
            known = table.terms
            used = np.flatnonzero(np.bincount(term_ids, minlength=len(known)))
            names = list(map(known.__getitem__, used.tolist()))
            table.trim()
        order = sorted(range(len(names)), key=names.__getitem__)
        rank = np.zeros(len(known), dtype=np.int64)
        rank[used[order]] = np.arange(len(used))
        lengths = np.bincount(rows, minlength=n)
        terms = list(map(names.__getitem__, order))
        return cls._of_occurrences(terms, rank[term_ids], rows, lengths)

    @classmethod
    def _of_occurrences(cls, terms: list[str], ranks: I64, rows: I64, lengths: I64) -> Postings:
        """Postings from each occurrence's term (its index in ``terms``, sorted) and row, in
        the order of the rows."""
        narrow = np.uint16 if len(terms) <= 1 << 16 else np.int64  # (radix sort: 16 bits)
        by_term = np.argsort(ranks.astype(narrow), kind="stable")  # then by row: stable
        ranks, rows = ranks[by_term], rows[by_term]
        first = np.ones(len(ranks), dtype=bool)  # of a (term, row) pair
        np.not_equal(ranks[1:], ranks[:-1], out=first[1:])
        first[1:] |= rows[1:] != rows[:-1]
        starts = np.flatnonzero(first)
        tfs = np.diff(starts, append=len(ranks))
        df = np.bincount(ranks[starts], minlength=len(terms))
        return cls(
            terms,
            np.concatenate([[0], np.cumsum(df)]).astype(np.int64),
            rows[starts].astype(np.uint32),
            tfs.astype(np.uint32),
            lengths.astype(np.uint32),
        )

    @classmethod
    def from_triples(
        cls,
        vocab: list[str],
        term_ids: I64,
        rows: I64,
        tfs: I64 | None,
        lengths: I64,
    ) -> Postings:
        """Postings from (term id into ``vocab``, row, frequency) entries in any order (a
        (term, row) pair may repeat: frequencies add up; ``tfs`` ``None``: each entry once)."""
        n = max(len(lengths), 1)
        used = np.flatnonzero(np.bincount(term_ids, minlength=len(vocab)))
        names = vocab if len(used) == len(vocab) else list(map(vocab.__getitem__, used.tolist()))
        order = sorted(range(len(used)), key=names.__getitem__)
        rank = np.zeros(len(vocab), dtype=np.int64)
        rank[used[order]] = np.arange(len(used))
        keys = rank[term_ids] * n + rows  # by term (its text), then row
        if tfs is None:
            uniq, counts = np.unique(keys, return_counts=True)
            freq = counts.astype(np.int64)
        else:
            by_key = np.argsort(keys, kind="stable")  # sorted runs (pieces): merged
            uniq, freq = keys[by_key], tfs[by_key]
            if len(uniq) > 1 and not np.all(uniq[1:] != uniq[:-1]):  # a pair repeats: add up
                uniq, inverse = np.unique(uniq, return_inverse=True)
                freq = np.bincount(inverse, weights=freq, minlength=len(uniq)).astype(np.int64)
        term_rank, prow = np.divmod(uniq, n)
        df = np.bincount(term_rank, minlength=len(used))
        return cls(
            list(map(names.__getitem__, order)),
            np.concatenate([[0], np.cumsum(df)]).astype(np.int64),
            prow.astype(np.uint32),
            freq.astype(np.uint32),
            np.asarray(lengths, dtype=np.uint32),
        )

    @classmethod
    def gather(cls, parts: Mapping[int, Postings], picks: Sequence[tuple[int, int]]) -> Postings:
        """The postings of the rows ``picks`` names, in its order: row ``j`` is row
        ``picks[j][1]`` of ``parts[picks[j][0]]`` (each named once). The same as `build` of
        those rows' texts: a commit that keeps some of the rows sent to the helper process,
        or holds several writes' rows, takes them from what the helper built."""
        at = np.asarray(picks, dtype=np.int64).reshape(-1, 2)
        vocab = IdMap()  # (each part's terms get their ids in one step: `IdMap.ids`)
        term_ids: list[I64] = []
        rows: list[I64] = []
        tfs: list[I64] = []
        lengths = np.zeros(len(at), dtype=np.int64)
        for w, part in parts.items():
            mine = np.flatnonzero(at[:, 0] == w)
            if not len(mine):
                continue
            new = np.full(part.row_count, -1, dtype=np.int64)  # part's row -> gathered row
            new[at[mine, 1]] = mine
            lengths[mine] = part.lengths[at[mine, 1]]
            target = new[part.rows]
            kept = target >= 0
            local = np.repeat(np.arange(len(part.terms), dtype=np.int64), np.diff(part.offsets))
            ids = vocab.ids(part.terms)
            term_ids.append(ids[local[kept]])
            rows.append(target[kept])
            tfs.append(part.tfs[kept].astype(np.int64))
        if not term_ids:
            term_ids, rows, tfs = [_NONE], [_NONE], [_NONE]
        return cls.from_triples(
            list(vocab), np.concatenate(term_ids), np.concatenate(rows), np.concatenate(tfs),
            lengths)  # fmt: skip

    # -- the section -----------------------------------------------------------------------
    def encode(self) -> bytes:
        """The ``postings`` section (see the module docstring)."""
        vocab = _SEP.join(self.terms).encode("utf-8", "surrogatepass")
        df = np.diff(self.offsets)
        rows = self.rows.astype(np.uint32, copy=False)
        gaps = np.empty_like(rows)
        if len(rows):
            gaps[0] = rows[0]
            np.subtract(rows[1:], rows[:-1], out=gaps[1:])  # (wraps at a term's first row:)
            firsts = self.offsets[:-1][df > 0]
            gaps[firsts] = rows[firsts]
        parts = [df, self.lengths, gaps, self.tfs]  # (each below 2**32)
        values = np.concatenate(parts, dtype=np.uint32, casting="unsafe")
        head = np.array(
            [self.row_count, len(self.terms), len(self.rows), len(vocab)], dtype="<u8"
        ).tobytes()
        return head + vocab + _varints(values)

    @classmethod
    def decode(cls, data: bytes | memoryview, rows: int, path: str) -> Postings:
        """The postings of a verified ``postings`` section of a segment of ``rows`` rows;
        `IntegrityError` for anything a writer could not have written."""
        view = memoryview(data).cast("B")
        if len(view) < _HEADER:
            raise _damaged(path, "is shorter than its header")
        n_rows, n_terms, n_post, n_vocab = np.frombuffer(view[:_HEADER], dtype="<u8").tolist()
        if n_rows != rows:
            raise _damaged(path, f"covers {n_rows} rows; the segment has {rows}")
        packed = len(view) - _HEADER - n_vocab
        if n_vocab > len(view) - _HEADER or n_terms + n_rows + 2 * n_post > packed:
            raise _damaged(path, "claims more terms or postings than it holds")
        if n_terms > n_post or (n_vocab == 0) != (n_terms == 0):
            raise _damaged(path, "has terms without postings")
        vocab = bytes(view[_HEADER : _HEADER + n_vocab])
        values = _read_varints(view[_HEADER + n_vocab :], n_terms + n_rows + 2 * n_post, path)
        df = values[:n_terms]
        lengths = values[n_terms : n_terms + n_rows]
        gaps = values[n_terms + n_rows : n_terms + n_rows + n_post]
        tfs = values[n_terms + n_rows + n_post :]
        try:
            terms = vocab.decode("utf-8", "surrogatepass").split(_SEP) if n_terms else []
        except UnicodeDecodeError:
            raise _damaged(path, "has a vocabulary that is not UTF-8") from None
        if len(terms) != n_terms or "" in terms:
            raise _damaged(path, f"has {len(terms)} terms in its vocabulary, not {n_terms}")
        if any(a >= b for a, b in itertools.pairwise(terms)):
            raise _damaged(path, "has a vocabulary that is not sorted and unique")
        if (n_terms and int(df.min()) < 1) or int(df.sum()) != n_post:
            raise _damaged(path, "has document frequencies that do not add up to its postings")
        if n_post and (int(tfs.min()) < 1 or int(gaps.max()) >= n_rows):
            raise _damaged(path, "has a posting outside its rows or of frequency 0")
        offsets = np.concatenate([[0], np.cumsum(df)]).astype(np.int64)
        firsts = offsets[:-1]
        steps = gaps.astype(np.int64)
        if n_post and int(np.delete(steps, firsts).min(initial=1)) < 1:
            raise _damaged(path, "has rows that are not ascending within a term")
        total = np.cumsum(steps)
        before = np.where(firsts > 0, total[np.maximum(firsts - 1, 0)], 0) if n_post else firsts
        row_of = total - np.repeat(before, df.astype(np.int64))
        if n_post and int(row_of.max()) >= n_rows:
            raise _damaged(path, "has a posting outside its rows")
        counted = np.bincount(row_of, weights=tfs.astype(np.float64), minlength=n_rows)
        if not np.array_equal(counted, lengths.astype(np.float64)):
            raise _damaged(path, "has row lengths that are not the sums of their frequencies")
        return cls(
            terms,
            offsets,
            row_of.astype(np.uint32),
            tfs.astype(np.uint32),
            lengths.astype(np.uint32),
        )

    def equals(self, other: Postings) -> bool:
        return (
            self.terms == other.terms
            and np.array_equal(self.offsets, other.offsets)
            and np.array_equal(self.rows, other.rows)
            and np.array_equal(self.tfs, other.tfs)
            and np.array_equal(self.lengths, other.lengths)
        )


@dataclass(frozen=True)
class EncodedPostings:
    """A verified ``postings`` section, decoded on first use."""

    data: bytes
    path: str

    def decode(self, rows: int) -> Postings:
        return Postings.decode(self.data, rows, self.path)


def check_header(data: bytes | memoryview, rows: int, path: str) -> None:
    """The cheap checks of a verified section kept undecoded: its size and row count."""
    view = memoryview(data).cast("B")
    if len(view) < _HEADER:
        raise _damaged(path, "is shorter than its header")
    n_rows = int.from_bytes(view[:8], "little")
    if n_rows != rows:
        raise _damaged(path, f"covers {n_rows} rows; the segment has {rows}")


def _varints(values: U32) -> bytes:
    """Unsigned LEB128 of each value, concatenated: each value's low 7 bits, and after those
    of the values of 128 and more (the few) their further bytes, inserted (no running sum
    over all the values)."""
    out = (values & 0x7F).astype(np.uint8)
    big = np.flatnonzero(values >= 1 << 7)
    if not len(big):
        return out.tobytes()
    out[big] |= 0x80
    rest = values[big]
    size = (rest >= 1 << 14).view(np.uint8) + np.uint8(2)
    if int(rest.max()) >= 1 << 21:
        size += (rest >= 1 << 21).view(np.uint8) + (rest >= 1 << 28).view(np.uint8)
    after, extra = [], []  # (np.insert keeps the order of bytes inserted at one place)
    for i in range(1, 5):
        more = size > i
        if i > 1 and not more.any():
            break
        after.append(big[more] + 1)
        byte = ((rest[more] >> (7 * i)) & 0x7F).astype(np.uint8)
        extra.append(byte | ((size[more] > i + 1).view(np.uint8) << 7))
    return np.insert(out, np.concatenate(after), np.concatenate(extra)).tobytes()


def _read_varints(data: memoryview, count: int, path: str) -> np.ndarray[Any, np.dtype[np.uint64]]:
    """``count`` values read from exactly ``data``; `IntegrityError` unless each takes at
    most 5 bytes, is below 2**32, and they fill ``data`` exactly."""
    b = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(b < 0x80)
    if len(ends) != count or (len(b) and b[-1] >= 0x80):
        raise _damaged(path, f"holds {len(ends)} numbers where {count} belong")
    starts = np.concatenate([[0], ends[:-1] + 1]).astype(np.int64)
    size = ends - starts + 1
    if count and int(size.max()) > 5:
        raise _damaged(path, "holds a number longer than 5 bytes")
    values = np.zeros(count, dtype=np.uint64)
    for i in range(5):
        m = size > i
        if not m.any():
            break
        values[m] |= (b[starts[m] + i] & 0x7F).astype(np.uint64) << np.uint64(7 * i)
    if count and int(values.max()) > _MAX_VALUE:
        raise _damaged(path, "holds a number above 2**32 - 1")
    return values


def _damaged(path: str, problem: str) -> IntegrityError:
    return IntegrityError(
        f"{path} has a damaged postings section: it {problem}. The file is damaged or was "
        "not written by vectordb-manager; restore it from a backup (or compact the store "
        "from a good copy)."
    )


__all__ = ["EncodedPostings", "Postings", "check_header", "index_terms", "ranges"]
