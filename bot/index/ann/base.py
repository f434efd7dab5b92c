"""What a dense index of passage vectors offers the rest of the engine.

Retrieval asks for the passages nearest a question and for some passages' exact vectors;
it never sees how they are stored. Each engine behind this interface is one file here
(:mod:`.flat`, :mod:`.hnsw`), chosen by :func:`bot.index.ann.build` for a library's size.
Row numbers are the passage rows of the generation (row = id).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np


class DenseIndex(ABC):
    """Unit passage vectors, searched by inner product (= cosine)."""

    #: "exact" or "hnsw": how a question searches (the manifest and `index` report it).
    kind: ClassVar[str]

    @property
    @abstractmethod
    def size(self) -> int:
        """How many passage vectors it holds."""

    @property
    @abstractmethod
    def dim(self) -> int:
        """The vectors' width."""

    @abstractmethod
    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The `k` rows nearest each query vector, best first.

        Args:
            vectors: Query vectors, one row each (float32).
            k: How many rows per query.

        Returns:
            Scores and rows, each of shape (queries, k); a row of -1 fills a place no
            passage took (fewer than `k` passages).
        """

    @abstractmethod
    def vectors(self, rows: Any) -> np.ndarray:
        """Some passages' exact vectors (float32), by an index array or a slice; a slice
        is a view of the stored vectors (a 650,000-passage copy would be a gigabyte)."""

    @abstractmethod
    def save(self, path: Path) -> None:
        """Write the index to one file."""

    @staticmethod
    @abstractmethod
    def describe(n_passages: int) -> str:
        """One line for `index`: how questions search an index of this kind, and why."""
