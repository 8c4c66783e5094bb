"""The error codes' one table (`vectordb_manager.wire_errors`): every package exception the
server answers with a code comes back out of the client as the same class."""

from __future__ import annotations

import httpx
import pytest

from vectordb_manager import errors
from vectordb_manager.client.transport import ERRORS, error_from
from vectordb_manager.server.errors import ERROR_CODES, PACKAGE_ERRORS, classify
from vectordb_manager.wire_errors import CODES, CollectionExistsError, ServiceError

PACKAGE_CLASSES = [getattr(errors, name) for name in errors.__all__]

# the classes that share their parent's code, so the client raises the parent (or, for the
# base class, the client's own VectorDBError subclass for an unexpected failure)
COLLAPSED: dict[type[Exception], type[Exception]] = {
    errors.UnsafePickleError: errors.InvalidInputError,
    errors.VectorDBError: ServiceError,
}


def through_the_wire(exc: BaseException) -> Exception:
    """What the client raises for the answer the server gives to ``exc``."""
    code, message = classify(exc)
    answer = httpx.Response(ERROR_CODES[code], json={"code": code, "message": message})
    return error_from(answer)


@pytest.mark.parametrize("kind", PACKAGE_CLASSES, ids=lambda k: k.__name__)
def test_every_package_error_round_trips(kind: type[Exception]) -> None:
    raised = through_the_wire(kind("the store says no"))
    assert type(raised) is COLLAPSED.get(kind, kind)
    assert isinstance(raised, errors.VectorDBError)
    assert "the store says no" in str(raised)
    code, _ = classify(kind("x"))
    assert (raised.status, raised.code) == (ERROR_CODES[code], code)  # type: ignore[attr-defined]


def test_langchain_value_errors_come_back_as_invalid_input() -> None:
    raised = through_the_wire(ValueError("k must be positive"))
    assert type(raised) is errors.InvalidInputError and isinstance(raised, ValueError)


def test_the_sides_share_one_table() -> None:
    names = [c.name for c in CODES]
    assert len(set(names)) == len(names)
    assert set(ERROR_CODES) == set(ERRORS) == set(names)
    assert all(400 <= c.status < 600 for c in CODES)
    # most specific first: no exception is shadowed by a base class matched before it
    kinds = [kind for kind, _, _ in PACKAGE_ERRORS]
    for i, kind in enumerate(kinds):
        assert not any(issubclass(kind, earlier) for earlier in kinds[:i]), kind
    assert type(through_the_wire(KeyError("a bug"))) is ServiceError  # internal_error
    conflict = error_from(
        httpx.Response(409, json={"code": "collection_exists", "message": "taken"})
    )
    assert isinstance(conflict, CollectionExistsError) and conflict.status == 409


def test_an_unknown_code_or_body_is_a_service_error() -> None:
    odd = error_from(httpx.Response(418, json={"code": "teapot", "message": "short and stout"}))
    assert type(odd) is ServiceError and (odd.status, odd.code) == (418, "teapot")
    html = error_from(httpx.Response(502, text="<html>bad gateway</html>"))
    assert type(html) is ServiceError and "502" in str(html)
