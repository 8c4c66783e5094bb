"""``python -m vectordb_manager``: the ``vectordb`` command line."""

from vectordb_manager.cli import run

run()
