"""Pipeline stage: train the logistic regression model and save it as JSON."""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

from data import FEATURE_NAMES, read_csv
from model import EpochStats, LogisticRegression


def main(argv: list[str] | None = None) -> int:
    """Train on a CSV data set, streaming per-epoch metrics, then save the model."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True, help="training CSV")
    parser.add_argument("--out", type=Path, required=True, help="model JSON to write")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--lr", type=float, default=0.02, help="learning rate")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed for the bootstrap sample and mini-batch shuffling"
    )
    args = parser.parse_args(argv)

    try:
        samples = read_csv(args.data)
    except (OSError, ValueError) as exc:
        print(f"train: cannot read data: {exc}", file=sys.stderr)
        return 1
    # Each seed trains on its own bootstrap sample (drawn with replacement), as bagging
    # does: shuffling alone converges to the same model, so another seed would change nothing.
    rng = random.Random(args.seed)
    samples = [rng.choice(samples) for _ in samples]
    rows = [features for features, _ in samples]
    labels = [label for _, label in samples]
    print(f"training on a bootstrap sample (seed {args.seed}) of {args.data}", flush=True)

    def report(stats: EpochStats) -> None:
        # flush=True so the CI tool sees each epoch as it happens, not when the buffer fills.
        print(
            f"epoch {stats.epoch}/{args.epochs}  loss={stats.loss:.4f}  "
            f"accuracy={stats.accuracy:.3f}",
            flush=True,
        )
        # One point per epoch of each series: `g` in the dashboard plots them live.
        metrics = f"loss={stats.loss:.4f} train_accuracy={stats.accuracy:.3f}"
        print(f"::metric step={stats.epoch} {metrics}", flush=True)

    model = LogisticRegression(feature_names=list(FEATURE_NAMES))
    model.fit(rows, labels, epochs=args.epochs, lr=args.lr, seed=args.seed, on_epoch=report)
    model.save(args.out)
    print(f"wrote {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
