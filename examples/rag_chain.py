"""A retrieval-augmented generation (RAG) chain in LangChain's LCEL over a vectordb-manager store.

What it shows:

* the store as a LangChain retriever (``as_retriever(search_kwargs={"k": 3})``);
* the usual chain ``retriever | format_docs | prompt | llm | StrOutputParser()``, wrapped so
  the answer comes back *with the documents it was built from* (its sources);
* where a real chat model plugs in.

There is no language model here (no network, no API key), so the "LLM" is a clearly labelled
stand-in: `ExtractiveAnswerer` reads the prompt a chat model would receive and answers with the
context sentence closest to the question (using the same offline embedding model), citing its
context number. To use a real model, replace one line (see ``build_llm``)::

    from langchain_openai import ChatOpenAI          # pip install langchain-openai
    llm = ChatOpenAI(model="gpt-4o-mini", temperature=0)   # reads OPENAI_API_KEY

Run it from the repository root::

    HF_HUB_OFFLINE=1 .venv/bin/python examples/rag_chain.py
    HF_HUB_OFFLINE=1 .venv/bin/python examples/rag_chain.py "How do I make an omelette?"
    HF_HUB_OFFLINE=1 .venv/bin/python examples/rag_chain.py --store ./kb   # reuse a store
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from collections.abc import Sequence
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.messages import AIMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompt_values import PromptValue
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnableLambda, RunnableParallel, RunnablePassthrough

from vectordb_manager import VectorDatabaseManager, VectorDBConfig

HERE = Path(__file__).resolve().parent
DOCUMENTS = [HERE / "documents", HERE / "more_documents"]
QUESTIONS = [
    "How long should bread dough rise?",
    "How can two writers commit to S3 without a lock?",
    "Where do the S3 credentials come from?",
    "Why should I never unpickle a file from the internet?",
]

PROMPT = ChatPromptTemplate.from_messages(
    [
        (
            "system",
            "Answer the question using only the numbered context below and cite the numbers "
            "you used, like [2]. If the context does not hold the answer, say you don't know.",
        ),
        ("human", "Context:\n\n{context}\n\nQuestion: {question}"),
    ]
)
_BLOCK = re.compile(r"^\[(\d+)\] [^\n]*\n(.*?)(?=^\[\d+\] |\Z)", re.MULTILINE | re.DOTALL)
# sentence ends, blank lines, and the "column: value" lines of a CSV row
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n\s*\n|\n(?=[\w ]+: )")


def where(doc: Document) -> str:
    """The file a chunk came from and where in it: ``rag_guide.md > Chunking``, ``line 3``..."""
    meta = doc.metadata
    name = Path(str(meta.get("source", "?"))).name
    if "headers" in meta:
        return f"{name} > {str(meta['headers']).split(' > ')[-1]}"
    for key in ("row", "line", "record", "page"):
        if key in meta:
            return f"{name} {key} {meta[key]}"
    return name


def format_docs(docs: list[Document]) -> str:
    """Number the retrieved documents for the prompt: ``[1] s3.txt`` then the text."""
    return "\n\n".join(f"[{i}] {where(doc)}\n{doc.page_content}" for i, doc in enumerate(docs, 1))


class ExtractiveAnswerer:
    """STAND-IN FOR A REAL CHAT MODEL: answers with the best-matching sentence of the context.

    It takes the prompt a chat model would get (a `PromptValue`) and returns an `AIMessage`,
    so it slots into a chain exactly where ``ChatOpenAI(...)`` would. It generates nothing:
    it embeds every sentence of the numbered context and returns the one closest to the
    question, followed by its citation, or "I don't know" when nothing is close enough.
    """

    def __init__(self, embeddings: Embeddings, min_similarity: float = 0.3) -> None:
        self.embeddings = embeddings
        self.min_similarity = min_similarity

    def __call__(self, prompt: PromptValue) -> AIMessage:
        text = str(prompt.to_messages()[-1].content)
        context, _, question = text.rpartition("\n\nQuestion: ")
        candidates: list[tuple[str, str, str]] = []  # (sentence, citation, text to match)
        for match in _BLOCK.finditer(context.removeprefix("Context:\n\n")):
            previous = ""
            for piece in _SENTENCE_END.split(match.group(2)):
                sentence = " ".join(piece.split())  # unwrap hard-wrapped lines
                if not sentence:
                    continue
                # Headings and a FAQ's questions are not answers, but they say what the next
                # sentence is about: each sentence is matched together with the one before.
                if not (sentence.startswith("#") or sentence.endswith("?")):
                    candidates.append((sentence, match.group(1), f"{previous} {sentence}"))
                previous = sentence
        if not candidates:
            return AIMessage(content="I don't know: the context is empty.")
        query = np.asarray(self.embeddings.embed_query(question))
        vectors = np.asarray(self.embeddings.embed_documents([t for _, _, t in candidates]))
        similarity = (
            vectors @ query / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(query) + 1e-12)
        )
        best = int(np.argmax(similarity))
        if similarity[best] < self.min_similarity:
            return AIMessage(content="I don't know: the context does not say.")
        sentence, number, _ = candidates[best]
        return AIMessage(content=f"{sentence} [{number}]")


def build_llm(embeddings: Embeddings) -> Runnable[PromptValue, AIMessage]:
    """The chat model of the chain: here the extractive stand-in.

    For a real model, return it instead, e.g.::

        from langchain_openai import ChatOpenAI
        return ChatOpenAI(model="gpt-4o-mini", temperature=0)
    """
    return RunnableLambda(ExtractiveAnswerer(embeddings)).with_config(
        run_name="ExtractiveAnswerer (stand-in for a chat model)"
    )


def build_chain(retriever: BaseRetriever, llm: Runnable[Any, Any]) -> Runnable[str, dict[str, Any]]:
    """question -> {"question", "docs", "answer"}: the answer keeps the documents it used.

    Without sources, the same chain is the familiar one-liner::

        {"context": retriever | format_docs, "question": RunnablePassthrough()}
        | PROMPT | llm | StrOutputParser()
    """
    context = itemgetter("docs") | RunnableLambda(format_docs)
    answer = (
        {"context": context, "question": itemgetter("question")} | PROMPT | llm | StrOutputParser()
    )
    return RunnableParallel(docs=retriever, question=RunnablePassthrough()).assign(answer=answer)


def run(store_dir: Path, questions: Sequence[str]) -> None:
    """Ingest the example documents into ``store_dir`` (incrementally) and answer questions."""
    config = VectorDBConfig(local_path=str(store_dir), chunk_size=500, chunk_overlap=50)
    with VectorDatabaseManager(config) as db:
        report = db.ingest(DOCUMENTS)
        print(f"store: {store_dir}: {db.count()} chunks ({report.texts_embedded} embedded now)\n")
        retriever = db.as_retriever(search_kwargs={"k": 3})
        chain = build_chain(retriever, build_llm(db.embedding_service))
        for question in questions:
            result = chain.invoke(question)
            print(f"Q: {result['question']}")
            print(f"A: {result['answer']}")
            print("   sources:")
            for i, doc in enumerate(result["docs"], 1):
                print(f"     [{i}] {where(doc)}")
            print()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("questions", nargs="*", default=QUESTIONS, help="questions to answer")
    parser.add_argument(
        "--store", type=Path, help="keep the store in this directory (default: a temporary one)"
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model ships in a package: no downloads
    if args.store is not None:
        run(args.store, args.questions)
    else:
        with tempfile.TemporaryDirectory(prefix="vdbm-rag-") as tmp:
            run(Path(tmp) / "store", args.questions)
    return 0


if __name__ == "__main__":
    sys.exit(main())
