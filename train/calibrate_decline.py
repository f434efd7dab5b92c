"""Learn the decline threshold for each LOLO fold's tuned model from the libraries it was
trained on (never the one it is scored on), by a rule fixed beforehand: the threshold is
the 1st percentile of the best passage cosine of those libraries' in-scope questions
(about 1% of answerable questions declined, the goal being none).

    python -m train.calibrate_decline EXPORT_DIR

EXPORT_DIR is ``train/probe_finetune.py export``'s (the libraries' passage texts and
questions). Writes ``bench/results/lora/thresholds.json`` for ``bench_quality.py --lolo``.
Each fold's model embeds every other library's passages (about 16,000) through its
checked ONNX export.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import numpy as np

from train.data import INDEXES, available, library_folder
from train.lora_artifact import FOLDS

QUANTILE = 0.01


def best_cosines(fold: str, libs: dict[str, dict[str, list]]) -> list[float]:  # type: ignore[type-arg]
    """The best passage cosine of each in-scope question of every library but `fold`,
    under the model tuned without `fold`."""
    from bot.answer.engine import Engine
    from bot.index.embed import Embedder
    from bot.settings import Settings
    from train.data import index_dir

    embedder = Embedder(query_dir=INDEXES / "query-model", tuning=str(FOLDS / f"{fold}.npz"))
    out = []
    for name, lib in libs.items():
        if name == fold:
            continue
        folder = library_folder(name)
        # The library's untuned index, for the names `ask` reads in a question; the
        # vectors are this fold's model's, as its engine would search with them.
        engine = Engine(Settings(seeds_dir=folder, index_dir=index_dir(folder)), embedder)
        snap = engine.snapshot()
        passages = embedder.embed_texts(lib["passages"])
        for question in lib["questions"]:
            out.append(float(np.max(passages @ engine.question_vector(snap, question))))
    return out


def main() -> None:
    export = Path(sys.argv[1])
    with gzip.open(export / "data.json.gz", "rt") as f:
        libs = json.load(f)
    thresholds = {}
    for fold in available():
        sims = best_cosines(fold, libs)
        thresholds[fold] = round(float(np.quantile(sims, QUANTILE)), 4)
        print(fold, thresholds[fold], len(sims), flush=True)
    (FOLDS / "thresholds.json").write_text(json.dumps(thresholds, indent=1))


if __name__ == "__main__":
    main()
