"""Approximate search for large libraries: an HNSW graph walked on 8-bit codes, its best
candidates re-ranked by the exact vectors kept beside them."""

from __future__ import annotations

import os
from typing import Any

import faiss
import numpy as np

from bot.index.ann.faiss_index import FaissIndex

HNSW_M = 48  # graph neighbours per vector
HNSW_EF_CONSTRUCTION = 200  # candidates weighed while linking a vector in
HNSW_EF_SEARCH = 768  # candidates weighed per question (recall@50 0.99 vs exact: bench)
#: The graph walks 8-bit codes (a quarter of the memory a step reads) and returns this many
#: times the passages asked for, re-ranked by their exact vectors: at 10,000 essays recall@50
#: 0.994 in 3 ms a question, where a graph of the float vectors took 7 ms for 0.991.
HNSW_REFINE = 2.0


class HnswIndex(FaissIndex):
    """A few milliseconds a question at any size, approximate (recall@50 0.99: bench).

    Args:
        index: A FAISS ``IndexIDMap`` over an ``IndexRefineFlat(IndexHNSWSQ)``, or over an
            ``IndexHNSWFlat`` (index format 2, still read until `index` rewrites it).
    """

    kind = "hnsw"

    def __init__(self, index: Any) -> None:
        inner: Any = faiss.downcast_index(index.index)
        if isinstance(inner, faiss.IndexRefine):  # this version's search parameters
            inner.k_factor = HNSW_REFINE
            storage = faiss.downcast_index(inner.refine_index)
            inner = faiss.downcast_index(inner.base_index)
        else:
            storage = faiss.downcast_index(inner.storage)
        inner.hnsw.efSearch = HNSW_EF_SEARCH
        super().__init__(index, storage)

    @classmethod
    def build(cls, vectors: np.ndarray) -> HnswIndex:
        """A graph of these unit vectors (row i = passage row i), built on every core."""
        dim = vectors.shape[1]
        qtype: Any = faiss.ScalarQuantizer.QT_8bit  # an enum value; the stubs want an object
        graph = faiss.IndexHNSWSQ(dim, qtype, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        graph.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        refined = faiss.IndexRefineFlat(graph)  # keeps the exact vectors beside the codes
        index = faiss.IndexIDMap(refined)
        threads = faiss.omp_get_max_threads()  # questions run FAISS on one thread
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        try:
            index.train(vectors)  # the 8-bit codes' ranges
            index.add_with_ids(vectors, np.arange(len(vectors), dtype=np.int64))
        finally:
            faiss.omp_set_num_threads(threads)
        return cls(index)

    @staticmethod
    def describe(n_passages: int) -> str:
        from bot.index.ann import EXACT_UP_TO

        return (f"HNSW graph over {n_passages:,} passages (approximate: 8-bit codes, M {HNSW_M}, "
                f"efSearch {HNSW_EF_SEARCH}, re-ranked by the exact vectors), chosen past "
                f"{EXACT_UP_TO:,} passages")  # fmt: skip
