"""`VectorDBTranslator` alone: each comparator and operator of LangChain's structured query
becomes the filter our stores take, dates become date objects, the limit becomes ``k``."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest
from langchain_classic.chains.query_constructor.base import StructuredQueryOutputParser
from langchain_core.structured_query import (
    Comparator,
    Comparison,
    FilterDirective,
    Operation,
    Operator,
    StructuredQuery,
)

from vectordb_manager import VectorDBTranslator
from vectordb_manager.engine.filters import compile_where


def translate(directive: FilterDirective | None, limit: int | None = None) -> dict[str, Any]:
    query, kwargs = VectorDBTranslator().visit_structured_query(
        StructuredQuery(query="space adventure", filter=directive, limit=limit)
    )
    assert query == "space adventure"
    return kwargs


def comparison(comparator: Comparator, attribute: str, value: Any) -> Comparison:
    return Comparison(comparator=comparator, attribute=attribute, value=value)


def parse(filter_text: str) -> FilterDirective | None:
    """The filter as LangChain's own query-constructor parser reads the LLM's answer."""
    answer = json.dumps({"query": "x", "filter": filter_text})
    return StructuredQueryOutputParser.from_components().parse(answer).filter


@pytest.mark.parametrize(
    ("comparator", "value", "expected"),
    [
        (Comparator.EQ, "comedy", {"$eq": "comedy"}),
        (Comparator.NE, "comedy", {"$ne": "comedy"}),
        (Comparator.GT, 8.5, {"$gt": 8.5}),
        (Comparator.GTE, 1990, {"$gte": 1990}),
        (Comparator.LT, 2000, {"$lt": 2000}),
        (Comparator.LTE, 7, {"$lte": 7}),
        (Comparator.IN, ["comedy", "drama"], {"$in": ["comedy", "drama"]}),
        (Comparator.NIN, ["comedy", "drama"], {"$nin": ["comedy", "drama"]}),
        (Comparator.CONTAIN, "robot", {"$contains": "robot"}),
        (Comparator.LIKE, "Star%", {"$like": "Star%"}),
    ],
)
def test_each_comparator_becomes_its_field_operator(
    comparator: Comparator, value: Any, expected: dict[str, Any]
) -> None:
    assert translate(comparison(comparator, "field", value)) == {"filter": {"field": expected}}


def test_every_langchain_comparator_and_operator_is_allowed() -> None:
    translator = VectorDBTranslator()
    assert set(translator.allowed_comparators) == set(Comparator)
    assert set(translator.allowed_operators) == set(Operator)


def test_in_and_nin_with_one_value_take_it_as_a_list() -> None:
    assert translate(comparison(Comparator.IN, "genre", "comedy")) == {
        "filter": {"genre": {"$in": ["comedy"]}}
    }
    assert translate(comparison(Comparator.NIN, "year", 1999)) == {
        "filter": {"year": {"$nin": [1999]}}
    }


def test_like_without_a_percent_sign_matches_anywhere() -> None:
    assert translate(comparison(Comparator.LIKE, "title", "dino")) == {
        "filter": {"title": {"$like": "%dino%"}}
    }
    assert translate(comparison(Comparator.LIKE, "title", "%saur")) == {
        "filter": {"title": {"$like": "%saur"}}
    }


def test_like_needs_a_string() -> None:
    with pytest.raises(ValueError, match="string pattern"):
        translate(comparison(Comparator.LIKE, "year", 1990))


def test_and_and_or_take_their_arguments_as_a_list() -> None:
    a = comparison(Comparator.GT, "year", 1990)
    b = comparison(Comparator.EQ, "genre", "comedy")
    for operator, key in ((Operator.AND, "$and"), (Operator.OR, "$or")):
        assert translate(Operation(operator=operator, arguments=[a, b])) == {
            "filter": {key: [{"year": {"$gt": 1990}}, {"genre": {"$eq": "comedy"}}]}
        }


def test_an_operation_of_one_argument_is_that_argument() -> None:
    a = comparison(Comparator.GT, "year", 1990)
    for operator in (Operator.AND, Operator.OR):
        assert translate(Operation(operator=operator, arguments=[a])) == {
            "filter": {"year": {"$gt": 1990}}
        }


def test_not_of_one_filter_negates_it() -> None:
    a = comparison(Comparator.EQ, "genre", "drama")
    assert translate(Operation(operator=Operator.NOT, arguments=[a])) == {
        "filter": {"$not": {"genre": {"$eq": "drama"}}}
    }


def test_not_of_several_filters_means_none_of_them_holds() -> None:
    a = comparison(Comparator.EQ, "genre", "drama")
    b = comparison(Comparator.LT, "rating", 5)
    assert translate(Operation(operator=Operator.NOT, arguments=[a, b])) == {
        "filter": {"$not": {"$or": [{"genre": {"$eq": "drama"}}, {"rating": {"$lt": 5}}]}}
    }


def test_an_operation_without_arguments_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one argument"):
        translate(Operation(operator=Operator.AND, arguments=[]))


def test_nested_operations_translate_all_the_way_down() -> None:
    directive = parse(
        'and(or(eq("director", "Greta Gerwig"), eq("director", "Hayao Miyazaki")), '
        'not(lt("rating", 7)), gte("year", 1990))'
    )
    assert translate(directive) == {
        "filter": {
            "$and": [
                {
                    "$or": [
                        {"director": {"$eq": "Greta Gerwig"}},
                        {"director": {"$eq": "Hayao Miyazaki"}},
                    ]
                },
                {"$not": {"rating": {"$lt": 7}}},
                {"year": {"$gte": 1990}},
            ]
        }
    }


def test_dates_from_the_query_constructor_become_date_objects() -> None:
    directive = parse('and(gte("released", "2001-09-01"), lt("released", "2002-01-01"))')
    assert translate(directive) == {
        "filter": {
            "$and": [
                {"released": {"$gte": datetime.date(2001, 9, 1)}},
                {"released": {"$lt": datetime.date(2002, 1, 1)}},
            ]
        }
    }


def test_date_times_become_datetime_objects_aware_when_the_text_says_so() -> None:
    utc = parse('gt("seen", "2024-03-01T09:30:00Z")')
    naive = parse('gt("seen", "2024-03-01T09:30:00")')
    assert translate(utc) == {
        "filter": {"seen": {"$gt": datetime.datetime(2024, 3, 1, 9, 30, tzinfo=datetime.UTC)}}
    }
    assert translate(naive) == {"filter": {"seen": {"$gt": datetime.datetime(2024, 3, 1, 9, 30)}}}


def test_dates_in_a_list_are_converted_too() -> None:
    value = [{"date": "2024-01-01", "type": "date"}, {"date": "2024-02-01", "type": "date"}]
    assert translate(comparison(Comparator.IN, "day", value)) == {
        "filter": {"day": {"$in": [datetime.date(2024, 1, 1), datetime.date(2024, 2, 1)]}}
    }


def test_dates_can_stay_iso_strings() -> None:
    translator = VectorDBTranslator(dates="strings")
    directive = parse('and(gte("released", "2001-09-01"), lt("seen", "2024-03-01T09:30:00Z"))')
    _, kwargs = translator.visit_structured_query(
        StructuredQuery(query="x", filter=directive, limit=None)
    )
    assert kwargs == {
        "filter": {
            "$and": [
                {"released": {"$gte": "2001-09-01"}},
                {"seen": {"$lt": "2024-03-01T09:30:00Z"}},
            ]
        }
    }


def test_a_malformed_date_is_refused_with_the_format_it_needs() -> None:
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        translate(comparison(Comparator.GT, "day", {"date": "2024-13-45", "type": "date"}))
    with pytest.raises(ValueError, match="YYYY-MM-DDTHH:MM:SS"):
        translate(
            comparison(Comparator.GT, "at", {"datetime": "2024-01-01T25:00:00", "type": "datetime"})
        )


def test_an_unknown_dates_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="'objects' or 'strings'"):
        VectorDBTranslator(dates="epoch")  # type: ignore[arg-type]


def test_a_dict_that_is_not_a_date_is_left_alone() -> None:
    value = {"date": "2024-01-01"}  # no "type": not the query constructor's date
    assert translate(comparison(Comparator.EQ, "x", value)) == {
        "filter": {"x": {"$eq": {"date": "2024-01-01"}}}
    }


def test_limit_becomes_k_and_no_filter_means_no_filter() -> None:
    assert translate(None) == {}
    assert translate(None, limit=3) == {"k": 3}
    assert translate(comparison(Comparator.EQ, "genre", "comedy"), limit=2) == {
        "filter": {"genre": {"$eq": "comedy"}},
        "k": 2,
    }


def test_a_translator_restricted_by_a_subclass_refuses_the_rest() -> None:
    class EqualityOnly(VectorDBTranslator):
        allowed_comparators = (Comparator.EQ,)
        allowed_operators = (Operator.AND,)

    with pytest.raises(ValueError, match="disallowed comparator"):
        EqualityOnly().visit_comparison(comparison(Comparator.GT, "year", 1))
    a = comparison(Comparator.EQ, "year", 1)
    with pytest.raises(ValueError, match="disallowed operator"):
        EqualityOnly().visit_operation(Operation(operator=Operator.OR, arguments=[a, a]))


SAMPLE = {
    "genre": "comedy",
    "title": "Star Wars",
    "year": 1995,
    "rating": 9.0,
    "released": datetime.date(2001, 9, 1),
    "seen": datetime.datetime(2024, 3, 1, 8, 0, tzinfo=datetime.UTC),
}


@pytest.mark.parametrize(
    ("filter_text", "passes"),
    [
        ('eq("genre", "comedy")', True),
        ('and(gte("year", 1990), lte("year", 1999))', True),
        ('or(in("genre", ["drama"]), nin("year", [1995]), ne("rating", 9.0))', False),
        ('gt("rating", 8.5)', True),
        ('contain("genre", "com")', True),
        ('like("title", "Star%")', True),
        ('like("title", "%Trek%")', False),
        ('not(eq("genre", "drama"))', True),
        ('not(eq("genre", "drama"), lt("rating", 5))', True),
        ('not(eq("genre", "drama"), eq("genre", "comedy"))', False),
        ('gte("released", "2001-09-01")', True),
        ('lt("released", "2001-09-01")', False),
        ('lt("seen", "2024-03-01T09:30:00Z")', True),
    ],
)
def test_every_translation_is_a_filter_our_stores_accept_and_means_the_same(
    filter_text: str, passes: bool
) -> None:
    compiled = compile_where(translate(parse(filter_text))["filter"])
    assert compiled is not None
    assert compiled.predicate(SAMPLE) is passes


def test_dates_for_datetime_fields_become_midnight_in_the_fields_zone() -> None:
    cet = datetime.timezone(datetime.timedelta(hours=1))
    translator = VectorDBTranslator(datetime_fields={"created_at": None, "seen": cet})
    directive = parse(
        'and(gte("created_at", "2024-03-01"), lt("seen", "2024-03-02"), gt("day", "2024-03-03"))'
    )
    _, kwargs = translator.visit_structured_query(StructuredQuery("x", directive))
    assert kwargs["filter"]["$and"] == [
        {"created_at": {"$gte": datetime.datetime(2024, 3, 1)}},
        {"seen": {"$lt": datetime.datetime(2024, 3, 2, tzinfo=cet)}},
        {"day": {"$gt": datetime.date(2024, 3, 3)}},  # not a datetime field: a date
    ]
    value = [{"date": "2024-01-01", "type": "date"}]
    _, kwargs = translator.visit_structured_query(
        StructuredQuery("x", comparison(Comparator.IN, "seen", value))
    )
    assert kwargs["filter"] == {"seen": {"$in": [datetime.datetime(2024, 1, 1, tzinfo=cet)]}}


def test_date_times_without_offset_take_the_fields_zone_and_offsets_are_kept() -> None:
    translator = VectorDBTranslator(datetime_fields={"seen": datetime.UTC, "at": None})
    directive = parse(
        'and(gt("seen", "2024-03-01T09:30:00"), gt("seen", "2024-03-01T09:30:00Z"), '
        'gt("at", "2024-03-01T09:30:00"))'
    )
    _, kwargs = translator.visit_structured_query(StructuredQuery("x", directive))
    aware = datetime.datetime(2024, 3, 1, 9, 30, tzinfo=datetime.UTC)
    assert kwargs["filter"]["$and"] == [
        {"seen": {"$gt": aware}},
        {"seen": {"$gt": aware}},
        {"at": {"$gt": datetime.datetime(2024, 3, 1, 9, 30)}},
    ]


def test_datetime_fields_are_checked() -> None:
    with pytest.raises(ValueError, match="needs dates='objects'"):
        VectorDBTranslator(dates="strings", datetime_fields={"seen": None})
    with pytest.raises(ValueError, match="time zone"):
        VectorDBTranslator(datetime_fields={"seen": "UTC"})  # type: ignore[dict-item]
