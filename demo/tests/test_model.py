"""Tests for the demo data set and logistic regression model."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from data import FEATURE_NAMES, Sample, make_dataset, read_csv, write_csv
from model import EpochStats, LogisticRegression, log_loss_from_logit, sigmoid

Trained = tuple[LogisticRegression, list[EpochStats]]


def accuracy(model: LogisticRegression, samples: list[Sample]) -> float:
    """Fraction of samples the model labels correctly."""
    labels = [label for _, label in samples]
    predictions = model.predict([features for features, _ in samples])
    return sum(p == y for p, y in zip(predictions, labels, strict=True)) / len(samples)


@pytest.fixture(scope="module")
def trained() -> Trained:
    """A model trained once on a small data set, shared to keep the tests fast."""
    samples = make_dataset(1000, seed=1)
    model = LogisticRegression(feature_names=list(FEATURE_NAMES))
    history = model.fit(
        [features for features, _ in samples],
        [label for _, label in samples],
        epochs=15,
        lr=0.1,
    )
    return model, history


def test_dataset_is_deterministic() -> None:
    assert make_dataset(50, seed=3) == make_dataset(50, seed=3)
    assert make_dataset(50, seed=3) != make_dataset(50, seed=4)
    samples = make_dataset(50, seed=3)
    assert all(len(features) == len(FEATURE_NAMES) for features, _ in samples)
    assert {label for _, label in samples} == {0, 1}


def test_csv_round_trip(tmp_path: Path) -> None:
    samples = make_dataset(20, seed=5)
    path = tmp_path / "nested" / "data.csv"
    write_csv(path, samples)
    assert read_csv(path) == samples


def test_read_csv_rejects_malformed_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="expected header"):
        read_csv(path)


def test_sigmoid_is_stable_at_extreme_inputs() -> None:
    assert sigmoid(0.0) == 0.5
    assert sigmoid(1000.0) == 1.0
    assert sigmoid(-1000.0) == 0.0
    assert log_loss_from_logit(-1000.0, 1) == pytest.approx(1000.0)
    assert log_loss_from_logit(1000.0, 1) == 0.0


def test_gradient_descent_reduces_loss(trained: Trained) -> None:
    _, history = trained
    # An untrained model (all weights zero) predicts 0.5 everywhere: loss log(2).
    assert history[0].loss < math.log(2)
    assert history[-1].loss < history[0].loss


def test_save_load_round_trip(trained: Trained, tmp_path: Path) -> None:
    model, _ = trained
    path = tmp_path / "models" / "model.json"
    model.save(path)
    loaded = LogisticRegression.load(path)
    assert loaded == model
    rows = [features for features, _ in make_dataset(20, seed=6)]
    assert loaded.predict_proba(rows) == model.predict_proba(rows)
    assert [p.name for p in path.parent.iterdir()] == ["model.json"]


def test_load_rejects_malformed_model(tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    path.write_text('{"format_version": 1, "weights": []}')
    with pytest.raises(ValueError, match="not a valid model file"):
        LogisticRegression.load(path)


def test_held_out_accuracy_above_0_9(trained: Trained) -> None:
    model, _ = trained
    assert accuracy(model, make_dataset(1000, seed=2)) > 0.9


def test_drift_lowers_accuracy(trained: Trained) -> None:
    model, _ = trained
    clean = accuracy(model, make_dataset(1000, seed=2))
    drifted = accuracy(model, make_dataset(1000, seed=2, drift=1.0))
    assert drifted < clean - 0.2
