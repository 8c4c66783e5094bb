"""Importing directories written by LangChain's real FAISS store (``FAISS.save_local``).

Every document, id, metadata value and vector must come over exactly, and searches must
return the same documents in the same order (FAISS's L2 score is the square of ours, its
inner product the negation of ours). Hostile and damaged files: test_faiss_import_hostile.py.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

from tests.integration.faiss_dirs import (
    DIM,
    EMB,
    IDS,
    METADATAS,
    TEXTS,
    RunsCommand,
    assert_same_documents,
    compare_searches,
    hostile_dir,
    negated,
    ranked,
    saved,
    squared,
    vectors_of,
)
from tests.integration.moto_bucket import moto_bucket
from tests.integration.test_cli_commands import one_error_line, tree
from vectordb_manager import LocalVectorStore, S3VectorStore
from vectordb_manager.cli import main
from vectordb_manager.embeddings import HashingEmbeddings
from vectordb_manager.errors import (
    ConfigurationError,
    DimensionMismatchError,
    InvalidInputError,
    StorageError,
)

with warnings.catch_warnings():  # langchain-community announces its sunset on import
    warnings.simplefilter("ignore", DeprecationWarning)
    from langchain_community.docstore.in_memory import InMemoryDocstore
    from langchain_community.vectorstores import FAISS
    from langchain_community.vectorstores.utils import DistanceStrategy


# -- real FAISS directories, imported --------------------------------------------------------------
def test_from_texts_with_ids_and_metadata_to_disk_and_back(tmp_path: Path) -> None:
    fs = FAISS.from_texts(TEXTS, EMB, metadatas=METADATAS, ids=IDS)
    folder = saved(fs, tmp_path / "faiss")
    store = LocalVectorStore.from_langchain_faiss(folder, EMB, path=tmp_path / "store")
    assert store.stats()["distance"] == "l2" and store.stats()["index"] == "flat"
    assert store.get_ids() == IDS
    assert_same_documents(fs, store)
    compare_searches(fs, store, squared)
    # persisted: opened again, everything is there and checks out
    reopened = LocalVectorStore(EMB, tmp_path / "store", distance="l2")
    assert reopened.stats()["embedding_model"] == EMB.model_name
    reopened.verify()
    assert_same_documents(fs, reopened)
    compare_searches(fs, reopened, squared)


@pytest.mark.parametrize(
    ("strategy", "normalize", "distance", "to_ours"),
    [
        (DistanceStrategy.EUCLIDEAN_DISTANCE, False, "l2", squared),
        (DistanceStrategy.MAX_INNER_PRODUCT, False, "inner_product", negated),
        (DistanceStrategy.EUCLIDEAN_DISTANCE, True, "l2", squared),  # unit vectors already
    ],
    ids=["l2", "max_inner_product", "l2-normalized"],
)
def test_distance_strategies_in_memory(
    tmp_path: Path, strategy: DistanceStrategy, normalize: bool, distance: str, to_ours: Any
) -> None:
    docs = [Document(page_content=t, metadata=m) for t, m in zip(TEXTS, METADATAS, strict=True)]
    fs = FAISS.from_documents(docs, EMB, distance_strategy=strategy, normalize_L2=normalize)
    store = LocalVectorStore.from_langchain_faiss(saved(fs, tmp_path / "faiss"), EMB)
    assert store.path is None and store.stats()["distance"] == distance
    assert_same_documents(fs, store)  # the generated uuids are kept as ids
    compare_searches(fs, store, to_ours)


class Tripled(HashingEmbeddings):
    """Hashing embeddings three times as long: vectors not of unit length."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [[3 * x for x in v] for v in super().embed_documents(texts)]

    def embed_query(self, text: str) -> list[float]:
        return [3 * x for x in super().embed_query(text)]


def test_normalize_l2_store(tmp_path: Path) -> None:
    """FAISS normalised the vectors it stored and normalises each query; the store keeps the
    unit vectors and (distance="l2") searches with the query as the model gives it."""
    emb = Tripled()
    fs = FAISS.from_texts(TEXTS, emb, metadatas=METADATAS, ids=IDS, normalize_L2=True)
    folder = saved(fs, tmp_path / "faiss")
    store = LocalVectorStore.from_langchain_faiss(folder, emb)
    assert_same_documents(fs, store)
    assert all(abs(float(np.linalg.norm(v)) - 1) < 1e-6 for v in vectors_of(store).values())
    # |3q - v|^2 = 10 - 6 q.v and FAISS's |q - v|^2 = 2 - 2 q.v: the same order
    compare_searches(fs, store, lambda s: math.sqrt(4 + 3 * s))
    # cosine normalises the query too, as FAISS did: 1 - q.v = |q - v|^2 / 2
    cosine = LocalVectorStore.from_langchain_faiss(folder, emb, distance="cosine")
    compare_searches(fs, cosine, lambda s: s / 2)


def unit_length_faiss(strategy: DistanceStrategy, scale: float = 1.0) -> FAISS:
    vectors = np.asarray(EMB.embed_documents(TEXTS), dtype=np.float32) * scale
    return FAISS.from_embeddings(
        list(zip(TEXTS, vectors.tolist(), strict=True)),
        EMB,
        metadatas=METADATAS,
        ids=IDS,
        distance_strategy=strategy,
    )


@pytest.mark.parametrize(
    "strategy", [DistanceStrategy.EUCLIDEAN_DISTANCE, DistanceStrategy.MAX_INNER_PRODUCT]
)
def test_cosine_for_unit_length_vectors_ranks_alike(
    tmp_path: Path, strategy: DistanceStrategy
) -> None:
    fs = unit_length_faiss(strategy)
    store = LocalVectorStore.from_langchain_faiss(
        saved(fs, tmp_path / "faiss"), EMB, distance="cosine"
    )
    assert store.stats()["distance"] == "cosine"
    assert_same_documents(fs, store, exact_vectors=False)  # normalised again: within 1e-6
    # unit vectors: cosine distance = squared L2 / 2 = 1 - inner product
    l2 = strategy == DistanceStrategy.EUCLIDEAN_DISTANCE
    compare_searches(fs, store, (lambda s: s / 2) if l2 else (lambda s: 1 - s))


def test_another_distance_for_vectors_not_of_unit_length_is_refused(tmp_path: Path) -> None:
    folder = saved(
        unit_length_faiss(DistanceStrategy.EUCLIDEAN_DISTANCE, scale=3.0), tmp_path / "f"
    )
    for distance in ("cosine", "inner_product"):
        with pytest.raises(ConfigurationError, match=r"unit-length.*length 3.*distance='l2'"):
            LocalVectorStore.from_langchain_faiss(
                folder, EMB, path=tmp_path / "store", distance=distance
            )
    assert not (tmp_path / "store").exists()
    # with the index's own metric it imports, vectors exactly
    store = LocalVectorStore.from_langchain_faiss(folder, EMB, distance="l2")
    tripled = np.asarray(EMB.embed_query(TEXTS[0]), dtype=np.float32) * np.float32(3)
    assert np.array_equal(vectors_of(store)[IDS[0]], tripled)


@pytest.mark.slow
def test_real_model_store_searches_alike(tmp_path: Path, minilm: Embeddings) -> None:
    sentences = [
        "The capital of France is Paris.",
        "Berlin is the capital of Germany.",
        "Photosynthesis turns sunlight into chemical energy.",
        "Plants need water and light to grow.",
        "The stock market fell sharply on Monday.",
        "Investors worry about rising interest rates.",
        "A good night's sleep improves memory.",
        "Regular exercise strengthens the heart.",
        "Python is a popular programming language.",
        "Rust guarantees memory safety without a garbage collector.",
        "The Amazon is the largest rainforest on Earth.",
        "Glaciers are melting because of global warming.",
    ]
    metas = [{"i": i, "half": i >= 6} for i in range(len(sentences))]
    for strategy, to_ours in (
        (DistanceStrategy.EUCLIDEAN_DISTANCE, squared),
        (DistanceStrategy.MAX_INNER_PRODUCT, negated),
    ):
        fs = FAISS.from_texts(sentences, minilm, metadatas=metas, distance_strategy=strategy)
        folder = saved(fs, tmp_path / strategy.value)
        store = LocalVectorStore.from_langchain_faiss(
            folder, minilm, path=tmp_path / f"s-{strategy.value}"
        )
        assert store.stats()["embedding_model"] == "sentence-transformers/all-MiniLM-L6-v2"
        assert_same_documents(fs, store)
        queries = ["Which city is France's capital?", "how do plants make energy", "heart health"]
        compare_searches(fs, store, to_ours, queries, k=5)


def test_documents_deleted_before_saving_are_gone(tmp_path: Path) -> None:
    fs = FAISS.from_texts(TEXTS, EMB, metadatas=METADATAS, ids=IDS)
    fs.delete([IDS[0], IDS[5], IDS[11]])
    fs.add_texts(["a late arrival about cats"], ids=["late"])
    store = LocalVectorStore.from_langchain_faiss(saved(fs, tmp_path / "faiss"), EMB)
    assert len(store) == len(TEXTS) - 3 + 1
    assert store.get_by_ids([IDS[0], IDS[5], IDS[11]]) == []
    assert_same_documents(fs, store)
    compare_searches(fs, store, squared)


def test_custom_index_name(tmp_path: Path) -> None:
    fs = FAISS.from_texts(TEXTS, EMB, ids=IDS)
    folder = saved(fs, tmp_path / "faiss", index_name="knowledge")
    with pytest.raises(
        InvalidInputError, match=r"index\.faiss does not exist.*knowledge\.faiss: pass index_name"
    ):
        LocalVectorStore.from_langchain_faiss(folder, EMB, path=tmp_path / "store")
    assert not (tmp_path / "store").exists()
    store = LocalVectorStore.from_langchain_faiss(folder, EMB, index_name="knowledge")
    assert_same_documents(fs, store)


def test_hnsw_index(tmp_path: Path) -> None:
    fs = FAISS(EMB, faiss.IndexHNSWFlat(DIM, 16), InMemoryDocstore(), {})
    fs.add_texts(TEXTS * 3, [dict(m, copy=c) for c in range(3) for m in METADATAS])
    fs.index.hnsw.efSearch = 256  # exact on this little data, to compare orders
    store = LocalVectorStore.from_langchain_faiss(saved(fs, tmp_path / "faiss"), EMB)
    stats = store.stats()
    assert stats["index"] == "hnsw" and store.engine.params.hnsw_m == 16
    assert_same_documents(fs, store)
    compare_searches(fs, store, squared)


def test_ivf_index(tmp_path: Path) -> None:
    texts = [f"{t} {i}" for i in range(4) for t in TEXTS]
    quantizer = faiss.IndexFlatIP(DIM)
    ivf = faiss.IndexIVFFlat(quantizer, DIM, 4, faiss.METRIC_INNER_PRODUCT)
    ivf.train(np.asarray(EMB.embed_documents(texts), dtype=np.float32))
    ivf.nprobe = 4  # every list: exact, to compare orders
    fs = FAISS(
        EMB, ivf, InMemoryDocstore(), {}, distance_strategy=DistanceStrategy.MAX_INNER_PRODUCT
    )
    fs.add_texts(texts, [{"i": i} for i in range(len(texts))])
    store = LocalVectorStore.from_langchain_faiss(
        saved(fs, tmp_path / "faiss"), EMB, path=tmp_path / "s"
    )
    assert store.stats()["index"] == "ivf" and store.stats()["distance"] == "inner_product"
    assert store.engine.params.ivf_nlist == 4
    assert_same_documents(fs, store)
    compare_searches(fs, store, negated)
    # an index type can be chosen instead
    flat = LocalVectorStore.from_langchain_faiss(tmp_path / "faiss", EMB, index="flat")
    assert flat.stats()["index"] == "flat"
    compare_searches(fs, flat, negated)


def test_ivf_index_with_removed_vectors_is_refused(tmp_path: Path) -> None:
    quantizer = faiss.IndexFlatL2(DIM)
    ivf = faiss.IndexIVFFlat(quantizer, DIM, 2)
    ivf.train(np.asarray(EMB.embed_documents(TEXTS), dtype=np.float32))
    fs = FAISS(EMB, ivf, InMemoryDocstore(), {})
    fs.add_texts(TEXTS, ids=IDS)
    fs.delete([IDS[2]])  # IVF keeps the other ids; LangChain renumbers its map anyway
    folder = saved(fs, tmp_path / "faiss")
    with pytest.raises(InvalidInputError, match=r"IVF index's ids are not its positions"):
        LocalVectorStore.from_langchain_faiss(folder, EMB, path=tmp_path / "store")
    assert not (tmp_path / "store").exists()


def test_index_in_an_id_map(tmp_path: Path) -> None:
    index = faiss.IndexIDMap(faiss.IndexFlatL2(DIM))
    labels = np.arange(100, 100 + 3 * len(TEXTS), 3, dtype=np.int64)[::-1].copy()
    index.add_with_ids(np.asarray(EMB.embed_documents(TEXTS), dtype=np.float32), labels)
    docstore = InMemoryDocstore(
        {
            i: Document(page_content=t, metadata=m)
            for i, t, m in zip(IDS, TEXTS, METADATAS, strict=True)
        }
    )
    fs = FAISS(EMB, index, docstore, dict(zip(labels.tolist(), IDS, strict=True)))
    store = LocalVectorStore.from_langchain_faiss(saved(fs, tmp_path / "faiss"), EMB)
    assert store.get_ids() == IDS
    assert_same_documents(fs, store)
    compare_searches(fs, store, squared)


def test_quantized_index_is_refused(tmp_path: Path) -> None:
    sq = faiss.IndexScalarQuantizer(DIM, faiss.ScalarQuantizer.QT_8bit)
    sq.train(np.asarray(EMB.embed_documents(TEXTS), dtype=np.float32))
    fs = FAISS(EMB, sq, InMemoryDocstore(), {})
    fs.add_texts(TEXTS)
    with pytest.raises(
        InvalidInputError, match=r"IndexScalarQuantizer, whose vectors cannot be read back exactly"
    ):
        LocalVectorStore.from_langchain_faiss(
            saved(fs, tmp_path / "faiss"), EMB, path=tmp_path / "s"
        )
    assert not (tmp_path / "s").exists()


def test_importing_again_writes_nothing_and_an_existing_store_gains_the_documents(
    tmp_path: Path,
) -> None:
    target = tmp_path / "store"
    existing = LocalVectorStore(EMB, target, distance="l2")
    existing.add_texts(["already here"], ids=["old"])
    fs = FAISS.from_texts(TEXTS, EMB, metadatas=METADATAS, ids=IDS)
    folder = saved(fs, tmp_path / "faiss")
    store = LocalVectorStore.from_langchain_faiss(folder, EMB, path=target)
    version = store.stats()["version"]
    assert len(store) == len(TEXTS) + 1 and store.get_by_ids(["old"])
    again = LocalVectorStore.from_langchain_faiss(folder, EMB, path=target)
    assert again.stats()["version"] == version  # nothing changed, nothing committed
    # a store of another distance is refused before anything is written
    other = tmp_path / "cosine-store"
    LocalVectorStore(EMB, other).add_texts(["x"])
    before = tree(other)
    with pytest.raises(ConfigurationError, match="uses distance='cosine'"):
        LocalVectorStore.from_langchain_faiss(folder, EMB, path=other)
    assert tree(other) == before


def test_the_faiss_directory_itself_points_to_the_import(tmp_path: Path) -> None:
    folder = saved(FAISS.from_texts(TEXTS, EMB), tmp_path / "faiss")
    with pytest.raises(StorageError, match=r"from_langchain_faiss\(.*import-faiss"):
        LocalVectorStore(EMB, folder)
    with pytest.raises(StorageError, match="LangChain FAISS store"):
        LocalVectorStore.from_langchain_faiss(folder, EMB, path=folder)


def test_embedding_of_another_dimension_is_refused(tmp_path: Path) -> None:
    folder = saved(FAISS.from_texts(TEXTS, EMB), tmp_path / "faiss")
    with pytest.raises(DimensionMismatchError, match=f"{DIM}-dimensional vectors.*gives 64"):
        LocalVectorStore.from_langchain_faiss(folder, HashingEmbeddings(64), path=tmp_path / "s")
    assert not (tmp_path / "s").exists()


def test_a_faiss_store_emptied_before_saving(tmp_path: Path) -> None:
    fs = FAISS.from_texts(
        TEXTS[:2], EMB, ids=IDS[:2], distance_strategy=DistanceStrategy.MAX_INNER_PRODUCT
    )
    fs.delete(IDS[:2])
    store = LocalVectorStore.from_langchain_faiss(
        saved(fs, tmp_path / "faiss"), EMB, path=tmp_path / "s"
    )
    assert len(store) == 0 and store.stats()["distance"] == "inner_product"
    store.add_texts(["new"], ids=["n"])
    assert [d.id for d in store.similarity_search("new", k=1)] == ["n"]


# -- the command line ------------------------------------------------------------------------------
def test_command_line_import_then_search(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fs = FAISS.from_texts(TEXTS, EMB, metadatas=METADATAS, ids=IDS)
    folder = saved(fs, tmp_path / "faiss", index_name="kb")
    target = tmp_path / "store"
    base = ["--provider", "fake", "--path", str(target)]
    assert main([*base, "import-faiss", str(folder), "--index-name", "kb"]) == 0
    captured = capsys.readouterr()
    assert f"imported {len(TEXTS)} documents from {folder} into {target}" in captured.out
    assert "(distance=l2, index=flat)" in captured.out
    assert "import-faiss" in captured.err  # the progress bar
    assert_same_documents(fs, LocalVectorStore(EMB, target))  # opens with its own distance
    assert main([*base, "-q", "search", "cat in the garden", "-k", "3", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    theirs = ranked(fs, "cat in the garden", 3)
    assert [h["id"] for h in hits] == [i for i, _ in theirs]
    # the command prints relevance scores: 1 / (1 + distance) for l2
    relevance = [1 / (1 + math.sqrt(s)) for _, s in theirs]
    assert [h["score"] for h in hits] == pytest.approx(relevance, rel=1e-4)
    # a FAISS directory needing trust, and a refused distance, each one line
    metas = [{"score": np.float64(1.5)} for _ in TEXTS]
    risky = saved(FAISS.from_texts(TEXTS, EMB, metadatas=metas), tmp_path / "risky")
    other = tmp_path / "other"
    assert main([*base[:2], "-q", "--path", str(other), "import-faiss", str(risky)]) == 1
    assert "numpy" in one_error_line(capsys.readouterr().err)
    assert not other.exists()
    argv = [
        *base[:2],
        "-q",
        "--path",
        str(other),
        "import-faiss",
        str(risky),
        "--allow-dangerous-deserialization",
    ]
    assert main(argv) == 0
    assert (
        main(
            [
                *base[:2],
                "-q",
                "--path",
                str(tmp_path / "c"),
                "--distance",
                "cosine",
                "--index",
                "hnsw",
                "import-faiss",
                str(risky),
                "--allow-dangerous-deserialization",
            ]
        )
        == 0
    )
    manifest = json.loads(sorted((tmp_path / "c" / "manifests").iterdir())[-1].read_text())
    assert manifest["index"]["type"] == "hnsw" and manifest["distance"] == "cosine"


def test_command_line_import_into_s3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fs = FAISS.from_texts(TEXTS, EMB, metadatas=METADATAS, ids=IDS)
    folder = saved(fs, tmp_path / "faiss")
    s3 = [
        "--storage",
        "s3",
        "--bucket",
        "faiss-kb",
        "--prefix",
        "imported",
        "--region",
        "us-east-1",
    ]
    with moto_bucket(monkeypatch, "faiss-kb") as client:
        hostile = hostile_dir(tmp_path / "h", RunsCommand(tmp_path / "pwned"), 4)
        assert main(["--provider", "fake", "-q", *s3, "import-faiss", str(hostile)]) == 1
        assert "system" in one_error_line(capsys.readouterr().err)
        assert client.list_objects_v2(Bucket="faiss-kb")["KeyCount"] == 0
        assert main(["--provider", "fake", "-q", *s3, "import-faiss", str(folder)]) == 0
        assert "into s3://faiss-kb/imported/" in capsys.readouterr().out
        store = S3VectorStore(EMB, "faiss-kb", "imported", client=client, distance="l2")
        assert_same_documents(fs, store)
        compare_searches(fs, store, squared)
    assert not (tmp_path / "pwned").exists()


def test_a_large_import_takes_few_commits(tmp_path: Path) -> None:
    # 5,000 small vectors fit one commit's share (BATCH_BYTES): one commit after the creation,
    # so nothing is merged and rewritten; the commits of a 1,000-a-time import made the store
    # 3.5x the FAISS directory's size on disk while their files were kept for retention
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((5000, DIM)).astype(np.float32)
    texts = [f"text {i}" for i in range(5000)]
    fs = FAISS.from_embeddings(list(zip(texts, vectors.tolist(), strict=True)), EMB)
    store = LocalVectorStore.from_langchain_faiss(saved(fs, tmp_path / "faiss"), EMB,
                                                  path=tmp_path / "store")
    stats = store.stats()
    assert (stats["documents"], stats["version"], stats["segments"]) == (5000, 2, 1)
    assert_same_documents(fs, store)
