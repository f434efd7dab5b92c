"""Exact search: every question scans every passage vector (FAISS flat)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import faiss
import numpy as np

from bot.index.ann.base import DenseIndex


class FlatIndex(DenseIndex):
    """Every passage vector scanned per question: exact, and fast enough up to
    :data:`bot.index.ann.EXACT_UP_TO` passages (bench/bench_scale.py).

    Args:
        index: A FAISS ``IndexIDMap`` over an ``IndexFlatIP`` (ids = rows).
    """

    kind = "exact"

    def __init__(self, index: Any) -> None:
        self._index = index
        self._storage = faiss.downcast_index(index.index)
        self._matrix: np.ndarray | None = None

    @classmethod
    def build(cls, vectors: np.ndarray) -> FlatIndex:
        """An index of these unit vectors (row i = passage row i)."""
        index = faiss.IndexIDMap(faiss.IndexFlatIP(vectors.shape[1]))
        if len(vectors):
            index.add_with_ids(vectors, np.arange(len(vectors), dtype=np.int64))
        return cls(index)

    @property
    def size(self) -> int:
        return int(self._index.ntotal)

    @property
    def dim(self) -> int:
        return int(self._index.d)

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores, ids = self._index.search(np.ascontiguousarray(vectors, dtype=np.float32), k)
        return scores, ids

    def vectors(self, rows: Any) -> np.ndarray:
        if self._matrix is None:
            self._matrix = stored_matrix(self._storage, self.size)
        return self._matrix[rows]

    def save(self, path: Path) -> None:
        faiss.write_index(self._index, str(path))

    @staticmethod
    def describe(n_passages: int) -> str:
        from bot.index.ann import EXACT_UP_TO

        return f"exact scan of {n_passages:,} passages (FAISS flat), up to {EXACT_UP_TO:,}"


def stored_matrix(flat: Any, n: int) -> np.ndarray:
    """A flat index's vectors as an (n, dim) matrix: a view of FAISS's own storage, which
    may be memory-mapped from the file (no copy)."""
    if not n:
        return np.zeros((0, flat.d), np.float32)
    view = faiss.rev_swig_ptr(flat.get_xb(), n * flat.d)
    return np.asarray(view).reshape(n, flat.d)
