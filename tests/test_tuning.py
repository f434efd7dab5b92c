"""The shipped model tuning: a low-rank delta on MiniLM's weights, learned from question
sets (train/), applied at load, with its own cache key, and covered by the ONNX export's
check like the base model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bot.index import query_model
from bot.index.embed import BUNDLED_TUNING, Embedder, resolve_tuning

QUESTION = "Why did coal miners once use such small candles?"
ANSWER = (
    "it was supposed that a small candle would not so soon set fire to the fire-damp in the "
    "coal mines as a large one"
)


@pytest.fixture(scope="module")
def tuned(embedder: Embedder) -> Embedder:
    """The default model: the bundled one, tuned."""
    assert embedder.tuning == BUNDLED_TUNING
    return embedder


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Embedder:
    return Embedder(query_dir=tmp_path_factory.mktemp("query-model"), tuning="none")


def test_the_artifact_is_small_and_says_where_it_came_from() -> None:
    assert BUNDLED_TUNING.stat().st_size < 10 * 1024 * 1024
    with np.load(BUNDLED_TUNING) as artifact:
        provenance = json.loads(str(artifact["provenance"]))
        weights = [k for k in artifact.files if k.endswith(":A")]
    assert len(provenance["data_sha256"]) == 64 and len(provenance["commit"]) == 40
    assert set(provenance["lolo_dense_top_k"]) == set(provenance["libraries"])
    assert len(weights) >= 36  # q, k, v, and the three dense layers of each of 6 layers


def test_tuning_changes_the_model_and_its_key(base: Embedder, tuned: Embedder) -> None:
    assert tuned.key != base.key and tuned.key.startswith(base.key + "+")
    before = base.embed_query_torch(QUESTION)
    moved = tuned.embed_query_torch(QUESTION)
    assert 0.8 < float(before @ moved) < 0.9999  # the same model, moved by the delta


def test_the_export_of_the_tuned_model_agrees_with_torch(tuned: Embedder) -> None:
    tuned.prepare_queries()
    assert tuned.query_backend == "onnx"
    for text in (QUESTION, ANSWER):
        onnx, torch = tuned.embed_query(text), tuned.embed_query_torch(text)
        assert float(onnx @ torch) >= query_model.AGREEMENT


def test_a_delta_for_another_model_is_refused(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.npz"
    name = "encoder.layer.0.attention.self.query.weight"
    np.savez(wrong, **{f"{name}:A": np.ones((4, 10)), f"{name}:B": np.ones((384, 4))})
    with pytest.raises(ValueError, match="does not fit this model"):
        Embedder(tuning=str(wrong)).model  # noqa: B018 - loading applies it


def test_tuning_settings() -> None:
    assert resolve_tuning("", "") == resolve_tuning("", "bundled") == BUNDLED_TUNING
    assert resolve_tuning("", "none") is None
    assert resolve_tuning("some/other-model", "") is None  # the shipped delta is MiniLM's
    with pytest.raises(ValueError, match="bundled model only"):
        resolve_tuning("some/other-model", "bundled")
    with pytest.raises(ValueError, match="no model tuning file"):
        resolve_tuning("", "/nonexistent/tuning.npz")
