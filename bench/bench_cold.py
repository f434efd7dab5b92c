"""Cold `ask`: wall time of a new process, and where it goes.

    python -m bench.bench_cold [--runs 3]

Runs `python bot.py ask` in fresh processes for the wall time, and a probe process that
times each phase: Python + the CLI's own imports, loading the index, loading the question
model (the ONNX export; torch is never imported), answering. A second probe times what the
torch path would add (importing sentence-transformers and torch, loading the model).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

from bench.common import ROOT, save_result

PROBE = r"""
import json, sys, time
t0 = time.perf_counter()
from bot.settings import Settings
from bot.answer.engine import Engine
t1 = time.perf_counter()
engine = Engine(Settings.from_env())
engine.snapshot()
t2 = time.perf_counter()
engine.embedder.embed_query("load the question model")
t3 = time.perf_counter()
engine.ask("Why can't Putin afford a peace deal?")
t4 = time.perf_counter()
assert "torch" not in sys.modules
print(json.dumps({"cli_imports_s": t1 - t0, "index_load_s": t2 - t1,
                  "question_model_load_s": t3 - t2, "first_answer_s": t4 - t3}))
"""

#: What a question cost a new process before the ONNX export: torch's path.
TORCH_PROBE = r"""
import json, time
t0 = time.perf_counter()
import sentence_transformers  # noqa: F401
t1 = time.perf_counter()
from bot.index.embed import Embedder
e = Embedder()
e.embed_query_torch("load the model")
t2 = time.perf_counter()
print(json.dumps({"torch_and_st_import_s": t1 - t0, "torch_model_load_s": t2 - t1}))
"""


def _probe(code: str, runs: int) -> dict[str, float]:
    """Median phase times of `runs` new processes running `code`."""
    runs_out = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True,
                             capture_output=True, text=True)  # fmt: skip
        runs_out.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {k: statistics.median(p[k] for p in runs_out) for k in runs_out[0]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    py = sys.executable
    subprocess.run([py, "bot.py", "index"], cwd=ROOT, check=True, capture_output=True)
    # The first question after an index is built makes the ONNX export (once): not timed.
    subprocess.run([py, "bot.py", "ask", "warm up"], cwd=ROOT, check=True, capture_output=True)
    walls = []
    for _ in range(args.runs):
        t = time.perf_counter()
        subprocess.run([py, "bot.py", "ask", "Why can't Putin afford a peace deal?"],
                       cwd=ROOT, check=True, capture_output=True)  # fmt: skip
        walls.append(time.perf_counter() - t)
    phases = _probe(PROBE, args.runs)
    torch_phases = _probe(TORCH_PROBE, args.runs)
    t = time.perf_counter()
    subprocess.run([py, "bot.py", "essays"], cwd=ROOT, check=True, capture_output=True)
    essays = time.perf_counter() - t
    result = {
        "ask_wall_s_median": statistics.median(walls),
        "essays_wall_s": essays,
        "phases_median": phases,
        "torch_path_median": torch_phases,
    }
    save_result("cold", result)


if __name__ == "__main__":
    main()
