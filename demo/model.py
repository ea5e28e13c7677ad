"""Logistic regression in plain Python, trained by mini-batch gradient descent."""

from __future__ import annotations

import json
import math
import os
import random
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

FORMAT_VERSION = 1


class EpochStats(NamedTuple):
    """Training-set loss and accuracy after one epoch."""

    epoch: int
    loss: float
    accuracy: float


def sigmoid(z: float) -> float:
    """Logistic function that never overflows, however large |z| is."""
    # exp() of a large positive number overflows, so only ever exponentiate -|z|.
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def log_loss_from_logit(z: float, label: int) -> float:
    """Cross-entropy of one sample, computed from the logit so that it stays finite."""
    # Equal to -log(sigmoid(z)) or -log(1 - sigmoid(z)) without ever taking log(0).
    return max(z, 0.0) - label * z + math.log1p(math.exp(-abs(z)))


@dataclass
class LogisticRegression:
    """Binary classifier that standardises its inputs with training-set statistics."""

    feature_names: list[str]
    weights: list[float] = field(default_factory=list)
    bias: float = 0.0
    means: list[float] = field(default_factory=list)
    stds: list[float] = field(default_factory=list)

    def fit(
        self,
        rows: Sequence[Sequence[float]],
        labels: Sequence[int],
        *,
        epochs: int = 40,
        lr: float = 0.02,
        l2: float = 1e-3,
        batch_size: int = 32,
        seed: int = 0,
        on_epoch: Callable[[EpochStats], None] | None = None,
    ) -> list[EpochStats]:
        """Train from scratch and return per-epoch stats, also passed to `on_epoch`."""
        if not rows or len(rows) != len(labels):
            raise ValueError("need the same, non-zero number of rows and labels")
        n_features = len(self.feature_names)
        if any(len(row) != n_features for row in rows):
            raise ValueError(f"every row must have {n_features} features")

        self.means = [sum(column) / len(rows) for column in zip(*rows, strict=True)]
        # A constant feature has std 0; using 1 leaves it at 0 instead of dividing by zero.
        self.stds = [
            math.sqrt(sum((v - mean) ** 2 for v in column) / len(rows)) or 1.0
            for column, mean in zip(zip(*rows, strict=True), self.means, strict=True)
        ]
        xs = [self._standardise(row) for row in rows]
        self.weights = [0.0] * n_features
        self.bias = 0.0

        rng = random.Random(seed)
        order = list(range(len(xs)))
        history: list[EpochStats] = []
        for epoch in range(1, epochs + 1):
            rng.shuffle(order)
            for start in range(0, len(order), batch_size):
                batch = order[start : start + batch_size]
                grad_w = [0.0] * n_features
                grad_b = 0.0
                for i in batch:
                    error = sigmoid(self._logit(xs[i])) - labels[i]
                    for j, value in enumerate(xs[i]):
                        grad_w[j] += error * value
                    grad_b += error
                step = lr / len(batch)
                # The bias is not regularised: shrinking it would only bias the base rate.
                self.weights = [
                    w - step * g - lr * l2 * w for w, g in zip(self.weights, grad_w, strict=True)
                ]
                self.bias -= step * grad_b
            stats = self._stats(epoch, xs, labels)
            history.append(stats)
            if on_epoch is not None:
                on_epoch(stats)
        return history

    def predict_proba(self, rows: Sequence[Sequence[float]]) -> list[float]:
        """Probability of the positive class for each row."""
        return [sigmoid(self._logit(self._standardise(row))) for row in rows]

    def predict(self, rows: Sequence[Sequence[float]], threshold: float = 0.5) -> list[int]:
        """Class label (0 or 1) for each row."""
        return [int(p >= threshold) for p in self.predict_proba(rows)]

    def save(self, path: str | Path) -> None:
        """Write the model as JSON atomically, creating parent directories."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "format_version": FORMAT_VERSION,
            "feature_names": self.feature_names,
            "weights": self.weights,
            "bias": self.bias,
            "means": self.means,
            "stds": self.stds,
        }
        # Write next to the target and rename, so readers never see a half-written model.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(payload, f, indent=2)
                f.write("\n")
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise

    @classmethod
    def load(cls, path: str | Path) -> LogisticRegression:
        """Read a model written by `save`; raise ValueError if the file is malformed."""
        try:
            raw = json.loads(Path(path).read_text())
            if raw["format_version"] != FORMAT_VERSION:
                raise ValueError(f"unsupported format_version {raw['format_version']!r}")
            model = cls(
                feature_names=[str(name) for name in raw["feature_names"]],
                weights=[float(w) for w in raw["weights"]],
                bias=float(raw["bias"]),
                means=[float(m) for m in raw["means"]],
                stds=[float(s) for s in raw["stds"]],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: not a valid model file ({exc})") from None
        sizes = {len(model.feature_names), len(model.weights), len(model.means), len(model.stds)}
        if len(sizes) != 1 or not all(s > 0 for s in model.stds):
            raise ValueError(f"{path}: inconsistent model parameters")
        return model

    def _standardise(self, row: Sequence[float]) -> list[float]:
        return [(v - m) / s for v, m, s in zip(row, self.means, self.stds, strict=True)]

    def _logit(self, x: Sequence[float]) -> float:
        return self.bias + sum(w * v for w, v in zip(self.weights, x, strict=True))

    def _stats(self, epoch: int, xs: list[list[float]], labels: Sequence[int]) -> EpochStats:
        logits = [self._logit(x) for x in xs]
        loss = sum(log_loss_from_logit(z, y) for z, y in zip(logits, labels, strict=True)) / len(xs)
        correct = sum(int(z >= 0) == y for z, y in zip(logits, labels, strict=True))
        return EpochStats(epoch, loss, correct / len(xs))
