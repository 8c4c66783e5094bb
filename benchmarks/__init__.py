"""Benchmarks for vectordb-manager: ``make bench`` runs ``benchmarks/suite.py`` (see its --help)."""
