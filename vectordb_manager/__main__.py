"""``python -m vectordb_manager``: the ``vectordb`` command line."""

import sys

from vectordb_manager.cli import main

sys.exit(main())
