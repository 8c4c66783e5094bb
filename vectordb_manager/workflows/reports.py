"""An ingestion's report, bounded: exact counts for any number of files, a capped list of names.

A workflow's report travels as one Temporal payload (about 2 MB at most) and is carried from
run to run when the workflow continues as new, so it cannot name each of a million files. It
keeps `IngestReport.to_dict`'s shape (``files_added``, ``files_failed``...), with one more
field, ``unlisted``: for each kind of file, how many the report counts but does not name.
``len(report[kind]) + report["unlisted"][kind]`` is always the exact count.

Each kind names the first files in the order of the listing: at most ``files`` of them
(`BatchPolicy.report_files`, default 1000) and at most `NAME_BYTES` of JSON, the failed files
with their reasons at most ``failures`` (`BatchPolicy.report_failures`, default 2000) and
`FAILURE_BYTES`; a reason longer than `REASON_CHARS` characters is cut there. The whole stays
near 1.2 MB at worst. Batches bound their own reports the same way, so no payload of the
ingestion grows with the number of files.

The module imports only the standard library: the workflow sandbox loads it.
"""

from __future__ import annotations

import json
from typing import Any

REPORT_LISTS = ("files_added", "files_updated", "files_unchanged", "files_removed")
REPORT_DICTS = ("files_skipped", "files_failed")
REPORT_KINDS = REPORT_LISTS + REPORT_DICTS
REPORT_COUNTS = ("files_seen", "chunks_added", "chunks_removed", "texts_embedded")

NAME_BYTES = 150_000
"""The JSON bytes of names (and reasons, for skipped files) one kind keeps at most."""
FAILURE_BYTES = 500_000
"""The JSON bytes of failed files' names and reasons the report keeps at most."""
REASON_CHARS = 1000
"""A reason is cut to this many characters."""


def empty_report() -> dict[str, Any]:
    """A report with nothing in it, in `IngestReport.to_dict`'s shape plus ``unlisted``."""
    report: dict[str, Any] = {name: [] for name in REPORT_LISTS}
    report.update({name: {} for name in REPORT_DICTS})
    report.update({name: 0 for name in REPORT_COUNTS})
    report["unlisted"] = {name: 0 for name in REPORT_KINDS}
    report["seconds"] = 0.0
    report["ok"] = True
    return report


class BoundedReport:
    """A report that parts are added to, in order, naming at most ``files`` files of each
    kind and ``failures`` failed files (see the module docstring). ``report``, when given,
    is a report so far (a previous run's) to go on from; it is used, not copied."""

    def __init__(self, files: int, failures: int, report: dict[str, Any] | None = None) -> None:
        self.report = report if report is not None else empty_report()
        self.report.setdefault("unlisted", {})
        for kind in REPORT_KINDS:
            self.report["unlisted"].setdefault(kind, 0)
        self._caps = {
            kind: (failures, FAILURE_BYTES) if kind == "files_failed" else (files, NAME_BYTES)
            for kind in REPORT_KINDS
        }
        self._bytes = {kind: sum(_size(e) for e in self._entries(kind)) for kind in REPORT_KINDS}

    def add(self, part: dict[str, Any]) -> None:
        """Add the report ``part`` (`IngestReport.to_dict`'s shape, bounded or not)."""
        report = self.report
        for kind in REPORT_LISTS:
            for path in part.get(kind, []):
                self._name(kind, path, None)
        for kind in REPORT_DICTS:
            for path, reason in part.get(kind, {}).items():
                self._name(kind, path, reason)
        for kind, count in part.get("unlisted", {}).items():
            report["unlisted"][kind] += int(count)
        for name in REPORT_COUNTS:
            report[name] += int(part.get(name, 0))
        report["seconds"] += float(part.get("seconds", 0.0))
        report["ok"] = self.count("files_failed") == 0

    def count(self, kind: str) -> int:
        """How many files of ``kind`` (``files_added``...) the report counts."""
        return len(self.report[kind]) + int(self.report["unlisted"][kind])

    def _name(self, kind: str, path: str, reason: str | None) -> None:
        if reason is not None and len(reason) > REASON_CHARS:
            reason = reason[: REASON_CHARS - 1] + "…"
        entry = path if reason is None else (path, reason)
        size = _size(entry)
        names = self.report[kind]
        most, budget = self._caps[kind]
        named_twice = reason is not None and path in names  # (counted, not named again)
        if named_twice or len(names) >= most or self._bytes[kind] + size > budget:
            self.report["unlisted"][kind] += 1
            return
        self._bytes[kind] += size
        if reason is None:
            names.append(path)
        else:
            names[path] = reason

    def _entries(self, kind: str) -> list[Any]:
        named = self.report[kind]
        return list(named.items()) if isinstance(named, dict) else list(named)


def bounded(part: dict[str, Any], files: int, failures: int) -> dict[str, Any]:
    """The report ``part`` (`IngestReport.to_dict`'s shape), bounded as the module says."""
    out = BoundedReport(files, failures)
    out.add(part)
    return out.report


def _size(entry: str | tuple[str, str]) -> int:
    """The JSON bytes an entry takes (temporalio writes JSON with ASCII escapes)."""
    if isinstance(entry, str):
        return len(json.dumps(entry)) + 1
    return len(json.dumps(entry[0])) + len(json.dumps(entry[1])) + 2
