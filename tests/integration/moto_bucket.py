"""A bucket in moto's in-process S3 (``mock_aws``) for tests that configure S3 by name, and the
boto3 clients of tests that use ``mock_aws`` themselves."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws


@contextlib.contextmanager
def moto_bucket(monkeypatch: pytest.MonkeyPatch, bucket: str) -> Iterator[Any]:
    """An empty ``bucket`` under ``mock_aws`` with dummy credentials in the environment (the
    standard chain the package's own clients use); yields a boto3 client for checking it."""
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = mocked_client()
        client.create_bucket(Bucket=bucket)
        yield client


def mocked_client() -> Any:
    """A boto3 S3 client in us-east-1 for use under ``mock_aws``, made by the kept session."""
    return _session().client("s3", region_name="us-east-1")


@functools.cache
def _session() -> Any:
    """The boto3 session that makes the clients, kept: a new one (``boto3.client`` under
    ``mock_aws`` makes one each time) loads botocore's service models again, ~0.15 s of CPU
    per client; a kept one makes a client in ~5 ms. Made after moto's import, its clients go
    through moto's stub whenever ``mock_aws`` is active; the credentials it takes from the
    environment when first used are dummies (moto's own or the tests')."""
    return boto3.session.Session()
