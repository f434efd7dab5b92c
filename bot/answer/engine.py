"""The engine: one object the CLI and the Discord bot both call. No Discord in here.

Front ends reach the library through it alone (an import-linter contract keeps them off
``bot.index`` and ``bot.ingest``): it hands them :class:`EssayMeta`, results, and the
:data:`Progress` hook type of a build.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from bot.answer.ask import answer
from bot.answer.broad import Broad, read_broad
from bot.answer.broad import sidecar as broad_sidecar
from bot.answer.feedback import Asker, FeedbackStore, Rated
from bot.answer.inputs import InputError, clean_question, match_essays, resolve_essay
from bot.answer.learned import BASE_THRESHOLD, Answering, read_answering
from bot.answer.question import Question, read_question
from bot.answer.results import Answer, Excerpt, Ranked
from bot.answer.scope import rarity
from bot.answer.sources import claims
from bot.answer.summarize import Summary, essay_summary, perspectives, topic_summary
from bot.answer.whosaid import MIN_WORDS as WHOSAID_MIN_WORDS
from bot.answer.whosaid import WhoSaid, who_said, words
from bot.answer.windows import CONTEXT, context
from bot.errors import store_problem
from bot.index.build import IndexReport, Staged, build_index, changed_since_index, is_stale
from bot.index.chunks import chunk_document
from bot.index.embed import Embedder
from bot.index.essays import DamagedEssay
from bot.index.generations import (
    IndexMissing,
    Progress,
    current_generation,
    load_snapshot,
    no_progress,
)
from bot.index.snapshot import Snapshot
from bot.ingest.documents import load_library
from bot.ingest.model import DocumentError, EssayMeta
from bot.settings import Settings, SettingsError

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Limit: the longest chat message `sources` reads (Discord's own limit with Nitro).
MAX_MESSAGE_CHARS = 4000


@dataclass(frozen=True)
class EssayInfo:
    """One line of the library listing: an essay and how many passages it has."""

    essay: EssayMeta
    passages: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (the listing's fields, flat)."""
        e = self.essay
        return {"doc_id": e.doc_id, "title": e.title, "author": e.author, "date": e.date,
                "source": e.source, "passages": self.passages}  # fmt: skip


def _heals(method: Callable[..., T]) -> Callable[..., T]:
    """Answer again from an intact generation when the one read turns out damaged
    (an essay's stored text fails its checksum and its file has changed since): never
    altered words, never a crash."""

    @functools.wraps(method)
    def answered(self: Engine, *args: Any, **kwargs: Any) -> T:
        for _ in range(3):
            try:
                return method(self, *args, **kwargs)
            except DamagedEssay as exc:
                log.warning("%s; answering from another generation", exc)
                with self._lock:
                    self._passed_over.add(exc.generation)
                    self._snapshot = None
        return method(self, *args, **kwargs)

    return answered


class Engine:
    """Loads the model and the live index generation lazily; reloads a newer generation.

    Args:
        settings: The settings.
        embedder: A model to share (tests pass one); built from settings if omitted.
    """

    def __init__(
        self, settings: Settings, embedder: Embedder | None = None, broad_file: Path | None = None
    ) -> None:
        self.settings = settings
        self._embedder = embedder
        self._broad_file = broad_file
        self._snapshot: Snapshot | None = None
        self._lock = threading.RLock()
        self._feedback: FeedbackStore | None = None
        self._answering: Answering | None = None
        self._passed_over: set[str] = set()  # generations found damaged while answering
        self._warned: set[str] = set()  # stores answered without, each said once

    @property
    def embedder(self) -> Embedder:
        """The model (created on first use)."""
        if self._embedder is None:
            self._embedder = Embedder(
                self.settings.model,
                query_dir=self.settings.index_dir / "query-model",
                tuning=self.settings.model_tuning,
            )
        return self._embedder

    @property
    def answering(self) -> Answering:
        """How questions are ranked and declined: what was learned with the model's
        tuning, unless ``ABSTAIN_THRESHOLD`` is set (then a plain cosine threshold)."""
        if self._answering is None:
            try:
                learned = read_answering(self.embedder.tuning)
            except (OSError, ValueError, KeyError) as exc:
                raise SettingsError(f"the model tuning's answering file: {exc}") from exc
            given = self.settings.abstain_threshold
            if given is not None:
                learned = replace(learned, threshold=given, decline=None)
            self._answering = learned
        return self._answering

    @functools.cached_property
    def broad(self) -> Broad | None:
        """How broad questions are told and answered: what was learned with the model's
        tuning (``<tuning>.broad.json`` beside it, or the engine's `broad_file`); None
        for an untuned model, or with ``ABSTAIN_THRESHOLD`` set (the hand-set answering)."""
        tuning = self.embedder.tuning
        path = self._broad_file or (broad_sidecar(tuning) if tuning is not None else None)
        hand_set = self.settings.abstain_threshold is not None and self._broad_file is None
        try:
            return None if path is None or hand_set else read_broad(path, tuning)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise SettingsError(f"the model tuning's broad-question file: {exc}") from exc

    @property
    def _summary_floor(self) -> float:
        """The cosine a summary's point must reach: ``ABSTAIN_THRESHOLD`` if set, else the
        base model's 0.40. The learned threshold is fitted on questions' answers; there
        is no data on what a topic's points should reach, and the learned one, lower, let
        sentences that never name the topic in (the seeds' "NATO")."""
        given = self.settings.abstain_threshold
        return BASE_THRESHOLD if given is None else given

    # --- the index ------------------------------------------------------------------

    def index(
        self,
        force: bool = False,
        progress: Progress = no_progress,
        staged: Staged | None = None,
    ) -> IndexReport:
        """Bring the index up to date and load it; make the question model's export.

        Args:
            force: Write a new generation even when nothing changed.
            progress: Told how the build is going (stage, done, total).
            staged: Files to index otherwise than the folder has them (see ``Staged``).
        """
        self.embedder.prepare_queries()  # the checked export embeds the library too
        report = build_index(
            self.settings, self.embedder, force=force, progress=progress, staged=staged
        )
        with self._lock:
            self._snapshot = load_snapshot(self.settings.index_dir)
        return report

    def snapshot(self) -> Snapshot:
        """The live generation, reloaded when another one went live.

        Questions never wait for a rebuild: a library that changed since the index was
        built is served from the live generation (front ends say so and reindex); a
        damaged one by the newest intact one. Only a library with no usable index at all
        is indexed here, on first use.
        """
        with self._lock:
            live = current_generation(self.settings.index_dir)
            if self._snapshot is not None and self._snapshot.live == live:
                return self._snapshot
            try:
                if live is None:
                    raise IndexMissing("no index yet")
                self._snapshot = load_snapshot(self.settings.index_dir, self._passed_over)
            except IndexMissing:  # none yet, or every generation is damaged: build one
                self.index()
            assert self._snapshot is not None
            return self._snapshot

    def has_index(self) -> bool:
        """Whether a live index generation exists (else the first question builds one)."""
        return current_generation(self.settings.index_dir) is not None

    def changed_since_index(self) -> list[str] | None:
        """Library files changed since the live index was built (None: all of it)."""
        return changed_since_index(self.settings, self.embedder.key)

    def is_stale(self) -> bool:
        """True when the library folder changed since the live generation was built."""
        return is_stale(self.settings, self.embedder.key)

    def warm_up(self) -> None:
        """Load the model, the index and the English word frequencies the decline reads
        now (the bot does this before it says ready)."""
        self.snapshot()
        self.embedder.read(["warm up"])
        rarity("warm")

    # --- questions ------------------------------------------------------------------

    @_heals
    def ask(
        self,
        question: str,
        k: int | None = None,
        doc_id: str | None = None,
        asker: Asker | None = None,
        feedback: bool = True,
    ) -> Answer:
        """Answer a question with verbatim excerpts, or decline.

        Args:
            question: The question.
            k: How many excerpts at most (default TOP_K).
            doc_id: Only search this essay.
            asker: Who asked: a declined question is logged for `gaps`.
            feedback: Let the community's 👎 on similar questions lower excerpts.

        Raises:
            InputError: The question is not usable, or the essay is unknown.
        """
        q = clean_question(question, self.settings.max_question_chars)
        k = self.settings.top_k if k is None else k
        if not 1 <= k <= 25:
            raise InputError("Ask for between 1 and 25 excerpts.")
        snap = self.snapshot()
        if doc_id is not None and doc_id not in snap.docs:
            raise InputError(f"No essay called {doc_id!r}. Essays: {', '.join(snap.docs)}")
        read = self.read_question(snap, q)
        demote = self._demoter(read.vector) if feedback else None
        found = answer(snap, read, k=k, answering=self.answering, broad=self.broad,
                       doc_id=doc_id, demote=demote,
                       reader=self.embedder.token_vectors)  # fmt: skip
        if found.abstained and asker is not None:
            try:
                self.feedback.declined(q, read.vector, asker.user_id, asker.server)
            except (sqlite3.Error, OSError) as exc:
                self._without("the question log", exc)
        return found

    def _without(self, what: str, exc: BaseException) -> None:
        """Answer without the community's store (damaged, locked, on a full or read-only
        disk): said once per process and store, in one log line."""
        problem = store_problem(exc, f"{what} {self.feedback.path}")
        if problem not in self._warned:
            self._warned.add(problem)
            log.warning("%s; answering without it", problem)

    def _demoter(self, qvec: np.ndarray) -> Callable[[Ranked], float] | None:
        """How much the community's 👎 on similar questions lowers an excerpt (by overlap
        with the rated span), or None when nothing applies."""
        try:
            rated = self.feedback.demotions(qvec)
        except (sqlite3.Error, OSError) as exc:
            self._without("the community's ratings", exc)
            return None
        if not rated:
            return None

        def demote(e: Ranked) -> float:
            return max((v for r, v in rated.items()
                        if r.doc_id == e.doc_id and r.start < e.end and e.start < r.end),
                       default=0.0)  # fmt: skip

        return demote

    def rate(self, answer: Answer, shown: list[Excerpt], vote: int, asker: Asker) -> list[int]:
        """Record a 👍 (+1) or 👎 (-1) on excerpts shown for a question.

        Returns:
            The ratings' ids (admins can revoke them).
        """
        qvec = self.read_question(self.snapshot(), answer.question).vector
        rated = [Rated(e.doc_id, e.start, e.end) for e in shown]
        return self.feedback.rate(answer.question, qvec, rated, vote, asker.user_id, asker.server)

    @property
    def feedback(self) -> FeedbackStore:
        """The community's ratings and declined questions (INDEX_DIR/feedback.sqlite)."""
        if self._feedback is None:
            self._feedback = FeedbackStore.of(self.settings)
        return self._feedback

    @_heals
    def sources(self, message: str, k: int | None = None) -> Answer:
        """What the essays say about a chat message (its claim-bearing sentences).

        Raises:
            InputError: The message is not usable text.
        """
        text = clean_question(message, MAX_MESSAGE_CHARS, "message")
        found = self.ask(claims(text)[: self.settings.max_question_chars], k)
        return dataclasses.replace(found, question=text)

    @_heals
    def who_said(self, line: str) -> WhoSaid:
        """Where a remembered line comes from (exact or misremembered), or not found.

        Raises:
            InputError: The line is not usable text, or too short to place.
        """
        text = clean_question(line, self.settings.max_question_chars, "line")
        if len(words(text)) < WHOSAID_MIN_WORDS:
            raise InputError(f"Give at least {WHOSAID_MIN_WORDS} words of the line.")
        return who_said(self.snapshot(), text)

    @_heals
    def essay_path(self, doc_id: str) -> str:
        """The file an indexed essay was read from."""
        return self.snapshot().docs[doc_id].path

    @_heals
    def context(self, excerpt: Excerpt, before: int = CONTEXT, after: int = CONTEXT) -> Excerpt:
        """The excerpt with `before` and `after` sentences around it."""
        return context(self.snapshot(), excerpt, before, after)

    # --- summaries ------------------------------------------------------------------

    def find_essays(self, name: str) -> list[EssayMeta]:
        """Essays a (partial) name can mean, best kind of match first."""
        return match_essays(self.snapshot(), name)

    def resolve_essay(self, name: str) -> EssayMeta:
        """The one essay a name means.

        Raises:
            InputError: None or several match.
        """
        return resolve_essay(self.snapshot(), name).meta

    def essay_hashes(self) -> dict[str, str]:
        """Each indexed essay's content hash, by id: what tells a new or changed essay
        from one already announced."""
        return {d: r.content_hash for d, r in self.snapshot().docs.records.items()}

    @_heals
    def key_points(self, doc_id: str, points: int) -> tuple[EssayMeta, Summary]:
        """An indexed essay's metadata and its stored key sentences, from one snapshot.

        Raises:
            InputError: No essay has this id.
        """
        snap = self.snapshot()
        if doc_id not in snap.docs:
            raise InputError(f"No essay called {doc_id!r}.")
        doc = snap.docs[doc_id]
        return doc.meta, essay_summary(snap, doc, points)

    @_heals
    def summary(self, essay: str, points: int | None = None) -> Summary:
        """The stored key sentences of one essay (id or unambiguous part of its title).

        Raises:
            InputError: No such essay, or several match.
        """
        snap = self.snapshot()
        doc = resolve_essay(snap, essay)
        return essay_summary(snap, doc, points or self.settings.summary_sentences)

    @_heals
    def topic(self, topic: str) -> Summary:
        """What the essays say about a topic, grouped by essay; declines when uncovered.

        Raises:
            InputError: The topic is not usable text.
        """
        return topic_summary(*self._query(topic), self._summary_floor)

    @_heals
    def perspectives(self, question: str) -> Summary:
        """Each author's position on a question, in their own words.

        Raises:
            InputError: The question is not usable text.
        """
        return perspectives(*self._query(question), self._summary_floor)

    def _query(self, text: str) -> tuple[Snapshot, Question]:
        """Validate a question or topic; the live snapshot and the question read."""
        clean = clean_question(text, self.settings.max_question_chars)
        snap = self.snapshot()
        return snap, self.read_question(snap, clean)

    def read_question(self, snap: Snapshot, text: str) -> Question:
        """A cleaned question read once by the model: its words, names, form and vectors
        (:func:`~bot.answer.question.read_question`)."""
        return read_question(snap, text, self.embedder.read)

    # --- the library ----------------------------------------------------------------

    def indexed_essays(self) -> list[EssayInfo]:
        """The library as the live index has it (what questions are answered from)."""
        snap = self.snapshot()
        counts = snap.passage_counts()
        return [EssayInfo(e, counts.get(e.doc_id, 0)) for e in snap.docs.essays()]

    def essays(self) -> tuple[list[EssayInfo], list[str]]:
        """The library as it is in the folder, without loading the model.

        Returns:
            The essays, and a one-line reason for each file that is skipped.
        """
        out, skipped = [], []
        for item in load_library(self.settings.seeds_dir):
            try:
                if isinstance(item, DocumentError):
                    raise item
                chunks = chunk_document(item, max_sentences=self.settings.max_essay_sentences)
                out.append(EssayInfo(item.meta, len(chunks.passages)))
            except DocumentError as exc:
                skipped.append(str(exc))
        return out, skipped
