"""The model: a logistic regression over two features, and the data it learns
from, in plain Python. Replace both with your own."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

Sample = tuple[tuple[float, float], int]


def make_data(count: int, seed: int) -> list[Sample]:
    """Two overlapping clouds of points: label 1 around (1, 1), label 0 around (-1, -1)."""
    rng = random.Random(seed)
    samples: list[Sample] = []
    for _ in range(count):
        label = rng.randrange(2)
        centre = 1.0 if label else -1.0
        samples.append(((rng.gauss(centre, 1.0), rng.gauss(centre, 1.0)), label))
    return samples


class Model:
    def __init__(self, weights: tuple[float, float] = (0.0, 0.0), bias: float = 0.0) -> None:
        self.weights = weights
        self.bias = bias

    def probability(self, features: tuple[float, float]) -> float:
        (w0, w1), (x0, x1) = self.weights, features
        score = self.bias + w0 * x0 + w1 * x1
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, score))))

    def predict(self, features: tuple[float, float]) -> int:
        return int(self.probability(features) >= 0.5)

    def step(self, samples: list[Sample], lr: float) -> float:
        """One epoch of gradient descent; the mean log loss before it."""
        g0 = g1 = bias_gradient = loss = 0.0
        for features, label in samples:
            p = self.probability(features)
            loss -= math.log(max(p if label else 1.0 - p, 1e-12))
            g0 += (p - label) * features[0]
            g1 += (p - label) * features[1]
            bias_gradient += p - label
        n = len(samples)
        w0, w1 = self.weights
        self.weights = (w0 - lr * g0 / n, w1 - lr * g1 / n)
        self.bias -= lr * bias_gradient / n
        return loss / n

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"weights": self.weights, "bias": self.bias}) + "\n")

    @classmethod
    def load(cls, path: Path) -> Model:
        data = json.loads(path.read_text())
        weights = data["weights"]
        return cls((float(weights[0]), float(weights[1])), float(data["bias"]))
