"""Crash safety: `kill -9` a reindex inside each stage; the library keeps answering."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.answer.engine import Engine
from bot.index.embed import Embedder
from bot.index.generations import current_generation
from bot.settings import Settings
from tests.conftest import kill_at
from tests.published import assert_published

STAGES = ["embed", "write-sqlite", "write-bm25", "rename", "switch", "prune"]


def _essay(n: int) -> str:
    return (
        f"---\ntitle: Field report {n}\nauthor: Reporter {n}\n---\n"
        f"Report {n}: the trenches near the river were flooded again this week, and the "
        f"engineers spent {n + 2} nights pumping water while drones circled overhead. "
        "Supplies arrived late, but morale held because the rotation finally came.\n"
    )


#: Runs a reindex that reports each stage on stdout and, at the target stage, waits
#: (reading stdin) until the test kills it.
BUILD = """
import sys
from bot.index.build import build_index
from bot.index.embed import Embedder
from bot.settings import Settings

def progress(stage, done, total):
    print(stage, flush=True)
    if stage == sys.argv[1]:
        sys.stdin.read()

build_index(Settings.from_env(), Embedder(), progress=progress)
"""


def _check_answers(settings: Settings, embedder: Embedder) -> None:
    engine = Engine(settings, embedder)  # a fresh reader, as a new process would be
    assert current_generation(settings.index_dir) is not None
    ans = engine.ask("Why can't Putin afford to end the war?")
    assert any("afford to end the war" in e.quote for e in ans.excerpts)
    for ex in ans.excerpts:
        assert_published(ex.quote, ex.doc_id, settings.seeds_dir)


@pytest.mark.slow
def test_kill_during_each_stage(library: Path, private_index: Path, embedder: Embedder) -> None:
    settings = Settings(seeds_dir=library, index_dir=private_index)
    for n, stage in enumerate(STAGES):
        (library / f"report-{n}.md").write_text(_essay(n))
        kill_at(stage, BUILD, [], settings)
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
