"""The dense index of passage vectors: one interface (:class:`DenseIndex`), one file per
engine, and the one place that chooses between them.

Another vector engine (a GPU index, a vector database) is another file here implementing
:class:`DenseIndex`, and a case in :func:`build` and :func:`load`; nothing outside this
package knows which engine answers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import faiss
import numpy as np

from bot.index.ann.base import DenseIndex
from bot.index.ann.flat import FlatIndex
from bot.index.ann.hnsw import HnswIndex

__all__ = ["EXACT_UP_TO", "DenseIndex", "FlatIndex", "HnswIndex", "build", "describe_search",
           "load", "search_kind"]  # fmt: skip

#: Up to this many passages a question scans every passage vector (exact, FAISS flat);
#: past it they go into an HNSW graph. ``python -m bench.bench_scale`` measures both
#: (bench/README.md).
EXACT_UP_TO = 100_000
_KINDS: dict[str, type[FlatIndex] | type[HnswIndex]] = {"exact": FlatIndex, "hnsw": HnswIndex}
_MMAP = getattr(faiss, "IO_FLAG_MMAP_IFC", 0)


def search_kind(n_passages: int) -> str:
    """How questions will search a library this size: "exact" or "hnsw"."""
    return "exact" if n_passages <= EXACT_UP_TO else "hnsw"


def describe_search(kind: str, n_passages: int) -> str:
    """One line for `index`: how questions search the passage vectors, and why."""
    return _KINDS[kind].describe(n_passages)


def build(vectors: np.ndarray) -> DenseIndex:
    """The index for these passage vectors (unit, float32, row i = passage row i): exact
    up to :data:`EXACT_UP_TO` passages, an HNSW graph past it."""
    return _KINDS[search_kind(len(vectors))].build(np.ascontiguousarray(vectors, np.float32))


def load(path: Path) -> DenseIndex:
    """An index written by :meth:`DenseIndex.save`, its vectors memory-mapped from the
    file (650,000 passages: read in 0.03 s, not 0.8 s into a private gigabyte; the page
    cache shares them between processes).

    Questions search one vector at a time, where FAISS's OpenMP threads cost more than
    they give (100,000 passages on 2 cores: 15 ms a search with 2 threads, 11 ms with 1).
    FAISS ships its own OpenMP runtime, so this leaves torch and onnxruntime alone.
    """
    faiss.omp_set_num_threads(1)
    index: Any = faiss.read_index(str(path), _MMAP)
    inner: Any = faiss.downcast_index(index.index)
    if isinstance(inner, faiss.IndexRefine | faiss.IndexHNSW):
        return HnswIndex(index)
    return FlatIndex(index)
