"""What the FAISS engines share: an ID map (ids = passage rows) over an index that keeps
the exact vectors in a flat storage, read back as a matrix without a copy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import faiss
import numpy as np

from bot.index.ann.base import DenseIndex


class FaissIndex(DenseIndex):
    """A FAISS ``IndexIDMap`` and the flat index inside it that holds the exact vectors.

    Args:
        index: The ID map (ids = passage rows).
        storage: The flat index holding the exact vectors (the map's own index for an
            exact scan; the refinement or graph storage of an HNSW graph).
    """

    def __init__(self, index: Any, storage: Any) -> None:
        self._index = index
        self._storage = storage
        self._matrix: np.ndarray | None = None

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
            self._matrix = _stored_matrix(self._storage, self.size)
        return self._matrix[rows]

    def save(self, path: Path) -> None:
        faiss.write_index(self._index, str(path))


def _stored_matrix(flat: Any, n: int) -> np.ndarray:
    """A flat index's vectors as an (n, dim) matrix: a view of FAISS's own storage, which
    may be memory-mapped from the file (no copy)."""
    if not n:
        return np.zeros((0, flat.d), np.float32)
    view = faiss.rev_swig_ptr(flat.get_xb(), n * flat.d)
    return np.asarray(view).reshape(n, flat.d)
