"""LangChain's own retrievers over `LocalVectorStore` on disk, unchanged: SelfQuery (with
`VectorDBTranslator` and a fake LLM answering as the real query-constructor prompt asks),
ParentDocument, MultiVector, Ensemble (with BM25), TimeWeighted, and ``as_retriever`` with
each search type. Every result is compared with the same question answered by brute force
over the corpus (the model's vectors and NumPy, a plain Python predicate)."""

from __future__ import annotations

import asyncio
import datetime
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_classic.chains.query_constructor.schema import AttributeInfo
from langchain_classic.retrievers import (
    EnsembleRetriever,
    MultiVectorRetriever,
    ParentDocumentRetriever,
    TimeWeightedVectorStoreRetriever,
)
from langchain_classic.retrievers.multi_vector import SearchType
from langchain_classic.retrievers.self_query.base import SelfQueryRetriever
from langchain_classic.storage import LocalFileStore
from langchain_community.retrievers import BM25Retriever
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.language_models.fake import FakeListLLM
from langchain_core.stores import InMemoryStore
from langchain_core.structured_query import Comparator, Operator
from langchain_core.vectorstores.utils import maximal_marginal_relevance
from langchain_text_splitters import RecursiveCharacterTextSplitter
from pydantic import Field

from vectordb_manager import HashingEmbeddings, LocalVectorStore, VectorDBTranslator

Meta = dict[str, Any]


def movie(
    title: str, year: int, rating: float, genre: str, director: str, tags: list[str], text: str
) -> tuple[str, Meta]:
    meta = {"title": title, "year": year, "rating": rating, "genre": genre, "director": director}
    return text, {**meta, "tags": tags}


# fmt: off
MOVIES: list[tuple[str, Meta]] = [
    movie("Jurassic Park", 1993, 8.2, "science fiction", "Steven Spielberg",
          ["dinosaurs", "theme park"],
          "A team of scientists brings dinosaurs back to life on an island theme park."),
    movie("Toy Story", 1995, 8.3, "animation", "John Lasseter", ["toys", "friendship"],
          "Toys come to life when their owner is away, and a cowboy doll grows jealous of "
          "a new space ranger."),
    movie("The Matrix", 1999, 8.7, "science fiction", "Lana Wachowski", ["simulation", "robots"],
          "A hacker learns that the world he lives in is a simulation run by machines."),
    movie("Spirited Away", 2001, 8.6, "animation", "Hayao Miyazaki", ["spirits"],
          "A young girl wanders into a world of spirits and must work in a bathhouse to free "
          "her parents."),
    movie("My Neighbor Totoro", 1988, 8.1, "animation", "Hayao Miyazaki", ["spirits", "family"],
          "Two girls move to the countryside with their father and befriend the forest spirits."),
    movie("Inception", 2010, 8.8, "science fiction", "Christopher Nolan", ["dreams", "heist"],
          "A thief who steals secrets through dreams is given the task of planting an idea."),
    movie("Lady Bird", 2017, 7.4, "drama", "Greta Gerwig", ["family", "coming of age"],
          "A teenage girl lives through her last year of high school and her mother's worries."),
    movie("Barbie", 2023, 6.8, "comedy", "Greta Gerwig", ["toys"],
          "A doll living in a perfect plastic world starts to question her existence."),
    movie("Interstellar", 2014, 8.7, "science fiction", "Christopher Nolan", ["space", "family"],
          "Astronauts travel through a wormhole to find a new home for humanity."),
    movie("WALL-E", 2008, 8.4, "animation", "Andrew Stanton", ["robots", "space"],
          "A lonely robot left to clean up an abandoned Earth falls in love."),
    movie("Little Women", 2019, 7.8, "drama", "Greta Gerwig", ["family"],
          "Four sisters grow up in Massachusetts after the Civil War."),
    movie("Jurassic World", 2015, 6.9, "action", "Colin Trevorrow", ["dinosaurs", "theme park"],
          "Dinosaurs escape once more when a new hybrid species breaks out of a theme park."),
    movie("Jaws", 1975, 8.1, "thriller", "Steven Spielberg", ["shark", "ocean"],
          "A great white shark terrorizes a small beach town."),
]
# fmt: on

FIELDS = [
    AttributeInfo(name="title", description="The movie's title", type="string"),
    AttributeInfo(name="year", description="The year the movie was released", type="integer"),
    AttributeInfo(name="rating", description="A 1-10 rating for the movie", type="float"),
    AttributeInfo(name="genre", description="The genre of the movie", type="string"),
    AttributeInfo(name="director", description="The name of the director", type="string"),
    AttributeInfo(name="tags", description="Topics of the movie", type="list[string]"),
]


class Corpus:
    """Documents in a store on disk, and their vectors for answering by brute force."""

    def __init__(self, store: LocalVectorStore, embedding: Embeddings, docs: list[Document]):
        self.store = store
        self.embedding = embedding
        self.docs = docs
        self.vectors = _unit(np.asarray(embedding.embed_documents([d.page_content for d in docs])))

    def similarities(self, query: str) -> np.ndarray[Any, Any]:
        return self.vectors @ _unit(np.asarray(self.embedding.embed_query(query)))

    def ranked(self, query: str, keep: Callable[[Meta], bool] = lambda m: True) -> list[str]:
        """Ids of the documents passing ``keep``, closest to ``query`` first."""
        order = np.argsort(-self.similarities(query), kind="stable")
        return [self.docs[i].id for i in order if keep(self.docs[i].metadata)]  # type: ignore[misc]


def _unit(a: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return a / np.linalg.norm(a, axis=-1, keepdims=True)


def _build(tmp: Path, embedding: Embeddings, rows: list[tuple[str, Meta]]) -> Corpus:
    docs = [Document(text, metadata=meta, id=f"doc-{i}") for i, (text, meta) in enumerate(rows)]
    LocalVectorStore(embedding, tmp).add_documents(docs)
    return Corpus(LocalVectorStore(embedding, tmp), embedding, docs)  # reopened from disk


@pytest.fixture(scope="module")
def movies(minilm: Embeddings, tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return _build(tmp_path_factory.mktemp("movies"), minilm, MOVIES)


def ids(docs: list[Document]) -> list[str]:
    return [d.id for d in docs]  # type: ignore[misc]


# -- SelfQueryRetriever -------------------------------------------------------------------


class RecordingLLM(FakeListLLM):
    """A fake LLM giving fixed answers that keeps the prompts it was given."""

    prompts: list[str] = Field(default_factory=list)

    def _call(self, prompt: str, *args: Any, **kwargs: Any) -> str:
        self.prompts.append(prompt)
        return super()._call(prompt, *args, **kwargs)


def answer(query: str, filter_text: str | None, limit: int | None = None) -> str:
    """The LLM's answer in the form the query-constructor prompt asks for."""
    body: dict[str, Any] = {"query": query, "filter": filter_text or "NO_FILTER"}
    if limit is not None:
        body["limit"] = limit
    return f"```json\n{json.dumps(body, indent=4)}\n```"


def self_query(
    corpus: Corpus,
    llm_answer: str,
    *,
    fields: list[AttributeInfo] = FIELDS,
    translator: VectorDBTranslator | None = None,
    **kwargs: Any,
) -> tuple[SelfQueryRetriever, RecordingLLM]:
    llm = RecordingLLM(responses=[llm_answer])
    retriever = SelfQueryRetriever.from_llm(
        llm,
        corpus.store,
        "Brief summary of a movie",
        fields,
        structured_query_translator=translator or VectorDBTranslator(),
        search_kwargs={"k": len(corpus.docs)},
        **kwargs,
    )
    return retriever, llm


SELF_QUERIES: list[tuple[str, str, Callable[[Meta], bool]]] = [
    ("dinosaurs", 'eq("genre", "science fiction")', lambda m: m["genre"] == "science fiction"),
    ("family", 'ne("genre", "animation")', lambda m: m["genre"] != "animation"),
    ("space", 'and(gte("year", 1990), lt("year", 2000))', lambda m: 1990 <= m["year"] < 2000),
    ("", 'gt("rating", 8.5)', lambda m: m["rating"] > 8.5),
    ("spirits", 'lte("rating", 8.1)', lambda m: m["rating"] <= 8.1),
    (
        "girls",
        'in("director", ["Hayao Miyazaki", "Greta Gerwig"])',
        lambda m: m["director"] in ("Hayao Miyazaki", "Greta Gerwig"),
    ),
    (
        "robots",
        'nin("genre", ["animation", "drama"])',
        lambda m: m["genre"] not in ("animation", "drama"),
    ),
    (
        "dreams",
        'or(eq("director", "Christopher Nolan"), lt("year", 1990))',
        lambda m: m["director"] == "Christopher Nolan" or m["year"] < 1990,
    ),
    ("toys", 'not(eq("genre", "animation"))', lambda m: m["genre"] != "animation"),
    (
        "family",
        'and(not(eq("director", "Greta Gerwig")), or(gt("rating", 8.5), eq("year", 1988)))',
        lambda m: m["director"] != "Greta Gerwig" and (m["rating"] > 8.5 or m["year"] == 1988),
    ),
    (
        "theme park",
        'not(eq("genre", "action"), lt("year", 1990))',
        lambda m: not (m["genre"] == "action" or m["year"] < 1990),
    ),
    ("machines", 'contain("tags", "robots")', lambda m: "robots" in m["tags"]),
    ("island", 'contain("title", "Jurassic")', lambda m: "Jurassic" in m["title"]),
    ("world", 'like("title", "The %")', lambda m: m["title"].startswith("The ")),
    ("sisters", 'like("director", "Greta")', lambda m: "Greta" in m["director"]),
    ("a lonely robot in love", None, lambda m: True),  # type: ignore[list-item]
]


@pytest.mark.parametrize(("query", "filter_text", "keep"), SELF_QUERIES)
def test_self_query_returns_what_a_brute_force_filter_gives(
    movies: Corpus, query: str, filter_text: str | None, keep: Callable[[Meta], bool]
) -> None:
    retriever, _ = self_query(movies, answer(query, filter_text))
    expected = movies.ranked(query or " ", keep)  # the parser makes an empty query " "
    assert expected, "the case must select something"
    assert ids(retriever.invoke("the user's question")) == expected


def test_self_query_limit_keeps_the_closest(movies: Corpus) -> None:
    retriever, _ = self_query(
        movies, answer("spirits", 'eq("genre", "animation")', limit=2), enable_limit=True
    )
    expected = movies.ranked("spirits", lambda m: m["genre"] == "animation")
    assert len(expected) > 2
    assert ids(retriever.invoke("two animated films about spirits")) == expected[:2]


def test_self_query_async_gives_the_same_documents(movies: Corpus) -> None:
    retriever, _ = self_query(movies, answer("space", 'gte("rating", 8.4)'))
    found = asyncio.run(retriever.ainvoke("well rated space films"))
    assert ids(found) == movies.ranked("space", lambda m: m["rating"] >= 8.4)


def test_the_llm_is_offered_every_comparator_and_operator(movies: Corpus) -> None:
    retriever, llm = self_query(movies, answer("x", None))
    retriever.invoke("anything")
    (prompt,) = llm.prompts
    allowed = prompt.split("`comp` (", 1)[1].split(")", 1)[0]
    assert {c.strip() for c in allowed.split("|")} == {c.value for c in Comparator}
    allowed = prompt.split("`op` (", 1)[1].split(")", 1)[0]
    assert {o.strip() for o in allowed.split("|")} == {o.value for o in Operator}


def test_self_query_compares_dates_and_datetimes(minilm: Embeddings, tmp_path: Path) -> None:
    utc = datetime.UTC
    rows = [
        (
            text,
            {
                **meta,
                "released": datetime.date(meta["year"], 1 + i % 12, 1 + i),
                "seen": datetime.datetime(2024, 1 + i % 12, 1, 12, tzinfo=utc),
            },
        )
        for i, (text, meta) in enumerate(MOVIES)
    ]
    corpus = _build(tmp_path / "dated", minilm, rows)
    fields = [
        *FIELDS,
        AttributeInfo(name="released", description="The release date", type="date"),
        AttributeInfo(name="seen", description="When we watched it", type="datetime"),
    ]
    filter_text = (
        'and(gte("released", "2001-03-01"), lt("released", "2017-07-07"), '
        'lt("seen", "2024-06-01T12:00:00Z"))'
    )
    retriever, _ = self_query(corpus, answer("family", filter_text), fields=fields)
    start, end = datetime.date(2001, 3, 1), datetime.date(2017, 7, 7)
    seen_before = datetime.datetime(2024, 6, 1, 12, tzinfo=utc)
    expected = corpus.ranked(
        "family", lambda m: start <= m["released"] < end and m["seen"] < seen_before
    )
    assert 0 < len(expected) < len([r for r in rows if start <= r[1]["released"] < end])
    found = retriever.invoke("family films from spring 2001 to mid 2017 we saw before June")
    assert ids(found) == expected
    assert all(type(d.metadata["released"]) is datetime.date for d in found)

    # the LLM writes plain dates, also for a field holding datetimes: name it
    since = answer("family", 'gte("seen", "2024-06-01")')
    plain, _ = self_query(corpus, since, fields=fields)
    assert plain.invoke("seen since June") == []  # a date never equals or orders a datetime
    named = VectorDBTranslator(datetime_fields={"seen": utc})
    retriever, _ = self_query(corpus, since, fields=fields, translator=named)
    june = datetime.datetime(2024, 6, 1, tzinfo=utc)
    expected = corpus.ranked("family", lambda m: m["seen"] >= june)
    assert 0 < len(expected) < len(rows)
    assert ids(retriever.invoke("seen since June")) == expected


# -- ParentDocumentRetriever and MultiVectorRetriever -------------------------------------

PARENTS = [
    "Volcanoes form where magma rises through the crust. Basalt lava flows are runny and "
    "travel far from the vent. Andesite eruptions are explosive and throw ash into the sky. "
    "Geologists watch swelling ground and gas to forecast an eruption.",
    "Bread needs flour, water, salt and yeast. Kneading builds gluten so the dough can hold "
    "gas. A long cold proof deepens the flavour of the crumb. Bake it hot with steam so the "
    "crust can expand before it sets.",
    "Sailing upwind means tacking back and forth across the wind. Trim the jib until its "
    "telltales stream evenly. Reef the mainsail early when squalls approach. A good "
    "skipper keeps a lookout for shipping lanes and shallow water.",
]


@pytest.fixture
def hashing_store(tmp_path: Path) -> Iterator[LocalVectorStore]:
    yield LocalVectorStore(HashingEmbeddings(), tmp_path / "store")


def test_parent_document_retriever_returns_whole_parents(
    hashing_store: LocalVectorStore, tmp_path: Path
) -> None:
    # children in our store, parents in LangChain's file docstore: both survive the process
    splitter = RecursiveCharacterTextSplitter(chunk_size=90, chunk_overlap=0)
    retriever = ParentDocumentRetriever(
        vectorstore=hashing_store,
        byte_store=LocalFileStore(tmp_path / "parents"),
        child_splitter=splitter,
    )
    retriever.add_documents([Document(text, metadata={"n": i}) for i, text in enumerate(PARENTS)])

    children = hashing_store.similarity_search("telltales jib trim", k=100)
    assert len(children) > len(PARENTS)
    assert {c.metadata["doc_id"] for c in children} == set(retriever.docstore.yield_keys())
    assert children[0].page_content in PARENTS[2] and children[0].page_content != PARENTS[2]

    found = retriever.invoke("telltales jib trim")
    assert found[0].page_content == PARENTS[2] and found[0].metadata == {"n": 2}
    assert len({d.page_content for d in found}) == len(found)  # each parent once

    reopened = ParentDocumentRetriever(
        vectorstore=LocalVectorStore(HashingEmbeddings(), tmp_path / "store"),
        byte_store=LocalFileStore(tmp_path / "parents"),
        child_splitter=splitter,
    )
    assert reopened.invoke("kneading gluten dough")[0].page_content == PARENTS[1]


def test_parent_document_retriever_with_a_parent_splitter(
    hashing_store: LocalVectorStore,
) -> None:
    parent_splitter = RecursiveCharacterTextSplitter(chunk_size=130, chunk_overlap=0)
    retriever = ParentDocumentRetriever(
        vectorstore=hashing_store,
        docstore=InMemoryStore(),
        child_splitter=RecursiveCharacterTextSplitter(chunk_size=60, chunk_overlap=0),
        parent_splitter=parent_splitter,
        search_kwargs={"k": 2},
    )
    retriever.add_documents([Document(PARENTS[0])])
    parents = parent_splitter.split_text(PARENTS[0])
    assert len(parents) > 1
    (best, *_) = retriever.invoke("explosive andesite ash")
    assert best.page_content in parents and "explosive" in best.page_content


SUMMARIES = {
    "volcano": ["Geology of eruptions and magma", "How mountains of fire work"],
    "bread": ["Baking loaves at home", "Yeast dough fermentation"],
    "sailing": ["Handling a small yacht in wind", "Seamanship for beginners"],
}


def multi_vector(store: LocalVectorStore, **kwargs: Any) -> MultiVectorRetriever:
    retriever = MultiVectorRetriever(vectorstore=store, docstore=InMemoryStore(), **kwargs)
    retriever.docstore.mset(
        [(key, Document(text)) for key, text in zip(SUMMARIES, PARENTS, strict=True)]
    )
    store.add_documents(
        [
            Document(summary, metadata={"doc_id": key})
            for key, summaries in SUMMARIES.items()
            for summary in summaries
        ]
    )
    return retriever


@pytest.mark.parametrize(
    ("search_type", "search_kwargs"),
    [
        (SearchType.similarity, {"k": 2}),
        (SearchType.mmr, {"k": 2, "fetch_k": 6, "lambda_mult": 0.5}),
        (SearchType.similarity_score_threshold, {"score_threshold": 0.3, "k": 6}),
    ],
)
def test_multi_vector_retriever_finds_documents_by_their_summaries(
    hashing_store: LocalVectorStore, search_type: SearchType, search_kwargs: dict[str, Any]
) -> None:
    retriever = multi_vector(hashing_store, search_type=search_type, search_kwargs=search_kwargs)
    # "yeast dough" is in a summary of the bread text (and its text), "yacht" only in a summary
    found = retriever.invoke("yeast dough fermentation")
    assert found[0].page_content == PARENTS[1]
    assert retriever.invoke("small yacht wind")[0].page_content == PARENTS[2]
    assert "yacht" not in PARENTS[2]
    assert len({d.page_content for d in found}) == len(found)  # each parent once


def test_multi_vector_score_threshold_drops_the_unrelated(hashing_store: LocalVectorStore) -> None:
    retriever = multi_vector(
        hashing_store,
        search_type=SearchType.similarity_score_threshold,
        search_kwargs={"score_threshold": 0.75, "k": 6},  # relevance (1 + cosine) / 2
    )
    assert [d.page_content for d in retriever.invoke("baking loaves at home")] == [PARENTS[1]]
    assert retriever.invoke("quantum chromodynamics lattice") == []


# -- EnsembleRetriever --------------------------------------------------------------------

HELP_DESK = [
    "Error E4712 appears when the disk quota of a project has been exceeded.",
    "If you forgot your password, open the settings page and choose account recovery.",
    "The printer on the third floor needs new toner every month.",
    "Expense reports are due on the last Friday of each month.",
    "Invite colleagues to a shared project from the members tab.",
]


def test_ensemble_of_bm25_and_our_retriever_fuses_both_rankings(
    minilm: Embeddings, tmp_path: Path
) -> None:
    corpus = _build(tmp_path / "help", minilm, [(t, {"n": i}) for i, t in enumerate(HELP_DESK)])
    bm25 = BM25Retriever.from_documents(corpus.docs, k=2)
    dense = corpus.store.as_retriever(search_kwargs={"k": 2})
    ensemble = EnsembleRetriever(retrievers=[bm25, dense], weights=[0.5, 0.5])
    query = "I cannot remember my login secret E4712"

    by_words, by_meaning = bm25.invoke(query), dense.invoke(query)
    assert ids(by_meaning) == corpus.ranked(query)[:2]
    assert by_words[0].page_content == HELP_DESK[0]  # only the exact code finds it
    assert by_meaning[0].page_content == HELP_DESK[1]  # no word in common but the meaning
    score: dict[str, float] = {}
    for docs in (by_words, by_meaning):
        for rank, doc in enumerate(docs, start=1):
            score[doc.page_content] = score.get(doc.page_content, 0.0) + 0.5 / (rank + 60)
    expected = sorted(score, key=lambda text: -score[text])

    fused = ensemble.invoke(query)
    assert [d.page_content for d in fused] == expected
    assert {HELP_DESK[0], HELP_DESK[1]} <= set(expected)


# -- as_retriever with each search type ---------------------------------------------------

# fmt: off
REMAKES = [
    movie("Jurassic Park (remastered)", 2013, 8.2, "science fiction", "Steven Spielberg",
          ["dinosaurs"], "Scientists bring dinosaurs back to life in an island theme park."),
    movie("Jurassic Park (3D)", 2011, 8.0, "science fiction", "Steven Spielberg",
          ["dinosaurs"], "On an island theme park, scientists bring the dinosaurs back to life."),
]
# fmt: on


@pytest.fixture(scope="module")
def with_remakes(minilm: Embeddings, tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return _build(tmp_path_factory.mktemp("remakes"), minilm, MOVIES + REMAKES)


def test_as_retriever_similarity(with_remakes: Corpus) -> None:
    retriever = with_remakes.store.as_retriever(search_type="similarity", search_kwargs={"k": 3})
    assert (
        ids(retriever.invoke("dinosaurs in a theme park"))
        == with_remakes.ranked("dinosaurs in a theme park")[:3]
    )
    filtered = with_remakes.store.as_retriever(
        search_kwargs={"k": 3, "filter": {"genre": {"$ne": "science fiction"}}}
    )
    assert (
        ids(filtered.invoke("dinosaurs"))
        == with_remakes.ranked("dinosaurs", lambda m: m["genre"] != "science fiction")[:3]
    )


def test_as_retriever_mmr_trades_closeness_for_variety(with_remakes: Corpus) -> None:
    query, k, fetch_k, lambda_mult = "dinosaurs in a theme park", 3, 8, 0.3
    retriever = with_remakes.store.as_retriever(
        search_type="mmr", search_kwargs={"k": k, "fetch_k": fetch_k, "lambda_mult": lambda_mult}
    )
    closest = with_remakes.ranked(query)[:fetch_k]
    by_id = {d.id: i for i, d in enumerate(with_remakes.docs)}
    picked = maximal_marginal_relevance(
        _unit(np.asarray(with_remakes.embedding.embed_query(query))),
        [with_remakes.vectors[by_id[i]] for i in closest],
        lambda_mult=lambda_mult,
        k=k,
    )
    found = ids(retriever.invoke(query))
    assert found == [closest[i] for i in picked]
    assert found != closest[:k]  # the three near-identical Jurassic Parks are not all kept
    titles = [with_remakes.store.get_by_ids([i])[0].metadata["title"] for i in found]
    assert sum(t.startswith("Jurassic Park") for t in titles) < 3


def test_as_retriever_similarity_score_threshold(with_remakes: Corpus) -> None:
    query = "a robot falls in love"
    relevance = (1 + np.sort(with_remakes.similarities(query))[::-1]) / 2  # cosine's score
    threshold = float((relevance[2] + relevance[3]) / 2)  # exactly three documents pass
    retriever = with_remakes.store.as_retriever(
        search_type="similarity_score_threshold",
        search_kwargs={"score_threshold": threshold, "k": 10},
    )
    assert ids(retriever.invoke(query)) == with_remakes.ranked(query)[:3]
    filtered = with_remakes.store.as_retriever(
        search_type="similarity_score_threshold",
        search_kwargs={"score_threshold": threshold, "k": 10, "filter": {"genre": "animation"}},
    )
    expected = [
        i
        for i in with_remakes.ranked(query)[:3]
        if with_remakes.store.get_by_ids([i])[0].metadata["genre"] == "animation"
    ]
    assert expected and ids(filtered.invoke(query)) == expected


# -- TimeWeightedVectorStoreRetriever -----------------------------------------------------


def test_time_weighted_retriever_balances_relevance_and_recency(tmp_path: Path) -> None:
    now = datetime.datetime.now()
    old = Document(
        "basalt lava flows from the volcano vent",
        metadata={"last_accessed_at": now - datetime.timedelta(hours=48)},
    )
    new = Document("the volcano club meets on tuesdays", metadata={"last_accessed_at": now})
    query = "basalt lava flows from the volcano"

    def retriever(decay_rate: float) -> TimeWeightedVectorStoreRetriever:
        store = LocalVectorStore(HashingEmbeddings(), tmp_path / f"decay-{decay_rate}")
        r = TimeWeightedVectorStoreRetriever(vectorstore=store, decay_rate=decay_rate, k=1)
        r.add_documents([old, new])
        return r

    # relevance dominates when memories hardly fade; recency when they fade fast
    assert retriever(1e-6).invoke(query)[0].page_content == old.page_content
    assert retriever(0.5).invoke(query)[0].page_content == new.page_content


def test_time_weighted_retriever_stamps_the_time_and_resumes_from_disk(
    hashing_store: LocalVectorStore, tmp_path: Path
) -> None:
    # LangChain's own way (generative agents' memory): add_documents(..., current_time=...)
    # hands current_time down to the store's add_documents, which must accept it
    now = datetime.datetime(2024, 5, 1, 12, 0)
    retriever = TimeWeightedVectorStoreRetriever(vectorstore=hashing_store, decay_rate=1e-6, k=2)
    retriever.add_documents(
        [Document("lava and ash"), Document("dough and yeast")], current_time=now
    )
    stored = hashing_store.similarity_search("lava ash", k=1)[0]
    assert stored.metadata == {"last_accessed_at": now, "created_at": now, "buffer_idx": 0}
    found = retriever.invoke("lava ash")
    assert found[0].page_content == "lava and ash"
    assert found[0].metadata["last_accessed_at"] > now  # stamped again when retrieved

    # the memory stream lives in the retriever: a new process rebuilds it from the store
    store = LocalVectorStore(HashingEmbeddings(), tmp_path / "store")
    resumed = TimeWeightedVectorStoreRetriever(vectorstore=store, decay_rate=1e-6, k=2)
    docs = [d for batch in store.iter_documents() for d in batch]
    resumed.memory_stream = sorted(docs, key=lambda d: d.metadata["buffer_idx"])
    assert resumed.invoke("dough yeast")[0].page_content == "dough and yeast"
