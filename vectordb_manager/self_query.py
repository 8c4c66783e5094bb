"""`VectorDBTranslator`: LangChain's self-query language, translated into our metadata filters.

LangChain's `SelfQueryRetriever` asks an LLM to turn a question such as "comedies from the
nineties rated above 8" into a `StructuredQuery`: a query text, a filter built of comparisons
(``eq``, ``gt``, ``contain``, ``like``...) joined by ``and``/``or``/``not``, and maybe a
limit. A translator turns that into the keyword arguments a store's search takes.
LangChain only knows translators for the stores it ships, so pass ours::

    from langchain_classic.retrievers.self_query.base import SelfQueryRetriever
    from vectordb_manager import LocalVectorStore, VectorDBTranslator

    retriever = SelfQueryRetriever.from_llm(
        llm, store, "Brief summary of a movie", metadata_field_info,
        structured_query_translator=VectorDBTranslator(),
    )

The translation, comparison by comparison (see ``engine/filters.py`` for what each operator
does):

=========================  ==========================================================
``eq ne gt gte lt lte``    ``{"attr": {"$eq": value}}`` and so on
``in nin``                 ``{"attr": {"$in": [values]}}`` (a single value becomes a list)
``contain``                ``{"attr": {"$contains": value}}``: a substring of a string, or
                           a member of a list
``like``                   ``{"attr": {"$like": pattern}}``: an SQL pattern (``%`` any run
                           of characters, ``_`` one character); a value without ``%`` is
                           looked for anywhere, as ``%value%``
``and or``                 ``{"$and": [...]}``, ``{"$or": [...]}``
``not``                    ``{"$not": filter}``; with several arguments, none may hold:
                           ``{"$not": {"$or": [...]}}``
=========================  ==========================================================

Dates: the query constructor writes a date as ``{"date": "2024-01-01", "type": "date"}``
and a date-time as ``{"datetime": "2024-01-01T09:30:00Z", "type": "datetime"}``. They become
`datetime.date` and `datetime.datetime` objects (a trailing ``Z`` or offset gives an aware
date-time, none a naive one), to compare with dates stored in metadata. Filters never compare
a date with a datetime, nor a naive datetime with an aware one, and the prompt tells the LLM to
write plain dates. So name the fields that hold datetimes, with their time zone (``None``:
naive): ``VectorDBTranslator(datetime_fields={"created_at": None, "seen": UTC})``; a date
compared with such a field means midnight at the start of that day in that zone, and a
date-time without an offset is taken in that zone. Stores that keep their dates as ISO 8601
strings (which compare correctly as strings) use ``VectorDBTranslator(dates="strings")``.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, Literal

from langchain_core.structured_query import (
    Comparator,
    Comparison,
    Operation,
    Operator,
    StructuredQuery,
    Visitor,
)
from typing_extensions import override

DateMode = Literal["objects", "strings"]

_FIELD_OPERATORS: dict[Comparator, str] = {
    Comparator.EQ: "$eq",
    Comparator.NE: "$ne",
    Comparator.GT: "$gt",
    Comparator.GTE: "$gte",
    Comparator.LT: "$lt",
    Comparator.LTE: "$lte",
    Comparator.IN: "$in",
    Comparator.NIN: "$nin",
    Comparator.CONTAIN: "$contains",
    Comparator.LIKE: "$like",
}
_LOGICAL_OPERATORS: dict[Operator, str] = {
    Operator.AND: "$and",
    Operator.OR: "$or",
    Operator.NOT: "$not",
}


class VectorDBTranslator(Visitor):
    """Translate a `StructuredQuery` into ``(query, {"filter": ..., "k": ...})`` for
    `LocalVectorStore` and `S3VectorStore` (every comparator and operator LangChain has).

    Args:
        dates: ``"objects"`` (the default) turns the query constructor's dates into
            `datetime.date`/`datetime.datetime`; ``"strings"`` keeps them as the ISO 8601
            strings the LLM wrote, for metadata that stores dates as strings.
        datetime_fields: the metadata fields holding `datetime.datetime` values, each with
            its time zone (``None``: naive datetimes). Dates compared with them become
            datetimes at midnight in that zone; date-times without an offset get that zone.

    Raises:
        ValueError: from the visit methods, for a comparator or operator outside
            ``allowed_comparators``/``allowed_operators``, a malformed date, or a ``like``
            whose value is not a string (`SelfQueryRetriever` expects `ValueError`).
    """

    allowed_comparators = tuple(_FIELD_OPERATORS)
    """Every LangChain comparator."""
    allowed_operators = tuple(_LOGICAL_OPERATORS)
    """Every LangChain logical operator."""

    def __init__(
        self,
        *,
        dates: DateMode = "objects",
        datetime_fields: Mapping[str, datetime.tzinfo | None] | None = None,
    ) -> None:
        if dates not in ("objects", "strings"):
            raise ValueError(f"dates={dates!r} must be 'objects' or 'strings'")
        fields = dict(datetime_fields or {})
        if fields and dates == "strings":
            raise ValueError("datetime_fields needs dates='objects'; strings are compared as given")
        for name, zone in fields.items():
            if not isinstance(name, str) or not (zone is None or isinstance(zone, datetime.tzinfo)):
                raise ValueError(
                    f"datetime_fields maps field names to a time zone (datetime.tzinfo) or None, "
                    f"got {name!r}: {zone!r}"
                )
        self.dates: DateMode = dates
        self.datetime_fields: dict[str, datetime.tzinfo | None] = fields

    @override
    def visit_operation(self, operation: Operation) -> dict[str, Any]:
        self._validate_func(operation.operator)
        if not operation.arguments:
            raise ValueError(f"{operation.operator.value}() needs at least one argument")
        args = [arg.accept(self) for arg in operation.arguments]
        if operation.operator is Operator.NOT:
            return {"$not": args[0] if len(args) == 1 else {"$or": args}}
        if len(args) == 1:
            result: dict[str, Any] = args[0]
            return result
        return {_LOGICAL_OPERATORS[operation.operator]: args}

    @override
    def visit_comparison(self, comparison: Comparison) -> dict[str, Any]:
        comparator = comparison.comparator
        self._validate_func(comparator)
        value = self._value(comparison.value, comparison.attribute)
        if comparator in (Comparator.IN, Comparator.NIN) and not isinstance(value, list):
            value = [value]
        elif comparator is Comparator.LIKE:
            if not isinstance(value, str):
                raise ValueError(
                    f"like({comparison.attribute!r}, {comparison.value!r}) needs a string pattern"
                )
            if "%" not in value:
                value = f"%{value}%"
        return {comparison.attribute: {_FIELD_OPERATORS[comparator]: value}}

    @override
    def visit_structured_query(
        self, structured_query: StructuredQuery
    ) -> tuple[str, dict[str, Any]]:
        kwargs: dict[str, Any] = {}
        if structured_query.filter is not None:
            kwargs["filter"] = structured_query.filter.accept(self)
        if structured_query.limit is not None:
            kwargs["k"] = structured_query.limit
        return structured_query.query, kwargs

    def _value(self, value: Any, attribute: str) -> Any:
        """A comparison's value with the query constructor's dates converted."""
        if isinstance(value, list):
            return [self._value(v, attribute) for v in value]
        if not isinstance(value, Mapping):
            return value
        kind = value.get("type")
        text = value.get(kind) if kind in ("date", "datetime") else None
        if not isinstance(text, str):
            return value
        if self.dates == "strings":
            return text
        moment = _parse_date(text) if kind == "date" else _parse_datetime(text)
        if attribute not in self.datetime_fields:
            return moment
        zone = self.datetime_fields[attribute]
        if not isinstance(moment, datetime.datetime):
            return datetime.datetime(moment.year, moment.month, moment.day, tzinfo=zone)
        return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment


def _parse_date(text: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date in the YYYY-MM-DD format") from None


def _parse_datetime(text: str) -> datetime.datetime:
    try:
        return datetime.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a date-time in the YYYY-MM-DDTHH:MM:SS[Z] format"
        ) from None
