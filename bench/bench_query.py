"""Warm query latency, in process: the seed library and real libraries (library2).

    python -m bench.bench_query [--queries 200] [--library DIR]

Each timing is a whole `answer` call: embed + FAISS + BM25 + quote selection + the best
quotes reread token by token (when the model's answering rereads them). Each
library is measured twice in one run, questions embedded by the ONNX export (what the bot
uses) and by torch (the reference), for a side-by-side ratio. A 10,000-essay library is
measured by bench_scale.py.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import ROOT, SHARED_EVAL, index_dir, percentiles, save_result
from bot.answer.ask import answer
from bot.answer.broad import Broad
from bot.answer.engine import Engine
from bot.answer.late import TokenReader
from bot.answer.learned import Answering
from bot.answer.question import QueryReader, read_question
from bot.index.embed import Embedder
from bot.index.snapshot import Snapshot
from bot.settings import Settings

QUESTIONS = [
    json.loads(line)["question"]
    for path in (ROOT / "tests" / "data" / "dev.jsonl", ROOT / "eval" / "extra.jsonl")
    if path.exists()
    for line in path.read_text().splitlines()
    if line.strip()
]


def measure(
    read: QueryReader,
    reader: TokenReader,
    snap: Snapshot,
    queries: int,
    answering: Answering,
    broad: Broad | None,
) -> dict[str, float]:
    """Timings of `queries` questions; never declining, so the whole path is timed (the
    best quotes reread token by token when the answering reorders them; a question taken
    for broad answered with its essay's main points, as the engine does)."""
    answering = replace(answering, threshold=-1.0, decline=None)
    for q in QUESTIONS[:5]:
        answer(snap, read_question(snap, q, read), 3, answering=answering, broad=broad,
               reader=reader)  # fmt: skip
    samples = []
    embed_only = []
    for i in range(queries):
        q = QUESTIONS[i % len(QUESTIONS)]
        t = time.perf_counter()
        question = read_question(snap, q, read)
        t1 = time.perf_counter()
        answer(snap, question, 3, answering=answering, broad=broad, reader=reader)
        samples.append(time.perf_counter() - t)
        embed_only.append(t1 - t)
    return {**percentiles(samples), "embed_p50_ms": percentiles(embed_only)["p50_ms"]}


def both(engine: Engine, torch: Embedder, snap: Snapshot, queries: int) -> dict[str, Any]:
    """The ONNX question path and the torch one, interleaved runs on the same library."""
    onnx = measure(engine.embedder.read, engine.embedder.token_vectors, snap, queries,
                   engine.answering, engine.broad)  # fmt: skip

    def torch_read(texts: list[str]) -> list[tuple[np.ndarray, np.ndarray | None]]:
        return [(torch.embed_query_torch(t), None) for t in texts]

    ref = measure(torch_read, torch.token_vectors_torch, snap, queries, engine.answering,
                  engine.broad)  # fmt: skip
    return {**onnx, "torch": ref, "p95_ratio_onnx_to_torch": onnx["p95_ms"] / ref["p95_ms"]}


def measure_summaries(engine: Engine, queries: int) -> dict[str, dict[str, float]]:
    """Essay summary (stored), topic summary and perspectives, warm, on the seeds."""
    docs = list(engine.snapshot().docs)
    out = {}
    for name, call in (
        ("essay_summary", lambda i: engine.summary(docs[i % len(docs)])),
        ("topic", lambda i: engine.topic(QUESTIONS[i % len(QUESTIONS)])),
        ("perspectives", lambda i: engine.perspectives(QUESTIONS[i % len(QUESTIONS)])),
    ):
        for i in range(5):
            call(i)
        samples = []
        for i in range(queries):
            t = time.perf_counter()
            call(i)
            samples.append(time.perf_counter() - t)
        out[name] = percentiles(samples)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument(
        "--library", action="append", default=[], metavar="DIR",
        help="also time a real library (default: ../shared/eval/library2 when present)",
    )  # fmt: skip
    args = parser.parse_args()
    libraries = [Path(p) for p in args.library] or [
        p for p in (SHARED_EVAL / "library2",) if p.is_dir()
    ]
    with tempfile.TemporaryDirectory() as tmp:
        engine = Engine(Settings(index_dir=Path(tmp) / "index"))
        engine.index()
        engine.embedder.embed_query("make or load the ONNX export")
        assert engine.embedder.query_backend == "onnx", "the question export is missing"
        torch = Embedder()  # the same loaded model, questions through torch
        seeds = both(engine, torch, engine.snapshot(), args.queries)
        summaries = measure_summaries(engine, args.queries)
        real = {}
        for library in libraries:
            other = Engine(Settings(seeds_dir=library, index_dir=index_dir(library)),
                           engine.embedder)  # fmt: skip
            other.index()
            snap = other.snapshot()
            timings = both(other, torch, snap, args.queries)
            real[library.name] = {"passages": len(snap.passages), **timings}
    result = {
        "seed_library": {"passages": len(engine.snapshot().passages), **seeds},
        "libraries": real,
        "summaries": summaries,
    }
    save_result("query", result)


if __name__ == "__main__":
    main()
