"""Exact search: every question scans every passage vector (FAISS flat)."""

from __future__ import annotations

from typing import Any

import faiss
import numpy as np

from bot.index.ann.faiss_index import FaissIndex


class FlatIndex(FaissIndex):
    """Every passage vector scanned per question: exact, and fast enough up to
    :data:`bot.index.ann.EXACT_UP_TO` passages (bench/bench_scale.py).

    Args:
        index: A FAISS ``IndexIDMap`` over an ``IndexFlatIP`` (ids = rows).
    """

    kind = "exact"

    def __init__(self, index: Any) -> None:
        super().__init__(index, faiss.downcast_index(index.index))

    @classmethod
    def build(cls, vectors: np.ndarray) -> FlatIndex:
        """An index of these unit vectors (row i = passage row i)."""
        index = faiss.IndexIDMap(faiss.IndexFlatIP(vectors.shape[1]))
        if len(vectors):
            index.add_with_ids(vectors, np.arange(len(vectors), dtype=np.int64))
        return cls(index)

    @staticmethod
    def describe(n_passages: int) -> str:
        from bot.index.ann import EXACT_UP_TO

        return f"exact scan of {n_passages:,} passages (FAISS flat), up to {EXACT_UP_TO:,}"
