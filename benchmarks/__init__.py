"""Benchmarks for vectordb-manager (run ``python benchmarks/bench_store.py --help``)."""
