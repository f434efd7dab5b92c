"""A linear adapter on question vectors, learned from the question sets.

Readers ask in their own words; the library's passages are in their authors'. The adapter
maps a question's vector (as `ask` makes it) to one that lies nearer the passages that
answer such questions: ``normalise(q @ W)``. Passage vectors, the index and the model stay
as they are, so serving it costs one 384 x 384 product a question.

Trained with the loss sentence-transformers uses for retrieval (multiple negatives
ranking): for each question, a softmax over *every* passage of its library, the answering
passages (those holding one of its phrases) as positives; and a penalty on the distance
from the identity, so a library unlike the training ones is moved little.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from train.data import LibrarySet


@dataclass(frozen=True)
class FitOptions:
    """How the adapter is fitted (fixed before looking at any held-out figure).

    Attributes:
        scale: Logit scale of the softmax over passages (sentence-transformers' 20).
        reg: Weight of ||W - I||^2 (keeps W near the identity).
        steps: Full passes over the training libraries.
        lr: Adam's learning rate.
        pool: Passages each question's softmax runs over: its answering passages and the
            nearest others under the base vectors (the rest of a library adds nothing to
            the gradient and costs 40 times as much).
    """

    scale: float = 20.0
    reg: float = 1.0
    steps: int = 150
    lr: float = 1e-3
    pool: int = 256


@dataclass(frozen=True)
class _Batch:
    """One library's questions with their pools: (questions, pool) passage vectors and
    which of them answer."""

    vectors: torch.Tensor
    pool: torch.Tensor
    answers: torch.Tensor


def _batch(s: LibrarySet, pool: int) -> _Batch:
    sims = s.vectors @ s.passages.T
    nearest = np.argsort(-sims, axis=1)[:, :pool]
    rows, answers = [], []
    for i, positives in enumerate(s.positives):
        others = [r for r in nearest[i] if r not in positives][: pool - len(positives[:pool])]
        chosen = list(positives[:pool]) + others
        rows.append(chosen)
        answers.append([j < len(positives[:pool]) for j in range(len(chosen))])
    width = min(len(r) for r in rows)
    idx = np.array([r[:width] for r in rows])
    return _Batch(torch.from_numpy(s.vectors), torch.from_numpy(s.passages[idx]),
                  torch.tensor([a[:width] for a in answers]))  # fmt: skip


def _library_loss(w: torch.Tensor, b: _Batch, scale: float) -> torch.Tensor:
    q = torch.nn.functional.normalize(b.vectors @ w, dim=1)
    logits = scale * torch.einsum("qd,qpd->qp", q, b.pool)
    positive = torch.logsumexp(logits.masked_fill(~b.answers, float("-inf")), dim=1)
    return (torch.logsumexp(logits, dim=1) - positive).mean()


def fit(sets: list[LibrarySet], options: FitOptions = FitOptions(), seed: int = 0) -> np.ndarray:
    """The adapter W (dim x dim, float32) fitted on these libraries' questions; each
    library weighs the same, however many questions it has."""
    torch.manual_seed(seed)
    dim = sets[0].vectors.shape[1]
    w = torch.eye(dim, requires_grad=True)
    eye = torch.eye(dim)
    opt = torch.optim.Adam([w], lr=options.lr)
    batches = [_batch(s, options.pool) for s in sets]
    for _ in range(options.steps):
        opt.zero_grad()
        loss = sum(_library_loss(w, b, options.scale) for b in batches) / len(batches)
        loss = loss + options.reg * ((w - eye) ** 2).sum()
        loss.backward()
        opt.step()
    return w.detach().numpy().astype(np.float32)


def apply(w: np.ndarray | None, vectors: np.ndarray) -> np.ndarray:
    """Question vectors through the adapter, unit length (unchanged without one)."""
    if w is None:
        return vectors
    out = vectors @ w
    return out / np.maximum(np.linalg.norm(out, axis=-1, keepdims=True), 1e-9)


def dense_recall(s: LibrarySet, w: np.ndarray | None, ks: tuple[int, ...] = (1, 3, 10, 50)):
    """For each k, how many of a library's questions have an answering passage among the
    k passages nearest their (adapted) vector: what dense retrieval alone finds."""
    sims = apply(w, s.vectors) @ s.passages.T
    order = np.argsort(-sims, axis=1)
    ranks = [int(np.flatnonzero(np.isin(order[i], rows))[0]) for i, rows in enumerate(s.positives)]
    return {f"top{k}": sum(r < k for r in ranks) for k in ks}
