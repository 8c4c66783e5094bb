"""Importing LangChain FAISS directories that are hostile or damaged, or whose metadata the
store refuses: a pickle naming anything outside the allowlist is refused before it runs (no
marker file appears), a damaged file gives a clear error, and no store is created or changed.
"""

from __future__ import annotations

import datetime
import os
import pickle
import sys
import types
import warnings
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pytest

from tests.integration.faiss_dirs import (
    DIM,
    EMB,
    IDS,
    METADATAS,
    TEXTS,
    Evaluates,
    NotAllowed,
    RunsCommand,
    hostile_dir,
    saved,
)
from tests.integration.test_cli_commands import one_error_line, tree
from vectordb_manager import LocalVectorStore
from vectordb_manager.cli import main
from vectordb_manager.errors import InvalidInputError
from vectordb_manager.vectorstores.faiss_import import (
    SafeUnpickler,
    UnsafePickleError,
    read_langchain_faiss,
)

with warnings.catch_warnings():  # langchain-community announces its sunset on import
    warnings.simplefilter("ignore", DeprecationWarning)
    from langchain_community.vectorstores import FAISS


# -- metadata ------------------------------------------------------------------------------------
def test_metadata_the_store_refuses_names_the_document(tmp_path: Path) -> None:
    metas = [dict(m) for m in METADATAS]
    metas[4]["pair"] = (1, 2)  # a tuple would come back as a list
    folder = saved(FAISS.from_texts(TEXTS, EMB, metadatas=metas, ids=IDS), tmp_path / "faiss")
    with pytest.raises(
        InvalidInputError,
        match=rf"document '{IDS[4]}' cannot be stored: its metadata holds the tuple",
    ):
        LocalVectorStore.from_langchain_faiss(folder, EMB, path=tmp_path / "store")
    assert not (tmp_path / "store").exists()


def test_datetime_metadata_is_read_from_the_pickle(tmp_path: Path) -> None:
    when = {
        "at": datetime.datetime(2024, 5, 6, 7, 8, 9, 123456),
        "aware": datetime.datetime(
            2024, 5, 6, 7, 8, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
        ),
        "day": datetime.date(2020, 2, 29),
    }
    saved(FAISS.from_texts(["x"], EMB, metadatas=[when], ids=["a"]), tmp_path / "faiss")
    with open(tmp_path / "faiss" / "index.pkl", "rb") as f:
        docstore, mapping = SafeUnpickler(f, source="index.pkl").load()
    assert mapping == {0: "a"}
    assert docstore.state["_dict"]["a"].state["__dict__"]["metadata"] == when


def test_datetime_metadata_is_imported(tmp_path: Path) -> None:
    when = {"at": datetime.datetime(2024, 5, 6, 7, 8, 9), "day": datetime.date(2020, 2, 29)}
    fs = FAISS.from_texts(["x"], EMB, metadatas=[when], ids=["a"])
    store = LocalVectorStore.from_langchain_faiss(saved(fs, tmp_path / "faiss"), EMB)
    assert store.get_by_ids(["a"])[0].metadata == when


def test_dangerous_deserialization_loads_other_classes(tmp_path: Path) -> None:
    # numpy scalars in metadata (pandas loaders make them) are outside the allowlist
    metas = [{"score": np.float64(i / 7)} for i in range(len(TEXTS))]
    folder = saved(FAISS.from_texts(TEXTS, EMB, metadatas=metas, ids=IDS), tmp_path / "faiss")
    with pytest.raises(
        UnsafePickleError,
        match=r"names numpy\._core\.multiarray\.scalar.*allow_dangerous_deserialization=True",
    ):
        LocalVectorStore.from_langchain_faiss(folder, EMB, path=tmp_path / "store")
    assert not (tmp_path / "store").exists()
    store = LocalVectorStore.from_langchain_faiss(folder, EMB, allow_dangerous_deserialization=True)
    assert [d.metadata["score"] for d in store.get_by_ids(IDS)] == [
        i / 7 for i in range(len(TEXTS))
    ]


def test_legacy_langchain_module_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pickles from langchain < 0.1: ``langchain.schema.Document`` (pydantic v1 state) in a
    ``langchain.docstore.in_memory.InMemoryDocstore``."""

    class Document:  # what pydantic v1 pickled: __dict__ and __fields_set__
        def __init__(self, page_content: str, metadata: dict[str, Any]) -> None:
            self.page_content, self.metadata = page_content, metadata

        def __getstate__(self) -> dict[str, Any]:
            return {"__dict__": dict(vars(self)), "__fields_set__": {"page_content", "metadata"}}

    class InMemoryDocstore:
        def __init__(self, docs: dict[str, Any]) -> None:
            self._dict = docs

    for module in ("langchain", "langchain.schema", "langchain.docstore"):
        monkeypatch.setitem(sys.modules, module, types.ModuleType(module))
    for module, cls in (
        ("langchain.schema", Document),
        ("langchain.docstore.in_memory", InMemoryDocstore),
    ):
        if module not in sys.modules or module == "langchain.docstore.in_memory":
            monkeypatch.setitem(sys.modules, module, types.ModuleType(module))
        setattr(sys.modules[module], cls.__name__, cls)
        cls.__module__, cls.__qualname__ = module, cls.__name__
    folder = tmp_path / "old"
    folder.mkdir()
    index = faiss.IndexFlatL2(DIM)
    index.add(np.asarray(EMB.embed_documents(TEXTS[:3]), dtype=np.float32))
    faiss.write_index(index, str(folder / "index.faiss"))
    docs = {IDS[i]: Document(TEXTS[i], METADATAS[i]) for i in range(3)}
    with open(folder / "index.pkl", "wb") as f:
        pickle.dump((InMemoryDocstore(docs), {i: IDS[i] for i in range(3)}), f, protocol=2)
    store = LocalVectorStore.from_langchain_faiss(folder, EMB)
    assert [(d.id, d.page_content, d.metadata) for d in store.get_by_ids(IDS[:3])] == [
        (IDS[i], TEXTS[i], METADATAS[i]) for i in range(3)
    ]


# -- hostile and damaged files ------------------------------------------------------------------
@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize(
    ("payload", "named"),
    [
        (RunsCommand, r"(posix|nt)\.system"),
        (Evaluates, r"(builtins|__builtin__)\.eval"),
        (NotAllowed, r"tests\.integration\.faiss_dirs\.NotAllowed"),
    ],
    ids=["os.system", "eval", "other-class"],
)
def test_hostile_pickle_is_refused_before_it_runs(
    tmp_path: Path, payload: type, named: str, protocol: int
) -> None:
    marker = tmp_path / "pwned"
    folder = hostile_dir(
        tmp_path, payload(marker) if payload is not NotAllowed else NotAllowed(), protocol
    )
    existing = tmp_path / "existing"
    LocalVectorStore(EMB, existing, distance="l2").add_texts(["keep me"], ids=["k"])
    before = tree(existing)
    for path in (tmp_path / "new", existing, None):
        with pytest.raises(
            UnsafePickleError,
            match=rf"names {named}\b.*not loaded.*allow_dangerous_deserialization=True",
        ):
            LocalVectorStore.from_langchain_faiss(folder, EMB, path=path)
    assert not marker.exists()
    assert not (tmp_path / "new").exists()
    assert tree(existing) == before
    assert issubclass(UnsafePickleError, InvalidInputError)


def test_hostile_pickle_refused_by_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "pwned"
    folder = hostile_dir(tmp_path, RunsCommand(marker), pickle.DEFAULT_PROTOCOL)
    code = main(
        ["--provider", "fake", "-q", "--path", str(tmp_path / "store"), "import-faiss", str(folder)]
    )
    assert code == 1
    line = one_error_line(capsys.readouterr().err)
    assert (
        line.startswith("vectordb: error: ")
        and "system" in line
        and "--allow-dangerous-deserialization" in line
    )
    assert not marker.exists() and not (tmp_path / "store").exists()


def damage(folder: Path, name: str, how: str) -> None:
    path = folder / name
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "empty":
        path.write_bytes(b"")
    else:
        path.write_bytes(os.urandom(len(data)))


@pytest.mark.parametrize("how", ["truncated", "empty", "garbage"])
@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("index.faiss", r"cannot read .*index\.faiss as a FAISS index"),
        ("index.pkl", r"cannot read .*index\.pkl"),
    ],
)
def test_damaged_files_give_a_clear_error(
    tmp_path: Path, name: str, message: str, how: str
) -> None:
    folder = saved(FAISS.from_texts(TEXTS, EMB, ids=IDS), tmp_path / "faiss")
    damage(folder, name, how)
    with pytest.raises(InvalidInputError, match=message):
        LocalVectorStore.from_langchain_faiss(folder, EMB, path=tmp_path / "store")
    assert not (tmp_path / "store").exists()


def test_files_that_do_not_belong_together(tmp_path: Path) -> None:
    small = saved(FAISS.from_texts(TEXTS[:3], EMB), tmp_path / "small")
    big = saved(FAISS.from_texts(TEXTS, EMB), tmp_path / "big")
    (small / "index.pkl").write_bytes((big / "index.pkl").read_bytes())
    with pytest.raises(
        InvalidInputError,
        match=r"maps 12 index positions .* holds 3 vectors.*do not belong together",
    ):
        read_langchain_faiss(small)
    with open(big / "index.pkl", "wb") as f:
        pickle.dump({"not": "a pair"}, f)
    with pytest.raises(
        InvalidInputError, match="not the \\(docstore, index_to_docstore_id\\) pair"
    ):
        read_langchain_faiss(big)
    with pytest.raises(InvalidInputError, match="is not a directory"):
        read_langchain_faiss(tmp_path / "nowhere")


def test_several_vectors_for_one_id_are_refused(tmp_path: Path) -> None:
    fs = FAISS.from_texts(TEXTS[:3], EMB, ids=IDS[:3])
    fs.index_to_docstore_id[2] = IDS[0]
    with pytest.raises(InvalidInputError, match=r"several vectors map to the same document id"):
        LocalVectorStore.from_langchain_faiss(saved(fs, tmp_path / "faiss"), EMB)
