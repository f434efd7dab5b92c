"""What was learned about answering travels with the tuned model: the retrieval weights,
the excerpt threshold, the reorder of the quotes reread and the decision to decline
(train/fit_answering.py), read by the engine, overridden by ABSTAIN_THRESHOLD, refused
when malformed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from bot.answer.engine import Engine
from bot.answer.learned import HAND_SET, Decline, Reorder, read_answering, sidecar
from bot.answer.retrieve import SIGNALS, WEIGHTS
from bot.answer.scope import DECLINE_FEATURES
from bot.index.embed import BUNDLED_TUNING
from bot.settings import Settings, SettingsError

SHIPPED = BUNDLED_TUNING.parent / "minilm-lora.answering.json"


def test_the_shipped_answering_sits_beside_the_shipped_delta() -> None:
    assert sidecar(BUNDLED_TUNING) == SHIPPED
    data = json.loads(SHIPPED.read_text())
    assert set(data["weights"]) == set(SIGNALS)
    assert data["decline"]["features"] == list(DECLINE_FEATURES)
    provenance = data["provenance"]
    assert len(provenance["data_sha256"]) == 64 and len(provenance["commit"]) == 40
    # every library's figures were measured with what was fitted without it
    assert set(provenance["lolo_offline"]) == set(provenance["libraries"])


def test_the_engine_answers_with_what_was_learned_for_its_model(engine: Engine) -> None:
    learned = engine.answering
    assert learned.source == SHIPPED.name and learned.decline is not None
    shipped = json.loads(SHIPPED.read_text())
    assert learned.reorder == Reorder(**shipped["reorder"])
    assert learned.threshold == shipped["threshold"]
    assert learned.weights.named == shipped["weights"]["named"]
    assert learned.weights.top == WEIGHTS.top  # a quote's choice keeps the hand-set weights


def test_abstain_threshold_replaces_the_learned_decline(engine: Engine) -> None:
    settings = engine.settings.with_(abstain_threshold=0.99)
    strict = Engine(settings, engine.embedder)
    assert strict.answering.decline is None and strict.answering.threshold == 0.99
    assert strict.ask("Why can't Putin afford to end the war?").abstained


def test_a_model_without_answering_uses_the_hand_set_one(tmp_path: Path) -> None:
    delta = tmp_path / "mine.npz"
    shutil.copy(BUNDLED_TUNING, delta)
    assert read_answering(delta) == HAND_SET
    assert read_answering(None) == HAND_SET


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"weights": {"dense": 1.0, "bogus": 2.0}}, "unknown weights"),
        ({"threshold": "NaN"}, "not a finite number"),
        ({"decline": {"features": ["best"], "coef": [1.0], "intercept": 0, "cut": 0}},
         "other features"),
        ({"reorder": {"match": "inf", "spread": 0.1}}, "not a finite number"),
    ],
)  # fmt: skip
def test_a_malformed_answering_file_is_refused(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    delta = tmp_path / "mine.npz"
    shutil.copy(BUNDLED_TUNING, delta)
    data = {**json.loads(SHIPPED.read_text()), **change}
    sidecar(delta).write_text(json.dumps(data))
    with pytest.raises(ValueError, match=message):
        read_answering(delta)


def test_a_malformed_answering_file_is_a_settings_error(tmp_path: Path, engine: Engine) -> None:
    delta = tmp_path / "mine.npz"
    shutil.copy(BUNDLED_TUNING, delta)
    sidecar(delta).write_text("{not json")
    settings = Settings(seeds_dir=engine.settings.seeds_dir, index_dir=tmp_path / "idx",
                        model_tuning=str(delta))  # fmt: skip
    with pytest.raises(SettingsError, match="answering file"):
        Engine(settings).answering  # noqa: B018 - reading it is the point


def test_the_decline_is_a_line_through_its_features() -> None:
    """Known coefficients: declines exactly below the cut, nowhere else."""
    decline = Decline(coef=(2.0, 0, -1.0), intercept=-0.5, cut=0.1)
    assert decline.margin((0.5, 0, 0.2)) == pytest.approx(2 * 0.5 - 0.2 - 0.5 - 0.1)
    assert not decline.declines((0.5, 0, 0.2))  # 0.2 above the cut
    assert decline.declines((0.3, 0, 0.2))  # 0.2 below it
    assert np.isclose(decline.margin((0.4, 0, 0.2)), 0.0)


def test_an_answering_file_is_read_only_beside_the_delta_it_was_fitted_for(
    tmp_path: Path,
) -> None:
    """The shipped answering file names its delta's SHA-256 (computed here from the file on
    disk); a delta that differs by one byte is refused with the answering file, not
    served with weights and a decline fitted for another model."""
    import hashlib

    shipped = json.loads(sidecar(BUNDLED_TUNING).read_text(encoding="utf-8"))
    assert (
        shipped["pairs_with"]["sha256"] == hashlib.sha256(BUNDLED_TUNING.read_bytes()).hexdigest()
    )
    delta = tmp_path / BUNDLED_TUNING.name
    shutil.copy(BUNDLED_TUNING, delta)
    shutil.copy(sidecar(BUNDLED_TUNING), sidecar(delta))
    assert read_answering(delta).decline is not None
    data = bytearray(delta.read_bytes())
    data[-1] ^= 1
    delta.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="fitted for another"):
        read_answering(delta)
