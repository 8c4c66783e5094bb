"""Loaders for structured text: JSON, JSON Lines and CSV.

JSON and JSON Lines records follow one rule set (:func:`record_document`):

- the text is the configured field (``json_text_field``, a dotted path such as ``"body.text"``;
  a path part may be a list index, ``"items.0.text"``). A record without it is an error naming
  the record and its fields;
- without a configured field, the first of ``text``, ``content``, ``page_content``, ``body``
  holding a string, else the whole record pretty-printed;
- the record's other top-level scalar fields (string, number, boolean, null) become metadata.

A top-level JSON list gives one document per element (``record``, 1-based). A JSON Lines file
gives one document per non-blank line (``line``, 1-based); one malformed line fails the file
with its line number. A CSV file gives one document per row (``row``, 1-based, header
excluded). JSON is read whole; JSON Lines and CSV are streamed a line (a row) at a time.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from typing import Any

from langchain_core.documents import Document

from vectordb_manager.errors import DocumentProcessingError
from vectordb_manager.processing.loaders import LoadOptions, Section, TextInput
from vectordb_manager.processing.reading import decode_text, iter_lines

DEFAULT_TEXT_KEYS = ("text", "content", "page_content", "body")


# -- JSON ---------------------------------------------------------------------------------


def load_json(data: bytes, options: LoadOptions) -> list[Document]:
    """A ``.json`` file: one document, or one per element of a top-level list."""
    text, _ = decode_text(data, options.encoding_fallbacks)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DocumentProcessingError(
            f"not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); "
            "fix the file, or name it .jsonl if it holds one JSON value per line"
        ) from exc
    if isinstance(value, list):
        docs = []
        for number, item in enumerate(value, start=1):
            doc = record_document(item, options.json_text_field, f"record {number}")
            doc.metadata["record"] = number
            docs.append(doc)
        return docs
    return [record_document(value, options.json_text_field, "the JSON value")]


def stream_jsonl(source: TextInput, options: LoadOptions) -> Iterator[Section]:
    """A ``.jsonl`` file: one document per non-blank line, ``line`` 1-based in metadata."""
    for number, line in enumerate(iter_lines(source.read()), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DocumentProcessingError(
                f"line {number} is not valid JSON ({exc.msg} at column {exc.colno}); "
                "fix or remove that line"
            ) from exc
        items = value if isinstance(value, list) else [value]
        for item in items:
            doc = record_document(item, options.json_text_field, f"line {number}")
            yield Section(doc.page_content, {**doc.metadata, "line": number})


def record_document(value: Any, text_field: str | None, where: str) -> Document:
    """One JSON value as a document: text by the module's rules, scalar fields as metadata."""
    if not isinstance(value, dict):
        return Document(page_content=_as_text(value), metadata={})
    text_key: str | None
    if text_field is not None:
        text = _as_text(_lookup(value, text_field, where))
        text_key = text_field
    else:
        text_key = next((k for k in DEFAULT_TEXT_KEYS if isinstance(value.get(k), str)), None)
        text = value[text_key] if text_key is not None else _pretty(value)
    metadata = {
        key: item for key, item in value.items() if key != text_key and _is_json_scalar(item)
    }
    return Document(page_content=text, metadata=metadata)


def _lookup(record: dict[str, Any], field: str, where: str) -> Any:
    if field in record:  # a key that itself contains dots
        return record[field]
    current: Any = record
    for part in field.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            fields = ", ".join(map(str, record)) or "none"
            raise DocumentProcessingError(
                f"{where} has no field {field!r} (no {part!r}); its top-level fields are: "
                f"{fields}; set json_text_field to the field holding the text"
            )
    return current


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return _pretty(value)
    return json.dumps(value)  # numbers and booleans as JSON spells them


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def _is_json_scalar(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)  # NaN and Infinity are not JSON
    return value is None or isinstance(value, (str, int, bool))


# -- CSV ----------------------------------------------------------------------------------


def stream_csv(source: TextInput, options: LoadOptions) -> Iterator[Section]:
    """A ``.csv`` file: one document per row.

    The text is the configured text columns' non-empty values, one per line, or else every
    non-empty column as a ``"column: value"`` lines. The configured metadata columns are copied
    into metadata (as strings). The first row is the header.
    """
    reader = csv.reader(iter_lines(source.read()), delimiter=options.csv_delimiter)
    try:
        header = [name.strip() for name in next(reader, [])]
    except csv.Error as exc:
        raise DocumentProcessingError(f"cannot read the CSV header: {exc}") from exc
    if not header:
        return
    wanted = [*(options.csv_text_columns or ()), *options.csv_metadata_columns]
    missing = [name for name in wanted if name not in header]
    if missing:
        raise DocumentProcessingError(
            f"column(s) {', '.join(map(repr, missing))} not in the CSV header; its columns "
            f"are: {', '.join(map(repr, header))}; fix csv_text_columns / csv_metadata_columns"
        )
    number = 0
    while True:
        try:
            row = next(reader, None)
        except csv.Error as exc:
            raise DocumentProcessingError(f"row {number + 1} is not valid CSV: {exc}") from exc
        if row is None:
            return
        number += 1
        values = dict(zip(header, row, strict=False))
        if options.csv_text_columns:
            lines = [values.get(name, "").strip() for name in options.csv_text_columns]
            content = "\n".join(line for line in lines if line)
        else:
            content = "\n".join(
                f"{name}: {value.strip()}"
                for name, value in zip(header, row, strict=False)
                if value.strip()
            )
        metadata: dict[str, Any] = {
            name: values.get(name, "") for name in options.csv_metadata_columns
        }
        metadata["row"] = number
        yield Section(content, metadata)
