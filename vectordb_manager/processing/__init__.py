"""Document processing: load files of many formats and split them into annotated chunks.

:class:`DocumentProcessor` does the work; :class:`FileResult` reports one file's outcome;
:data:`SUPPORTED_EXTENSIONS` lists the formats read. The names are imported on first use
(`vectordb_manager.lazy`), so a light module of this package does not load the splitters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vectordb_manager.lazy import attach

if TYPE_CHECKING:
    from vectordb_manager.processing.files import FileResult
    from vectordb_manager.processing.processor import SUPPORTED_EXTENSIONS, DocumentProcessor
else:
    __getattr__, __dir__ = attach(
        __name__,
        {
            "FileResult": "vectordb_manager.processing.files",
            "SUPPORTED_EXTENSIONS": "vectordb_manager.processing.processor",
            "DocumentProcessor": "vectordb_manager.processing.processor",
        },
    )

__all__ = ["SUPPORTED_EXTENSIONS", "DocumentProcessor", "FileResult"]
