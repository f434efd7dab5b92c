"""A document cut into what the index stores: sentences, passages and their vectors."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bot.index.cache import EmbeddingCache
from bot.ingest.chunking import (
    CHUNKER_VERSION,
    Passage,
    Sentence,
    make_passages,
    passage_hash,
    sentence_spans,
    split_sentences,
)
from bot.ingest.model import Document, DocumentError


@dataclass
class DocChunks:
    """A document with its sentences, passages and (once embedded) their vectors.

    Attributes:
        doc: The document.
        sentences: Its quotable sentences, in order.
        passages: Its passages (groups of consecutive sentences).
        texts: Each passage's embedded text (context header + sentences).
        hashes: Each passage's content hash, the key of the embedding cache.
        passage_vectors: One unit vector per passage (filled in by the build).
        sentence_vectors: Per passage, one unit vector per sentence (filled in likewise).
    """

    doc: Document
    sentences: list[Sentence]
    passages: list[Passage]
    texts: list[str] = field(default_factory=list)
    hashes: list[str] = field(default_factory=list)
    passage_vectors: list[np.ndarray] = field(default_factory=list)
    sentence_vectors: list[np.ndarray] = field(default_factory=list)

    def spans(self, passage: int) -> list[tuple[int, int]]:
        """The sentence spans inside one passage's embedded text."""
        return sentence_spans(self.passages[passage], self.sentences)


def chunk_document(
    doc: Document, cache: EmbeddingCache | None = None, max_sentences: int = 50_000
) -> DocChunks:
    """Sentences and passages of a document, with passage texts and hashes (no vectors).

    Args:
        doc: The document.
        cache: Where sentence spans of unchanged documents are remembered (sentence
            splitting is the slow part of chunking).
        max_sentences: The most sentences an essay may have (``MAX_ESSAY_SENTENCES``),
            which bounds its passages, embedding time and memory too.

    Raises:
        DocumentError: The essay has more sentences than that.
    """
    key = f"{CHUNKER_VERSION}:{doc.content_hash}"
    known = cache.get_sentences(key) if cache else None
    if known is not None:
        sentences = [Sentence(*row) for row in known]
    else:
        sentences = split_sentences(doc)
        if cache:
            cache.put_sentences(key, [(s.start, s.end, s.paragraph) for s in sentences])
    if len(sentences) > max_sentences:
        raise DocumentError(
            f"{doc.meta.doc_id} has {len(sentences):,} sentences, over the limit of "
            f"{max_sentences:,} (MAX_ESSAY_SENTENCES); split it into several essays"
        )
    passages = make_passages(doc, sentences)
    texts = [p.embed_text(doc.text, sentences) for p in passages]
    hashes = [passage_hash(t, sentence_spans(p, sentences)) for t, p in zip(texts, passages)]
    return DocChunks(doc, sentences, passages, texts, hashes)
