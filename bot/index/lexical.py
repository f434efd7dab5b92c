"""Lexical side of retrieval: one tokenizer for BM25 (bm25s) and for term overlap."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import bm25s
import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_EN

_TOKEN = re.compile(r"[a-z0-9]+(?:['’][a-z]+)?")
# Question words carry no topic; drop them along with the usual stop words.
_STOP = frozenset(STOPWORDS_EN) | {
    "what", "why", "how", "who", "whom", "which", "when", "where", "does", "did", "do",
    "can", "could", "would", "should", "may", "might", "must", "shall", "say", "says",
    "said", "about", "tell", "me", "i", "you", "we", "us", "our", "its", "it's", "has",
    "have", "had", "been", "being", "were", "any", "from", "than", "more", "most", "so",
    "essay", "essays", "author", "authors", "writer", "library",
}  # fmt: skip


@lru_cache(maxsize=1)
def stemmer() -> Stemmer.Stemmer:
    """The English Snowball stemmer (one per process)."""
    return Stemmer.Stemmer("english")


def words(text: str) -> list[str]:
    """Lowercase, split into words (possessives dropped), drop stop words: the words
    :func:`tokenize` stems, as written."""
    split = [w.replace("’", "'") for w in _TOKEN.findall(text.lower())]
    split = [w[:-2] if w.endswith("'s") else w for w in split]
    return [w for w in split if w not in _STOP and len(w) > 1]


def tokenize(text: str) -> list[str]:
    """Lowercase, split into words, drop stop words, stem."""
    return stemmer().stemWords(words(text))


def tokenize_many(texts: list[str]) -> list[list[str]]:
    """:func:`tokenize` for many texts at once: each distinct word is stemmed once (ten
    thousand titles in a few milliseconds rather than a tenth of a second)."""
    split = [words(text) for text in texts]
    distinct = sorted({w for ws in split for w in ws})
    stems = dict(zip(distinct, stemmer().stemWords(distinct), strict=True))
    return [[stems[w] for w in ws] for ws in split]


class LexicalIndex:
    """BM25 over passages (a thin wrapper around bm25s)."""

    def __init__(self, retriever: bm25s.BM25, size: int) -> None:
        self.retriever = retriever
        self.size = size

    @classmethod
    def build(cls, texts: list[str]) -> LexicalIndex:
        """Index passage texts."""
        retriever = bm25s.BM25()
        corpus = [tokenize(t) or ["\x00empty"] for t in texts]
        if corpus:
            retriever.index(corpus, show_progress=False)
        return cls(retriever, len(texts))

    def save(self, folder: Path) -> None:
        """Write to a folder."""
        if self.size:
            self.retriever.save(str(folder))

    @classmethod
    def load(cls, folder: Path, size: int) -> LexicalIndex:
        """Read from a folder written by :meth:`save`."""
        if not size:
            return cls(bm25s.BM25(), 0)
        # Memory-mapped: a large library's postings are paged in as questions use them.
        return cls(bm25s.BM25.load(str(folder), mmap=True, show_progress=False), size)

    def rarity(self, terms: set[str]) -> dict[str, float]:
        """How rare each term is among the passages: log(1 + passages / passages with
        it), as high as can be for a term no passage has; 1.0 each in an empty index."""
        if not self.size:
            return dict.fromkeys(terms, 1.0)
        vocab, indptr = self.retriever.vocab_dict, self.retriever.scores["indptr"]
        out = {}
        for term in terms:
            i = vocab.get(term)
            df = int(indptr[i + 1] - indptr[i]) if i is not None and i + 1 < len(indptr) else 0
            out[term] = float(np.log1p(self.size / max(df, 1)))
        return out

    def scores(self, tokens: list[str]) -> np.ndarray:
        """Every passage's BM25 score for these terms (float32, one per passage row)."""
        if not tokens or not self.size:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self.retriever.get_scores(tokens), dtype=np.float32)

    def terms(self) -> frozenset[str]:
        """Every term of the indexed passages."""
        return frozenset(self.retriever.vocab_dict) if self.size else frozenset()

    def search(self, tokens: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """The best `k` passage rows with a positive score, and their scores."""
        if not tokens or not self.size:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        res = self.retriever.retrieve([tokens], k=min(k, self.size), show_progress=False)
        ids, scores = res.documents[0], res.scores[0]
        keep = scores > 0
        return ids[keep].astype(np.int64), scores[keep].astype(np.float32)
