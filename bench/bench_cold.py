"""Cold `ask`: wall time of a new process, and where it goes.

    python bench/bench_cold.py [--runs 3]

Runs `python bot.py ask` in fresh processes for the wall time, and a probe process that
times each phase: Python + the CLI's own imports, importing sentence-transformers/torch,
loading the model, loading the index, answering.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

from common import ROOT, save_result

PROBE = r"""
import json, time
t0 = time.perf_counter()
from bot.settings import Settings
from bot.engine import Engine
t1 = time.perf_counter()
import sentence_transformers  # noqa: F401
t2 = time.perf_counter()
engine = Engine(Settings.from_env())
engine.embedder.model
t3 = time.perf_counter()
engine.snapshot()
t4 = time.perf_counter()
engine.ask("Why can't Putin afford a peace deal?")
t5 = time.perf_counter()
print(json.dumps({"cli_imports_s": t1 - t0, "torch_and_st_import_s": t2 - t1,
                  "model_load_s": t3 - t2, "index_load_s": t4 - t3, "first_answer_s": t5 - t4}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    py = sys.executable
    subprocess.run([py, "bot.py", "index"], cwd=ROOT, check=True, capture_output=True)
    walls = []
    for _ in range(args.runs):
        t = time.perf_counter()
        subprocess.run([py, "bot.py", "ask", "Why can't Putin afford a peace deal?"],
                       cwd=ROOT, check=True, capture_output=True)  # fmt: skip
        walls.append(time.perf_counter() - t)
    phases = []
    for _ in range(args.runs):
        out = subprocess.run([py, "-c", PROBE], cwd=ROOT, check=True, capture_output=True,
                             text=True)  # fmt: skip
        phases.append(json.loads(out.stdout.strip().splitlines()[-1]))
    t = time.perf_counter()
    subprocess.run([py, "bot.py", "essays"], cwd=ROOT, check=True, capture_output=True)
    essays = time.perf_counter() - t
    result = {
        "ask_wall_s_median": statistics.median(walls),
        "essays_wall_s": essays,
        "phases_median": {k: statistics.median(p[k] for p in phases) for k in phases[0]},
    }
    save_result("cold", result)


if __name__ == "__main__":
    main()
