"""Crash safety: `kill -9` a reindex inside each stage; the library keeps answering."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.index.embed import Embedder
from bot.answer.engine import Engine
from bot.settings import ROOT, Settings
from bot.index.store import current_generation

STAGES = ["embed", "write-sqlite", "write-bm25", "rename", "switch", "prune"]


def _essay(n: int) -> str:
    return (
        f"---\ntitle: Field report {n}\nauthor: Reporter {n}\n---\n"
        f"Report {n}: the trenches near the river were flooded again this week, and the "
        f"engineers spent {n + 2} nights pumping water while drones circled overhead. "
        "Supplies arrived late, but morale held because the rotation finally came.\n"
    )


def _run_until(stage: str, settings: Settings, hook: Path) -> None:
    hook.write_text("")
    env = {
        **os.environ,
        "SEEDS_DIR": str(settings.seeds_dir),
        "INDEX_DIR": str(settings.index_dir),
        "BOT_INDEX_HOOK_FILE": str(hook),
        "BOT_INDEX_HOOK_SLEEP": "1.5",
    }
    proc = subprocess.Popen(
        [sys.executable, "bot.py", "index"], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.time() + 120
    try:
        while stage not in hook.read_text().split():
            if proc.poll() is not None:
                raise AssertionError(f"index ended before {stage}: {proc.stderr.read()!r}")
            if time.time() > deadline:
                raise AssertionError(f"never reached {stage}")
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def _check_answers(settings: Settings, embedder: Embedder) -> None:
    engine = Engine(settings, embedder)  # a fresh reader, as a new process would be
    assert current_generation(settings.index_dir) is not None
    ans = engine.ask("Why can't Putin afford to end the war?")
    assert any("afford to end the war" in e.quote for e in ans.excerpts)
    snap = engine.snapshot()
    for ex in ans.excerpts:
        assert snap.docs[ex.doc_id].text[ex.start : ex.end] == ex.quote


@pytest.mark.slow
def test_kill_during_each_stage(library: Path, tmp_path: Path, embedder: Embedder) -> None:
    settings = Settings(seeds_dir=library, index_dir=tmp_path / "index")
    Engine(settings, embedder).index()
    hook = tmp_path / "stages.txt"
    for n, stage in enumerate(STAGES):
        (library / f"report-{n}.md").write_text(_essay(n))
        _run_until(stage, settings, hook)
        _check_answers(settings, embedder)
    # The next reindex completes the work and cleans up what the killed ones left.
    engine = Engine(settings, embedder)
    report = engine.index()
    assert report.rebuilt or not engine.is_stale()
    assert not engine.is_stale()
    assert not list(settings.index_dir.glob(".tmp-*"))
    snap = engine.snapshot()
    assert {f"report-{n}" for n in range(len(STAGES))} <= set(snap.docs)
    ans = engine.ask("Who pumped water out of the flooded trenches?")
    assert ans.excerpts and ans.excerpts[0].doc_id.startswith("report-")
