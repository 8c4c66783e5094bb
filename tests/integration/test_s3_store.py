"""S3VectorStore under moto's in-process mock: the standard suite, the format shared with local
stores, request economy, clear errors, odd ids, the segment cache and the factory."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.vectorstores import VectorStore
from langchain_tests.integration_tests import VectorStoreIntegrationTests

from tests.integration.moto_bucket import moto_bucket
from tests.s3_support import recorded_backoffs
from vectordb_manager import (
    LocalVectorStore,
    S3VectorStore,
    StorageError,
    VectorDBConfig,
    create_vector_store,
)
from vectordb_manager.embeddings import HashingEmbeddings

BUCKET = "vdbm-test"
EMB = HashingEmbeddings(64)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with moto_bucket(monkeypatch, BUCKET) as client:
        yield client


class TestS3Standard(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self, aws: Any) -> Iterator[VectorStore]:
        yield S3VectorStore(self.get_embeddings(), BUCKET, f"std/{uuid.uuid4().hex}", client=aws)


class TestS3StandardHNSW(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self, aws: Any) -> Iterator[VectorStore]:
        yield S3VectorStore(self.get_embeddings(), BUCKET, f"hnsw/{uuid.uuid4().hex}", client=aws, index="hnsw")


def keys(client: Any, prefix: str = "") -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", ()))


class Recorder:
    """Counts the HTTP requests a boto3 client sends, and the bytes it uploads."""

    def __init__(self, client: Any) -> None:
        self.requests: list[tuple[str, str, int]] = []
        client.meta.events.register("before-send.s3.*", self._record)

    def _record(self, request: Any, **_: Any) -> None:
        headers = request.headers
        size = int(headers.get("x-amz-decoded-content-length") or headers.get("Content-Length") or 0)
        self.requests.append((request.method, request.url, size))

    def reset(self) -> None:
        self.requests.clear()

    @property
    def uploaded(self) -> int:
        return sum(size for method, _, size in self.requests if method == "PUT")


def test_round_trip_and_verify(aws: Any) -> None:
    store = S3VectorStore(EMB, BUCKET, "docs", client=aws)
    store.add_texts(["red apples", "green pears"], [{"c": "red"}, {"c": "green"}], ids=["a", "p"])
    store.delete(["p"])
    again = S3VectorStore(EMB, BUCKET, "docs/", client=aws)
    assert [d.id for d in again.similarity_search("apples", k=5)] == ["a"]
    assert again.verify()["documents"] == 1
    stored = keys(aws)
    assert stored and all(k.startswith("docs/") for k in stored)


def test_local_store_copied_to_s3_opens_and_back(aws: Any, tmp_path: Path) -> None:
    local = LocalVectorStore(EMB, tmp_path / "local", index="hnsw")
    local.add_texts([f"text {i}" for i in range(300)], [{"n": i} for i in range(300)], ids=[str(i) for i in range(300)])
    local.delete([str(i) for i in range(0, 300, 7)])
    local.compact()
    local.add_texts(["after compaction"], ids=["late"])
    for path in (tmp_path / "local").rglob("*"):
        if path.is_file():
            aws.upload_file(str(path), BUCKET, "copied/" + path.relative_to(tmp_path / "local").as_posix())
    s3 = S3VectorStore(EMB, BUCKET, "copied", client=aws, index="hnsw")
    assert len(s3) == len(local)
    ids = sorted(local.engine.ids())
    assert s3.get_by_ids(ids) == local.get_by_ids(ids)
    s3.verify()
    s3.add_texts(["written on s3"], ids=["s3"])
    back = tmp_path / "back"
    for key in keys(aws, "copied/"):
        target = back / key[len("copied/") :]
        target.parent.mkdir(parents=True, exist_ok=True)
        aws.download_file(BUCKET, key, str(target))
    again = LocalVectorStore(EMB, back, index="hnsw")
    assert len(again) == len(local) + 1 and again.get_by_ids(["s3"])[0].page_content == "written on s3"
    again.verify()


def test_request_economy_for_500_documents(aws: Any) -> None:
    store = S3VectorStore(EMB, BUCKET, "economy", client=aws)
    rec = Recorder(aws)
    texts = [f"document number {i} with a few words" for i in range(500)]
    store.add_texts(texts, ids=[str(i) for i in range(500)])
    methods = [m for m, _, _ in rec.requests]
    assert len(rec.requests) <= 3, rec.requests  # LIST newer manifests, PUT segment, PUT manifest
    assert methods.count("PUT") == 2
    segment = [k for k in keys(aws, "economy/segments/")]
    assert len(segment) == 1
    seg_bytes = aws.head_object(Bucket=BUCKET, Key=segment[0])["ContentLength"]
    assert seg_bytes < rec.uploaded < seg_bytes + 20_000  # the segment plus a small manifest


def test_request_economy_for_10_into_5000(aws: Any) -> None:
    store = S3VectorStore(EMB, BUCKET, "economy10", client=aws)
    store.add_texts([f"document number {i}" for i in range(5000)], ids=[str(i) for i in range(5000)])
    store_bytes = sum(aws.head_object(Bucket=BUCKET, Key=k)["ContentLength"] for k in keys(aws, "economy10/segments/"))
    rec = Recorder(aws)
    store.add_texts([f"new document {i}" for i in range(10)], ids=[f"n{i}" for i in range(10)])
    assert len(rec.requests) <= 3, rec.requests
    assert rec.uploaded < store_bytes / 50, (rec.uploaded, store_bytes)


def test_open_costs_one_get_per_segment(aws: Any) -> None:
    store = S3VectorStore(EMB, BUCKET, "open", client=aws, compaction={"enabled": False})
    for i in range(5):
        store.add_texts([f"batch {i} text {j}" for j in range(20)])
    rec = Recorder(aws)
    S3VectorStore(EMB, BUCKET, "open", client=aws)
    gets = [u for m, u, _ in rec.requests if m == "GET" and "list-type" not in u]
    lists = [u for m, u, _ in rec.requests if m == "GET" and "list-type" in u]
    assert len(gets) == 1 + 5  # the newest manifest, then each segment once
    assert len(lists) == 1


def test_segment_cache_avoids_downloads(aws: Any, tmp_path: Path) -> None:
    S3VectorStore(EMB, BUCKET, "cached", client=aws).add_texts(["one", "two", "three"])
    first = S3VectorStore(EMB, BUCKET, "cached", client=aws, cache_dir=tmp_path / "cache")
    assert list((tmp_path / "cache").rglob("*.seg"))
    rec = Recorder(aws)
    second = S3VectorStore(EMB, BUCKET, "cached", client=aws, cache_dir=tmp_path / "cache")
    assert [u for m, u, _ in rec.requests if m == "GET" and "/manifests/" in u]  # recorded
    assert not [u for m, u, _ in rec.requests if m == "GET" and "/segments/" in u]
    assert second.get_by_ids(first.engine.ids()) == first.get_by_ids(first.engine.ids())
    # a damaged cached copy fails the manifest's checksum and is fetched again
    cached = next((tmp_path / "cache").rglob("*.seg"))
    original = cached.read_bytes()
    cached.write_bytes(b"x" + original[1:])
    healed = S3VectorStore(EMB, BUCKET, "cached", client=aws, cache_dir=tmp_path / "cache")
    assert healed.get_by_ids(first.engine.ids()) == first.get_by_ids(first.engine.ids())
    assert cached.read_bytes() == original


def test_no_such_bucket_is_clear_and_fast(aws: Any) -> None:
    rec = Recorder(aws)
    with recorded_backoffs() as waits, pytest.raises(
        StorageError, match=r"s3://no-such-bucket-here/.*NoSuchBucket.*create the bucket"
    ):
        S3VectorStore(EMB, "no-such-bucket-here", client=aws)
    # fast: one request, not retried, and nothing waited for a retry
    assert [method for method, _, _ in rec.requests] == ["GET"]
    assert waits == []


def test_unreachable_endpoint_is_clear_and_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    import urllib3.util.connection

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    connects: list[tuple[str, int]] = []
    real_connect = urllib3.util.connection.create_connection

    def connect(address: tuple[str, int], *args: Any, **kwargs: Any) -> Any:
        connects.append(address)
        return real_connect(address, *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", connect)
    with recorded_backoffs() as waits, pytest.raises(StorageError, match="s3://some-bucket/"):
        S3VectorStore(EMB, "some-bucket", endpoint_url="http://127.0.0.1:9", max_attempts=2, region_name="us-east-1")
    # fast: max_attempts=2 is two connection attempts in all (the store adds no retries of
    # its own), with one wait between them, which botocore bounds by a second
    assert connects == [("127.0.0.1", 9)] * 2
    assert len(waits) == 1 and 0 <= waits[0] <= 1


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"bucket": "A_B"}, "not a valid S3 bucket name"),
    ({"bucket": "ok-bucket", "prefix": "a/../b"}, "invalid S3 prefix"),
    ({"bucket": "ok-bucket", "sse": "rot13"}, "sse='rot13'"),
    ({"bucket": "ok-bucket", "kms_key_id": "k"}, "needs sse='aws:kms'"),
    ({"bucket": "ok-bucket", "retry_mode": "legacy"}, "retry_mode='legacy'"),
    ({"bucket": "ok-bucket", "profile_name": "no-such-profile-xyz"}, "cannot configure the S3 client"),
])
def test_bad_arguments(kwargs: dict[str, Any], message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    with pytest.raises((StorageError, ValueError), match=message):
        S3VectorStore(EMB, **kwargs)


def test_odd_ids_never_leave_the_prefix(aws: Any) -> None:
    odd = ["a/b", "../../escape", "..", "/abs", "ünï", "line\nbreak", "x" * 1000]
    store = S3VectorStore(EMB, BUCKET, "odd", client=aws)
    store.add_texts([f"text {i}" for i in range(len(odd))], ids=odd)
    store.delete(odd[:2])
    stored = keys(aws)
    assert stored and all(k.startswith(("odd/manifests/", "odd/segments/")) for k in stored)
    assert sorted(S3VectorStore(EMB, BUCKET, "odd", client=aws).engine.ids()) == sorted(odd[2:])


def test_server_side_encryption_is_requested(aws: Any) -> None:
    store = S3VectorStore(EMB, BUCKET, "sse", client=aws, sse="AES256")
    store.add_texts(["secret text"])
    stored = keys(aws, "sse/")
    assert {k.split("/")[1] for k in stored} == {"manifests", "segments"}
    for key in stored:
        assert aws.head_object(Bucket=BUCKET, Key=key).get("ServerSideEncryption") == "AES256"


def test_factory_builds_s3_store(aws: Any) -> None:
    config = VectorDBConfig(storage_type="s3", s3_bucket=BUCKET, s3_prefix="factory", aws_region="us-east-1",
                            embedding_provider="fake")
    store = create_vector_store(config, EMB)
    assert isinstance(store, S3VectorStore)
    store.add_texts(["via the factory"], ids=["f"])
    assert keys(aws, "factory/manifests/")
    assert "s3://vdbm-test/factory/" in repr(store)


def test_named_profile_and_explicit_keys_never_logged(
    aws: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "SECRETvalue" + uuid.uuid4().hex
    config = tmp_path / "aws_config"
    config.write_text(
        f"[profile vdbm]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = {secret}\n"
        "region = us-east-1\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    caplog.set_level("DEBUG")
    by_profile = S3VectorStore(EMB, BUCKET, "profile", profile_name="vdbm")
    by_profile.add_texts(["through a profile"], ids=["p"])
    by_keys = S3VectorStore(EMB, BUCKET, "profile", aws_access_key_id="AKIDEXPLICIT",
                            aws_secret_access_key=secret, region_name="us-east-1")
    assert [d.id for d in by_keys.get_by_ids(["p"])] == ["p"]
    creds = by_keys.client._request_signer._credentials
    assert creds.secret_key == secret  # the explicit keys were really used
    assert any("vectordb_manager" in r.name for r in caplog.records)  # DEBUG logging happened
    assert secret not in caplog.text


def test_large_segments_use_managed_transfer(aws: Any) -> None:
    from boto3.s3.transfer import TransferConfig

    config = TransferConfig(multipart_threshold=1 << 20, multipart_chunksize=5 << 20, max_concurrency=4)
    emb = HashingEmbeddings(384)
    store = S3VectorStore(emb, BUCKET, "large", client=aws, transfer_config=config)
    rec = Recorder(aws)
    store.add_texts([f"document {i} about topic {i % 97}" for i in range(4000)], ids=[str(i) for i in range(4000)])
    uploads = [u for m, u, _ in rec.requests if m == "POST" and "uploads" in u]
    parts = [u for m, u, _ in rec.requests if m == "PUT" and "partNumber=" in u]
    assert uploads and len(parts) >= 2  # a multipart upload of the ~6 MB segment
    events: list[Any] = []
    aws.meta.events.register("before-send.s3.GetObject", lambda request, **_: events.append(request.headers.get("Range")))
    again = S3VectorStore(emb, BUCKET, "large", client=aws, transfer_config=config)
    assert sum(1 for r in events if r) >= 2  # ranged GETs in parallel
    assert len(again) == 4000 and again.get_by_ids(["3999"])[0].page_content == "document 3999 about topic 22"
    again.verify()


def test_vacuum_aborts_unfinished_multipart_uploads(aws: Any) -> None:
    """An upload interrupted mid-way leaves parts that cost storage: vacuum aborts them once
    they are old enough, and never another prefix's."""
    store = S3VectorStore(EMB, BUCKET, "mp", client=aws)
    store.add_texts(["kept"], ids=["k"])
    ours = aws.create_multipart_upload(Bucket=BUCKET, Key="mp/segments/interrupted.seg")
    aws.upload_part(Bucket=BUCKET, Key="mp/segments/interrupted.seg", UploadId=ours["UploadId"],
                    PartNumber=1, Body=b"x" * 1024)
    other = aws.create_multipart_upload(Bucket=BUCKET, Key="elsewhere/big.bin")
    # (moto reports every upload as started in 2010, so "too recent" cannot be shown here)
    assert store.vacuum(older_than=0) == ["segments/interrupted.seg"]
    left = [u["Key"] for u in aws.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])]
    assert left == ["elsewhere/big.bin"]
    aws.abort_multipart_upload(Bucket=BUCKET, Key="elsewhere/big.bin", UploadId=other["UploadId"])
    assert store.get_by_ids(["k"])[0].page_content == "kept"


def test_the_shared_loader_parses_the_models_as_botocore_does(aws: Any) -> None:
    """The clients' data loader parses botocore's model files with orjson: S3's service
    model, its endpoint rules and the partitions come out equal to what botocore's own loader
    makes of them, and a client built on it works."""
    import os

    from botocore import BOTOCORE_ROOT
    from botocore.loaders import JSONFileLoader, create_loader

    from vectordb_manager.storage import s3 as s3_module
    from vectordb_manager.storage.s3 import build_s3_client

    client = build_s3_client(region_name="us-east-1")
    (loader,) = s3_module._LOADERS
    ours, plain = loader.file_loader, JSONFileLoader()
    assert type(ours).__name__ == "OrjsonFileLoader"
    version = create_loader().determine_latest_version("s3", "service-2")
    data = os.path.join(BOTOCORE_ROOT, "data")
    for name in ("s3/" + version + "/service-2", "s3/" + version + "/endpoint-rule-set-1",
                 "partitions", "endpoints", "sdk-default-configuration"):  # fmt: skip
        path = os.path.join(data, name)
        assert plain.exists(path), path  # (.json or .json.gz: botocore ships both kinds)
        assert ours.load_file(path) == plain.load_file(path), name
    assert ours.load_file("/no/such/file") is None
    client.head_bucket(Bucket=BUCKET)


def test_clients_share_parsed_models_and_keep_their_own_settings(aws: Any) -> None:
    """`build_s3_client` makes each client from a session of its own (credentials, region,
    retries) that shares the service models parsed for the first (one data loader, its search
    path not growing), also when clients are built from many threads at once; they work."""
    from concurrent.futures import ThreadPoolExecutor

    from vectordb_manager.storage import s3 as s3_module
    from vectordb_manager.storage.s3 import build_s3_client

    a = build_s3_client(region_name="us-east-1", aws_access_key_id="AKIDA",
                        aws_secret_access_key="sa", max_attempts=3)  # fmt: skip
    b = build_s3_client(region_name="eu-west-1", aws_access_key_id="AKIDB",
                        aws_secret_access_key="sb", max_attempts=7)  # fmt: skip
    assert a._request_signer._credentials.access_key == "AKIDA"
    assert b._request_signer._credentials.access_key == "AKIDB"
    assert (a.meta.region_name, b.meta.region_name) == ("us-east-1", "eu-west-1")
    assert a.meta.config.retries["total_max_attempts"] == 3
    assert b.meta.config.retries["total_max_attempts"] == 7
    with ThreadPoolExecutor(8) as pool:
        built = list(pool.map(lambda _: build_s3_client(region_name="us-east-1"), range(8)))
    (loader,) = s3_module._LOADERS
    assert all(c._loader is loader for c in [a, b, *built])
    assert len(loader.search_paths) == len(set(loader.search_paths))
    for client in built:
        client.head_bucket(Bucket=BUCKET)
    S3VectorStore(EMB, BUCKET, "shared", region_name="us-east-1").add_texts(["x"], ids=["x"])
    again = S3VectorStore(EMB, BUCKET, "shared", region_name="us-east-1")
    assert [d.id for d in again.get_by_ids(["x"])] == ["x"]
