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

from bot.answer.learned import Reorder
from bot.answer.question import Question
from bot.answer.windows import Scored, quote_of
from bot.index.snapshot import Snapshot

#: Cost bound: how many of the best quotes are reread (4 keep a warm question near 50 ms
#: on two cores).
QUOTES_READ = 4
#: Cost bound: a quote is read up to this many word pieces (most quotes are shorter).
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


def read(reader: TokenReader, question: Question, quotes: list[str]) -> np.ndarray:
    """:func:`token_matches` of a question and its quotes. The question's own word pieces
    come from the pass that embedded it when it fit :data:`TOKEN_LIMIT` whole; else it is
    read, cut, in one call with the quotes."""
    own = question.tokens
    if own is None or len(own) + 2 > TOKEN_LIMIT:  # its two markers count toward the limit
        vectors = reader([question.text, *quotes], TOKEN_LIMIT)
        return token_matches(vectors[0], vectors[1:])
    return token_matches(own, reader(quotes, TOKEN_LIMIT))


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


def reread(
    snap: Snapshot,
    question: Question,
    scored: list[Scored],
    reader: TokenReader,
    reorder: Reorder | None,
) -> tuple[list[Scored], float]:
    """The best :data:`QUOTES_READ` quotes (`scored` is best first) reread token by
    token: reordered by `reorder` if given (keeping their scores, in the new order), and
    how much of the question they meet together (:func:`matched`)."""
    head = scored[:QUOTES_READ]
    if not head:
        return scored, 0.0
    matches = read(reader, question, [quote_of(snap, s).quote for s in head])
    if reorder is not None:
        order = reorder.order([s.score for s in head], match(matches))
        head = [head[i]._replace(score=head[k].score) for k, i in enumerate(order)]
    return head + scored[QUOTES_READ:], matched(matches)
