"""Who said it at scale: warm latency and finding rate on a 1,000-essay library.

`whosaid` reads only the library's text, its passages and BM25 (no vectors), so the
1,000-essay library is built here without embedding anything: essays recombined from the
paragraphs of ../shared/eval/library2 (the seeds when it is absent), chunked by the
project's own chunker, BM25 built by the project's own index code. Lines are sentences of
that library, asked exactly, with two words changed, and with two words dropped; and
lines of library words in an order no essay has, which must not be found.

    python -m bench.bench_whosaid [--essays 1000]
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np

from bench.common import SEEDS, SHARED_EVAL, percentiles, save_result
from bot.answer.whosaid import WhoSaid, who_said, words
from bot.index.chunks import chunk_document
from bot.index.lexical import LexicalIndex
from bot.index.snapshot import PassageRow, Snapshot
from bot.ingest.documents import library_files, parse_document, read_document


def _paragraphs() -> list[str]:
    folder = SHARED_EVAL / "library2"
    folder = folder if folder.is_dir() else SEEDS
    out = []
    for path in library_files(folder):
        doc = read_document(path)
        out += [doc.text[p.start : p.end] for p in doc.paragraphs if p.end - p.start > 200]
    return out


def text_snapshot(n_essays: int, per_essay: int = 12, seed: int = 3) -> Snapshot:
    """A snapshot of `n_essays` recombined essays with everything but vectors."""
    rng = random.Random(seed)
    pool = _paragraphs()
    docs, passages, sent_doc, spans, paras, owner = {}, [], [], [], [], []
    for e in range(n_essays):
        body = "\n\n".join(rng.sample(pool, per_essay))
        text = f"---\ntitle: Essay {e}\nauthor: Writer {e % 40}\n---\n{body}\n"
        doc = parse_document(text, doc_id=f"essay-{e:04d}", path=f"essay-{e:04d}.md")
        chunks = chunk_document(doc)
        docs[doc.meta.doc_id] = doc
        first = len(sent_doc)
        for p in chunks.passages:
            passages.append(PassageRow(doc.meta.doc_id, p.start, p.end, first + p.sentences[0],
                                       len(p.sentences), p.paragraph))  # fmt: skip
            owner += [len(passages) - 1] * len(p.sentences)
        for s in chunks.sentences:
            sent_doc.append(doc.meta.doc_id)
            spans.append((s.start, s.end))
            paras.append(s.paragraph)
    texts = [docs[p.doc_id].text[p.start : p.end] for p in passages]
    return Snapshot(
        generation="bench", manifest={}, docs=docs, passages=passages, sent_doc=sent_doc,
        sent_span=np.array(spans, dtype=np.int64), sent_para=np.array(paras, dtype=np.int64),
        sent_passage=np.array(owner, dtype=np.int64), sent_vectors=np.zeros((0, 384)),
        dense=None, lexical=LexicalIndex.build(texts),
    )  # fmt: skip


Line = tuple[str, int | None]  # the line, and the sentence row it comes from


def _lines(snap: Snapshot, n: int, rng: random.Random) -> dict[str, list[Line]]:
    rows = [r for r in range(len(snap.sent_doc)) if len(words(snap.sentence_text(r))) >= 10]
    picked = rng.sample(rows, n)
    vocab = sorted({w for r in picked for w in words(snap.sentence_text(r))})
    out: dict[str, list[Line]] = {"exact": [], "two changed": [], "two dropped": []}
    for r in picked:
        said = words(snap.sentence_text(r))
        out["exact"].append((" ".join(said), r))
        changed = list(said)
        for i in rng.sample(range(len(said)), 2):
            changed[i] = "zorblax"
        out["two changed"].append((" ".join(changed), r))
        dropped = [w for i, w in enumerate(said) if i not in rng.sample(range(len(said)), 2)]
        out["two dropped"].append((" ".join(dropped), r))
    out["not in the library"] = [(" ".join(rng.sample(vocab, 12)), None) for _ in range(n)]
    return out


def _placed(snap: Snapshot, found: WhoSaid, row: int) -> bool:
    """The best match is the sentence (in any essay that has it: recombined essays share
    paragraphs, as reposts do)."""
    sentence = snap.sentence_text(row)
    if not found.found:
        return False
    best = found.matches[0].excerpt
    text = snap.docs[best.doc_id].text
    return sentence in text[max(0, best.start - 400) : best.end + 400]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--essays", type=int, default=1000)
    parser.add_argument("--lines", type=int, default=100)
    args = parser.parse_args()
    started = time.perf_counter()
    snap = text_snapshot(args.essays)
    built = time.perf_counter() - started
    rng = random.Random(5)
    result: dict[str, object] = {
        "essays": args.essays, "passages": len(snap.passages),
        "words": sum(len(d.text.split()) for d in snap.docs.values()),
        "library_built_s": round(built, 1),
    }  # fmt: skip
    who_said(snap, "warm up the stemmer and the index")
    for kind, lines in _lines(snap, args.lines, rng).items():
        times, right = [], 0
        for line, row in lines:
            t = time.perf_counter()
            found = who_said(snap, line)
            times.append(time.perf_counter() - t)
            right += _placed(snap, found, row) if row is not None else not found.found
        result[kind] = {"right": f"{right}/{len(lines)}", **{
            k: round(v, 1) for k, v in percentiles(times).items()}}  # fmt: skip
    save_result("whosaid", result)


if __name__ == "__main__":
    main()
