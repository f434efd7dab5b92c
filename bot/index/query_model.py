"""Questions embedded without torch: the same model, exported once to ONNX and checked.

The export gives a text's unit embedding and its tokens' unit vectors (what the best few
quotes are reread by, token by token: :mod:`bot.answer.late`).

Answering embeds one short question per call. sentence-transformers on torch costs 11-20 ms
a question on two cores, and importing it costs a new process over five seconds; the same
network under onnxruntime costs a fraction of both (bench/README.md has the figures). The
export is made from the loaded sentence-transformers model (its own modules, so any pooling
the model uses is kept), compared with it on probe texts, and kept only if they agree; a
model that does not export keeps embedding questions with torch.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

#: Bump when the export changes shape; old exports are then ignored.
EXPORT_VERSION = "q3"  # q2: eager attention (10% faster under ONNX Runtime); q3: token vectors
#: Least cosine similarity between torch and ONNX embeddings of each probe to keep an export.
AGREEMENT = 0.9999
PROBES = (
    "Why can't Putin afford a peace deal?",
    "x",
    "  NATO, sanctions & the U.S. — what's left?  ",
    "Ceasefire " * 300,  # longer than the model's window: truncation must agree too
)
#: The tokenizer's outputs, by the names the model's modules take them.
_ENCODING_FIELDS = {"input_ids": "ids", "attention_mask": "attention_mask",
                    "token_type_ids": "type_ids"}  # fmt: skip
_SESSIONS: dict[str, OnnxQueryModel] = {}
_SESSIONS_LOCK = threading.Lock()


def export_paths(directory: Path, model_key: str) -> tuple[Path, Path]:
    """Where the export of a model lives: the network and its tokenizer."""
    digest = hashlib.sha256(f"{EXPORT_VERSION}:{model_key}".encode()).hexdigest()[:16]
    return directory / f"{digest}.onnx", directory / f"{digest}.tokenizer.json"


class OnnxQueryModel:
    """One exported model: embeds a question to a unit vector, as the torch model does.

    Args:
        model_file: The ONNX network (token ids in; the unit sentence embedding and the
            tokens' unit vectors out).
        tokenizer_file: The model's tokenizer, with its truncation length set.
    """

    def __init__(self, model_file: Path, tokenizer_file: Path) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(tokenizer_file))
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = min(2, os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        # Threads that spin between questions would steal the event loop's core.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(
            str(model_file), options, providers=["CPUExecutionProvider"]
        )
        self.inputs = [i.name for i in self.session.get_inputs()]

    def embed(self, text: str) -> np.ndarray:
        """The unit embedding of one text."""
        return self.read(text)[0]

    def read(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """One text's unit embedding and its tokens' unit vectors (as :meth:`tokens` gives
        them, uncut), from one pass: a question is embedded, then reread beside its best
        quotes by the same network."""
        return self.read_many([text])[0]

    def read_many(self, texts: list[str]) -> list[tuple[np.ndarray, np.ndarray]]:
        """:meth:`read` for a few short texts in one batch (a question and its variant
        without an author's name); the padding is masked out of both outputs."""
        out: list[tuple[np.ndarray, np.ndarray]] = [(np.zeros(0), np.zeros((0, 0)))] * len(texts)
        for rows, lengths, feed in self._batches(texts, max(len(texts), 1)):
            vectors, tokens = self.session.run(["embedding", "tokens"], feed)
            for r, (i, n) in enumerate(zip(rows, lengths, strict=True)):
                out[i] = (
                    np.asarray(vectors[r], dtype=np.float32),
                    np.asarray(tokens[r, 1 : n - 1], dtype=np.float32),
                )
        return out

    def embed_many(self, texts: list[str], batch_size: int = 16) -> np.ndarray:
        """Unit embeddings of many texts (passages and sentences when indexing), in
        batches of close token lengths (:meth:`_batches`); the padding is masked out of
        the model's pooling."""
        out: np.ndarray | None = None
        for rows, _, feed in self._batches(texts, batch_size):
            vectors = self.session.run(["embedding"], feed)[0]
            if out is None:
                out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
            out[rows] = vectors
        return out if out is not None else np.zeros((0, 0), dtype=np.float32)

    def tokens(self, texts: list[str], limit: int, batch_size: int = 1) -> list[np.ndarray]:
        """Each text's tokens' unit vectors (one row per word piece, the model's markers
        left out), the text cut to its first `limit` tokens. One text a call by default:
        padding costs more than the calls (a question and four quotes of library2: p50
        64 ms one by one, 73 ms in batches of 4, 88 ms of 8)."""
        out: list[np.ndarray] = [np.zeros((0, 0), dtype=np.float32)] * len(texts)
        for rows, lengths, feed in self._batches(texts, batch_size, limit):
            vectors = self.session.run(["tokens"], feed)[0]
            for r, (i, n) in enumerate(zip(rows, lengths, strict=True)):
                out[i] = np.asarray(vectors[r, 1 : n - 1], dtype=np.float32)
        return out

    def _batches(
        self, texts: list[str], batch_size: int, limit: int | None = None
    ) -> Iterator[tuple[list[int], list[int], dict[str, np.ndarray]]]:
        """The texts' inputs to the network, batched in order of token length so that each
        batch pads to a length close to its own texts' (a batch costs as much as its
        longest text times its size), each text cut to `limit` tokens if given.

        Yields:
            The batch's texts (positions in `texts`), their token lengths, and the feed.
        """
        encodings = self.tokenizer.encode_batch(texts)
        fields = {name: [getattr(e, _ENCODING_FIELDS[name]) for e in encodings]
                  for name in self.inputs}  # fmt: skip
        if limit is not None:
            fields = {name: [_cut(v, limit) for v in values] for name, values in fields.items()}
        lengths = [len(v) for v in fields[self.inputs[0]]]
        order = sorted(range(len(texts)), key=lambda i: lengths[i])
        for first in range(0, len(order), batch_size):
            rows = order[first : first + batch_size]
            width = max(lengths[i] for i in rows)
            feed = {}
            for name, values in fields.items():
                batch = np.zeros((len(rows), width), dtype=np.int64)
                for r, i in enumerate(rows):
                    batch[r, : lengths[i]] = values[i]
                feed[name] = batch
            yield rows, [lengths[i] for i in rows], feed


def _cut(values: list[int], limit: int) -> list[int]:
    """A tokenizer's output cut to `limit` tokens, keeping the closing marker (as the
    tokenizer's own truncation does)."""
    return values if len(values) <= limit else values[: limit - 1] + values[-1:]


def load(directory: Path, model_key: str) -> OnnxQueryModel | None:
    """The exported model for `model_key` (shared in the process), or None if not exported."""
    with _SESSIONS_LOCK:
        if model_key in _SESSIONS:
            return _SESSIONS[model_key]
        model_file, tokenizer_file = export_paths(directory, model_key)
        if not (model_file.is_file() and tokenizer_file.is_file()):
            return None
        try:
            _SESSIONS[model_key] = OnnxQueryModel(model_file, tokenizer_file)
        except ImportError:
            return None
        except Exception:  # a damaged file: onnxruntime's errors have no common base
            log.warning("The question model export %s cannot be loaded; making it again.",
                        model_file, exc_info=True)  # fmt: skip
            return None
        return _SESSIONS[model_key]


def export(
    model: Any, directory: Path, model_key: str, torch_embed: Any, torch_tokens: Any = None
) -> bool:
    """Export a loaded SentenceTransformer for questions, if it exports faithfully.

    Args:
        model: The SentenceTransformer.
        directory: Where exports are kept.
        model_key: Names the model (see `Embedder.key`).
        torch_embed: Embeds one text with the torch model (the reference).
        torch_tokens: Gives texts' token vectors with the torch model, cut to a number
            of tokens (the reference for :meth:`OnnxQueryModel.tokens`), if checked.

    Returns:
        True when a checked export is in place; False when this model stays on torch.
    """
    try:
        import onnxruntime  # noqa: F401
        import torch
    except ImportError:
        return False
    model_file, tokenizer_file = export_paths(directory, model_key)
    refused = model_file.with_suffix(".refused")
    if refused.exists():
        return False
    prepare = getattr(model, "preprocess", None) or model.tokenize
    sample = prepare(["How could a ceasefire hold?"])
    fields = [k for k, v in sample.items() if isinstance(v, torch.Tensor)]
    backend = getattr(getattr(model, "tokenizer", None), "backend_tokenizer", None)
    if backend is None or any(f not in _ENCODING_FIELDS for f in fields):
        log.info("Questions stay on torch: this model's tokenizer does not export.")
        return False
    tmp = f".tmp-{os.getpid()}-{threading.get_ident()}"
    tmp_model, tmp_tokenizer = Path(f"{model_file}{tmp}"), Path(f"{tokenizer_file}{tmp}")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        backend = type(backend).from_str(backend.to_str())  # a copy to configure
        backend.no_padding()
        backend.enable_truncation(int(model.max_seq_length))
        backend.save(str(tmp_tokenizer))
        _export_network(model, sample, fields, tmp_model, torch)
        candidate = OnnxQueryModel(tmp_model, tmp_tokenizer)
        worst = _agreement(candidate, torch_embed, torch_tokens, int(model.max_seq_length))
        if worst < AGREEMENT:
            log.warning("Questions stay on torch: the ONNX export disagrees (cos %.5f).", worst)
            refused.write_text(f"cosine {worst}\n")
            return False
        os.replace(tmp_tokenizer, tokenizer_file)
        os.replace(tmp_model, model_file)
        return True
    except Exception as exc:  # the exporter can fail in many ways (a full disk); torch answers
        log.warning("Questions stay on torch: the ONNX export failed (%s).", exc)
        log.debug("the export's failure", exc_info=True)
        return False
    finally:
        for leftover in (tmp_model, tmp_tokenizer):
            with contextlib.suppress(OSError):
                leftover.unlink(missing_ok=True)


def _agreement(candidate: OnnxQueryModel, torch_embed: Any, torch_tokens: Any, limit: int) -> float:
    """The least cosine between the export's vectors and torch's on :data:`PROBES`: each
    text's embedding and, if `torch_tokens` is given, each of its tokens' vectors (up to
    `limit` tokens, the model's own: every token of the probes)."""
    worst = min(float(np.dot(candidate.embed(p), torch_embed(p))) for p in PROBES)
    if torch_tokens is not None:
        pairs = zip(candidate.tokens(list(PROBES), limit), torch_tokens(list(PROBES), limit),
                    strict=True)  # fmt: skip
        worst = min([worst, *(float(np.einsum("ij,ij->i", a, b).min()) for a, b in pairs)])
    return worst


def _export_network(model: Any, sample: Any, fields: list[str], path: Path, torch: Any) -> None:
    """Trace the model's own modules, with normalisation, to an ONNX file.

    Args:
        model: The SentenceTransformer.
        sample: Its prepared features for one text (tensors, and constants such as
            the input's modality, which are kept as they are).
        fields: The names of the tensor features, in the network's input order.
        path: The file to write.
        torch: The torch module.
    """
    constants = {k: v for k, v in sample.items() if k not in fields}

    class Question(torch.nn.Module):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors: Any) -> Any:
            out = self.model({**constants, **dict(zip(fields, tensors))})
            normalize = torch.nn.functional.normalize
            return normalize(out["sentence_embedding"], dim=-1), normalize(
                out["token_embeddings"], dim=-1
            )

    axes = {name: {0: "batch", 1: "tokens"} for name in [*fields, "tokens"]}
    with warnings.catch_warnings(), torch.no_grad(), _eager_attention(model):
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Question().eval(), tuple(sample[f] for f in fields), str(path),
            input_names=fields, output_names=["embedding", "tokens"], dynamic_axes=axes,
            opset_version=17, dynamo=False,
        )  # fmt: skip


@contextlib.contextmanager
def _eager_attention(model: Any) -> Iterator[None]:
    """Trace attention as plain matrix products rather than torch's fused SDPA kernel:
    ONNX Runtime runs the plain graph about 10% faster on CPU (library2's passages and
    sentences: 3.8 s against 4.2 s, vectors at cosine 0.999999). Models without the
    switch are traced as they are."""
    modules: list[Any] = list(model) if hasattr(model, "__iter__") else []
    switch = [
        m.auto_model
        for m in modules
        if hasattr(getattr(m, "auto_model", None), "set_attn_implementation")
    ]
    before = [m.config._attn_implementation for m in switch]
    try:
        for m in switch:
            m.set_attn_implementation("eager")
    except Exception:  # noqa: BLE001 - an architecture without eager attention: trace as is
        log.debug("eager attention unavailable", exc_info=True)
    try:
        yield
    finally:
        for m, impl in zip(switch, before, strict=True):
            with contextlib.suppress(Exception):
                m.set_attn_implementation(impl)
