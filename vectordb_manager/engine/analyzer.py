"""The text analyzer of the keyword index: a text to the terms it is indexed and searched by.

A store records its analyzer in its manifest (`Analyzer.to_json`), so queries are always
analyzed as its documents were. (First version: word splitting, case folding, stopwords and
Snowball stemming; identifiers and languages are refined in `terms`.)
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any

import Stemmer

_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class Analyzer:
    """How texts become terms: ``language`` (Snowball's name, e.g. ``"english"``), whether to
    ``stem`` and whether to drop the language's ``stopwords``."""

    language: str = "english"
    stem: bool = True
    stopwords: bool = True

    def terms(self, text: str) -> list[str]:
        """The terms of ``text``, in order (repeats kept: they are term frequencies)."""
        words = [w for w in _WORD.findall(text.casefold()) if w not in self._stop_set]
        return self._stemmer.stemWords(words) if self._stemmer is not None else words

    @cached_property
    def _stemmer(self) -> Any:
        return Stemmer.Stemmer(self.language) if self.stem else None

    @cached_property
    def _stop_set(self) -> frozenset[str]:
        if not self.stopwords:
            return frozenset()
        from stop_words import get_stop_words

        return frozenset(get_stop_words(self.language))

    def to_json(self) -> dict[str, Any]:
        """The settings as recorded in a manifest."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Analyzer:
        """The analyzer a manifest records; `ValueError` for settings this release lacks."""
        return cls(**data)
