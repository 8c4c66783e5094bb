"""Tests for tests/s3_support.py: moto server, fault-injecting proxy and the boto3 client helper."""

from __future__ import annotations

import contextlib
import http.client
import io
import random
import socket
import threading
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
)

from tests.s3_support import (
    FAULT_DENY,
    FAULT_DROP,
    FAULT_DROP_AFTER_PUT,
    FAULT_ERROR_AFTER_PUT,
    FAULT_SLOWDOWN,
    FaultProxy,
    fast_retries,
    moto_server,
    recorded_backoffs,
    s3_client,
)

MB = 1024 * 1024


@pytest.fixture(autouse=True)
def _offline_aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Dummy credentials, no profiles or config files, no HTTP proxies: never real AWS."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    for name in (
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "http_proxy",
        "https_proxy",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture
def proxy(moto_url: str) -> Iterator[FaultProxy]:
    with FaultProxy(moto_url, seed=7) as p:
        yield p


@pytest.fixture
def direct(moto_url: str) -> Any:
    """A client straight to moto, bypassing the proxy."""
    return s3_client(moto_url, max_attempts=1)


@pytest.fixture
def bucket(proxy: FaultProxy, direct: Any) -> str:
    """A fresh bucket, created straight on moto; the proxy's log is empty."""
    name = f"bkt-{uuid.uuid4().hex[:12]}"
    direct.create_bucket(Bucket=name)
    proxy.reset_log()
    return name


def _read_direct(direct: Any, bucket: str, key: str) -> bytes:
    return direct.get_object(Bucket=bucket, Key=key)["Body"].read()  # type: ignore[no-any-return]


def _exists_direct(direct: Any, bucket: str, key: str) -> bool:
    try:
        direct.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "404"
        return False
    return True


def _raw(
    proxy: FaultProxy, method: str, path: str, body: bytes | None = None
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
    try:
        conn.request(method, path, body=body)
        response = conn.getresponse()
        data = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data
    finally:
        conn.close()


# --- moto server --------------------------------------------------------------------------------


def test_moto_server_binds_localhost_and_stops() -> None:
    # reset=False: moto's state is process-wide and the module's server is still in use
    with moto_server(reset=False) as url:
        assert url.startswith("http://127.0.0.1:")
        port = int(url.rsplit(":", 1)[1])
        assert s3_client(url).list_buckets()["ResponseMetadata"]["HTTPStatusCode"] == 200
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


# --- transparent proxying ---------------------------------------------------------------------


def test_round_trip_through_proxy_is_exact(proxy: FaultProxy, direct: Any) -> None:
    client = s3_client(proxy.url)
    name = f"bkt-{uuid.uuid4().hex[:12]}"
    proxy.faults_enabled = False
    client.create_bucket(Bucket=name)
    proxy.faults_enabled = True  # all rates are 0: nothing changes

    big = random.Random(1).randbytes(20 * MB)
    small = b"\x00hello\r\n\xff" * 3
    client.put_object(Bucket=name, Key="dir/big.bin", Body=big)
    client.put_object(Bucket=name, Key="dir/small.bin", Body=small, Metadata={"a": "b"})
    client.put_object(Bucket=name, Key="empty", Body=b"")
    client.put_object(Bucket=name, Key="file-like", Body=io.BytesIO(small))

    assert client.get_object(Bucket=name, Key="dir/big.bin")["Body"].read() == big
    assert _read_direct(direct, name, "dir/big.bin") == big
    got = client.get_object(Bucket=name, Key="dir/small.bin")
    assert got["Body"].read() == small
    assert got["Metadata"] == {"a": "b"}
    assert client.get_object(Bucket=name, Key="empty")["Body"].read() == b""
    assert _read_direct(direct, name, "file-like") == small
    ranged = client.get_object(Bucket=name, Key="dir/big.bin", Range="bytes=100-199")
    assert ranged["Body"].read() == big[100:200]
    head = client.head_object(Bucket=name, Key="dir/big.bin")
    assert head["ContentLength"] == 20 * MB

    listed = client.list_objects_v2(Bucket=name, Prefix="dir/")
    assert sorted(o["Key"] for o in listed["Contents"]) == ["dir/big.bin", "dir/small.bin"]
    assert {o["Key"]: o["Size"] for o in listed["Contents"]}["dir/big.bin"] == 20 * MB

    client.delete_object(Bucket=name, Key="dir/big.bin")
    client.delete_objects(Bucket=name, Delete={"Objects": [{"Key": "dir/small.bin"}]})
    assert client.list_objects_v2(Bucket=name, Prefix="dir/")["KeyCount"] == 0
    with pytest.raises(ClientError) as info:
        client.get_object(Bucket=name, Key="dir/big.bin")
    assert info.value.response["Error"]["Code"] == "NoSuchKey"

    # the log saw every request exactly once, with the real statuses and body sizes
    log = proxy.records()
    assert [r.method for r in log] == [
        "PUT", "PUT", "PUT", "PUT", "PUT", "GET", "GET", "GET", "GET", "HEAD", "GET", "DELETE",
        "POST", "GET", "GET",
    ]  # fmt: skip
    assert all(r.fault is None and r.status == r.upstream_status for r in log)
    assert log[1].path == f"/{name}/dir/big.bin" and log[1].body_bytes == 20 * MB
    assert log[2].body_bytes == len(small) and log[3].body_bytes == 0
    assert log[-1].status == 404 and log[-4].status == 204
    assert log[8].status == 206  # the ranged GET
    assert proxy.count() == 15
    assert proxy.count("put") == 5 and proxy.count("GET", status=200) == 5
    assert proxy.count(path_prefix=f"/{name}/dir/") == 8
    assert proxy.faults() == {}
    # keep-alive: one client connection for all of it
    assert proxy.connections_accepted == 1
    proxy.reset_log()
    assert proxy.log == [] and proxy.count() == 0


def test_chunked_request_body_is_forwarded_decoded(
    proxy: FaultProxy, bucket: str, direct: Any
) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
    try:
        conn.putrequest("PUT", f"/{bucket}/chunked")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        for part in (b"abc", b"\r\n0\r\n", b"x" * 70000, b""):
            conn.send(b"%x\r\n%s\r\n" % (len(part), part))
        response = conn.getresponse()
        response.read()
    finally:
        conn.close()
    assert response.status == 200
    assert _read_direct(direct, bucket, "chunked") == b"abc\r\n0\r\n" + b"x" * 70000
    assert proxy.records()[0].body_bytes == 3 + 5 + 70000


def test_conditional_writes_reach_moto(proxy: FaultProxy, bucket: str, direct: Any) -> None:
    client = s3_client(proxy.url)
    first = client.put_object(Bucket=bucket, Key="k", Body=b"one", IfNoneMatch="*")
    with pytest.raises(ClientError) as info:
        client.put_object(Bucket=bucket, Key="k", Body=b"two", IfNoneMatch="*")
    assert info.value.response["Error"]["Code"] == "PreconditionFailed"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert _read_direct(direct, bucket, "k") == b"one"

    with pytest.raises(ClientError) as info:
        client.put_object(Bucket=bucket, Key="k", Body=b"three", IfMatch='"0123456789abcdef"')
    assert info.value.response["Error"]["Code"] == "PreconditionFailed"
    client.put_object(Bucket=bucket, Key="k", Body=b"four", IfMatch=first["ETag"])
    assert _read_direct(direct, bucket, "k") == b"four"
    # 412 is not retried: one request each
    assert [r.status for r in proxy.records()] == [200, 412, 412, 200]


# --- faults -------------------------------------------------------------------------------------


def test_slowdown_is_retried_by_botocore(moto_url: str, direct: Any) -> None:
    with FaultProxy(moto_url, seed=3, slowdown_rate=0.5) as proxy, fast_retries(0.01):
        client = s3_client(proxy.url, max_attempts=10)
        name = f"bkt-{uuid.uuid4().hex[:12]}"
        proxy.faults_enabled = False
        client.create_bucket(Bucket=name)
        proxy.faults_enabled = True
        for i in range(30):
            client.put_object(Bucket=name, Key=f"k{i}", Body=f"v{i}".encode())
        slowdowns = proxy.count(fault=FAULT_SLOWDOWN)
        assert slowdowns > 0
        assert proxy.count("PUT", status=503) == slowdowns
        assert proxy.count("PUT", status=200) == 31  # CreateBucket + 30 puts
        assert proxy.count() == 31 + slowdowns
        # a 503 is answered without forwarding
        slowed = [r for r in proxy.log if r.fault == FAULT_SLOWDOWN]
        assert len(slowed) == slowdowns and all(r.upstream_status is None for r in slowed)
    assert [_read_direct(direct, name, f"k{i}") for i in range(30)] == [
        f"v{i}".encode() for i in range(30)
    ]


def test_error_responses_are_s3_xml(proxy: FaultProxy, bucket: str) -> None:
    proxy.slowdown_rate = 1.0
    status, headers, body = _raw(proxy, "GET", f"/{bucket}/k")
    assert status == 503
    assert headers["content-type"] == "application/xml"
    assert int(headers["content-length"]) == len(body)
    root = ET.fromstring(body)
    assert root.tag == "Error"
    assert root.findtext("Code") == "SlowDown"
    assert root.findtext("Message") == "Please reduce your request rate."

    proxy.deny_buckets.add(bucket)
    status, headers, body = _raw(proxy, "PUT", f"/{bucket}/k", b"data")
    assert status == 403
    assert ET.fromstring(body).findtext("Code") == "AccessDenied"
    status, headers, body = _raw(proxy, "HEAD", f"/{bucket}/k")
    assert (status, body) == (403, b"")
    assert [r.fault for r in proxy.records()] == [FAULT_SLOWDOWN, FAULT_DENY, FAULT_DENY]


def test_error_after_put_applies_the_write(proxy: FaultProxy, bucket: str, direct: Any) -> None:
    proxy.error_after_put_rate = 1.0
    client = s3_client(proxy.url, max_attempts=1)
    with pytest.raises(ClientError) as info:
        client.put_object(Bucket=bucket, Key="k", Body=b"payload")
    assert info.value.response["Error"]["Code"] == "InternalError"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert _read_direct(direct, bucket, "k") == b"payload"  # the write happened
    # only PUTs are affected
    assert client.get_object(Bucket=bucket, Key="k")["Body"].read() == b"payload"
    log = proxy.records()
    assert [(r.method, r.status, r.fault, r.upstream_status) for r in log] == [
        ("PUT", 500, FAULT_ERROR_AFTER_PUT, 200),
        ("GET", 200, None, 200),
    ]


def test_error_after_put_retried_then_conditional_put_fails(
    proxy: FaultProxy, bucket: str, direct: Any
) -> None:
    # The ambiguous failure: botocore retries the 500, and the retry of a create-only PUT
    # meets the object its own first attempt wrote.
    proxy.error_after_put_rate = 1.0
    client = s3_client(proxy.url, max_attempts=2)
    with fast_retries(0.01), pytest.raises(ClientError) as info:
        client.put_object(Bucket=bucket, Key="k", Body=b"mine", IfNoneMatch="*")
    # the second attempt was forwarded too (moto answered 412), but the client got 500 again
    assert [r.upstream_status for r in proxy.records()] == [200, 412]
    assert info.value.response["Error"]["Code"] == "InternalError"
    proxy.error_after_put_rate = 0.0
    with pytest.raises(ClientError) as info:
        client.put_object(Bucket=bucket, Key="k", Body=b"mine", IfNoneMatch="*")
    assert info.value.response["Error"]["Code"] == "PreconditionFailed"
    assert _read_direct(direct, bucket, "k") == b"mine"


def test_drop_before_forwarding(proxy: FaultProxy, bucket: str, direct: Any) -> None:
    proxy.drop_rate = 1.0
    client = s3_client(proxy.url, max_attempts=1)
    with pytest.raises(ConnectionClosedError):
        client.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert not _exists_direct(direct, bucket, "k")
    assert [(r.status, r.fault, r.upstream_status) for r in proxy.records()] == [
        (None, FAULT_DROP, None)
    ]
    proxy.reset_log()
    with fast_retries(0.01), pytest.raises(BotoCoreError):
        s3_client(proxy.url, max_attempts=3).get_object(Bucket=bucket, Key="k")
    assert proxy.count("GET", fault=FAULT_DROP) == 3  # retried, each attempt dropped


def test_drop_after_put_applies_the_write(proxy: FaultProxy, bucket: str, direct: Any) -> None:
    proxy.drop_after_put_rate = 1.0
    client = s3_client(proxy.url, max_attempts=1)
    with pytest.raises(ConnectionClosedError):
        client.put_object(Bucket=bucket, Key="k", Body=b"written")
    assert _read_direct(direct, bucket, "k") == b"written"
    assert [(r.status, r.fault, r.upstream_status) for r in proxy.records()] == [
        (None, FAULT_DROP_AFTER_PUT, 200)
    ]


def test_deny_buckets_is_not_retried(proxy: FaultProxy, bucket: str, direct: Any) -> None:
    other = f"bkt-{uuid.uuid4().hex[:12]}"
    direct.create_bucket(Bucket=other)
    proxy.deny_buckets = {bucket}
    proxy.faults_enabled = False  # denial does not depend on faults_enabled
    client = s3_client(proxy.url, max_attempts=10)
    with recorded_backoffs() as waits, pytest.raises(ClientError) as info:
        client.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert waits == []  # no retry, so nothing waited for one
    assert info.value.response["Error"]["Code"] == "AccessDenied"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(ClientError) as info:
        client.head_object(Bucket=bucket, Key="k")
    assert info.value.response["Error"]["Code"] == "403"
    assert not _exists_direct(direct, bucket, "k")
    client.put_object(Bucket=other, Key="k", Body=b"ok")  # other buckets pass
    assert [(r.method, r.status, r.fault) for r in proxy.records()] == [
        ("PUT", 403, FAULT_DENY),
        ("HEAD", 403, FAULT_DENY),
        ("PUT", 200, None),
    ]


def test_faults_disabled_and_seed_reproducible(moto_url: str, bucket: str) -> None:
    def faults(seed: int, enabled_after: int = 0) -> list[str | None]:
        with FaultProxy(moto_url, seed=seed, slowdown_rate=0.5, drop_rate=0.1) as p:
            for i in range(40):
                p.faults_enabled = i >= enabled_after
                with contextlib.suppress(ConnectionError):  # a drop: RemoteDisconnected
                    _raw(p, "GET", f"/{bucket}/missing")
            return [r.fault for r in p.records()]

    first = faults(11)
    assert first == faults(11)
    assert first != faults(12)
    assert FAULT_DROP in first and FAULT_SLOWDOWN in first and None in first
    # disabled requests consume no randomness: the faulty phase is the same sequence again
    delayed = faults(11, enabled_after=10)
    assert delayed[:10] == [None] * 10
    assert delayed[10:] == first[:30]


def test_rates_are_validated(moto_url: str) -> None:
    with pytest.raises(ValueError):
        FaultProxy(moto_url, slowdown_rate=1.5)
    with pytest.raises(ValueError):
        FaultProxy(moto_url, drop_rate=0.6, slowdown_rate=0.6)
    with pytest.raises(ValueError):
        FaultProxy("https://example.com")


# an idle keep-alive connection left open would keep its thread for 120 s (the handler's
# timeout): the join below would fail this test's timeout instead
@pytest.mark.timeout(60)
def test_proxy_binds_localhost_and_stop_closes_connections(moto_url: str, bucket: str) -> None:
    before = set(threading.enumerate())
    proxy = FaultProxy(moto_url).start()
    assert proxy.url == f"http://127.0.0.1:{proxy.port}"
    assert proxy._server is not None and proxy._server.server_address[0] == "127.0.0.1"
    port = proxy.port
    client = s3_client(proxy.url, max_attempts=1)
    client.list_objects_v2(Bucket=bucket)  # leaves a keep-alive connection open
    proxy.stop()
    proxy.stop()  # idempotent
    # the open keep-alive connection was closed too: nothing answers any more
    with pytest.raises(EndpointConnectionError):
        client.list_objects_v2(Bucket=bucket)
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
    for thread in set(threading.enumerate()) - before:  # the connection's, if still ending
        thread.join()  # it ends because its connection was closed (see the timeout above)
    with pytest.raises(RuntimeError):
        _ = proxy.url
