"""The keyword benchmarks' text: a realistic corpus of any size, and the judged query set.

Corpus (`make_corpus`): real English technical text, CPython's reference topics
(``pydoc_data.topics``) and the docstrings of the standard library's modules, classes and
functions (parsed with `ast`, never imported; tests, idlelib, lib2to3 and turtledemo left out),
split at blank lines and packed into passages of ~300-900 characters (~4,000 passages, ~2 MB
on Python 3.11). Passages beyond those are copies with variation: 15% of a copy's words are
replaced by words drawn from a Zipf distribution (s = 1) over a vocabulary ranked by frequency:
the corpus's own words first (~12k, most frequent first), then 200k synthetic rare words, so
that common words stay common and the corpus keeps growing a long tail of rare terms as real
text does (Heaps' law) instead of repeating the same 12k words. Deterministic for a seed.

Queries (`load_judged`): the hand-written judged set in ``benchmarks/data/``, natural-language
questions and exact identifiers about Python, with the topics that answer them.
"""

from __future__ import annotations

import ast
import json
import os
import re
import sysconfig
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from pydoc_data.topics import topics

import numpy as np

JUDGED = Path(__file__).resolve().parent / "data" / "pydoc_topics_qrels.json"
SKIP_DIRS = frozenset(
    {"test", "tests", "idlelib", "lib2to3", "turtledemo", "site-packages", "dist-packages"}
)
PASSAGE = 600  # pack paragraphs up to about this many characters
PASSAGE_MAX = 900
SUBSTITUTE = 0.15  # share of a copy's words replaced
SYNTHETIC = 200_000  # rare words after the real vocabulary
ZIPF_S = 1.0
_WORD = re.compile(r"\w+")


def stdlib_docstrings() -> list[str]:
    """Docstrings of the stdlib's modules, classes and functions, in a fixed order."""
    root = Path(sysconfig.get_paths()["stdlib"])
    out: list[str] = []
    for dirpath, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("__"))
        for name in sorted(names):
            if not name.endswith(".py"):
                continue
            try:
                tree = ast.parse(Path(dirpath, name).read_text(encoding="utf-8"))
            except (SyntaxError, UnicodeDecodeError, ValueError):
                continue
            for node in ast.walk(tree):
                if isinstance(
                    node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef
                ):
                    doc = ast.get_docstring(node)
                    if doc:
                        out.append(doc)
    return out


@cache
def base_passages() -> tuple[str, ...]:
    """The real passages: topics then docstrings, paragraphs packed to ~PASSAGE characters."""
    paragraphs = [
        " ".join(p.split())
        for text in [*(topics[k] for k in sorted(topics)), *stdlib_docstrings()]
        for p in re.split(r"\n\s*\n", text)
    ]
    out: list[str] = []
    cur = ""
    for p in paragraphs:
        if not p:
            continue
        if cur and len(cur) + len(p) > PASSAGE:
            out.append(cur)
            cur = ""
        cur = f"{cur} {p}".strip()
        while len(cur) > PASSAGE_MAX:
            cut = cur.rfind(" ", 0, PASSAGE)
            cut = cut if cut > 0 else PASSAGE
            out.append(cur[:cut])
            cur = cur[cut + 1 :]
    if cur:
        out.append(cur)
    seen: set[str] = set()
    unique = [p for p in out if len(p) >= 40 and not (p in seen or seen.add(p))]
    return tuple(unique)


def synthetic_word(i: int) -> str:
    """The i-th rare word: pronounceable, lower case, unlike English words."""
    cons, vows = "bdfgklmnprstvz", "aeiou"
    parts: list[str] = []
    i += 7 * 14 * 5  # at least three syllables
    while i:
        i, a = divmod(i, len(cons) * len(vows))
        parts.append(cons[a // len(vows)] + vows[a % len(vows)])
    return "".join(parts) + "x"


def vocabulary(passages: tuple[str, ...]) -> list[str]:
    counts = Counter(w for p in passages for w in _WORD.findall(p.lower()))
    real = [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    return real + [synthetic_word(i) for i in range(SYNTHETIC)]


def make_corpus(n: int, seed: int = 0) -> list[str]:
    """``n`` passages: the real ones first (cycled if n is smaller), then varied copies."""
    base = base_passages()
    if n <= len(base):
        return list(base[:n])
    rng = np.random.default_rng(seed)
    vocab = np.asarray(vocabulary(base), dtype=object)
    weights = 1.0 / np.arange(1, len(vocab) + 1, dtype=np.float64) ** ZIPF_S
    cdf = np.cumsum(weights / weights.sum())
    out = list(base)
    sources = rng.integers(0, len(base), size=n - len(base))
    for src in sources.tolist():
        words = base[src].split(" ")
        hit = np.flatnonzero(rng.random(len(words)) < SUBSTITUTE)
        draws = np.searchsorted(cdf, rng.random(len(hit)))
        for pos, w in zip(hit.tolist(), vocab[np.minimum(draws, len(vocab) - 1)], strict=True):
            words[pos] = str(w)
        out.append(" ".join(words))
    return out


def corpus_stats(texts: list[str]) -> dict[str, float]:
    """Size, distinct lower-cased words and words per passage: the corpus's statistics."""
    vocab: set[str] = set()
    words = 0
    for t in texts:
        ws = _WORD.findall(t.lower())
        words += len(ws)
        vocab.update(ws)
    return {
        "passages": len(texts),
        "bytes": sum(len(t.encode()) for t in texts),
        "distinct_words": len(vocab),
        "words_per_passage": words / max(1, len(texts)),
    }


@dataclass(frozen=True)
class Judged:
    """One judged query: its text, kind ("question" / "identifier") and answer groups."""

    q: str
    kind: str
    groups: tuple[frozenset[str], ...]  # each group: the topics that satisfy it


def load_judged(path: Path = JUDGED) -> list[Judged]:
    """The judged set, each answer group widened by the topics that reprint its text."""
    data = json.loads(path.read_text(encoding="utf-8"))
    same: dict[str, list[str]] = data["same_text"]
    out: list[Judged] = []
    for kind, key in (("question", "questions"), ("identifier", "identifiers")):
        for entry in data[key]:
            groups: list[frozenset[str]] = []
            for g in entry["answers"]:
                alts = [g] if isinstance(g, str) else list(g)
                unknown = [a for a in alts if a not in topics]
                if unknown:
                    raise ValueError(f"{path}: {entry['q']!r}: unknown topic(s) {unknown}")
                groups.append(frozenset(alts + [s for a in alts for s in same.get(a, [])]))
            out.append(Judged(entry["q"], kind, tuple(groups)))
    return out
