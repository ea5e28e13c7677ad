"""Evaluate: score the model on data it never saw. config.toml's gates check
the metrics written to $MLCI_METRICS_FILE."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from model import Model, make_data


def main() -> int:
    model = Model.load(Path(sys.argv[1]))
    samples = make_data(500, seed=12345)
    pairs = [(truth, model.predict(features)) for features, truth in samples]
    true_positives = sum(1 for truth, guess in pairs if truth and guess)
    predicted = sum(guess for _, guess in pairs)
    actual = sum(truth for truth, _ in pairs)
    accuracy = sum(truth == guess for truth, guess in pairs) / len(pairs)
    precision = true_positives / predicted if predicted else 0.0
    recall = true_positives / actual if actual else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    metrics = {"accuracy": round(accuracy, 4), "f1": round(f1, 4)}
    print(f"accuracy {accuracy:.3f}, f1 {f1:.3f} on {len(pairs)} held-out samples")
    Path(os.environ["MLCI_METRICS_FILE"]).write_text(json.dumps(metrics))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
