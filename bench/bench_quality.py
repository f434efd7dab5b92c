"""Answer quality on every question set given, with a naive RAG baseline as anchor row.

    python -m bench.bench_quality [--set NAME=QUESTIONS.jsonl:LIBRARY_DIR ...]
    python -m bench.bench_quality --lolo [LIBRARY ...]

`--lolo` scores every shared library (../shared/eval) leave-one-library-out: the engine
whose model carries the LoRA delta fitted on the *other* libraries only
(bench/results/lora/NAME.npz, from train/lora_artifact.py) and answers with what was
learned on them too (NAME.answering.json beside it, from train/fit_answering.py: the
retrieval weights and the decision to decline), beside the untuned engine and the naive
RAG, with the mean and the worst library.

Default sets: the seeds (tests/data/dev.jsonl, eval/extra.jsonl) and, when ../shared is
beside the repository, library2 (../shared/eval/library2.jsonl on ../shared/eval/library2).
Both rows of a set are scored by the same code (`bot.frontends.evaluate`) in the same run.

The baseline is the tutorial RAG the project must beat: the library's sentences in
consecutive windows of three, embedded by the same MiniLM model, searched by FAISS flat
(dense only), declining below a fixed cosine of 0.45; its quotes are whole windows.
Indexes of each library are kept under bench/results/indexes/ (rebuilt when it changes).

A second table says where this project's misses are, so that work goes where the answers
are lost: a question missed at hit@3 either had its answer in one of the passages examined
for quotes (quote choice and order lost it), among the retrieval candidates past them, or
in no candidate at all (retrieval lost it). "examined" is also the ceiling of any quote
choice over those passages: the hit@3 a perfect reranker of them could reach.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import BROAD_FOLDS, INDEXES, ROOT, SHARED_EVAL, index_dir, save_result
from bot.answer.engine import Engine
from bot.answer.inputs import clean_question
from bot.answer.results import Answer, Excerpt, make_excerpt
from bot.answer.retrieve import retrieve
from bot.answer.windows import RERANK
from bot.frontends.evaluate import evaluate, figures, normalise, out_of_scope, read_questions
from bot.index.ann import FlatIndex
from bot.index.embed import Embedder
from bot.ingest.chunking import split_sentences
from bot.ingest.documents import library_files, read_document
from bot.ingest.model import Document, DocumentError
from bot.settings import Settings

#: The naive RAG's window, in sentences (a tutorial's usual choice; 2 is scored too, so
#: that a quote's length is compared as well).
NAIVE_WINDOW = 3
NAIVE_THRESHOLD = 0.45


@dataclass
class Window:
    doc: Document
    start: int
    end: int
    paragraph: int


class NaiveRag:
    """Windows of a few sentences (three by default), dense only, FAISS flat, a fixed
    threshold."""

    def __init__(self, library: Path, embedder: Embedder, window: int = NAIVE_WINDOW) -> None:
        self.embedder = embedder
        self.docs: dict[str, Document] = {}
        self.windows: list[Window] = []
        for path in library_files(library):
            try:
                doc = read_document(path)
            except DocumentError:  # skipped by the engine's index too
                continue
            self.docs[doc.meta.doc_id] = doc
            sents = split_sentences(doc)
            for i in range(0, len(sents), window):
                group = sents[i : i + window]
                self.windows.append(Window(doc, group[0].start, group[-1].end, group[0].paragraph))
        texts = [" ".join(w.doc.text[w.start : w.end].split()) for w in self.windows]
        vectors = embedder.embed_texts(texts)
        self.index = FlatIndex.build(vectors)

    def ask(self, question: str, k: int | None = None) -> Answer:
        q = clean_question(question, 1000)
        sims, ids = self.index.search(self.embedder.embed_query(q).reshape(1, -1), k or 3)
        best = float(sims[0][0]) if len(ids[0]) else 0.0
        if best < NAIVE_THRESHOLD:
            return Answer(q, True, (), best)
        excerpts: list[Excerpt] = []
        for sim, i in zip(sims[0], ids[0], strict=True):
            w = self.windows[int(i)]
            excerpts.append(make_excerpt(w.doc, w.start, w.end, w.paragraph, float(sim)))
        return Answer(q, False, tuple(excerpts), best)

    def essay_path(self, doc_id: str) -> str:
        return self.docs[doc_id].path


def _sets(given: list[str]) -> list[tuple[str, Path, Path]]:
    if given:
        out = []
        for spec in given:
            name, rest = spec.split("=", 1)
            questions, library = rest.rsplit(":", 1)
            out.append((name, Path(questions), Path(library)))
        return out
    sets = [
        ("seeds dev", ROOT / "tests" / "data" / "dev.jsonl", ROOT / "seeds"),
        ("seeds extra", ROOT / "eval" / "extra.jsonl", ROOT / "seeds"),
    ]
    if (SHARED_EVAL / "library2.jsonl").exists():
        sets.append(("library2", SHARED_EVAL / "library2.jsonl", SHARED_EVAL / "library2"))
    return sets


def _row(name: str, system: str, result: dict[str, Any]) -> str:
    f = figures(result, precise=False)
    cells = [f[k] for k in ("hit@1", "hit@3", "MRR", "essay@3", "false declines", "declines",
                            "verbatim", "attribution")]  # fmt: skip
    return f"| {name} | {system} | {' | '.join(cells)} | {f['quote median']} / {f['quote max']} |"


def _answer_rank(engine: Engine, item: dict[str, Any]) -> int | None:
    """Where the first passage holding one of the item's phrases is in retrieval's order
    (0-based), or None when no candidate holds one."""
    snap = engine.snapshot()
    question = clean_question(item["question"], engine.settings.max_question_chars)
    read = engine.read_question(snap, question)
    phrases = [normalise(p) for p in item.get("must_quote", [])]
    for rank, cand in enumerate(retrieve(snap, read).ranked()):
        p = snap.passages[cand.row]
        if any(ph in normalise(snap.docs.text(p.doc_id)[p.start : p.end]) for ph in phrases):
            return rank
    return None


def where_missed(
    engine: Engine, items: list[dict[str, Any]], result: dict[str, Any]
) -> dict[str, int]:
    """Each in-scope question missed at hit@3, by where its answer was lost."""
    by_id = {row["id"]: row for row in result["rows"]}
    counts = {"in scope": 0, "hit@3": 0, "examined": 0, "candidate": 0, "not candidate": 0}
    for item in items:
        if out_of_scope(item):
            continue
        counts["in scope"] += 1
        if by_id[item.get("id")]["rank"] is not None:
            counts["hit@3"] += 1
            continue
        rank = _answer_rank(engine, item)
        where = "not candidate" if rank is None else "examined" if rank < RERANK else "candidate"
        counts[where] += 1
    return counts


#: What a library's row keeps of each system's score.
KIND_KEYS = ("hit@1", "hit@3", "mrr", "false_declines", "declines", "off_topic", "in_scope",
             "quote_median", "quote_max")  # fmt: skip


def _kind_row(name: str, kind: str, system: str, r: dict[str, Any]) -> str:
    n = r["in_scope"]
    return (f"| {name} | {kind} | {system} | {round(r['hit@1'] * n)}/{n} | "
            f"{round(r['hit@3'] * n)}/{n} | {r['false_declines']} | "
            f"{r['declines']}/{r['off_topic']} | {r['quote_median']:.0f} |")  # fmt: skip


def by_kind(only: list[str], lolo: bool, baselines: bool = True, broad_folds: bool = False) -> None:
    """Every shared library (or those named), each kind of question scored apart (text
    words, readers' own words, broad), by the engine and the naive RAG at 3- and
    2-sentence windows (unless `baselines` is off: they are deterministic, an earlier
    run's rows stand, and they re-embed every library).

    With `lolo`, the engine is each library's leave-one-library-out fold (its model delta
    and answering fitted on the other libraries only); else the engine as shipped, whose
    tuning saw every library's text-words set (not held out: say so beside its figures).
    With `broad_folds`, the engine answers broad questions with the models fitted without
    the library (``train/fit_broad.py``'s folds) instead of the shipped ones.
    """
    from train.data import available, fold_engine, kind_files, library_folder

    plain = Embedder(query_dir=INDEXES / "query-model", tuning="none")  # the naive RAG's
    shipped = Embedder(query_dir=INDEXES / "query-model")
    engine_name = "tuned on the others" if lolo else "this bot (shipped)"
    table = ["| library | kind | system | hit@1 | hit@3 | false declines | off-topic declined"
             " | quote median |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    results: dict[str, dict[str, dict[str, Any]]] = {}
    for name in [n for n in available() if not only or n in only]:
        library = library_folder(name)
        if lolo:
            engine = fold_engine(name)
        else:
            fold = BROAD_FOLDS / f"{name}.json"
            engine = Engine(Settings(seeds_dir=library, index_dir=index_dir(library)), shipped,
                            broad_file=fold if broad_folds and fold.exists() else None)  # fmt: skip
            engine.index()
        naive = {f"naive RAG, {w} sentences": NaiveRag(library, plain, w)
                 for w in (3, 2)} if baselines else {}  # fmt: skip
        for kind, path in kind_files(name).items():
            items = read_questions(path)
            systems = {**naive, engine_name: engine}
            rows = {system: evaluate(answerer, items) for system, answerer in systems.items()}
            results.setdefault(name, {})[kind] = {
                system: {m: r[m] for m in KIND_KEYS} for system, r in rows.items()}  # fmt: skip
            table += [_kind_row(name, kind, system, r) for system, r in rows.items()]
            print("\n".join(table[-len(rows) :]), flush=True)
    table += kinds_summary(results)
    print("\n".join(table))
    label = (
        "quality-lolo" if lolo else "quality-kinds-broad-folds" if broad_folds else "quality-kinds"
    )
    save_result("-".join([label, *only]), {"table": table, "libraries": results})


def kinds_summary(results: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    """For each kind and system: the mean and the worst library's hit@3 (over the
    libraries that have that kind), questions hit in all, false declines, off-topic
    declined and the libraries' median quote length (their medians' median)."""
    out = ["", "| kind | system | mean hit@3 | worst hit@3 | hit@3 in all | false declines"
           " | off-topic declined | quote median |",
           "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    kinds = list(dict.fromkeys(k for lib in results.values() for k in lib))
    for kind in kinds:
        libs = [lib[kind] for lib in results.values() if kind in lib]
        for system in libs[0]:
            rs = [lib[system] for lib in libs if system in lib]
            hit3 = [r["hit@3"] for r in rs]
            hits = sum(round(r["hit@3"] * r["in_scope"]) for r in rs)
            n = sum(r["in_scope"] for r in rs)
            out.append(
                f"| {kind} | {system} | {100 * np.mean(hit3):.1f}% | {100 * min(hit3):.1f}% | "
                f"{hits}/{n} | {sum(r['false_declines'] for r in rs)} | "
                f"{sum(r['declines'] for r in rs)}/{sum(r['off_topic'] for r in rs)} | "
                f"{np.median([r['quote_median'] for r in rs]):.0f} |"
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", action="append", default=[], help="NAME=QUESTIONS:LIBRARY")
    parser.add_argument(
        "--lolo", nargs="*", metavar="LIBRARY",
        help="leave-one-library-out over the shared libraries (or those named), each kind "
             "of question apart",
    )  # fmt: skip
    parser.add_argument(
        "--kinds", nargs="*", metavar="LIBRARY",
        help="the shipped engine on the shared libraries (or those named), each kind of "
             "question apart (not held out: its tuning saw the text-words sets)",
    )  # fmt: skip
    parser.add_argument(
        "--broad-folds", action="store_true",
        help="with --kinds: broad questions told and answered by models fitted without the "
             "library (train/fit_broad.py's folds)",
    )  # fmt: skip
    parser.add_argument(
        "--no-baselines", action="store_true",
        help="with --lolo or --kinds: the engine alone (the naive rows are deterministic: "
             "an earlier run's stand)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.lolo is not None or args.kinds is not None:
        lolo = args.lolo is not None
        by_kind(args.lolo if lolo else args.kinds, lolo, baselines=not args.no_baselines,
                broad_folds=args.broad_folds)  # fmt: skip
        return
    embedder = Embedder(query_dir=INDEXES / "query-model")
    plain = Embedder(query_dir=INDEXES / "query-model", tuning="none")  # the naive RAG's
    table = [
        "| set | system | hit@1 | hit@3 | MRR | essay@3 | false declines | off-topic declined"
        " | verbatim | attribution | quote median / max |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    results: dict[str, Any] = {}
    rows: dict[str, Any] = {}
    naive_cache: dict[Path, NaiveRag] = {}
    misses = [
        f"| set | in scope | hit@3 | missed: answer in the {RERANK} passages examined"
        " | in a candidate past them | in no candidate |",
        "|---|---|---|---|---|---|",
    ]
    for name, questions, library in _sets(args.set):
        items = read_questions(questions)
        if library not in naive_cache:
            naive_cache[library] = NaiveRag(library, plain)
        engine = Engine(Settings(seeds_dir=library, index_dir=index_dir(library)), embedder)
        engine.index()
        naive = evaluate(naive_cache[library], items)
        ours = evaluate(engine, items)
        table += [_row(name, "naive RAG", naive), _row(name, "this project", ours)]
        results[name] = {
            "naive": {k: v for k, v in naive.items() if k != "rows"},
            "project": {k: v for k, v in ours.items() if k != "rows"},
        }
        rows[name] = ours["rows"]
        m = where_missed(engine, items, ours)
        results[name]["missed"] = m
        misses.append(f"| {name} | {m['in scope']} | {m['hit@3']} | {m['examined']} | "
                      f"{m['candidate']} | {m['not candidate']} |")  # fmt: skip
    print("\n".join(table))
    print(
        "\nWhere this project's misses are (a perfect quote choice over the passages "
        "examined reaches hit@3 + the first column):"
    )
    print("\n".join(misses))
    save_result("quality", {"table": table, "misses": misses, "sets": results})
    (Path(__file__).parent / "results" / "quality-rows.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
