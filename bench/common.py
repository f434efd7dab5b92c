"""Helpers shared by the benchmarks: synthetic libraries and timing."""

from __future__ import annotations

import json
import random
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.ingest.documents import library_files, read_document

ROOT = Path(__file__).resolve().parent.parent

SEEDS = ROOT / "seeds"
SHARED_EVAL = ROOT.parent / "shared" / "eval"
INDEXES = Path(__file__).parent / "results" / "indexes"
#: Each leave-one-library-out fold's broad-question models (``train/fit_broad.py``).
BROAD_FOLDS = Path(__file__).parent / "results" / "broad"


def index_dir(library: Path) -> Path:
    """Where the benchmarks keep a library's index (kept between runs, rebuilt on change)."""
    import hashlib

    digest = hashlib.sha256(str(library.resolve()).encode()).hexdigest()[:8]
    return INDEXES / f"{library.name}-{digest}"


def seed_sentences() -> list[str]:
    """Every sentence-like piece of the seed essays."""
    out = []
    for path in library_files(SEEDS):
        doc = read_document(path)
        for p in doc.paragraphs:
            out.extend(s for s in re.split(r"(?<=[.!?])\s+", doc.text[p.start : p.end]) if s)
    return out


def synthetic_essays(n_essays: int, paragraphs: int, seed: int = 7) -> list[str]:
    """Essays made of shuffled seed sentences with a unique tag, so no passage repeats."""
    rng = random.Random(seed)
    pool = seed_sentences()
    essays = []
    for e in range(n_essays):
        paras = []
        for p in range(paragraphs):
            sents = rng.sample(pool, 3)
            paras.append(f"In note {e}-{p}, " + " ".join(sents))
        body = "\n\n".join(paras)
        essays.append(
            f"---\ntitle: Synthetic essay {e}\nauthor: Bench Writer {e % 17}\n---\n{body}\n"
        )
    return essays


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50 and p95 in milliseconds."""
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return {"p50_ms": statistics.median(ordered) * 1000, "p95_ms": p95 * 1000}


def save_result(name: str, result: dict[str, Any]) -> None:
    """Print a benchmark's result and keep it in bench/results/NAME.json."""
    text = json.dumps(result, indent=1)
    print(text, flush=True)
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / f"{name}.json").write_text(text)


def timed(fn: Callable[[], object]) -> float:
    """Seconds one call takes."""
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t
