"""A 10,000-essay library on one machine: build, warm and cold `ask`, memory, ANN recall.

The library is made from real text: each essay is paragraphs of one library2 author, drawn
at random from that author's essays (three to five sentences each), 0.6 times as long as
a library2 essay.
Embedding its ~300,000 passages with the model would take hours on two cores, so the
vectors are real embeddings reused, not recomputed: each sentence keeps the vector the
model gave it in library2, and each passage's vector is the normalised mean of its
sentences' vectors. How
close that comes to the model's own passage vector is measured on library2 and printed
(`passage_vector_fidelity`). Questions are library2's own, embedded by the model.

Run: `.venv/bin/python -m bench.bench_scale [--essays 10000]` (needs ../shared). The built
index is kept in bench/results/indexes/ and reused when the library is unchanged.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import INDEXES, ROOT, SHARED_EVAL, index_dir, percentiles, save_result
from bot.answer.engine import Engine
from bot.answer.inputs import clean_question
from bot.index.cache import EmbeddingCache
from bot.index.chunks import chunk_document
from bot.index.embed import Embedder, PassageVectors
from bot.ingest.documents import library_files, read_document
from bot.settings import Settings

LIBRARY2 = SHARED_EVAL / "library2"
QUESTIONS = SHARED_EVAL / "library2.jsonl"


def make_library(folder: Path, n_essays: int, seed: int = 11) -> None:
    """`n_essays` essays, each one library2 author's: paragraphs of three to five of that
    author's sentences drawn at random (so no two passages are the same: a library this
    size made of whole library2 paragraphs repeats each one a hundred times), essays 0.6
    times as long as library2's (10,000 then make ~300,000 passages)."""
    rng = random.Random(seed)
    by_author: dict[str, list[str]] = {}
    lengths = []
    for path in library_files(LIBRARY2):
        doc = read_document(path)
        chunks = chunk_document(doc)
        by_author.setdefault(doc.meta.author or "unknown", []).extend(
            doc.text[s.start : s.end]
            for s in chunks.sentences
            if doc.paragraphs[s.paragraph].role == "essay"
        )
        lengths.append(len(doc.text.split()))
    authors = sorted(by_author)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n_essays):
        author = authors[i % len(authors)]
        pool = by_author[author]
        target, words, paras_out = int(0.6 * rng.choice(lengths)), 0, []
        while words < target:
            para = " ".join(rng.sample(pool, rng.randint(3, 5)))
            paras_out.append(para)
            words += len(para.split())
        title = f"Essay {i}: {' '.join(rng.choice(paras_out).split()[:6])}".replace('"', "")
        front = f'---\nid: scale-{i:05d}\ntitle: "{title}"\nauthor: {author}\n---\n\n'
        (folder / f"scale-{i:05d}.md").write_text(front + "\n\n".join(paras_out) + "\n")


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
    l2_index = index_dir(LIBRARY2)
    l2 = Engine(Settings(seeds_dir=LIBRARY2, index_dir=l2_index))
    l2.index()  # its cache holds the real vectors reused below
    sentences, fidelity = library2_vectors(l2_index, l2.embedder.key)
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


#: A serving process: load the index, answer every question, report memory and timings.
SERVE_PROBE = r"""
import json, re, sys, time
t0 = time.perf_counter()
from bot.answer.engine import Engine
from bot.settings import Settings
engine = Engine(Settings.from_env())
engine.ask(sys.argv[1])
first = time.perf_counter() - t0
for q in json.loads(sys.stdin.read()):
    engine.ask(q)
status = open("/proc/self/status").read()
mb = {k: int(re.search(k + r":\s+(\d+)", status).group(1)) / 1024
      for k in ("VmHWM", "VmRSS", "RssAnon", "RssFile")}
print(json.dumps({"first_answer_s": first, "peak_rss_mb": mb["VmHWM"], "rss_mb": mb["VmRSS"],
                  "rss_private_mb": mb["RssAnon"], "rss_mapped_files_mb": mb["RssFile"]}))
"""


def _questions(path: Path) -> list[str]:
    items = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [clean_question(it["question"], 2000) for it in items]


def warm(engine: Engine, questions: list[str], queries: int) -> dict[str, float]:
    """p50/p95 of a whole `ask` (embed, search, quotes) and of the question's embedding
    alone, interleaved in the same run.

    One pass over the questions comes first, untimed: a serving process's steady state
    has the index files it reads in the page cache; right after the files leave the cache
    (a reboot), the first questions also wait for the disk (cold start is timed apart)."""
    for q in questions:
        engine.ask(q)
    whole, embed = [], []
    for i in range(queries):
        q = questions[i % len(questions)]
        t = time.perf_counter()
        engine.embedder.embed_query(q)
        t1 = time.perf_counter()
        engine.ask(q)
        whole.append(time.perf_counter() - t1)
        embed.append(t1 - t)
    w, e = percentiles(whole), percentiles(embed)
    return {**{f"ask_{k}": v for k, v in w.items()}, **{f"embed_{k}": v for k, v in e.items()},
            "p95_ratio_to_embed": w["p95_ms"] / e["p95_ms"]}  # fmt: skip


def cold(library: Path, index: Path, questions: list[str], runs: int = 3) -> dict[str, float]:
    """A new process's first answer (wall time of `python bot.py ask`), and the memory of
    a process that then answers every question."""
    env = {**os.environ, "SEEDS_DIR": str(library), "INDEX_DIR": str(index)}
    walls = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run([sys.executable, "bot.py", "ask", questions[0]], cwd=ROOT, env=env,
                       check=True, capture_output=True)  # fmt: skip
        walls.append(time.perf_counter() - t)
    out = subprocess.run([sys.executable, "-c", SERVE_PROBE, questions[0]], cwd=ROOT, env=env,
                         input=json.dumps(questions), check=True, capture_output=True,
                         text=True)  # fmt: skip
    probe = json.loads(out.stdout.strip().splitlines()[-1])
    return {"cold_ask_wall_s": float(np.median(walls)), **probe}


def ann_recall(engine: Engine, questions: list[str], k: int = 50) -> dict[str, Any]:
    """recall@k of the index's search against an exact scan of the same vectors, and
    both searches' p95 (each question's vector as `ask` makes it).

    A found passage counts when it is as similar as the exact scan's k-th (within 1e-5):
    a library with repeated passages has ties, and which copy comes back is arbitrary.
    """
    from bot.index.ann import FlatIndex

    snap = engine.snapshot()
    flat = FlatIndex.build(snap.dense.vectors(slice(None)))
    recalls, by_id, t_ann, t_flat = [], [], [], []
    for q in questions:
        asked = clean_question(q, engine.settings.max_question_chars)
        vec = engine.read_question(snap, asked).vector.reshape(1, -1)  # the vector `ask` searches
        t = time.perf_counter()
        scores, got = snap.dense.search(vec, k)
        t1 = time.perf_counter()
        exact, truth = flat.search(vec, k)
        t_flat.append(time.perf_counter() - t1)
        t_ann.append(t1 - t)
        recalls.append(float(np.sum(scores[0] >= exact[0][-1] - 1e-5)) / k)
        by_id.append(len(set(got[0].tolist()) & set(truth[0].tolist())) / k)
    return {"kind": snap.manifest.get("search", "exact"), f"recall@{k}": float(np.mean(recalls)),
            f"worst_recall@{k}": float(np.min(recalls)),
            f"same_ids@{k}": float(np.mean(by_id)),
            "search_p95_ms": percentiles(t_ann)["p95_ms"],
            "exact_scan_p95_ms": percentiles(t_flat)["p95_ms"]}  # fmt: skip


def same_answers_with_a_graph(library: Path, index: Path, items_path: Path) -> dict[str, Any]:
    """Eval on an exact index and on an HNSW graph of the same library (vectors cached)."""
    import shutil
    import tempfile

    from bot.frontends.evaluate import evaluate
    from bot.index import ann

    items = [json.loads(line) for line in items_path.read_text().splitlines() if line.strip()]
    exact = Engine(Settings(seeds_dir=library, index_dir=index))
    exact.index()
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "index"
        shutil.copytree(index, copy, ignore=shutil.ignore_patterns(".lock"))
        graph = Engine(Settings(seeds_dir=library, index_dir=copy), exact.embedder)
        limit, ann.EXACT_UP_TO = ann.EXACT_UP_TO, 0
        try:
            graph.index(force=True)
        finally:
            ann.EXACT_UP_TO = limit
        a, b = evaluate(exact, items), evaluate(graph, items)
    keys = ("hit@1", "hit@3", "essay@3", "false_declines", "declines")
    ranks = [(x["id"], x["rank"]) for x in a["rows"]] == [(x["id"], x["rank"]) for x in b["rows"]]
    return {"exact": {k: a.get(k) for k in keys}, "hnsw": {k: b.get(k) for k in keys},
            "same_ranks": ranks}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--essays", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    if not LIBRARY2.is_dir():
        sys.exit(f"bench_scale needs {LIBRARY2} (the shared evaluation data beside the repo)")
    library, index, built = build(args.essays)
    l2_questions = _questions(QUESTIONS)
    seeds, dev = ROOT / "seeds", ROOT / "tests" / "data" / "dev.jsonl"
    l2_index = index_dir(LIBRARY2)
    libraries = {
        "seeds": (seeds, INDEXES / "bench-seeds", _questions(dev)),
        "library2": (LIBRARY2, l2_index, l2_questions),
        f"scale-{args.essays}": (library, index, l2_questions),
    }  # fmt: skip
    result: dict[str, Any] = {"build": built}
    for name, (lib, idx, questions) in libraries.items():
        engine = Engine(Settings(seeds_dir=lib, index_dir=idx))
        engine.index()
        snap = engine.snapshot()
        sizes = {"essays": len(snap.docs), "passages": len(snap.passages),
                 "sentences": len(snap.sent_doc)}  # fmt: skip
        timings = {**warm(engine, questions, args.queries), **cold(lib, idx, questions)}
        result[name] = {**sizes, **timings, "ann": ann_recall(engine, questions)}
        print(name, json.dumps(result[name]), flush=True)
    result["index_choice"] = {
        "library2": same_answers_with_a_graph(LIBRARY2, libraries["library2"][1], QUESTIONS),
        "seeds_dev": same_answers_with_a_graph(seeds, libraries["seeds"][1], dev),
    }  # fmt: skip
    save_result("scale", result)


if __name__ == "__main__":
    main()
