"""Pipeline stage: write the training and test data sets as CSV files."""

from __future__ import annotations

import argparse
from pathlib import Path

from data import make_dataset, write_csv


def main(argv: list[str] | None = None) -> int:
    """Generate train.csv and test.csv in the output directory."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--train-size", type=int, default=8000)
    parser.add_argument("--test-size", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1, help="train seed; the test set uses seed+1")
    parser.add_argument(
        "--drift", type=float, default=0.0, help="shift the test set to simulate production drift"
    )
    args = parser.parse_args(argv)

    # Separate seeds keep the test set disjoint from the training set.
    splits = {
        "train.csv": make_dataset(args.train_size, args.seed),
        "test.csv": make_dataset(args.test_size, args.seed + 1, drift=args.drift),
    }
    for name, samples in splits.items():
        path = args.out / name
        write_csv(path, samples)
        failing = sum(label for _, label in samples)
        print(f"wrote {path}: {len(samples)} samples, {failing / len(samples):.1%} failing")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
