"""Document processing: load files of many formats and split them into annotated chunks.

:class:`DocumentProcessor` does the work; :class:`FileResult` reports one file's outcome;
:data:`SUPPORTED_EXTENSIONS` lists the formats read.
"""

from vectordb_manager.processing.files import FileResult
from vectordb_manager.processing.processor import SUPPORTED_EXTENSIONS, DocumentProcessor

__all__ = ["SUPPORTED_EXTENSIONS", "DocumentProcessor", "FileResult"]
