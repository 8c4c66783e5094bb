"""Finding new versions on a local store: a writer that knows the newest version looks for
the next version's manifest alone (`CommitLog.versions`), instead of listing a folder that
holds every manifest of the retention time, and lists whenever that would not be sure; a
listing after a name looks only at the entries that can sort after it."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import numpy as np

from vectordb_manager.engine.compaction import CompactionPolicy
from vectordb_manager.engine.core import Engine
from vectordb_manager.engine.format import manifest_name
from vectordb_manager.engine.retention import MANIFEST_RETENTION_SECONDS
from vectordb_manager.storage.local import LocalStorage

DIM = 8
STILL = CompactionPolicy(enabled=False)  # every commit is one of the test's


def engine(path: Path) -> Engine:
    return Engine(LocalStorage(path), dimension=DIM, compaction=STILL)


def write(target: Engine, *ids: str) -> None:
    rows = np.random.default_rng(len(ids)).random((len(ids), DIM), dtype=np.float32)
    target.upsert(list(ids), [f"text of {i}" for i in ids], [{}] * len(ids), rows)


class Spy:
    """Counts the listings of the manifests' folder and the looks for one manifest."""

    def __init__(self, storage: Any) -> None:
        self.listings = 0
        self.looks: list[str] = []
        real_list, real_has = storage.list, storage.has

        def list_spy(prefix: str, start_after: str | None = None) -> Any:
            self.listings += prefix == "manifests/"
            return real_list(prefix, start_after)

        def has_spy(name: str) -> bool:
            self.looks.append(name)
            return bool(real_has(name))

        storage.list, storage.has = list_spy, has_spy


def newest(target: Engine) -> int:
    return int(target.stats()["version"])


def test_a_writer_alone_looks_for_the_next_manifest_and_lists_nothing(tmp_path: Path) -> None:
    alone = engine(tmp_path)
    write(alone, "first")
    spy = Spy(alone.storage)
    for i in range(20):
        write(alone, f"d{i}")
    assert spy.listings == 0
    assert len(spy.looks) == 20 and spy.looks[-1] == manifest_name(newest(alone))
    assert len(engine(tmp_path).ids()) == 21


def test_another_writers_commit_is_found_and_read(tmp_path: Path) -> None:
    a, b = engine(tmp_path), engine(tmp_path)
    write(a, "a0")
    write(b, "b0")  # its look finds a's version: it lists, reads it, then commits
    spy, held = Spy(b.storage), newest(b)
    write(a, "a1")
    write(a, "a2")
    write(b, "b1")  # its look finds a's first: it lists, reads both, then commits
    assert spy.looks == [manifest_name(held + 1)] and spy.listings == 1
    assert newest(b) == held + 3
    assert sorted(b.ids()) == ["a0", "a1", "a2", "b0", "b1"]
    write(a, "a3")  # a's look finds b's version
    assert sorted(a.ids()) == ["a0", "a1", "a2", "a3", "b0", "b1"]


def test_newest_known_too_long_ago_lists_again(tmp_path: Path) -> None:
    """Past half the retention time, old manifests may have been removed since: a missing
    next manifest says nothing of the later ones, which only a listing finds."""
    a, b = engine(tmp_path), engine(tmp_path)
    write(b, "b0")
    known = newest(b)
    for i in range(3):
        write(a, f"a{i}")
    (tmp_path / manifest_name(known + 1)).unlink()  # as a collection removes an old one
    assert b.log is not None
    later = time.monotonic() + MANIFEST_RETENTION_SECONDS
    b.log.monotonic = lambda: later
    assert b.log.versions(after=known) == [known + 2, known + 3]


def test_only_the_version_known_to_be_the_newest_is_looked_past(tmp_path: Path) -> None:
    """A listing of the whole folder (a collection's) knows a newer version than the writer
    holds: the writer's next one may be an old manifest removed since, so it lists."""
    a, b = engine(tmp_path), engine(tmp_path)
    write(b, "b0")
    held = newest(b)
    for i in range(3):
        write(a, f"a{i}")
    assert b.log is not None
    assert b.log.versions()[-1] == held + 3  # now known: the newest is held + 3
    (tmp_path / manifest_name(held + 1)).unlink()
    assert b.log.versions(after=held) == [held + 2, held + 3]
    write(b, "b1")
    assert sorted(b.ids()) == ["a0", "a1", "a2", "b0", "b1"]
    assert newest(b) == held + 4


def test_a_listing_after_a_name_finds_what_a_full_one_does(tmp_path: Path) -> None:
    """Only a folder's entries sorting after the name, or beginning it, are looked at: a
    folder's files can sort after the name ("v1/x" after "v1.json", "/" after "."). Random
    trees, names after every stored one and after others, in the folder and deeper."""
    storage = LocalStorage(tmp_path)
    rng = random.Random(7)
    names: set[str] = set()
    for _ in range(300):
        parts = [
            "".join(rng.choices("ab1.-_", k=rng.randint(1, 3))) for _ in range(rng.randint(1, 3))
        ]
        name = "/".join(parts)
        if {".", ".."} & set(parts):
            continue  # (not a name a store holds)
        clash = any(n.startswith(name + "/") or name.startswith(n + "/") for n in names)
        if not clash and name not in names:
            names.add(name)
            storage.write(f"f/{name}", b"x", durable=False)
    full = [o.name for o in storage.list("f/")]
    assert len(full) == len(names) > 100
    starts = [*full, *(f"f/{n}" for n in ("a", "a.", "a/", "b-", "1", "", "zz", "a/b"))]
    for start in starts:
        for prefix in ("f/", "f/a", "f/b"):
            got = [o.name for o in storage.list(prefix, start_after=start)]
            assert got == [n for n in full if n > start and n.startswith(prefix)], (prefix, start)
