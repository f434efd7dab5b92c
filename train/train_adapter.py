"""Train the question adapter: read the shared question sets, choose and fit it under
leave-one-library-out, report each held-out library, then fit on all and write the artifact.

    python -m train.train_adapter [--out bot/answer/trained/question_adapter.npz]

Nothing is chosen by looking at a held-out library: for each library held out, the
penalty that keeps W near the identity is chosen from :data:`REGS` by leave-one-library-out
*among the other libraries*, W is fitted on them with it, and only then is the held-out
library scored (dense retrieval of its answering passages, base vs adapted). Each fold's
adapter is kept in ``bench/results/adapters/`` for ``bench_quality.py --lolo``, which
scores the whole engine with it. The artifact is fitted on every library, its penalty
chosen the same way over all of them; it records the data's hash, the commit, the
options and the LOLO figures.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from train.adapter import FitOptions, dense_recall, fit
from train.data import ROOT, LibrarySet, available, data_hash, load, shared_embedder

DEFAULT_OUT = ROOT / "bot" / "answer" / "trained" / "question_adapter.npz"
FOLDS = ROOT / "bench" / "results" / "adapters"
#: The penalties weighed (the weight of ||W - I||^2); one is chosen per fit, by LOLO.
REGS = (0.03, 0.1, 0.3)


def choose_reg(sets: list[LibrarySet], options: FitOptions) -> tuple[float, dict[float, int]]:
    """The penalty whose adapters, each fitted with one of `sets` left out, find the most
    answering passages in the top 3 of the library left out (ties: the stronger one)."""
    found = {}
    for reg in REGS:
        opts = replace(options, reg=reg)
        found[reg] = sum(
            dense_recall(held, fit([s for s in sets if s is not held], opts))["top3"]
            for held in sets
        )
    best = max(REGS, key=lambda r: (found[r], r))
    return best, found


def lolo(sets: list[LibrarySet], options: FitOptions) -> dict[str, dict[str, object]]:
    """Each library scored by an adapter chosen and fitted on the other libraries only;
    each fold's adapter is saved for the engine-level benchmark."""
    FOLDS.mkdir(parents=True, exist_ok=True)
    out: dict[str, dict[str, object]] = {}
    for held in sets:
        others = [s for s in sets if s is not held]
        reg, _ = choose_reg(others, options)
        w = fit(others, replace(options, reg=reg))
        np.save(FOLDS / f"{held.name}.npy", w)
        out[held.name] = {"reg": reg, "base": dense_recall(held, None),
                          "adapted": dense_recall(held, w)}  # fmt: skip
        print(held.name, len(held.questions), out[held.name], flush=True)
    return out


def _commit() -> str:
    done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    started = time.perf_counter()
    embedder = shared_embedder()
    names = available()
    sets = [load(n, embedder) for n in names]
    options = FitOptions()
    figures = lolo(sets, options)
    reg, by_reg = choose_reg(sets, options)
    w = fit(sets, replace(options, reg=reg))
    provenance = {
        "data_sha256": data_hash(names), "commit": _commit(), "libraries": names,
        "questions": {s.name: len(s.questions) for s in sets},
        "options": {**options.__dict__, "reg": reg}, "reg_by_lolo_top3": by_reg,
        "lolo_dense_recall": figures, "model": embedder.key,
        "seconds": round(time.perf_counter() - started, 1),
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, w=w.astype(np.float16), provenance=json.dumps(provenance))
    print(json.dumps(provenance["options"]), f"wrote {args.out}")


if __name__ == "__main__":
    main()
