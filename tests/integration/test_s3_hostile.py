"""S3 against hostile buckets and caches, and debug logs that never show credentials.

A bucket may hold objects of another size than their manifest says, or a manifest far too
large; the local segment cache may hold links and FIFOs. S3 runs in moto (``mock_aws`` where
requests only need counting; moto's real HTTP server where the log of real requests is read).
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import urllib3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from moto import mock_aws

from tests.integration.moto_bucket import mocked_client
from tests.s3_support import moto_server, s3_client
from vectordb_manager import IntegrityError, S3VectorStore
from vectordb_manager.embeddings import HashingEmbeddings
from vectordb_manager.storage import base
from vectordb_manager.storage.redact import (
    DEBUG_LOGGERS,
    RedactingFilter,
    configure_debug_logging,
    redact,
)
from vectordb_manager.storage.s3 import S3Storage

BUCKET = "vdbm-hostile"
EMB = HashingEmbeddings(16)


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A client of moto's in-process S3 with one bucket; ``s3.sent`` lists (method, url) of the
    requests sent, ``s3.bodies`` the body of each GetObject answer (a `CountingBody`)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        client = mocked_client()
        client.create_bucket(Bucket=BUCKET)
        client.sent, client.bodies = [], []
        client.meta.events.register(
            "before-send.s3.*", lambda request, **_: client.sent.append((request.method, request.url))
        )

        def count(parsed: dict[str, Any], http_response: Any, **_: Any) -> None:
            if "Body" in parsed:
                parsed["Body"] = CountingBody(parsed["Body"], http_response.url)
                client.bodies.append(parsed["Body"])

        client.meta.events.register("after-call.s3.GetObject", count)
        yield client


class CountingBody:
    """A GetObject answer's body that counts the bytes read from it."""

    def __init__(self, body: Any, url: str) -> None:
        self.body = body
        self.url = url
        self.read_bytes = 0

    def read(self, amt: int | None = None) -> bytes:
        data: bytes = self.body.read(amt)
        self.read_bytes += len(data)
        return data

    def close(self) -> None:
        self.body.close()


def segment_gets(client: Any) -> list[str]:
    return [url for method, url in client.sent if method == "GET" and "/segments/" in url]


def make_store(client: Any, cache: Path | None = None) -> S3VectorStore:
    store = S3VectorStore(EMB, BUCKET, "p", client=client, cache_dir=cache)
    store.add_texts(["alpha", "beta"], ids=["a", "b"])
    return store


def reopen(client: Any, cache: Path | None = None) -> list[str]:
    store = S3VectorStore(EMB, BUCKET, "p", client=client, cache_dir=cache)
    return sorted(d.id or "" for d in store.get_by_ids(["a", "b"]))


# -- the segment cache -------------------------------------------------------------------------


def test_the_cache_never_writes_through_a_linked_folder(s3: Any, tmp_path: Path) -> None:
    make_store(s3)
    cache, outside = tmp_path / "cache", tmp_path / "outside"
    cache.mkdir()
    outside.mkdir()
    (cache / "segments").symlink_to(outside, target_is_directory=True)
    assert reopen(s3, cache) == ["a", "b"]
    assert reopen(s3, cache) == ["a", "b"]
    assert not list(outside.iterdir())
    assert len(segment_gets(s3)) == 2  # nothing could be cached: each open downloaded


def test_a_linked_cached_copy_is_replaced_not_read(s3: Any, tmp_path: Path) -> None:
    make_store(s3)
    cache = tmp_path / "cache"
    assert reopen(s3, cache) == ["a", "b"]
    cached = next((cache / "segments").iterdir())
    outside = tmp_path / "outside.seg"
    shutil.move(cached, outside)  # the same bytes, reached through a link
    cached.symlink_to(outside)
    s3.sent.clear()
    assert reopen(s3, cache) == ["a", "b"]
    assert len(segment_gets(s3)) == 1
    assert not cached.is_symlink() and cached.read_bytes() == outside.read_bytes()


@pytest.mark.timeout(60)  # opening a FIFO in the cache used to block forever
def test_a_fifo_in_the_cache_does_not_block(s3: Any, tmp_path: Path) -> None:
    make_store(s3)
    cache = tmp_path / "cache"
    assert reopen(s3, cache) == ["a", "b"]
    cached = next((cache / "segments").iterdir())
    original = cached.read_bytes()
    cached.unlink()
    os.mkfifo(cached)
    assert reopen(s3, cache) == ["a", "b"]
    assert cached.read_bytes() == original  # downloaded again in its place


def test_the_cache_keeps_what_is_opened_with_a_size(s3: Any, tmp_path: Path) -> None:
    """Sized opens are of immutable objects, whatever their folder; unsized reads never use
    or fill the cache."""
    storage = S3Storage(s3, BUCKET, "p", cache_dir=tmp_path / "cache")
    s3.put_object(Bucket=BUCKET, Key="p/elsewhere/x.bin", Body=b"immutable")
    s3.put_object(Bucket=BUCKET, Key="p/manifests/m.json", Body=b"version 1")
    with storage.open("elsewhere/x.bin", 9) as stream:
        assert stream.read() == b"immutable"
    assert storage.read("manifests/m.json") == b"version 1"
    assert (tmp_path / "cache" / "elsewhere" / "x.bin").read_bytes() == b"immutable"
    assert not (tmp_path / "cache" / "manifests").exists()
    s3.sent.clear()
    assert storage.read("elsewhere/x.bin", 9) == b"immutable"
    assert s3.sent == []  # served from the cache
    storage.evict("elsewhere/x.bin")
    assert not (tmp_path / "cache" / "elsewhere" / "x.bin").exists()


# -- lengths checked before bodies are read ---------------------------------------------------


def test_a_replaced_segment_is_refused_by_its_length(s3: Any) -> None:
    make_store(s3)
    key = next(k for k in (o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]) if "/segments/" in k)
    size = s3.head_object(Bucket=BUCKET, Key=key)["ContentLength"]
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"\0" * (size + 100))
    s3.bodies.clear()
    with pytest.raises(
        IntegrityError,
        match=rf"s3://{BUCKET}/{key} is {size + 100} bytes but the manifest says {size}; the file "
        r"is truncated or replaced\. Restore it from a backup\.",
    ):
        reopen(s3)
    read = [b.read_bytes for b in s3.bodies if "/segments/" in b.url]
    assert read and set(read) == {0}  # refused unread (the engine tries a second time)


def test_an_oversized_manifest_is_refused(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The bound itself, made small so the test need not upload 64 MiB (the local tests use
    the real one); the check is the same code."""
    make_store(s3)
    monkeypatch.setattr(base, "MAX_MANIFEST_BYTES", 4096, raising=False)
    key = max(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="p/manifests/")["Contents"])
    s3.put_object(Bucket=BUCKET, Key=key, Body=b" " * 4097)
    s3.bodies.clear()
    with pytest.raises(IntegrityError, match=rf"{key} is 4097 bytes, more than the 4096 a manifest"):
        reopen(s3)
    assert [body.read_bytes for body in s3.bodies] == [0]  # refused unread


def test_a_managed_download_checks_the_length_before_any_get(s3: Any) -> None:
    config = TransferConfig(multipart_threshold=1024, multipart_chunksize=1024)
    storage = S3Storage(s3, BUCKET, "p", transfer_config=config)
    data = os.urandom(4096)
    s3.put_object(Bucket=BUCKET, Key="p/segments/big.seg", Body=data)
    s3.sent.clear()
    with storage.open("segments/big.seg", 4096) as stream:
        assert stream.read() == data
    methods = [method for method, _ in s3.sent]
    assert methods.count("HEAD") == 1 and methods.count("GET") == 4  # one HEAD, ranged GETs
    s3.sent.clear()
    with pytest.raises(IntegrityError, match=r"big\.seg is 4096 bytes but the manifest says 4000"):
        storage.open("segments/big.seg", 4000)
    assert [method for method, _ in s3.sent] == ["HEAD"]


def test_write_if_absent_reads_back_no_more_than_its_own_length(s3: Any) -> None:
    storage = S3Storage(s3, BUCKET, "p")
    s3.put_object(Bucket=BUCKET, Key="p/manifests/m.json", Body=b"x" * 10_000)
    s3.sent.clear()
    s3.bodies.clear()
    assert storage.write_if_absent("manifests/m.json", b"ours") is False
    assert [method for method, _ in s3.sent] == ["PUT", "GET"]
    assert [body.read_bytes for body in s3.bodies] == [0]  # another length: not ours, left unread
    assert s3.get_object(Bucket=BUCKET, Key="p/manifests/m.json")["Body"].read() == b"x" * 10_000
    assert storage.write_if_absent("manifests/n.json", b"ours") is True
    assert storage.write_if_absent("manifests/n.json", b"ours") is True  # our lost answer
    assert storage.write_if_absent("manifests/n.json", b"yours") is False


# -- debug logging without credentials ---------------------------------------------------------


@pytest.fixture
def debug_log() -> Iterator[io.StringIO]:
    """`configure_debug_logging` into a buffer, undone afterwards."""
    loggers = [logging.getLogger(name) for name in DEBUG_LOGGERS]
    levels = [lg.level for lg in loggers]
    out = io.StringIO()
    handler = configure_debug_logging(stream=out)
    yield out
    for lg, level in zip(loggers, levels, strict=True):
        lg.removeHandler(handler)
        lg.setLevel(level)


def test_debug_logging_never_shows_credentials(debug_log: io.StringIO) -> None:
    secret_core, token_core = uuid.uuid4().hex, uuid.uuid4().hex  # found however encoded
    secret, token = f"Sec/{secret_core}+Key", f"IQoJb3JpZ2luX2Vj/{token_core}+AbC=="
    signatures: list[str] = []

    def keep_signature(request: Any, **_: Any) -> None:
        signatures.append(request.headers["Authorization"].decode().rpartition("Signature=")[2])

    with moto_server() as url:
        keys = {"access_key_id": "AKIAHOSTILETEST12345", "secret_access_key": secret}
        client = s3_client(url, session_token=token, **keys)
        client.meta.events.register("before-send.s3.*", keep_signature)
        client.create_bucket(Bucket=BUCKET)
        client.put_object(Bucket=BUCKET, Key="doc.txt", Body=b"hello")
        assert client.get_object(Bucket=BUCKET, Key="doc.txt")["Body"].read() == b"hello"
        assert [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET)["Contents"]] == ["doc.txt"]
        v4 = boto3.session.Session(aws_session_token=token, **{f"aws_{k}": v for k, v in keys.items()}).client(
            "s3", endpoint_url=url, region_name="us-east-1",
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )
        presigned = [  # SigV2 (botocore's default for S3 presigning) and SigV4 query strings
            c.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "doc.txt"})
            for c in (client, v4)
        ]
        with urllib3.PoolManager() as http:
            assert [http.request("GET", u).data for u in presigned] == [b"hello", b"hello"]
    text = debug_log.getvalue()
    query_signatures = [u.split("Signature=")[1].partition("&")[0] for u in presigned]
    assert len(signatures) == 4 and all(len(s) == 64 for s in signatures)
    for hidden in (secret_core, token_core, *query_signatures, *signatures, "AKIAHOSTILETEST12345"):
        assert hidden not in text
    # the requests are there, with their secrets masked (so the test cannot pass by logging nothing)
    assert f'"PUT /{BUCKET}/doc.txt HTTP/1.1" 200' in text
    assert f'"GET /{BUCKET}/doc.txt?AWSAccessKeyId=***&Signature=***&x-amz-security-token=***' in text
    assert f'"GET /{BUCKET}/doc.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=***' in text
    assert "X-Amz-Security-Token=***" in text and "X-Amz-Signature=***" in text
    assert "'X-Amz-Security-Token': b'***'" in text and "Signature=***" in text
    assert "x-amz-security-token:***" in text  # in the canonical request botocore logs


@pytest.mark.parametrize(
    ("message", "args", "shown"),
    [
        (  # an STS answer, as botocore.parsers logs it
            "Response body:\n%r",
            (b"<Credentials><AccessKeyId>ASIAX</AccessKeyId><SecretAccessKey>s3cr3t/k+y</SecretAccessKey>"
             b"<SessionToken>t0k3n/=</SessionToken></Credentials>",),
            "<SecretAccessKey>***</SecretAccessKey><SessionToken>***</SessionToken>",
        ),
        (  # the instance metadata service's JSON
            "Response body: %s",
            ('{"AccessKeyId": "ASIAX", "SecretAccessKey": "s3cr3t/k+y", "Token": "t0k3n/="}',),
            '"SecretAccessKey": "***", "Token": "***"',
        ),
        (  # headers as a dict argument
            "Response headers: %(h)s",
            ({"h": {"x-amz-security-token": "t0k3n/=", "x-amz-request-id": "R1"}},),
            "'x-amz-security-token': '***', 'x-amz-request-id': 'R1'",
        ),
        (
            "Signature:\n%s",
            ("0123456789abcdef" * 4,),
            "Signature:\n***",
        ),
        (
            "kwargs %s",
            ("aws_secret_access_key='s3cr3t/k+y', aws_session_token='t0k3n/='",),
            "aws_secret_access_key='***', aws_session_token='***'",
        ),
    ],
)
def test_the_filter_redacts_what_botocore_logs(message: str, args: Any, shown: str) -> None:
    record = logging.LogRecord("botocore.parsers", logging.DEBUG, __file__, 1, message, args, None)
    assert RedactingFilter().filter(record)
    text = record.getMessage()
    assert shown in text
    assert "s3cr3t" not in text and "t0k3n" not in text and "0123456789abcdef" not in text
    assert redact("nothing secret here, ContinuationToken-free") == "nothing secret here, ContinuationToken-free"
