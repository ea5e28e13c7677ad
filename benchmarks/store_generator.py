"""Building a big store quickly, for the scale benchmark and test: thousands of
versions and runs, written with bulk inserts through the real schema; and, for
the experiments benchmark, a thousand ended experiments of the demo.

    python -m benchmarks.store_generator STATE_DIR [--versions N] [--runs N]
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

from mlci_tui.store import Store
from mlci_tui.store.experiments import NewExperiment

START = 1_790_000_000.0


def build_store(state_dir: Path, *, versions: int, runs: int) -> None:
    """A store with ``runs`` passed runs of three stages and ``versions`` versions;
    the newest is live, only the newest 20 keep artifacts."""
    store = Store.open(state_dir)
    db = store._db
    with store.transaction():
        db.executemany(
            "INSERT INTO runs (id, pipeline, state, exit_code, started_at, ended_at, pid, host)"
            " VALUES (?, 'scale', 'passed', 0, ?, ?, 1, 'elsewhere')",
            [(i, START + i * 60, START + i * 60 + 30) for i in range(1, runs + 1)],
        )
        db.executemany(
            "INSERT INTO stages (run_id, name, position, needs, state, attempt, exit_code,"
            " started_at, ended_at) VALUES (?, ?, ?, '[]', 'passed', 1, 0, ?, ?)",
            [
                (i, name, position, START + i * 60 + position, START + i * 60 + position + 5)
                for i in range(1, runs + 1)
                for position, name in enumerate(("test", "train", "evaluate"))
            ],
        )
        rows = []
        for number in range(1, versions + 1):
            accuracy = 0.9 + (number % 97) / 1000
            status = "live" if number == versions else "previous"
            pruned = None if number > versions - 20 else START
            sha = hashlib.sha256(str(number).encode()).hexdigest()
            # As the store keeps a version's metrics: [stage, name, value] each.
            metrics = json.dumps(
                [["evaluate", "accuracy", accuracy], ["evaluate", "f1", accuracy - 0.02]]
            )
            rows.append((number, min(number, runs), START + number, sha, metrics, status, pruned))
        db.executemany(
            "INSERT INTO versions (number, run_id, created_at, artifact_name, source_path,"
            " is_dir, sha256, size_bytes, metrics, status, description, pruned_at)"
            " VALUES (?, ?, ?, 'model.txt', 'build/model.txt', 0, ?, 8, ?, ?, 'deployed', ?)",
            rows,
        )
    for number in range(max(1, versions - 19), versions + 1):
        directory = store.version_dir(number)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "model.txt").write_text(f"model {number}\n")
    store.close()


DEMO_STAGES = ("test", "prepare", "train", "evaluate")


def build_experiments(state_dir: Path, config_path: Path, count: int) -> None:
    """``count`` passed experiments of the demo, a grid of learning rates and seeds,
    each with its run, the demo's four stages and their metrics' last values: queued
    through `store.experiments.add`, their runs written in bulk."""
    store = Store.open(state_dir)
    grid = [(0.01 + (n % 10) / 100, n // 10) for n in range(count)]
    made = [
        NewExperiment(
            f"train.lr={lr:g} train.seed={seed}",
            {"train.lr": lr, "train.seed": seed},
            (f"train.lr={lr:g}", f"train.seed={seed}"),
        )
        for lr, seed in grid
    ]
    ids = store.experiments.add(
        made, config_path=str(config_path), batch=None, keep=False, now=START
    )
    db = store._db
    first = (db.execute("SELECT COALESCE(MAX(id), 0) FROM runs").fetchone()[0] or 0) + 1
    runs = list(range(first, first + count))
    with store.transaction():
        db.executemany(
            "INSERT INTO runs (id, pipeline, state, exit_code, started_at, ended_at, pid,"
            " host, config_path, params, kind) VALUES (?, 'pump-failure', 'passed', 0, ?, ?,"
            " 1, 'elsewhere', ?, ?, 'experiment')",
            [
                (
                    run,
                    START + i * 10,
                    START + i * 10 + 8,
                    str(config_path),
                    json.dumps({"train.epochs": 40, "train.lr": lr, "train.seed": seed}),
                )
                for i, (run, (lr, seed)) in enumerate(zip(runs, grid, strict=True))
            ],
        )
        db.executemany(
            "INSERT INTO stages (run_id, name, position, needs, state, attempt, exit_code,"
            " started_at, ended_at) VALUES (?, ?, ?, '[]', ?, 1, 0, ?, ?)",
            [
                (
                    run,
                    name,
                    position,
                    "cached" if name in ("test", "prepare") else "passed",
                    START + i * 10 + position,
                    START + i * 10 + position + 2,
                )
                for i, run in enumerate(runs)
                for position, name in enumerate(DEMO_STAGES)
            ],
        )
        db.executemany(
            "INSERT INTO metrics (run_id, stage, name, value) VALUES (?, ?, ?, ?)",
            [
                (run, stage, name, value)
                for i, run in enumerate(runs)
                for stage, name, value in (
                    ("train", "loss", 0.1 + (i % 37) / 1000),
                    ("train", "train_accuracy", 0.95 + (i % 41) / 10_000),
                    ("evaluate", "accuracy", 0.94 + (i % 53) / 10_000),
                    ("evaluate", "precision", 0.93 + (i % 31) / 10_000),
                    ("evaluate", "recall", 0.92 + (i % 29) / 10_000),
                    ("evaluate", "f1", 0.92 + (i % 43) / 10_000),
                )
            ],
        )
        db.executemany(
            "UPDATE experiments SET state = 'passed', run_id = ?, started_at = ?,"
            " ended_at = ?, method = 'overlay' WHERE id = ?",
            [
                (run, START + i * 10, START + i * 10 + 8, id_)
                for i, (run, id_) in enumerate(zip(runs, ids, strict=True))
            ],
        )
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("state_dir", type=Path)
    parser.add_argument("--versions", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=1_000)
    args = parser.parse_args()
    build_store(args.state_dir, versions=args.versions, runs=args.runs)
    print(f"{args.state_dir}: {args.versions} versions, {args.runs} runs")


if __name__ == "__main__":
    main()
