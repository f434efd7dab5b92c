"""Rereading the best few quotes token by token ("late interaction").

A quote and a question embedded whole are compared by one cosine, which blurs which of
the question's words the quote meets. Read token by token, each of the question's word
pieces finds its closest word piece in the quote (the model's contextual token vectors,
from the same exported network as the question's embedding); the mean of those best matches
says how much of the question the quote takes up. It is read for the best
:data:`QUOTES_READ` quotes only: each costs a forward pass over its words (about 10 ms
for a quote of 60 tokens on two cores).

What it is used for is learned (``train/fit_answering.py``): how far it reorders those
quotes (:class:`~bot.answer.learned.Reorder`), and, as the share of the question the
best quotes meet, whether the library can answer at all (``matched`` in
:data:`~bot.answer.scope.DECLINE_FEATURES`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

#: How many of the best quotes are reread (a cost bound: 4 quotes keep a warm question
#: near 50 ms on two cores).
QUOTES_READ = 4
#: A quote is read up to this many word pieces (a cost bound; most quotes are shorter).
TOKEN_LIMIT = 128

#: Gives texts' tokens' unit vectors, each text cut to a number of tokens
#: (:meth:`bot.index.embed.Embedder.token_vectors`).
TokenReader = Callable[[list[str], int], list[np.ndarray]]


def token_matches(question: np.ndarray, quotes: Sequence[np.ndarray]) -> np.ndarray:
    """Each question token's best cosine with any token of each quote.

    Args:
        question: The question's token vectors (one unit row each).
        quotes: Each quote's token vectors.

    Returns:
        An array of shape (question tokens, quotes); a quote with no tokens meets
        nothing (0).
    """
    out = np.zeros((len(question), len(quotes)), dtype=np.float32)
    for j, quote in enumerate(quotes):
        if len(quote) and len(question):
            out[:, j] = (question @ quote.T).max(axis=1)
    return out


def read(reader: TokenReader, question: str, quotes: list[str]) -> np.ndarray:
    """:func:`token_matches` of a question and its quotes, read in one call."""
    vectors = reader([question, *quotes], TOKEN_LIMIT)
    return token_matches(vectors[0], vectors[1:])


def match(matches: np.ndarray) -> np.ndarray:
    """How much of the question each quote meets: its column's mean."""
    if not matches.size:
        return np.zeros(matches.shape[1], dtype=np.float32)
    return matches.mean(axis=0)


def matched(matches: np.ndarray) -> float:
    """How much of the question the quotes together meet: each question token's best
    match over all of them, averaged."""
    if not matches.size:
        return 0.0
    return float(matches.max(axis=1).mean())


def standardised(values: np.ndarray) -> np.ndarray:
    """Values as z-scores among themselves (0 when they do not differ): what is compared
    is one quote against the others, whatever a library's range."""
    spread = float(values.std())
    if spread <= 1e-9:
        return np.zeros_like(values, dtype=np.float64)
    return (values - values.mean()) / spread
