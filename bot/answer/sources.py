"""Find sources: what the essays say about a chat message.

A message is not a question: it mixes statements with greetings, questions to others,
links and asides, and the embedding reads at most 256 tokens of it. So the search reads
the sentences that state something (:func:`claims`), and the answer is the same verbatim,
attributed excerpts as a question gets, or the same honest decline. Nothing here says
whether the message is right.
"""

from __future__ import annotations

import re

from bot.index.lexical import tokenize
from bot.ingest.chunking import sentences_of

#: Cost bound: the most sentences of a message searched for.
CLAIM_SENTENCES = 3
#: Judgment: a shorter sentence carries no claim ("lol, same").
MIN_CLAIM_WORDS = 4
_NOISE = re.compile(r"https?://\S+|<[@#][!&]?\d+>|<a?:\w+:\d+>")  # links, mentions, emoji


def claims(message: str, most: int = CLAIM_SENTENCES) -> str:
    """The sentences of a message that make a claim, in the message's order: statements
    (not questions) of at least four words, those with the most distinct content terms
    first, at most `most`. A message with none is searched whole."""
    text = " ".join(_NOISE.sub(" ", message).split())
    scored = [
        (len(set(tokenize(s))), i, s.strip())
        for i, s in enumerate(sentences_of(text))
        if not s.rstrip().endswith("?") and len(s.split()) >= MIN_CLAIM_WORDS
    ]
    if not scored:
        return text
    kept = sorted(sorted(scored, key=lambda t: (-t[0], t[1]))[:most], key=lambda t: t[1])
    return " ".join(s for _, _, s in kept)
