"""Hybrid search with the real model: an identifier the embedding misses is found by keyword
and by hybrid search."""

from __future__ import annotations

from langchain_core.embeddings import Embeddings

from vectordb_manager import LocalVectorStore

# error codes look alike to the model; the release note that names ERR_CONN_RESET is mostly
# about other things, so its vector is far from the code's
TEXTS = [
    "Release notes for March: the dashboard got a dark theme, invoices can be exported as "
    "PDF, search is faster, and the uploader now reports ERR_CONN_RESET instead of hanging.",
    "ERR_NAME_NOT_RESOLVED: the browser could not find the server's address; check DNS.",
    "ERR_CERT_DATE_INVALID means the server's certificate has expired.",
    "ERR_TIMED_OUT: the server took too long to answer the request.",
    "ERR_CONNECTION_REFUSED: nothing is listening on that port.",
    "ERR_NETWORK_CHANGED: the network switched while the page was loading.",
    "ERR_ADDRESS_UNREACHABLE: no route to the host.",
    "A TCP connection was closed abruptly by the peer, so the client had to reconnect.",
    "The remote server dropped the network connection in the middle of the upload.",
    "A broken pipe means the other side closed the socket while we were writing.",
]


def test_an_identifier_the_model_misses_is_found_by_keyword_and_hybrid(minilm: Embeddings) -> None:
    store = LocalVectorStore(minilm)
    store.add_texts(TEXTS, ids=[str(i) for i in range(len(TEXTS))])
    query = "ERR_CONN_RESET"
    assert "0" not in [d.id for d in store.similarity_search(query, k=3)]  # the model misses it
    assert store.keyword_search(query, k=1)[0].id == "0"
    assert "0" in [d.id for d in store.hybrid_search(query, k=3)]
    assert store.hybrid_search(query, k=1, fusion="weighted")[0].id == "0"
    retriever = store.as_retriever(search_type="hybrid", search_kwargs={"k": 3})
    assert "0" in [d.id for d in retriever.invoke(query)]
