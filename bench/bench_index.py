"""Indexing throughput against plain `model.encode`, and incremental add against a rebuild.

    python -m bench.bench_index [--essays 60] [--big-essays 700]

Both sides run in this process, on the same passages, one after the other, with the model
already loaded: the ratio is what the pipeline (parse, chunk, passage and sentence
embedding, cache, FAISS, BM25, atomic write) costs beyond the model itself.
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import save_result, synthetic_essays, timed
from bot.admin.library import LibraryAdmin
from bot.answer.engine import Engine
from bot.index.build import build_index
from bot.index.chunks import chunk_document
from bot.index.embed import Embedder
from bot.ingest.chunking import sentence_spans
from bot.ingest.documents import library_files, read_document
from bot.settings import Settings


def _library(folder: Path, essays: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, text in enumerate(essays):
        (folder / f"essay-{i:05d}.md").write_text(text, encoding="utf-8")


def _raw_encode(embedder: Embedder, texts: list[str]) -> None:
    """What the model costs on its own: sentence-transformers' `encode` (torch)."""
    embedder.model.encode(texts, batch_size=32, normalize_embeddings=True,
                          convert_to_numpy=True, show_progress_bar=False)  # fmt: skip


def throughput(embedder: Embedder, n_essays: int, library: Path | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        lib = library or Path(tmp) / "lib"
        if library is None:
            _library(lib, synthetic_essays(n_essays, 10))
        texts: list[str] = []
        sentences: list[str] = []
        for p in library_files(lib):
            chunks = chunk_document(read_document(p))
            t = chunks.texts
            texts.extend(t)
            for passage, text in zip(chunks.passages, t):
                sentences.extend(text[a:b] for a, b in sentence_spans(passage, chunks.sentences))
        _raw_encode(embedder, texts[:64])  # warm
        plain = timed(lambda: _raw_encode(embedder, texts))
        plain_sentences = timed(lambda: _raw_encode(embedder, sentences))
        settings = Settings(seeds_dir=lib, index_dir=Path(tmp) / "index")
        # The index path embeds through the checked ONNX export (made once per index
        # folder, timed apart), as Engine.index does.
        onnx = Embedder(query_dir=settings.index_dir / "query-model")
        export = timed(onnx.prepare_queries)
        pipeline = timed(lambda: build_index(settings, onnx))
    return {
        "library": str(library or "synthetic"),
        "export_once_s": export,
        "passages": len(texts),
        "sentences": len(sentences),
        "plain_encode_passages_s": plain,
        "plain_encode_sentences_s": plain_sentences,
        "pipeline_s": pipeline,
        "pipeline_passages_per_s": len(texts) / pipeline,
        # The pipeline embeds passages and, for quote selection, every sentence too.
        "ratio_vs_encode_passages": plain / pipeline,
        "ratio_vs_encode_same_texts": (plain + plain_sentences) / pipeline,
    }


def incremental(embedder: Embedder, n_essays: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        lib = Path(tmp) / "lib"
        essays = synthetic_essays(n_essays + 1, 10, seed=11)
        _library(lib, essays[:-1])
        settings = Settings(seeds_dir=lib, index_dir=Path(tmp) / "index")
        full = build_index(settings, embedder, force=True)
        (lib / "new-essay.md").write_text(essays[-1], encoding="utf-8")
        add = build_index(settings, embedder)
        shutil.rmtree(settings.index_dir)
        rebuild = build_index(settings, embedder)
    return {
        "library_passages": full.passages_embedded,
        "full_rebuild_s": rebuild.seconds,
        "incremental_add_s": add.seconds,
        "incremental_embedded": add.passages_embedded,
        "incremental_reused": add.passages_reused,
        "incremental_to_rebuild_ratio": add.seconds / rebuild.seconds,
    }


def _book(library: Path, words: int, seed: int = 13) -> str:
    """A new book of about `words` words: the library's sentences in a new order, ten to a
    paragraph, so every passage is new to the embedding cache."""
    rng = random.Random(seed)
    texts = [" ".join(read_document(p).text.split()) for p in library_files(library)]
    pool = [s for text in texts for s in re.split(r"(?<=[.!?])\s+", text) if s]
    out: list[str] = []
    count = 0
    while count < words:
        para = " ".join(rng.sample(pool, 10))
        out.append(para)
        count += len(para.split())
    return "---\ntitle: A Bench Book\nauthor: Bench Writer\n---\n" + "\n\n".join(out) + "\n"


def book_add(library: Path, words: int) -> dict[str, Any]:
    """Adding a book of `words` words to an indexed copy of `library` (incremental)."""
    with tempfile.TemporaryDirectory() as tmp:
        lib = Path(tmp) / "lib"
        shutil.copytree(library, lib)
        settings = Settings(seeds_dir=lib, index_dir=Path(tmp) / "index")
        engine = Engine(settings)
        base = engine.index()
        book = _book(library, words)
        admin = LibraryAdmin(engine)
        started = time.perf_counter()
        change = admin.add("a-bench-book.md", book.encode())
        seconds = time.perf_counter() - started
    return {
        "library_passages": base.passages_embedded, "book_words": len(book.split()),
        "book_passages": change.passages, "embedded": change.report.passages_embedded,
        "add_s": seconds,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--essays", type=int, default=60, help="throughput library size")
    parser.add_argument("--library", type=Path, help="a real library for the throughput run")
    parser.add_argument("--skip-incremental", action="store_true")
    parser.add_argument("--book-into", type=Path, help="time adding a book to this library")
    parser.add_argument("--book-words", type=int, default=100_000)
    parser.add_argument(
        "--big-essays", type=int, default=700, help="~8 passages each; 1250 makes 10,000"
    )
    args = parser.parse_args()
    embedder = Embedder()
    embedder.embed_query("warm up")
    result: dict[str, Any] = {"throughput": throughput(embedder, args.essays, args.library)}
    if not args.skip_incremental:
        result["incremental"] = incremental(embedder, args.big_essays)
    if args.book_into:
        result["book"] = book_add(args.book_into, args.book_words)
    save_result("index", result)


if __name__ == "__main__":
    main()
