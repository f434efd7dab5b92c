"""Key points of one book-length essay: time and peak memory at MAX_ESSAY_SENTENCES.

    python -m bench.bench_keypoints [--sentences 50000]

The essay is the seeds' own sentences repeated to the length asked, chunked as the index
chunks it; its sentence vectors are random unit vectors (embedding 50,000 sentences takes
the model minutes and does not change what is measured: the key-point step's memory and
time). Prints the step's peak memory (tracemalloc) and time, beside the size the whole
similarity matrix would have (what the step held before it worked in blocks).
"""

from __future__ import annotations

import argparse
import json
import time
import tracemalloc

import numpy as np

from bench.common import ROOT, seed_sentences
from bot.index.chunks import chunk_document
from bot.index.keypoints import BLOCK, essay_summary_points
from bot.ingest.documents import parse_document


def book(n: int) -> str:
    """An essay of about `n` sentences, in paragraphs of five."""
    pool = [s for s in seed_sentences() if len(s.split()) >= 8 and s[-1] in ".!?"]
    sentences = [pool[i % len(pool)] for i in range(n)]
    body = "\n\n".join(" ".join(sentences[i : i + 5]) for i in range(0, n, 5))
    return f"---\ntitle: A long book\nauthor: A. Writer\n---\n{body}\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=50_000)
    args = parser.parse_args()
    doc = parse_document(book(args.sentences), doc_id="book", path="book.md")
    started = time.perf_counter()
    chunks = chunk_document(doc, max_sentences=10**9)
    chunked = time.perf_counter() - started
    rng = np.random.default_rng(0)
    for passage in chunks.passages:
        vecs = rng.normal(size=(len(passage.sentences), 384)).astype(np.float32)
        chunks.sentence_vectors.append(vecs / np.linalg.norm(vecs, axis=1, keepdims=True))
    tracemalloc.start()
    started = time.perf_counter()
    points = essay_summary_points(chunks)
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    n = len(chunks.sentences)
    result = {
        "sentences": n, "points": len(points), "block": BLOCK,
        "key_points_seconds": round(seconds, 2), "key_points_peak_mb": round(peak / 1e6, 1),
        "whole_matrix_mb": round(n * n * 4 / 1e6), "chunking_seconds": round(chunked, 2),
    }  # fmt: skip
    print(json.dumps(result, indent=1))
    out = ROOT / "bench" / "results" / "keypoints.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
