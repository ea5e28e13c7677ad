"""Experiments written into a real store through the store's API, with fixed times:
a sweep of ``train.lr`` × ``train.depth``, some passed (each with a loss curve and
an accuracy), one failed, one running, one queued. A stand-in for `mlci exp run`
where a test needs exact states and times (the screen's pictures)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from mlci_tui.states import ExperimentState, RunState, StageState
from mlci_tui.store import Store
from mlci_tui.store.experiments import NewExperiment

T0 = 1_790_000_000.0


class Planned(NamedTuple):
    lr: float
    depth: int
    state: ExperimentState
    accuracy: float | None = None


SWEEP: tuple[Planned, ...] = (
    Planned(0.01, 3, ExperimentState.PASSED, 0.912),
    Planned(0.01, 5, ExperimentState.PASSED, 0.947),
    Planned(0.05, 3, ExperimentState.FAILED),
    Planned(0.05, 5, ExperimentState.PASSED, 0.931),
    Planned(0.1, 3, ExperimentState.RUNNING),
    Planned(0.1, 5, ExperimentState.QUEUED),
)


def loss_curve(lr: float, depth: int, steps: int = 30) -> list[tuple[int, float]]:
    return [(s, 0.1 + (0.9 - lr * depth) * 0.88**s + 0.002 * (s % 4)) for s in range(1, steps + 1)]


def write_experiments(
    state_dir: Path,
    config_path: Path,
    sweep: Sequence[Planned] = SWEEP,
    *,
    name: str = "lr-sweep",
    t0: float = T0,
) -> list[int]:
    """The experiments of ``sweep`` in the store under ``state_dir``; their ids."""
    store = Store.open(state_dir)
    try:
        ids = store.experiments.add(
            [
                NewExperiment(
                    f"{name}-{i + 1}",
                    {"train.lr": p.lr, "train.depth": p.depth},
                    (f"train.lr={p.lr}", f"train.depth={p.depth}"),
                )
                for i, p in enumerate(sweep)
            ],
            config_path=str(config_path),
            batch=None,
            keep=False,
            now=t0,
        )
        for index, (number, planned) in enumerate(zip(ids, sweep, strict=True)):
            if planned.state is ExperimentState.QUEUED:
                continue
            start = t0 + 60 * index
            claimed = store.experiments.claim(
                batch=None,
                pid=1,
                pid_started=None,
                host="build-host",
                now=start,
                experiment_id=number,
            )
            assert claimed is not None
            run_id = store.runs.create(
                "churn-model",
                [("train", (), 1), ("evaluate", ("train",), 1)],
                started_at=start,
                pid=1,
                pid_started=None,
                host="build-host",
                config_path=str(config_path),
                params={"train.lr": planned.lr, "train.depth": planned.depth},
                experiment=number,
            )
            curve = loss_curve(planned.lr, planned.depth)
            running = planned.state is ExperimentState.RUNNING
            if running:
                curve = curve[:12]
            store.series.record_points(run_id, "train", [("loss", s, v) for s, v in curve], start)
            store.runs.record_metrics(run_id, "train", {"loss": curve[-1][1]})
            store.runs.update_stage(
                run_id,
                "train",
                state=StageState.RUNNING if running else StageState.PASSED,
                attempt=1,
                exit_code=None if running else 0,
                started_at=start,
                ended_at=None if running else start + 30,
            )
            if running:
                continue
            failed = planned.state is ExperimentState.FAILED
            store.runs.update_stage(
                run_id,
                "evaluate",
                state=StageState.FAILED if failed else StageState.PASSED,
                attempt=1,
                exit_code=1 if failed else 0,
                started_at=start + 30,
                ended_at=start + 41,
            )
            if planned.accuracy is not None:
                store.series.record_points(
                    run_id, "evaluate", [("accuracy", 0, planned.accuracy)], start + 40
                )
                store.runs.record_metrics(run_id, "evaluate", {"accuracy": planned.accuracy})
            store.runs.finish(
                run_id,
                RunState.FAILED if failed else RunState.PASSED,
                exit_code=1 if failed else 0,
                ended_at=start + 41,
            )
            store.experiments.finish(
                number,
                planned.state,
                ended_at=start + 41,
                message="failed: evaluate" if failed else None,
            )
        return ids
    finally:
        store.close()
