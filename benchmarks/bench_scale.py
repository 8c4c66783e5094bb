"""Performance at scale: what `bench_store.py` does not measure, in one run.

    .venv/bin/python benchmarks/bench_scale.py --n 100000
    .venv/bin/python benchmarks/bench_scale.py --n 1000000 --queries 100 --hnsw-1m

Data as in `bench_store.py` (its generator: clustered synthetic unit vectors x 384), but with
metadata ``{"i": i, "half": i % 2, "bucket": i % 100 == 7}`` so that ``{"half": 0}`` passes
50% of the documents and ``{"bucket": True}`` passes 1%.

Systems: ours = `LocalVectorStore(emb, dir, distance="cosine")`; peer = LangChain's FAISS
(IndexFlatIP, ``save_local`` to persist); mem = langchain_core's `InMemoryVectorStore`
(brute-force numpy over Python lists; skipped above ``--inmem-max`` documents, since it keeps
every vector as a list of Python floats, ~12 GB at 1M); raw = faiss ``IndexFlatIP``.

Sections:
  A  unfiltered search p50, all four systems (mem on fewer queries: it takes seconds each).
  B  filtered search at 50% and 1% selectivity: fill rate, p50, ours filtered / unfiltered.
  C  adding ``--add-n`` documents in batches of 1,000, durable after each batch: ours =
     ``add_embeddings`` per batch into a store with a path; peer = ``add_embeddings`` +
     ``save_local`` per batch. The peer stops after ``--peer-budget`` seconds and the rest is
     extrapolated from a linear fit of its per-batch cost (marked "extrapolated").
  D  persist 100 more documents (median of 5) into the N store and into the ``--add-n`` store
     of section C: the issue's target is the same cost at both sizes.
  E  open: ours reopened in-process (median of 3) and in a fresh process; the fresh process's
     peak RSS (open + 1 query) for ours, peer and raw, via `bench_store.run_child`.
  H  (``--hnsw-1m`` / ``--hnsw``) ours with ``index="hnsw"`` at N: build, then p50 and
     recall@10 vs exact for efSearch 64/128/256 (reopened with ``ef_search=``).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_store import (
    DIM,
    CpuWatch,
    Hits,
    K,
    Matrix,
    PrecomputedEmbeddings,
    Row,
    Searcher,
    _stats_text,
    doc_hits,
    exact_top_k,
    fmt_mb,
    fmt_ratio,
    fmt_s,
    machine_info,
    make_dataset,
    make_texts,
    measure_interleaved,
    pct,
    ratio,
    recall,
    run_child,
    timed,
    verdict,
    wait_quiet,
)

SMALL_BATCH = 1_000
BUILD_BATCH = 10_000
UPDATE_ROUNDS = 5
UPDATE_DOCS = 100
TARGET_FILTER_VS_UNFILTERED = 1.5
TARGET_BATCHED_VS_PEER = 0.6
TARGET_OPEN_S = 5.0
EF_SEARCHES = (64, 128, 256)
FILTERS: tuple[tuple[str, dict[str, Any], Callable[[int], bool]], ...] = (
    ("50%", {"half": 0}, lambda i: i % 2 == 0),
    ("1%", {"bucket": True}, lambda i: i % 100 == 7),
)


def metadata(i: int) -> dict[str, Any]:
    return {"i": i, "half": i % 2, "bucket": i % 100 == 7}


def flush(msg: str) -> None:
    print(msg)
    sys.stdout.flush()


def filled(results: list[Hits], want: dict[str, Any]) -> float:
    """Share of queries answered with K hits that all pass the filter."""
    ok = sum(
        1 for hits in results
        if len(hits) == K and all(all(m.get(f) == v for f, v in want.items()) for _, m in hits)
    )
    return ok / len(results)


def print_table(title: str, rows: list[Row]) -> None:
    print(f"\n### {title}\n")
    header = ("#", "measure", "ours", "peer (LC FAISS)", "raw faiss / other", "ours/peer",
              "ours/raw", "target")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for r in rows:
        cells = (r.section, r.measure, r.ours, r.peer, r.raw, fmt_ratio(r.vs_peer),
                 fmt_ratio(r.vs_raw), r.target)
        print("| " + " | ".join(cells) + " |")


def extrapolate(per_batch: list[float], total_batches: int) -> float:
    """Total time of ``total_batches`` batches from the first ones' times (linear per batch)."""
    done = len(per_batch)
    if done >= total_batches:
        return sum(per_batch)
    x = np.arange(done, dtype=np.float64)
    tail = max(2, done // 2)  # fit the later half: start-up costs distort the first batches
    slope, icept = np.polyfit(x[-tail:], np.asarray(per_batch[-tail:]), 1)
    rest = np.arange(done, total_batches, dtype=np.float64)
    return sum(per_batch) + float(np.sum(icept + slope * rest))


# -- sections --------------------------------------------------------------------------------
def batched_add(
    args: argparse.Namespace, vectors: Matrix, texts: list[str], work: Path
) -> tuple[list[Row], Any, list[float], Path]:
    """Section C. Returns rows, ours' store (kept for D), ours' per-batch times, its path."""
    from langchain_community.vectorstores import FAISS
    from langchain_community.vectorstores.utils import DistanceStrategy

    from vectordb_manager import LocalVectorStore

    n = min(args.add_n, len(vectors))
    batches = (n + SMALL_BATCH - 1) // SMALL_BATCH
    emb = PrecomputedEmbeddings(DIM)
    ours_dir, peer_dir = work / "batched_ours", work / "batched_peer"

    def parts(j: int) -> tuple[list[Any], list[dict[str, Any]], list[str]]:
        a, b = j * SMALL_BATCH, min((j + 1) * SMALL_BATCH, n)
        return (list(zip(texts[a:b], vectors[a:b], strict=True)),
                [metadata(i) for i in range(a, b)], [f"id{i}" for i in range(a, b)])

    gc.collect()
    ours_times: list[float] = []
    store = LocalVectorStore(emb, ours_dir, distance="cosine")
    for j in range(batches):
        p, m, ids = parts(j)
        t0 = time.perf_counter()
        store.add_embeddings(p, m, ids=ids)
        ours_times.append(time.perf_counter() - t0)
    flush(f"- C ours: {n:,} docs in {batches} durable batches: {fmt_s(sum(ours_times))} "
          f"(first batch {fmt_s(ours_times[0])}, last {fmt_s(ours_times[-1])}); "
          f"segments {store.stats().get('segments')}")

    gc.collect()
    peer_times: list[float] = []
    peer: Any = None
    t_start = time.perf_counter()
    for j in range(batches):
        p, m, ids = parts(j)
        t0 = time.perf_counter()
        if peer is None:
            peer = FAISS.from_embeddings(p, emb, metadatas=m, ids=ids,
                                         distance_strategy=DistanceStrategy.MAX_INNER_PRODUCT)
        else:
            peer.add_embeddings(p, metadatas=m, ids=ids)
        peer.save_local(str(peer_dir))
        peer_times.append(time.perf_counter() - t0)
        if time.perf_counter() - t_start > args.peer_budget and j + 1 < batches:
            break
    done = len(peer_times)
    peer_total = extrapolate(peer_times, batches)
    label = "" if done == batches else f" (extrapolated from {done} of {batches} batches)"
    flush(f"- C peer: {fmt_s(peer_total)}{label}; first batch {fmt_s(peer_times[0])}, "
          f"last measured {fmt_s(peer_times[-1])}")
    del peer
    gc.collect()
    shutil.rmtree(peer_dir, ignore_errors=True)
    r = ratio(sum(ours_times), peer_total)
    target = f"ours <= {TARGET_BATCHED_VS_PEER}x peer"
    rows = [
        Row("C", f"add {n:,} docs, batches of {SMALL_BATCH:,}, durable after each",
            fmt_s(sum(ours_times)), fmt_s(peer_total) + label, vs_peer=r,
            target=f"{target}: {verdict(r, TARGET_BATCHED_VS_PEER)}"),
        Row("C", "  per batch: first / median / last",
            f"{fmt_s(ours_times[0])} / {fmt_s(statistics.median(ours_times))} / "
            f"{fmt_s(ours_times[-1])}",
            f"{fmt_s(peer_times[0])} / {fmt_s(statistics.median(peer_times))} / "
            f"{fmt_s(peer_times[-1])} (measured {done})"),
    ]
    return rows, store, ours_times, ours_dir


def persist_more(store: Any, start: int, extra: Matrix, *, seed: int, peer: Any = None,
                 peer_dir: Path | None = None, raw: Any = None, raw_file: Path | None = None
                 ) -> dict[str, list[float]]:
    """Section D: UPDATE_ROUNDS x add UPDATE_DOCS, each durable; times per system."""
    import faiss

    out: dict[str, list[float]] = {"ours": [], "peer": [], "raw": []}
    for r in range(UPDATE_ROUNDS):
        a = start + r * UPDATE_DOCS
        vecs = extra[r * UPDATE_DOCS : (r + 1) * UPDATE_DOCS]
        texts = make_texts(np.random.default_rng(seed + 1 + r), a, UPDATE_DOCS)
        pairs = list(zip(texts, vecs, strict=True))
        metas = [metadata(i) for i in range(a, a + UPDATE_DOCS)]
        ids = [f"id{i}" for i in range(a, a + UPDATE_DOCS)]
        t0 = time.perf_counter()
        store.add_embeddings(pairs, metas, ids=ids)
        out["ours"].append(time.perf_counter() - t0)
        if peer is not None and peer_dir is not None:
            gc.collect()
            t0 = time.perf_counter()
            peer.add_embeddings(pairs, metadatas=metas, ids=ids)
            peer.save_local(str(peer_dir))
            out["peer"].append(time.perf_counter() - t0)
        if raw is not None and raw_file is not None:
            gc.collect()
            t0 = time.perf_counter()
            raw.add(vecs)
            faiss.write_index(raw, str(raw_file))
            out["raw"].append(time.perf_counter() - t0)
        gc.collect()
    return out


def bench_hnsw(args: argparse.Namespace, data: Any, work: Path) -> list[Row]:
    from vectordb_manager import LocalVectorStore

    emb = PrecomputedEmbeddings(DIM)
    path = work / "ours_hnsw"
    pairs_n = data.n
    queries = data.queries.tolist()
    truth = exact_top_k(data.vectors, data.queries, K)

    def build() -> Any:
        store = LocalVectorStore(emb, path, distance="cosine", index="hnsw")
        for a in range(0, pairs_n, BUILD_BATCH):
            b = min(a + BUILD_BATCH, pairs_n)
            store.add_embeddings(list(zip(data.texts[a:b], data.vectors[a:b], strict=True)),
                                 data.metadatas[a:b], ids=data.ids[a:b])
        return store

    t_build, store = timed(build)
    flush(f"- H built {pairs_n:,} (M=32, efC=100, batches of {BUILD_BATCH:,}): {fmt_s(t_build)}")
    t_compact, _ = timed(store.compact)  # writes the HNSW snapshot that reopening loads
    flush(f"- H compact (snapshot): {fmt_s(t_compact)}")
    del store
    gc.collect()
    rows = [Row("H", f"HNSW build + persist {pairs_n:,} (batches of {BUILD_BATCH:,})",
                fmt_s(t_build)),
            Row("H", "  then compact() (writes the index snapshot)", fmt_s(t_compact))]
    for ef in EF_SEARCHES:
        t_open, s = timed(lambda ef=ef: LocalVectorStore(emb, path, distance="cosine",
                                                         index="hnsw", ef_search=ef))
        res = measure_interleaved(
            {"ours": Searcher(lambda q, s=s: s.similarity_search_with_score_by_vector(q, K),
                              doc_hits)},
            queries,
        )
        p50 = pct(res["ours"][0], 50)
        rec = recall(res["ours"][1], truth, data.ids)
        rows.append(Row("H", f"HNSW efSearch={ef}: p50 / recall@10 (reopen {fmt_s(t_open)})",
                        f"{fmt_s(p50)} / {rec:.3f}"))
        flush(f"- H efSearch={ef}: p50 {fmt_s(p50)}, recall@10 {rec:.3f}, open {fmt_s(t_open)}")
        del s
        gc.collect()
    return rows


# -- the benchmark ---------------------------------------------------------------------------
def bench(args: argparse.Namespace) -> None:
    import faiss
    from langchain_community.vectorstores import FAISS
    from langchain_community.vectorstores.utils import DistanceStrategy
    from langchain_core.documents import Document
    from langchain_core.vectorstores import InMemoryVectorStore

    from vectordb_manager import LocalVectorStore

    mip = DistanceStrategy.MAX_INNER_PRODUCT
    base = Path(args.workdir) if args.workdir else Path(tempfile.gettempdir())
    work = Path(tempfile.mkdtemp(prefix="bench_scale_", dir=base))
    quiet = wait_quiet(args.wait_quiet) if args.wait_quiet > 0 else None
    watch = CpuWatch()
    print(f"## bench_scale: N={args.n:,}, dim={DIM}, k={K}, {args.queries} queries, "
          f"seed={args.seed}\n")
    for line in machine_info(work):
        print(line)
    print(f"- load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if quiet:
        print(quiet)
    sys.stdout.flush()

    t_data = time.perf_counter()
    data = make_dataset(args.n, args.queries, args.seed)
    data.metadatas = [metadata(i) for i in range(data.n)]
    queries = data.queries.tolist()
    emb = PrecomputedEmbeddings(DIM)
    flush(f"- data: generated in {time.perf_counter() - t_data:.1f} s "
          f"({data.vectors.nbytes / 2**20:.0f} MB of vectors)")
    rows: list[Row] = []

    # C first: it needs nothing else in memory ----------------------------------------------
    c_rows, small_store, _, small_dir = batched_add(args, data.vectors, data.texts, work)
    rows += c_rows

    # build the N stores -------------------------------------------------------------------
    ours_dir, peer_dir = work / "ours", work / "peer"
    raw_file = work / "raw" / "index.faiss"
    raw_file.parent.mkdir()

    def ours_build() -> Any:
        store = LocalVectorStore(emb, ours_dir, distance="cosine")
        for a in range(0, data.n, BUILD_BATCH):
            b = min(a + BUILD_BATCH, data.n)
            store.add_embeddings(list(zip(data.texts[a:b], data.vectors[a:b], strict=True)),
                                 data.metadatas[a:b], ids=data.ids[a:b])
        return store

    def peer_build() -> Any:
        p = FAISS.from_embeddings(list(zip(data.texts, data.vectors, strict=True)), emb,
                                  metadatas=data.metadatas, ids=data.ids, distance_strategy=mip)
        p.save_local(str(peer_dir))
        return p

    def raw_build() -> Any:
        index = faiss.IndexFlatIP(DIM)
        index.add(data.vectors)
        faiss.write_index(index, str(raw_file))
        return index

    t_ours, store = timed(ours_build)
    t_peer, peer = timed(peer_build)
    t_raw, raw = timed(raw_build)
    flush(f"- built: ours {fmt_s(t_ours)} ({store.stats().get('segments')} segments), "
          f"peer {fmt_s(t_peer)}, raw {fmt_s(t_raw)}")
    rows.append(Row("-", f"build + persist {data.n:,} (ours: batches of {BUILD_BATCH:,})",
                    fmt_s(t_ours), fmt_s(t_peer), fmt_s(t_raw), ratio(t_ours, t_peer),
                    ratio(t_ours, t_raw)))

    # A. unfiltered search -------------------------------------------------------------------
    truth = exact_top_k(data.vectors, data.queries, K)

    def raw_hits(r: Any) -> Hits:
        return [(data.ids[i], data.metadatas[i]) for i in r[1][0] if i >= 0]

    res = measure_interleaved(
        {
            "ours": Searcher(lambda q: store.similarity_search_with_score_by_vector(q, K),
                             doc_hits),
            "peer": Searcher(lambda q: peer.similarity_search_with_score_by_vector(q, K),
                             doc_hits),
            "raw": Searcher(lambda q: raw.search(np.asarray([q], dtype=np.float32), K),
                            raw_hits),
        },
        queries,
    )
    p50 = {name: pct(v[0], 50) for name, v in res.items()}
    rec = {name: recall(v[1], truth, data.ids) for name, v in res.items()}
    rows.append(Row("A", f"flat search p50 ({len(queries)} queries) / recall@10",
                    f"{fmt_s(p50['ours'])} / {rec['ours']:.3f}",
                    f"{fmt_s(p50['peer'])} / {rec['peer']:.3f}",
                    f"{fmt_s(p50['raw'])} / {rec['raw']:.3f}",
                    ratio(p50["ours"], p50["peer"]), ratio(p50["ours"], p50["raw"])))
    flush(f"- A: p50 ours {fmt_s(p50['ours'])}, peer {fmt_s(p50['peer'])}, "
          f"raw {fmt_s(p50['raw'])}")

    if data.n <= args.inmem_max:
        mem_emb = PrecomputedEmbeddings(
            DIM, documents=dict(zip(data.texts, data.vectors.tolist(), strict=True))
        )
        mem = InMemoryVectorStore(mem_emb)
        t_mem, _ = timed(lambda: mem.add_documents(
            [Document(page_content=t, metadata=m)
             for t, m in zip(data.texts, data.metadatas, strict=True)], ids=data.ids))
        del mem_emb
        mq = queries[: args.inmem_queries]
        res_m = measure_interleaved(
            {
                "ours": Searcher(lambda q: store.similarity_search_with_score_by_vector(q, K),
                                 doc_hits),
                "mem": Searcher(lambda q: mem.similarity_search_with_score_by_vector(q, K),
                                doc_hits),
            },
            mq,
        )
        m50 = {name: pct(v[0], 50) for name, v in res_m.items()}
        mrec = recall(res_m["mem"][1], truth[: len(mq)], data.ids)
        rows.append(Row("A", f"vs InMemoryVectorStore: p50 ({len(mq)} queries) / recall@10",
                        fmt_s(m50["ours"]), raw=f"mem: {fmt_s(m50['mem'])} / {mrec:.3f}",
                        vs_raw=ratio(m50["ours"], m50["mem"]),
                        target="ours/raw column = ours/mem"))
        rows.append(Row("A", "  InMemoryVectorStore add_documents (not durable)", "-",
                        raw=f"mem: {fmt_s(t_mem)}"))
        flush(f"- A mem: p50 {fmt_s(m50['mem'])} (ours {fmt_s(m50['ours'])} on the same "
              f"{len(mq)} queries); add {fmt_s(t_mem)}")
        del mem, res_m
        gc.collect()
    else:
        rows.append(Row("A", "vs InMemoryVectorStore", "-",
                        raw=f"skipped: N > --inmem-max {args.inmem_max:,} (memory)"))

    # B. filtered search ---------------------------------------------------------------------
    keep_alive: list[Any] = []
    for label, flt, keep in FILTERS:
        allowed = np.fromiter((keep(i) for i in range(data.n)), dtype=bool, count=data.n)
        rows_ok = np.flatnonzero(allowed)
        ftruth = exact_top_k(data.vectors, data.queries, K, rows_ok)
        packed = np.packbits(allowed, bitorder="little")
        selector = faiss.IDSelectorBitmap(data.n, faiss.swig_ptr(packed))
        params = faiss.SearchParameters()
        params.sel = selector
        keep_alive += [packed, selector, params]
        res_f = measure_interleaved(
            {
                "ours_unf": Searcher(
                    lambda q: store.similarity_search_with_score_by_vector(q, K), doc_hits),
                "ours": Searcher(
                    lambda q, flt=flt: store.similarity_search_with_score_by_vector(q, K, flt),
                    doc_hits),
                "peer": Searcher(
                    lambda q, flt=flt: peer.similarity_search_with_score_by_vector(
                        q, K, filter=flt), doc_hits),
                "raw": Searcher(
                    lambda q, params=params: raw.search(np.asarray([q], dtype=np.float32), K,
                                                        params=params), raw_hits),
            },
            queries,
        )
        f50 = {name: pct(v[0], 50) for name, v in res_f.items()}
        fill = {name: filled(v[1], flt) for name, v in res_f.items()}
        frec = {name: recall(v[1], ftruth, data.ids) for name, v in res_f.items()}
        self_ratio = ratio(f50["ours"], f50["ours_unf"])
        rows.append(Row("B", f"filter {flt} ({label} pass): fill rate / recall@10",
                        f"{fill['ours']:.1%} / {frec['ours']:.3f}",
                        f"{fill['peer']:.1%} / {frec['peer']:.3f}",
                        f"{fill['raw']:.1%} / {frec['raw']:.3f}"))
        rows.append(Row("B", f"filter ({label}) p50", fmt_s(f50["ours"]), fmt_s(f50["peer"]),
                        fmt_s(f50["raw"]), ratio(f50["ours"], f50["peer"]),
                        ratio(f50["ours"], f50["raw"])))
        rows.append(Row("B", f"  ours filtered ({label}) / ours unfiltered p50 "
                        f"({fmt_s(f50['ours_unf'])})", fmt_ratio(self_ratio),
                        target=f"<= {TARGET_FILTER_VS_UNFILTERED}x: "
                        f"{verdict(self_ratio, TARGET_FILTER_VS_UNFILTERED)}"))
        flush(f"- B {label}: fill ours {fill['ours']:.1%} peer {fill['peer']:.1%}; p50 ours "
              f"{fmt_s(f50['ours'])} (unfiltered {fmt_s(f50['ours_unf'])}), "
              f"peer {fmt_s(f50['peer'])}, raw {fmt_s(f50['raw'])}")

    # D. persist 100 more, at N and at the --add-n store ----------------------------------------
    upd = persist_more(store, data.n, data.extra, seed=args.seed, peer=peer, peer_dir=peer_dir,
                       raw=raw, raw_file=raw_file)
    n_small = len(small_store)
    small_extra = data.extra  # same vectors; ids continue after the small store's documents
    upd_small = persist_more(small_store, n_small + 10_000_000, small_extra, seed=args.seed)
    med = {name: statistics.median(v) for name, v in upd.items() if v}
    med_small = statistics.median(upd_small["ours"])
    rows.append(Row("D", f"persist {UPDATE_DOCS} more into {data.n:,} (median of "
                    f"{UPDATE_ROUNDS})", fmt_s(med["ours"]), fmt_s(med["peer"]),
                    fmt_s(med["raw"]), ratio(med["ours"], med["peer"]),
                    ratio(med["ours"], med["raw"])))
    same = ratio(med["ours"], med_small)
    rows.append(Row("D", f"  ours: same into the {n_small:,}-doc store of C; "
                    f"{data.n:,} / {n_small:,}", f"{fmt_s(med_small)}; {fmt_ratio(same)}",
                    target="same cost (ratio ~1x)"))
    flush(f"- D: ours {[fmt_s(t) for t in upd['ours']]}, at {n_small:,}: "
          f"{[fmt_s(t) for t in upd_small['ours']]}; peer {[fmt_s(t) for t in upd['peer']]}")
    del small_store
    shutil.rmtree(small_dir, ignore_errors=True)

    # E. open -------------------------------------------------------------------------------
    total_docs = data.n + UPDATE_ROUNDS * UPDATE_DOCS
    q0 = queries[0]
    store = peer = raw = None
    del res
    gc.collect()
    opens: list[float] = []
    for _ in range(3):
        t, s = timed(lambda: LocalVectorStore(emb, ours_dir, distance="cosine"))
        if len(s) != total_docs:
            raise AssertionError(f"reopened with {len(s)} docs, not {total_docs}")
        s.similarity_search_with_score_by_vector(q0, K)
        opens.append(t)
        del s
        gc.collect()
    o_med = statistics.median(opens)
    kids: dict[str, list[dict[str, Any]]] = {"ours": [], "peer": [], "raw": []}
    for _ in range(args.child_repeats):
        kids["ours"].append(run_child("ours", ours_dir, args.seed))
        kids["peer"].append(run_child("peer", peer_dir, args.seed))
        kids["raw"].append(run_child("raw", raw_file, args.seed))
    kopen = {name: statistics.median(c["open"] for c in cs) for name, cs in kids.items()}
    peak = {name: statistics.median(c["peak"] for c in cs) for name, cs in kids.items()}
    delta = {name: statistics.median(c["peak"] - c["baseline"] for c in cs)
             for name, cs in kids.items()}
    rows.append(Row("E", f"ours open {total_docs:,} in-process (median of 3)", fmt_s(o_med),
                    target=f"<= {TARGET_OPEN_S:.0f} s: {verdict(o_med, TARGET_OPEN_S)}"))
    rows.append(Row("E", f"open in a fresh process (median of {args.child_repeats})",
                    fmt_s(kopen["ours"]), fmt_s(kopen["peer"]), fmt_s(kopen["raw"]),
                    ratio(kopen["ours"], kopen["peer"]), ratio(kopen["ours"], kopen["raw"]),
                    f"<= {TARGET_OPEN_S:.0f} s: {verdict(kopen['ours'], TARGET_OPEN_S)}"))
    rows.append(Row("E", "peak RSS, fresh process: open + 1 query", fmt_mb(peak["ours"]),
                    fmt_mb(peak["peer"]), fmt_mb(peak["raw"]), ratio(peak["ours"], peak["peer"]),
                    ratio(peak["ours"], peak["raw"])))
    rows.append(Row("E", "  same, minus the high-water mark after imports", fmt_mb(delta["ours"]),
                    fmt_mb(delta["peer"]), fmt_mb(delta["raw"]),
                    ratio(delta["ours"], delta["peer"]), ratio(delta["ours"], delta["raw"])))
    flush(f"- E: open ours {[fmt_s(t) for t in opens]}; fresh {kopen}; peak {peak}")
    shutil.rmtree(peer_dir, ignore_errors=True)

    print_table(f"N = {data.n:,}", rows)
    print()
    print(watch.report())
    sys.stdout.flush()
    if args.profile:
        profile(args, data, work, ours_dir)
    if args.hnsw:  # last: the build is long (~0.1-0.3 ms per vector)
        print_table(f"HNSW, N = {data.n:,} (M=32, efConstruction=100)",
                    bench_hnsw(args, data, work))
        print()
        print(watch.report())
    if args.keep:
        print(f"\nstores kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


def profile(args: argparse.Namespace, data: Any, work: Path, ours_dir: Path) -> None:
    """cProfile ours: 20 durable batches of 1,000, filtered searches, reopen."""
    from vectordb_manager import LocalVectorStore

    emb = PrecomputedEmbeddings(DIM)
    queries = data.queries.tolist()[:50]
    holder: dict[str, Any] = {}

    def reopen() -> None:
        holder["s"] = LocalVectorStore(emb, ours_dir, distance="cosine")

    def small_batches() -> None:
        s = LocalVectorStore(emb, work / "profile_small", distance="cosine")
        for j in range(20):
            a, b = j * SMALL_BATCH, (j + 1) * SMALL_BATCH
            s.add_embeddings(list(zip(data.texts[a:b], data.vectors[a:b], strict=True)),
                             data.metadatas[a:b], ids=data.ids[a:b])

    phases: list[tuple[str, Callable[[], None]]] = [("reopen", reopen)]
    for label, flt, _ in FILTERS:
        def search(flt: dict[str, Any] = flt) -> None:
            for q in queries:
                holder["s"].similarity_search_with_score_by_vector(q, K, flt)
        phases.append((f"{len(queries)} searches filter {flt} ({label})", search))
    phases.append((f"20 durable batches of {SMALL_BATCH:,}", small_batches))
    print("\n### cProfile of ours\n")
    for title, fn in phases:
        gc.collect()
        prof = cProfile.Profile()
        t0 = time.perf_counter()
        prof.runcall(fn)
        print(f"#### {title}: {time.perf_counter() - t0:.3f} s under the profiler\n\n```")
        print(_stats_text(prof, "tottime", 14))
        print("-- by cumulative time:")
        print(_stats_text(prof, "cumulative", 14))
        print("```\n")
    sys.stdout.flush()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="documents (default 100000)")
    parser.add_argument("--queries", type=int, default=200, help="queries (default 200)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--add-n", type=int, default=100_000,
                        help="documents for the batches-of-1000 test (default 100000)")
    parser.add_argument("--peer-budget", type=float, default=180.0, metavar="SECONDS",
                        help="stop the peer's batched add after this long and extrapolate")
    parser.add_argument("--inmem-max", type=int, default=200_000,
                        help="largest N for InMemoryVectorStore (memory: ~12 KB per doc)")
    parser.add_argument("--inmem-queries", type=int, default=20,
                        help="queries for InMemoryVectorStore (seconds each at 100k)")
    parser.add_argument("--child-repeats", type=int, default=3)
    parser.add_argument("--hnsw", "--hnsw-1m", action="store_true",
                        help="also build ours with index='hnsw' at N and try efSearch 64/128/256")
    parser.add_argument("--profile", action="store_true", help="cProfile ours afterwards")
    parser.add_argument("--workdir", help="where to create the stores (default: the temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the stores afterwards")
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                        help="first wait up to this long for other processes to go idle")
    args = parser.parse_args(argv)
    if args.n < 2 * SMALL_BATCH or args.queries < 1:
        parser.error(f"--n must be at least {2 * SMALL_BATCH} and --queries at least 1")
    bench(args)


if __name__ == "__main__":
    main()
