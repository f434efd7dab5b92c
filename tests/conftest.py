"""Shared fixtures: settings pointing at temporary folders, the real model loaded once."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import settings as hypothesis_settings

from bot.answer.engine import Engine
from bot.answer.question import Question, read_question
from bot.index.embed import Embedder
from bot.settings import ROOT, Settings
from tests.discord_rules import OpenAPISpec

# Property tests: in CI every run tries the same examples (a seed fixed per test), so a
# red build always means a real regression; failures found while exploring locally are
# kept in the test as @example(...) so CI replays them. Local runs keep exploring.
hypothesis_settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
hypothesis_settings.register_profile("dev", deadline=None)
hypothesis_settings.load_profile("ci" if os.environ.get("CI") else "dev")

SEEDS = ROOT / "seeds"
DATA = Path(__file__).resolve().parent / "data"
#: The seed essays as first published, before front matter was added (a copy).
RAW_SEEDS = DATA / "raw-seeds"
#: The first question set, written for the seeds by someone else (a copy).
DEV_EVAL = DATA / "dev.jsonl"
EXTRA_EVAL = ROOT / "eval" / "extra.jsonl"


def asked(snap: Any, text: str, vector: np.ndarray | None = None) -> Question:
    """A question read as the engine reads it (its words, names, form), with a vector
    given here instead of the model's (a zero vector when none is given)."""
    v = np.zeros(384, dtype=np.float32) if vector is None else vector
    return read_question(snap, text, lambda texts: [(v, None) for _ in texts])


@pytest.fixture(autouse=True)
def root_log_handlers() -> Iterator[None]:
    """A test that runs the bot leaves no handler on the root logger (discord.py's
    ``setup_logging`` adds one) writing to a stream the test captured and closed."""
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    yield
    for handler in root.handlers[:]:
        if handler not in before:
            root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture(autouse=True)
def env_setup(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every test gets its own index folder and ignores any developer `.env`."""
    monkeypatch.setenv("ENV_FILE", str(tmp_path / "no.env"))
    monkeypatch.setenv("INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("SEEDS_DIR", str(SEEDS))
    for key in ("DISCORD_TOKEN", "DISCORD_GUILD_ID", "ADMIN_ROLE", "ADMIN_ROLE_ID",
                "ADMIN_GUILD_IDS", "MODEL", "TOP_K", "ABSTAIN_THRESHOLD"):  # fmt: skip
        monkeypatch.delenv(key, raising=False)


@pytest.fixture(scope="session")
def seed_index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of the session's seed index (and of the model's question export)."""
    return tmp_path_factory.mktemp("seed-index")


@pytest.fixture(scope="session")
def embedder(seed_index_dir: Path) -> Embedder:
    """The real bundled model, loaded once per session; questions use its ONNX export."""
    emb = Embedder(query_dir=seed_index_dir / "query-model")
    emb.embed_query("warm up")
    return emb


@pytest.fixture(scope="session")
def seed_index(seed_index_dir: Path, embedder: Embedder) -> Path:
    """An index of the bundled seeds, built once per session (tests must not change it)."""
    Engine(Settings(seeds_dir=SEEDS, index_dir=seed_index_dir), embedder).index()
    return seed_index_dir


@pytest.fixture
def engine(seed_index: Path, embedder: Embedder) -> Engine:
    """An engine on the seed library (read-only use)."""
    return Engine(Settings(seeds_dir=SEEDS, index_dir=seed_index), embedder)


@pytest.fixture
def library(tmp_path: Path) -> Path:
    """A writable copy of the seed library."""
    folder = tmp_path / "library"
    shutil.copytree(SEEDS, folder)
    return folder


@pytest.fixture
def private_index(seed_index: Path, tmp_path: Path) -> Path:
    """A copy of the session's seed index (and its embedding cache), free to change."""
    folder = tmp_path / "own-index"
    shutil.copytree(seed_index, folder, ignore=shutil.ignore_patterns(".lock", "query-model"))
    return folder


@pytest.fixture
def private_engine(library: Path, private_index: Path, embedder: Embedder) -> Engine:
    """An engine with its own library copy and index, free to change."""
    return Engine(Settings(seeds_dir=library, index_dir=private_index), embedder)


def pytest_report_header() -> str:
    """Say whether request bodies are checked against Discord's OpenAPI description."""
    spec = OpenAPISpec()
    if spec.available:
        return f"Discord OpenAPI check: on ({spec.path})"
    return f"Discord OpenAPI check: skipped ({spec.path} not found; CI has it)"


def kill_at(stage: str, script: str, args: list[str], settings: Settings) -> None:
    """Run `script` (which prints each stage and waits at `stage`) in a new process on
    these folders, and ``kill -9`` it there."""
    env = {**os.environ, "SEEDS_DIR": str(settings.seeds_dir),
           "INDEX_DIR": str(settings.index_dir)}  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-c", script, stage, *args], cwd=ROOT, env=env, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    try:
        for line in proc.stdout:  # blocks until the next stage is reported
            if line.strip() == stage:
                proc.send_signal(signal.SIGKILL)
                break
        else:
            raise AssertionError(f"the script ended before {stage}: {proc.stderr.read()!r}")
    finally:
        proc.wait(timeout=120)
    assert proc.returncode == -signal.SIGKILL
