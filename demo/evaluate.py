"""Pipeline stage: score a saved model on a held-out CSV data set."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from data import FEATURE_NAMES, read_csv
from model import LogisticRegression


def _fail(message: str) -> int:
    # A one-line message instead of a traceback: it is what the CI tool shows as the failure.
    print(f"evaluate: {message}", file=sys.stderr)
    return 1


def _ratio(numerator: int, denominator: int) -> float:
    # Precision and recall are undefined with no predicted or actual positives; report 0.
    return numerator / denominator if denominator else 0.0


def main(argv: list[str] | None = None) -> int:
    """Print an evaluation report and publish the metrics, once each, in the metrics file."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model", type=Path, help="model JSON written by train.py")
    parser.add_argument("--data", type=Path, required=True, help="test CSV")
    args = parser.parse_args(argv)

    try:
        model = LogisticRegression.load(args.model)
    except (OSError, ValueError) as exc:
        return _fail(f"cannot load model: {exc}")
    try:
        samples = read_csv(args.data)
    except (OSError, ValueError) as exc:
        return _fail(f"cannot read data: {exc}")
    if model.feature_names != list(FEATURE_NAMES):
        return _fail(f"{args.model} was trained on different features")

    predictions = model.predict([features for features, _ in samples])
    pairs = [(label, predicted) for (_, label), predicted in zip(samples, predictions, strict=True)]
    tp = pairs.count((1, 1))
    tn = pairs.count((0, 0))
    fp = pairs.count((0, 1))
    fn = pairs.count((1, 0))
    metrics = {
        "accuracy": (tp + tn) / len(pairs),
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        # The harmonic mean of precision and recall, written so that it cannot divide by zero.
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
    }

    print(f"evaluated {args.model} on {len(pairs)} samples from {args.data}")
    for name, value in metrics.items():
        print(f"  {name:<10} {value:.3f}")
    print("confusion matrix (rows: actual, columns: predicted)")
    print(f"  {'':>10} {'pred 0':>7} {'pred 1':>7}")
    print(f"  {'actual 0':>10} {tn:>7} {fp:>7}")
    print(f"  {'actual 1':>10} {fn:>7} {tp:>7}")

    metrics_file = os.environ.get("MLCI_METRICS_FILE")
    if metrics_file:
        try:
            Path(metrics_file).write_text(json.dumps({k: round(v, 4) for k, v in metrics.items()}))
        except OSError as exc:
            return _fail(f"cannot write metrics file: {exc}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
