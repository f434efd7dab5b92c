"""A 10,000-essay library on one machine: build, warm and cold `ask`, memory, ANN recall.

The library is made from real text: each essay is paragraphs of one library2 author, drawn
at random from that author's essays, one and a half times as long as a library2 essay. Embedding its ~300,000
passages with the model would take over two hours on two cores, so the vectors are real
embeddings reused, not recomputed: each sentence keeps the vector the model gave it in
library2, and each passage's vector is the normalised mean of its sentences' vectors. How
close that comes to the model's own passage vector is measured on library2 and printed
(`passage_vector_fidelity`). Questions are library2's own, embedded by the model.

Run: `.venv/bin/python bench/bench_scale.py [--essays 10000]` (needs ../shared). The built
index is kept in bench/results/indexes/ and reused when the library is unchanged.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import INDEXES, ROOT, SHARED_EVAL, percentiles, save_result

from bot.answer.engine import Engine, clean_question
from bot.index.cache import EmbeddingCache
from bot.index.chunks import chunk_document
from bot.index.embed import Embedder, PassageVectors
from bot.ingest.documents import library_files, read_document
from bot.settings import Settings

LIBRARY2 = SHARED_EVAL / "library2"
QUESTIONS = SHARED_EVAL / "library2.jsonl"


def make_library(folder: Path, n_essays: int, seed: int = 11) -> None:
    """`n_essays` essays of library2 paragraphs, each essay one author's, one and a half
    times as long as a library2 essay (10,000 then make ~300,000 passages)."""
    rng = random.Random(seed)
    by_author: dict[str, list[str]] = {}
    lengths = []
    for path in library_files(LIBRARY2):
        doc = read_document(path)
        paras = [doc.text[p.start : p.end] for p in doc.paragraphs if p.role == "essay"]
        by_author.setdefault(doc.author or "unknown", []).extend(paras)
        lengths.append(len(doc.text.split()))
    authors = sorted(by_author)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n_essays):
        author = authors[i % len(authors)]
        target, words, paras = int(1.5 * rng.choice(lengths)), 0, []
        while words < target:
            para = rng.choice(by_author[author])
            paras.append(para)
            words += len(para.split())
        title = f"Essay {i}: {' '.join(rng.choice(paras).split()[:6])}".replace('"', "")
        front = f'---\nid: scale-{i:05d}\ntitle: "{title}"\nauthor: {author}\n---\n\n'
        (folder / f"scale-{i:05d}.md").write_text(front + "\n\n".join(paras) + "\n")


class ReusedVectors(Embedder):
    """Real vectors reused: a sentence's library2 vector, a passage's the mean of its
    sentences'. Anything not seen in library2 is embedded by the model."""

    def __init__(self, sentences: dict[str, np.ndarray], query_dir: Path) -> None:
        super().__init__(query_dir=query_dir)
        self.sentences = sentences
        self.missed = 0

    def embed_passages(
        self, texts: list[str], spans: list[list[tuple[int, int]]]
    ) -> list[PassageVectors]:
        out = []
        for text, own in zip(texts, spans, strict=True):
            pieces = [text[s:e] for s, e in own]
            unseen = [p for p in pieces if p not in self.sentences]
            if unseen:
                self.missed += len(unseen)
                for piece, vec in zip(unseen, self.embed_texts(unseen), strict=True):
                    self.sentences[piece] = vec
            vecs = np.vstack([self.sentences[p] for p in pieces]).astype(np.float32)
            mean = vecs.sum(axis=0)
            out.append(PassageVectors(mean / np.linalg.norm(mean), vecs))
        return out


def library2_vectors(index: Path, model_key: str) -> tuple[dict[str, np.ndarray], float]:
    """Every library2 sentence's real vector, and how close mean-of-sentences passage
    vectors come to the real ones (mean cosine)."""
    cache = EmbeddingCache(index / "embeddings.sqlite", model_key)
    sentences: dict[str, np.ndarray] = {}
    cosines = []
    try:
        for path in library_files(LIBRARY2):
            chunks = chunk_document(read_document(path), cache)
            found = cache.get_many(chunks.hashes)
            for i, h in enumerate(chunks.hashes):
                if h not in found:
                    continue
                vecs = found[h]
                for (s, e), v in zip(chunks.spans(i), vecs.sentences, strict=True):
                    sentences[chunks.texts[i][s:e]] = np.asarray(v, dtype=np.float32)
                mean = np.asarray(vecs.sentences, dtype=np.float32).sum(axis=0)
                cosines.append(float(mean @ vecs.passage / np.linalg.norm(mean)))
    finally:
        cache.close()
    return sentences, float(np.mean(cosines)) if cosines else float("nan")


def build(n_essays: int) -> tuple[Path, Path, dict[str, Any]]:
    """Make the library and index it with reused vectors (kept between runs)."""
    base = INDEXES / f"scale-{n_essays}"
    library, index = base / "library", base / "index"
    if not library.exists():
        make_library(library, n_essays)
    l2_index = INDEXES / next(p.name for p in INDEXES.iterdir() if p.name.startswith("library2-"))
    probe = Embedder(query_dir=l2_index / "query-model")
    sentences, fidelity = library2_vectors(l2_index, probe.key)
    embedder = ReusedVectors(sentences, query_dir=index / "query-model")
    engine = Engine(Settings(seeds_dir=library, index_dir=index), embedder)
    started = time.perf_counter()
    report = engine.index()
    info = {
        "essays": n_essays, "build_s": time.perf_counter() - started,
        "passages_embedded": report.passages_embedded, "sentences_not_in_library2": embedder.missed,
        "passage_vector_fidelity": fidelity,
    }  # fmt: skip
    return library, index, info
