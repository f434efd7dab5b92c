"""Whether a question is about something the library never mentions.

Similarity cannot tell "Paine in prison in Paris" from Paine's essays on France: the
vectors are close, the library has no answer. A proper name is the plainest sign. When a
question names someone or something (a capitalised word inside the sentence: "Robespierre",
"Lilliput", "NAACP") that no passage, title or author name contains, the library cannot
be about it. On the evaluation sets no in-scope question names an unknown, and library2's
off-topic questions naming one (Robespierre, Cuba, NAACP, Lilliput, ...) are all declined.
A name spelled otherwise than the essays spell it ("Kiev") leaves the rest of the question
matching closely, so :func:`bot.answer.ask.answer` still answers when a passage is
that close.
"""

from __future__ import annotations

import re

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein
from wordfreq import zipf_frequency

from bot.answer.names import author_terms
from bot.answer.question import Question
from bot.index.lexical import tokenize
from bot.index.snapshot import Snapshot

_CAPITALISED = re.compile(r"(?<![\w’'])[A-Z][\w’'\-]*")
_SENTENCE_END = ".?!"
#: Judgment: past this share of capitalised words the question is in title case or
#: shouting, and capitals say nothing about names.
MOST_CAPITALISED = 0.5
#: Judgment: a term this long is taken as known when the library has a word a few edits
#: away from it ("Zelenskyy" for "Zelensky")...
FUZZY_LENGTH = 6
#: Judgment: ...one edit for each this many letters.
LETTERS_PER_EDIT = 4
#: Definition: the top of wordfreq's Zipf scale (log10 of uses per billion words; "the"
#: is 7.7).
ZIPF_TOP = 8.0
#: Judgment: the best passage's lead is measured over this one in the ranking (the
#: tenth): an answerable question's best stands out from the passages merely on topic.
LEAD_OVER = 10


def _known(stem: str, vocabulary: frozenset[str]) -> bool:
    if stem in vocabulary:
        return True
    if len(stem) < FUZZY_LENGTH:
        return False
    near = process.extractOne(stem, vocabulary, scorer=Levenshtein.distance,
                              score_cutoff=max(1, len(stem) // LETTERS_PER_EDIT))  # fmt: skip
    return near is not None


def _library_knows(snap: Snapshot, stem: str) -> bool:
    """Whether a term is one the library uses: in its passages, titles, authors' names or
    essays' years (:meth:`~bot.index.snapshot.Snapshot.vocabulary`), or a way the engine
    names an author (surname, initials: "LBJ"), even spelled a little otherwise."""
    return _known(stem, snap.vocabulary()) or _known(stem, author_terms(snap.authors()))


def _names_inside_sentences(question: str) -> list[str]:
    """Capitalised words that do not open a sentence (quote marks and brackets skipped)."""
    names = []
    for match in _CAPITALISED.finditer(question):
        before = question[: match.start()].rstrip(" \"'“”‘’([*_")
        if before and before[-1] not in _SENTENCE_END:
            names.append(match.group())
    return names


def unknown_names(snap: Snapshot, question: str) -> tuple[str, ...]:
    """The proper names in a question that the library never mentions, in order.

    Args:
        snap: The loaded index (its BM25 vocabulary, titles and authors).
        question: The question as asked.

    Returns:
        The names as written in the question (empty when every name is known, or when
        the question is written in capitals throughout).
    """
    words = question.split()
    capitals = sum(1 for w in words if w[:1].isupper())
    if not words or capitals / len(words) > MOST_CAPITALISED:
        return ()
    unknown = []
    for name in _names_inside_sentences(question):
        stems = tokenize(name)
        if stems and not all(_library_knows(snap, s) for s in stems):
            unknown.append(name.rstrip("’'-").removesuffix("’s").removesuffix("'s"))
    return tuple(dict.fromkeys(unknown))


def rarity(word: str) -> float:
    """How rare a word is in English at large, 0 (the commonest) to 1 (never seen), from
    wordfreq's Zipf scale. A word the library lacks means something else by how common it
    is: a common one ("jinxes", "lifestyle") is the reader's own wording for what the
    essays say otherwise, a rare one ("Sputnik", "espresso") a thing they never discuss."""
    return min(max(1.0 - zipf_frequency(word, "en") / ZIPF_TOP, 0.0), 1.0)


def unseen_rarity(snap: Snapshot, question: Question) -> float:
    """The share of a question's terms the library never uses (:func:`_library_knows`),
    each counted by its :func:`rarity`."""
    terms: dict[str, str] = {}  # each stem as first written
    for stem, word in zip(question.terms, question.written, strict=True):
        terms.setdefault(stem, word)
    lacking = [rarity(w) for t, w in terms.items() if not _library_knows(snap, t)]
    return sum(lacking) / max(len(terms), 1)


#: What the decision to decline is made from, in the order of :func:`decline_features`.
DECLINE_FEATURES = ("best", "lead", "unseen_rarity", "matched")


def decline_features(
    snap: Snapshot, question: Question, cosines: np.ndarray, matched: float
) -> tuple[float, ...]:
    """What says whether the library can answer a question (see :data:`DECLINE_FEATURES`):
    its best passage cosine, how far that stands above the tenth best, the share of its
    terms that no passage, title, essay's year or author's name has (by any of the ways the
    engine knows to name an author: "LBJ"), even spelled a little otherwise ("Zelenskyy"
    for "Zelensky"), each counted by how rare it is in English (:func:`unseen_rarity`),
    and how much of it the best quotes meet token by token
    (:func:`bot.answer.late.matched`: a question about something else finds no match for
    its own words, whatever its topic's words score).

    Each means the same in any library. Left out, because their meaning depends on how a
    library's questions are written: whether the question names an author or a title
    (under leave-one-library-out, library2's readers name authors far more often than
    the other sets' in-scope questions do, and 7 of its answerable questions were
    declined), and whether it names something no essay mentions (:func:`unknown_names`:
    it declined no more off-topic questions than the share of unseen terms already does,
    and a name spelled otherwise, "Kiev", would count twice).

    Args:
        snap: The loaded index.
        question: The question, read.
        cosines: Its retrieval candidates' passage cosines.
        matched: How much of it the best quotes meet, token by token.
    """
    unseen = unseen_rarity(snap, question)
    if not len(cosines):
        return (0.0, 0.0, unseen, matched)
    ranked = np.sort(cosines)[::-1]
    lead = float(ranked[0] - ranked[min(LEAD_OVER, len(ranked)) - 1])
    return (float(ranked[0]), lead, unseen, matched)
