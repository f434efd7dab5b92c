"""Run every benchmark in turn (results land in bench/results/).

python -m bench.run_all
"""

import subprocess
import sys

from bench.common import ROOT

for module in (
    "bench_query",
    "bench_cold",
    "bench_whosaid",
    "bench_index",
    "bench_scale",
    "bench_keypoints",
):
    print(f"== {module}", flush=True)
    subprocess.run([sys.executable, "-m", f"bench.{module}", *sys.argv[1:]], cwd=ROOT, check=True)
