"""Building a big store quickly, for the scale benchmark and test: thousands of
versions and runs, written with bulk inserts through the real schema.

    python -m benchmarks.store_generator STATE_DIR [--versions N] [--runs N]
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

from mlci_tui.store import Store

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
