"""Rows as a store accepts them: texts, metadata and ids checked once, before anything is
embedded or written.

`_validate_rows` checks the lengths and the ids (given, or new UUID4s) and copies each metadata
dict with `_json_copy`: a deep copy holding only what comes back from the store exactly as
given (strings, numbers, booleans, ``None``, lists, dicts with string keys, and dates and
datetimes, which the records keep in a tagged form, `engine.records`), within the limits of
`engine.limits`. Anything else is an `InvalidInputError` naming the metadata and the fix.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta, timezone
from itertools import chain
from typing import Any, cast

from vectordb_manager.engine.limits import MAX_ID_BYTES, MAX_KEY_BYTES, MAX_METADATA_DEPTH
from vectordb_manager.engine.records import EXACT_SCALARS, flat_scalars
from vectordb_manager.errors import InvalidInputError


def _id_list(ids: Sequence[str]) -> list[str]:
    """A list of ids as given, or `InvalidInputError` (one string is not a list of ids)."""
    if isinstance(ids, str) or not all(isinstance(i, str) for i in ids):
        raise InvalidInputError(
            f"ids must be a list of strings, got {ids!r:.80}; for one id, pass [id]"
        )
    return list(ids)


def _validate_rows(
    texts: Iterable[str],
    metadatas: Sequence[Mapping[str, Any] | None] | None,
    ids: Sequence[str | None] | None,
) -> tuple[list[str], list[dict[str, Any]], list[str]]:
    if isinstance(texts, str):
        raise InvalidInputError("texts must be a list of strings, not one string")
    text_list = list(texts)
    n = len(text_list)
    if not _STR.issuperset(map(type, text_list)):
        for i, t in enumerate(text_list):
            if not isinstance(t, str):
                raise InvalidInputError(f"text {i} is {type(t).__name__}, not a string")
    if metadatas is not None and len(metadatas) != n:
        raise InvalidInputError(
            f"got {len(metadatas)} metadatas for {n} texts; pass one metadata dict per text"
        )
    if ids is not None and len(ids) != n:
        raise InvalidInputError(f"got {len(ids)} ids for {n} texts; pass one id per text")
    metas = _flat_copies(metadatas) if metadatas else None
    if metas is None:
        metas = [_clean_metadata(m, i) for i, m in enumerate(metadatas or [None] * n)]
    if ids is not None and _plain_ids(ids):  # the common case, checked in C
        plain = cast(list[str], list(ids))
        _refuse_duplicates(plain)
        return text_list, metas, plain
    id_list: list[str] = []
    for i, doc_id in enumerate(ids or [None] * n):
        if doc_id is None:
            id_list.append(str(uuid.uuid4()))
        elif not isinstance(doc_id, str):
            raise InvalidInputError(f"id {i} is {type(doc_id).__name__}; ids must be strings")
        elif not doc_id:
            raise InvalidInputError(
                f"id {i} is empty; give each document a non-empty id, or None to have one made"
            )
        elif len(doc_id.encode("utf-8", "surrogatepass")) > MAX_ID_BYTES:
            raise InvalidInputError(
                f"id {i} is longer than {MAX_ID_BYTES} bytes; use a shorter id (such as a hash "
                "of a long key)"
            )
        else:
            id_list.append(doc_id)
    _refuse_duplicates(id_list)
    return text_list, metas, id_list


def _plain_ids(ids: Sequence[str | None]) -> bool:
    """Whether every id is a non-empty string short enough in any encoding (4 bytes per
    character at most), so that none needs a look of its own."""
    return (
        bool(ids)
        and _STR.issuperset(map(type, ids))
        and min(map(len, ids)) > 0  # type: ignore[arg-type]
        and max(map(len, ids)) * 4 <= MAX_ID_BYTES  # type: ignore[arg-type]
    )


def _refuse_duplicates(id_list: list[str]) -> None:
    if len(set(id_list)) != len(id_list):
        seen: set[str] = set()
        dupes = sorted({i for i in id_list if i in seen or seen.add(i)})  # type: ignore[func-returns-value]
        raise InvalidInputError(
            f"duplicate ids in one call: {dupes[:5]}; each id may appear once per call"
        )


def _flat_copies(metadatas: Sequence[Mapping[str, Any] | None]) -> list[dict[str, Any]] | None:
    """`_clean_metadata` of each, when every one is a dict whose values are all `EXACT_SCALARS`
    and whose keys are short strings (the common case, checked over the whole batch in C);
    ``None`` otherwise (then each is checked on its own)."""
    if not flat_scalars(metadatas, EXACT_SCALARS):
        return None
    copies = list(map(dict, cast(Sequence[dict[str, Any]], metadatas)))
    keys = list(chain.from_iterable(copies))
    if (
        _STR.issuperset(map(type, keys))
        and max(map(len, keys), default=0) * 4 <= MAX_KEY_BYTES
    ):
        return copies
    return None


def _clean_metadata(meta: Mapping[str, Any] | None, i: int) -> dict[str, Any]:
    """A deep copy of the metadata that the store gives back exactly, or an error."""
    if meta is None:
        return {}
    if not isinstance(meta, Mapping):
        raise InvalidInputError(f"metadata {i} is {type(meta).__name__}, not a dict")
    flat = dict(meta)
    if (  # the common case, checked in C: copied as is
        EXACT_SCALARS.issuperset(map(type, flat.values()))
        and _STR.issuperset(map(type, flat))
        and (not flat or max(map(len, flat)) * 4 <= MAX_KEY_BYTES)
    ):
        return flat
    try:
        return _json_copy(flat, 1)  # type: ignore[no-any-return]
    except _NotJSON as exc:
        raise InvalidInputError(f"metadata {i} {exc}") from None


_STR = frozenset((str,))


class _NotJSON(Exception):
    pass


def _json_copy(value: Any, depth: int) -> Any:
    """A copy of a JSON value, or of a date or datetime (as the exact type, the datetime's
    time zone as its fixed UTC offset); ``depth``: its nesting level (the metadata dict is
    level 1)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, datetime):  # before date: a datetime is a date
        return _copy_datetime(value)
    if isinstance(value, date):
        return date(value.year, value.month, value.day)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _NotJSON(f"is not JSON: {value!r} is not a JSON number; use None or a string")
        return float(value)
    if isinstance(value, dict | list) and depth > MAX_METADATA_DEPTH:
        raise _NotJSON(
            f"nests dicts and lists more than {MAX_METADATA_DEPTH} levels deep; flatten it "
            "(or store the structure as a JSON string)"
        )
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise _NotJSON(
                    f"has the key {k!r}: non-string keys become strings in JSON, "
                    "so it would not come back unchanged; convert those keys first"
                )
            if len(k) * 4 > MAX_KEY_BYTES and len(k.encode("utf-8", "surrogatepass")) > (
                MAX_KEY_BYTES
            ):
                raise _NotJSON(
                    f"has a key of more than {MAX_KEY_BYTES} bytes ({k[:40]!r}...); keys name "
                    "fields: put long text in values"
                )
            out[str(k)] = _json_copy(v, depth + 1)
        return out
    if isinstance(value, list):
        return [_json_copy(v, depth + 1) for v in value]
    if isinstance(value, tuple):
        raise _NotJSON(
            f"holds the tuple {value!r}: tuples become lists in JSON, so it would not come "
            "back unchanged; convert those values first"
        )
    if isinstance(value, time | timedelta):
        raise _NotJSON(
            f"is not JSON: {type(value).__name__} values are not allowed (of dates and "
            "times, only date and datetime are kept); store it as a string or a number, or "
            f"use {_ALLOWED}"
        )
    raise _NotJSON(f"is not JSON: {type(value).__name__} values are not allowed; use {_ALLOWED}")


_ALLOWED = "strings, numbers, booleans, None, dates, datetimes, lists and dicts with string keys"


def _copy_datetime(value: datetime) -> datetime:
    """A plain `datetime` equal to ``value``: naive stays naive, an aware one keeps its UTC
    offset (a zone's name and rules are not kept: ISO 8601 has only the offset)."""
    try:
        offset = value.utcoffset()
    except Exception as exc:  # a tzinfo of the caller's that fails
        raise _NotJSON(
            f"holds the datetime {value!r:.80}, whose time zone fails to give its UTC offset "
            f"({exc}); give it a fixed offset (datetime.timezone)"
        ) from None
    if offset is None:
        tz = None
    elif not offset:
        tz = UTC
    else:
        tz = timezone(offset)
    return datetime(
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
        tz,
    )
