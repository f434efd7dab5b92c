"""The question sets as training data: each library's index, its questions, the question
vectors `ask` searches with, and the passages that answer each question.

Everything is read from ``../shared/eval`` (never copied into the repository) and each
library is indexed once under ``bench/results/indexes/`` (kept between runs, rebuilt when
the library changes), exactly as the benchmarks index it.
"""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import INDEXES, ROOT, SHARED_EVAL, index_dir
from bot.answer.engine import Engine
from bot.answer.inputs import clean_question
from bot.frontends.evaluate import normalise, out_of_scope, read_questions
from bot.index.embed import Embedder
from bot.settings import Settings

#: The shared libraries, by the name of their question set; "dev" is the seeds.
LIBRARIES = ("dev", "library2", "library3", "speeches", "science", "reform", "ethics",
             "economy", "americans")  # fmt: skip


def library_folder(name: str) -> Path:
    """Where a set's library is: the seeds for "dev", else ``../shared/eval/NAME``."""
    return ROOT / "seeds" if name == "dev" else SHARED_EVAL / name


def questions_file(name: str) -> Path:
    """A library's first question set (questions that mostly use the essays' words)."""
    return SHARED_EVAL / f"{name}.jsonl"


#: The kinds of question, each scored apart (../shared/eval/README.md), by their files:
#: a library's first set (text words), its readers' own words, its broad questions.
KINDS = {"text": "{}.jsonl", "own": "{}.own.jsonl", "broad": "{}.broad.jsonl"}


def kind_files(name: str) -> dict[str, Path]:
    """A library's question sets that exist, by kind (the seeds have text words only)."""
    paths = {kind: SHARED_EVAL / pattern.format(name) for kind, pattern in KINDS.items()}
    return {kind: path for kind, path in paths.items() if path.exists()}


def available() -> list[str]:
    """The libraries whose question set and folder are present beside the repository."""
    return [n for n in LIBRARIES if questions_file(n).exists() and library_folder(n).is_dir()]


def source(allow_dirty: bool = False, packages: tuple[str, ...] = ()) -> dict[str, Any]:
    """What an artifact's provenance says of the code that made it: the commit, whether
    the tree was clean (the commit then is the code), and the versions of the packages
    that did the work.

    Raises:
        SystemExit: The tree has uncommitted changes to tracked files and `allow_dirty`
            is off (the commit would not name the code that ran).
    """

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()  # fmt: skip

    clean = not git("status", "--porcelain", "--untracked-files=no")
    if not clean and not allow_dirty:
        raise SystemExit("commit your changes first: the artifact must name the code that "
                         "made it (or pass --allow-dirty, recorded as such)")  # fmt: skip
    versions = {name: metadata.version(name) for name in ("numpy", *packages)}
    return {"commit": git("rev-parse", "HEAD"), "tree_clean": clean,
            "python": platform.python_version(), "packages": versions}  # fmt: skip


def data_hash(names: list[str], every_kind: bool = False) -> str:
    """SHA-256 over the question sets and library files used (the artifact's provenance):
    the text-words sets, or with `every_kind` all three of each library."""
    h = hashlib.sha256()
    for name in sorted(names):
        sets = kind_files(name).values() if every_kind else [questions_file(name)]
        for path in sets:
            h.update(path.read_bytes())
        for path in sorted(library_folder(name).glob("*.md")):
            h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()


@dataclass
class LibrarySet:
    """One library's index and questions, ready to train or score on.

    Attributes:
        name: The question set's name.
        engine: An engine over the library's own index.
        items: Every question of the set (in scope and off topic).
        questions: In-scope questions kept for training (an answering passage found).
        vectors: Their vectors as `ask` searches with them (unit, one row each).
        positives: For each, the passage rows that hold one of its phrases.
        passages: The library's passage vectors (rows of the index).
    """

    name: str
    engine: Engine
    items: list[dict[str, Any]]
    questions: list[dict[str, Any]]
    vectors: np.ndarray
    positives: list[list[int]]
    passages: np.ndarray


def _answering_rows(engine: Engine, item: dict[str, Any]) -> list[int]:
    """The passage rows whose text holds one of the question's phrases (or its whole
    answer), found in the essays the question names when it names them."""
    snap = engine.snapshot()
    phrases = [normalise(p) for p in item.get("must_quote", []) if p.strip()]
    docs = [d for d in str(item.get("doc") or "").split("|") if d in snap.docs]
    ranges = [snap.passages.of(d) for d in docs] or [(0, len(snap.passages))]
    rows = []
    for lo, hi in ranges:
        for row in range(lo, hi):
            p = snap.passages[row]
            text = normalise(snap.docs.text(p.doc_id)[p.start : p.end])
            if any(ph in text for ph in phrases):
                rows.append(row)
    return rows


def load(name: str, embedder: Embedder) -> LibrarySet:
    """A library's set: indexed (or refreshed), its questions embedded as `ask` does."""
    folder = library_folder(name)
    engine = Engine(Settings(seeds_dir=folder, index_dir=index_dir(folder)), embedder)
    engine.index()
    snap = engine.snapshot()
    items = read_questions(questions_file(name))
    kept, vectors, positives = [], [], []
    for item in items:
        if out_of_scope(item):
            continue
        rows = _answering_rows(engine, item)
        if not rows:
            continue
        question = clean_question(item["question"], engine.settings.max_question_chars)
        kept.append(item)
        vectors.append(engine.read_question(snap, question).vector)
        positives.append(rows)
    passages = np.array(snap.dense.vectors(slice(None)), dtype=np.float32)  # a copy: a view
    # of the index's storage dies with the snapshot
    return LibrarySet(name, engine, items, kept, np.vstack(vectors), positives, passages)


#: Each leave-one-library-out fold's model delta, fitted without that library
#: (``train/lora_artifact.py`` writes them; never committed).
FOLDS = ROOT / "bench" / "results" / "lora"


def fold_engine(name: str) -> Engine:
    """An engine over library `name` whose model carries the LoRA delta fitted without it
    (``bench/results/lora/NAME.npz``), on its own index (kept between runs)."""
    embedder = Embedder(query_dir=INDEXES / "query-model", tuning=str(FOLDS / f"{name}.npz"))
    folder = library_folder(name)
    index = INDEXES / f"{folder.name}-lolo-{embedder.key.rsplit('+', 1)[-1]}"
    engine = Engine(Settings(seeds_dir=folder, index_dir=index), embedder)
    engine.index()
    return engine


def shared_embedder() -> Embedder:
    """The bundled model as published (untuned: training starts from it and mines its
    hard negatives with it), its question export kept beside the benchmarks' indexes."""
    return Embedder(query_dir=INDEXES / "query-model", tuning="none")


def summary(sets: list[LibrarySet]) -> str:
    return json.dumps({s.name: len(s.questions) for s in sets})
