"""Train: fit the model on fresh data and write it where config.toml's
`artifact` says. Lines `::metric name=value` are metrics mlci records."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from model import Model, make_data


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    # Params reach the command as environment variables.
    epochs = int(os.environ["MLCI_PARAM_TRAIN_EPOCHS"])
    lr = float(os.environ["MLCI_PARAM_TRAIN_LR"])
    seed = int(os.environ["MLCI_PARAM_TRAIN_SEED"])
    samples = make_data(1000, seed)
    model = Model()
    for epoch in range(1, epochs + 1):
        loss = model.step(samples, lr)
        print(f"::metric step={epoch} loss={loss:.4f}")
    print(f"trained for {epochs} epochs on {len(samples)} samples (lr {lr}, seed {seed})")
    model.save(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
