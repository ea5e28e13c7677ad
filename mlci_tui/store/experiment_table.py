"""STAND-IN for the experiments table module written on branch exptable: removed
before that branch is merged. Only the interface the dashboard needs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from mlci_tui.config import Config
from mlci_tui.metric_keys import MetricKey
from mlci_tui.store.db import Store
from mlci_tui.store.records import ExperimentRecord, RunRecord


class ExperimentRow(NamedTuple):
    experiment: ExperimentRecord | None
    run: RunRecord | None
    params: Mapping[str, Any]
    metrics: Mapping[MetricKey, float]


class ExperimentTable(NamedTuple):
    rows: tuple[ExperimentRow, ...]
    params: tuple[str, ...]
    metrics: tuple[MetricKey, ...]
    better: Mapping[MetricKey, str]
    best: Mapping[MetricKey, int]


def read_experiments(store: Store, config: Config, *, runs: bool = False) -> ExperimentTable:
    rows = []
    for experiment in store.experiments.all():
        run = store.runs.get(experiment.run_id) if experiment.run_id else None
        metrics = {}
        if run is not None:
            for stage in run.stages:
                for name, value in stage.metrics.items():
                    metrics[MetricKey(stage.name, name)] = value
        rows.append(ExperimentRow(experiment, run, dict(experiment.params), metrics))
    names = sorted({n for r in rows for n in r.params})
    params = tuple(n for n in names if len({repr(r.params.get(n)) for r in rows}) > 1)
    keys = tuple(dict.fromkeys(k for r in rows for k in r.metrics))
    better = {k: ("lower" if "loss" in k.name else "higher") for k in keys}
    return _best(ExperimentTable(tuple(rows), params, keys, better, {}))


def _best(table: ExperimentTable) -> ExperimentTable:
    best = {}
    for key in table.metrics:
        have = [(r.metrics[key], i) for i, r in enumerate(table.rows) if key in r.metrics]
        if have:
            pick = min(have) if table.better[key] == "lower" else max(have)
            best[key] = pick[1]
    return table._replace(best=best)


def sort_table(table: ExperimentTable, column: str) -> ExperimentTable:
    reverse = column.startswith("-")
    column = column.lstrip("-")

    def key(row: ExperimentRow) -> tuple[int, Any]:
        if column == "id":
            return (0, row.experiment.id if row.experiment else 0)
        for metric in table.metrics:
            if column in (metric.name, metric.text):
                value = row.metrics.get(metric)
                sign = -1 if table.better[metric] == "higher" else 1
                return (value is None, sign * (value or 0.0))
        value = row.params.get(column)
        return (value is None, str(value))

    rows = tuple(sorted(table.rows, key=key, reverse=reverse))
    return _best(table._replace(rows=rows))


def filter_table(table: ExperimentTable, expr: str) -> ExperimentTable:
    from mlci_tui.errors import UsageError

    name, _, value = expr.partition("=")
    if not _:
        raise UsageError(f"--filter: expected NAME=VALUE, got {expr!r}")
    rows = tuple(r for r in table.rows if str(r.params.get(name.strip())) == value.strip())
    return _best(table._replace(rows=rows))
