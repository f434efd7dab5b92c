"""Questions embedded by the model's ONNX export: same vectors as torch, no torch import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.answer.engine import Engine
from bot.index import query_model
from bot.index.embed import Embedder
from bot.settings import ROOT, Settings
from tests.conftest import SEEDS


def test_the_shared_model_answers_questions_through_onnx(embedder: Embedder) -> None:
    assert embedder.query_backend == "onnx"


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.text(min_size=1, max_size=400))
def test_onnx_and_torch_embed_any_text_alike(embedder: Embedder, text: str) -> None:
    onnx, torch = embedder.embed_query(text), embedder.embed_query_torch(text)
    assert onnx.shape == torch.shape
    assert float(np.dot(onnx, torch)) >= query_model.AGREEMENT


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.text(min_size=1, max_size=300))
def test_onnx_and_torch_give_the_same_token_vectors(embedder: Embedder, text: str) -> None:
    onnx, torch = embedder.token_vectors([text], 64)[0], embedder.token_vectors_torch([text], 64)
    assert onnx.shape == torch[0].shape
    if len(onnx):
        assert float(np.einsum("ij,ij->i", onnx, torch[0]).min()) >= query_model.AGREEMENT


def test_token_vectors_are_the_word_pieces_up_to_the_limit(embedder: Embedder) -> None:
    """One row per word piece of the model's own tokenizer, its markers left out, cut at
    the limit as the tokenizer cuts (the closing marker kept)."""
    pieces = embedder.model.tokenizer.tokenize("Ceasefires rarely hold")
    short, long = embedder.token_vectors(["Ceasefires rarely hold", "Ceasefire " * 300], 128)
    assert short.shape == (len(pieces), 384)
    assert long.shape == (126, 384)
    assert np.allclose(np.linalg.norm(long, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize(
    "question",
    [
        "Why can't Putin afford a peace deal?",
        # Embedded beside its variant without the name, in one batch.
        "What did Mick Ryan write about the negotiations?",
    ],
)
def test_a_question_is_read_once_for_its_vector_and_its_reread(
    question: str, engine: Engine, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Answering rereads the best quotes beside the question token by token; the
    question's token vectors come from the pass that embedded it, and are the torch
    model's own."""
    read: list[str] = []
    tokens = query_model.OnnxQueryModel.tokens

    def spy(self: query_model.OnnxQueryModel, texts: list[str], limit: int) -> list[np.ndarray]:
        read.extend(texts)
        return tokens(self, texts, limit)

    monkeypatch.setattr(query_model.OnnxQueryModel, "tokens", spy)
    assert engine.ask(question).excerpts
    assert read and question not in read
    reused = engine.read_question(engine.snapshot(), question).tokens
    reference = embedder.token_vectors_torch([question], 128)[0]
    assert reused is not None
    assert reused.shape == reference.shape
    assert float(np.einsum("ij,ij->i", reused, reference).min()) >= query_model.AGREEMENT


def test_ask_in_a_new_process_does_not_import_torch(seed_index: Path, engine: Engine) -> None:
    question = "Why can't Putin afford a peace deal?"
    code = (
        "import json, sys\n"
        "from bot.frontends.cli import main\n"
        f"main(['ask', {question!r}, '--json'])\n"
        "heavy = [m for m in ('torch', 'sentence_transformers') if m in sys.modules]\n"
        "print(json.dumps(heavy))\n"
    )
    env = {"INDEX_DIR": str(seed_index), "PATH": "/usr/bin:/bin", "ENV_FILE": "/nonexistent"}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    answer_line, heavy_line = proc.stdout.strip().splitlines()
    assert json.loads(heavy_line) == []
    quotes = [e["quote"] for e in json.loads(answer_line)["excerpts"]]
    assert quotes == [e.quote for e in engine.ask(question).excerpts]


@pytest.fixture
def fresh_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if no export had been loaded in this process yet."""
    monkeypatch.setattr(query_model, "_SESSIONS", {})


def test_a_refused_export_keeps_questions_on_torch(
    fresh_process: None, embedder: Embedder, tmp_path: Path
) -> None:
    emb = Embedder(query_dir=tmp_path)
    model_file, _ = query_model.export_paths(tmp_path, emb.key)
    model_file.with_suffix(".refused").write_text("cosine 0.5\n")
    vector = emb.embed_query("Can a ceasefire hold?")
    assert emb.query_backend == "torch"
    assert np.allclose(vector, embedder.embed_query_torch("Can a ceasefire hold?"))


def test_a_damaged_export_is_made_again(
    fresh_process: None, embedder: Embedder, tmp_path: Path
) -> None:
    emb = Embedder(query_dir=tmp_path)
    model_file, tokenizer_file = query_model.export_paths(tmp_path, emb.key)
    model_file.write_bytes(b"not a network")
    tokenizer_file.write_text("{}")
    vector = emb.embed_query("Can a ceasefire hold?")
    assert emb.query_backend == "onnx"
    assert float(np.dot(vector, embedder.embed_query_torch("Can a ceasefire hold?"))) > 0.9999
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [model_file.name, tokenizer_file.name]
    )


def test_an_engine_finds_the_export_beside_its_index(fresh_process: None, seed_index: Path) -> None:
    engine = Engine(Settings(seeds_dir=SEEDS, index_dir=seed_index))
    engine.ask("What does Putin demand in exchange for peace?")
    assert engine.embedder.query_backend == "onnx"
    assert {p.suffix for p in (seed_index / "query-model").iterdir()} == {".json", ".onnx"}


def test_an_unwritable_export_folder_keeps_questions_on_torch(
    fresh_process: None, embedder: Embedder, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    emb = Embedder(query_dir=blocker / "query-model")
    vector = emb.embed_query("Can a ceasefire hold?")
    assert emb.query_backend == "torch"
    assert np.allclose(vector, embedder.embed_query_torch("Can a ceasefire hold?"))


def test_a_full_disk_during_export_is_one_log_line(
    fresh_process: None, embedder: Embedder, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    def full_disk(*_args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(query_model, "_export_network", full_disk)
    emb = Embedder(query_dir=tmp_path)
    with caplog.at_level("WARNING"):
        vector = emb.embed_query("Can a ceasefire hold?")
    assert emb.query_backend == "torch"
    assert np.allclose(vector, embedder.embed_query_torch("Can a ceasefire hold?"))
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and warnings[0].exc_info is None
    assert "No space left on device" in warnings[0].getMessage()
