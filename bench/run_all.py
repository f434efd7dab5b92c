"""Run every benchmark in turn (results land in bench/results/)."""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
for script in (
    "bench_query.py",
    "bench_cold.py",
    "bench_whosaid.py",
    "bench_index.py",
    "bench_scale.py",
    "bench_keypoints.py",
):
    print(f"== {script}", flush=True)
    subprocess.run([sys.executable, str(HERE / script), *sys.argv[1:]], check=True)
