"""The experiments table, read from a real store: its rows, the params that differ
(against a brute-force oracle), the best of each column, sorting and filtering
(against Python oracles), and a read whose number of queries does not grow with
the number of experiments."""

from __future__ import annotations

import json
import math
import operator
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlci_tui.config import Config, load_config
from mlci_tui.errors import UsageError
from mlci_tui.metric_keys import MetricKey
from mlci_tui.states import ExperimentState, RunState, StageState
from mlci_tui.store import Store
from mlci_tui.store.experiment_table import (
    HIGHER,
    LOWER,
    ExperimentTable,
    filter_table,
    read_experiments,
    sort_table,
)
from mlci_tui.store.experiments import NewExperiment

CONFIG = """
[pipeline]
name = "sweep"
secrets = ["TOKEN"]

[params]
a = 1
b = "x"
c = 0.5

[stages.train]
command = "true"
gates = ["loss <= 9"]

[stages.evaluate]
command = "true"
needs = ["train"]
gates = ["acc >= 0.1", "loss >= 0", "loss <= 100"]
"""
"""train.loss is lower-better; evaluate.acc higher-better; evaluate.loss has gates
both ways (none); train.acc none."""
STAGES = [("train", (), 1), ("evaluate", ("train",), 1)]
KEYS = [MetricKey(s, n) for s in ("train", "evaluate") for n in ("acc", "loss")]
BETTER = {MetricKey("train", "loss"): LOWER, MetricKey("evaluate", "acc"): HIGHER}


class Spec(NamedTuple):
    """One experiment to put in the store."""

    sets: Mapping[str, Any]
    started: bool
    metrics: Mapping[MetricKey, float]
    passed: bool = True


values = st.sampled_from([1, 2, True, False, 0.25, 0.5, "x", "y", "sekrit-token"])
specs = st.builds(
    Spec,
    sets=st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), values, max_size=3),
    started=st.booleans(),
    metrics=st.dictionaries(
        st.sampled_from(KEYS),
        st.floats(-10, 10) | st.sampled_from([0.0, 1.0]),
        max_size=4,
    ),
    passed=st.booleans(),
)


def config_in(directory: Path) -> Config:
    path = directory / "config.toml"
    path.write_text(CONFIG)
    return load_config(path, environ={"TOKEN": "sekrit-token"})


def fill(store: Store, config: Config, experiments: Sequence[Spec]) -> None:
    """The experiments, queued; each started one claimed, run and ended as a worker
    would: its run made with the config's params and its sets, its metrics recorded."""
    now = time.time()
    new = [
        NewExperiment(
            f"sweep-{i + 1}", dict(spec.sets), tuple(f"{k}={v}" for k, v in spec.sets.items())
        )
        for i, spec in enumerate(experiments)
    ]
    ids = store.experiments.add(new, config_path="config.toml", batch=None, keep=False, now=now)
    for experiment_id, spec in zip(ids, experiments, strict=True):
        if not spec.started:
            continue
        claimed = store.experiments.claim(
            batch=None, pid=1, pid_started=None, host="h", now=now, experiment_id=experiment_id
        )
        assert claimed is not None
        params = {**config.params, **spec.sets}
        run = store.runs.create(
            "sweep",
            STAGES,
            started_at=now,
            pid=1,
            pid_started=None,
            host="h",
            config_path="config.toml",
            params=params,
            experiment=experiment_id,
        )
        for key, value in spec.metrics.items():
            store.runs.record_metrics(run, key.stage, {key.name: value})
        for stage, _, _ in STAGES:
            store.runs.update_stage(run, stage, state=StageState.PASSED, started_at=now)
        ran, ended = (
            (RunState.PASSED, ExperimentState.PASSED)
            if spec.passed
            else (RunState.FAILED, ExperimentState.FAILED)
        )
        store.runs.finish(run, ran, exit_code=0 if spec.passed else 1, ended_at=now + 1)
        store.experiments.finish(experiment_id, ended, ended_at=now + 1)


def table_of(experiments: Sequence[Spec]) -> tuple[ExperimentTable, Config]:
    with tempfile.TemporaryDirectory() as directory:
        config = config_in(Path(directory))
        with Store.open(Path(directory) / ".mlci") as store:
            fill(store, config, experiments)
            table = read_experiments(store, config, environ={"TOKEN": "sekrit-token"})
    return table, config


def expected_params(config: Config, spec: Spec) -> dict[str, Any]:
    """What a row ran with, as a person would say it: the config's, with its sets;
    the secret masked."""
    params = {**config.params, **spec.sets}
    return {k: "***" if v == "sekrit-token" else v for k, v in params.items()}


def same(one: Any, other: Any) -> bool:
    """Equal as params are: 1 and 1.0 alike, True and 1 not."""
    return type(one) is type(other) or not {type(one), type(other)} & {bool}


@settings(max_examples=40, deadline=None)
@given(st.lists(specs, max_size=6))
def test_rows_hold_each_experiment_and_the_params_that_differ(experiments: list[Spec]) -> None:
    table, config = table_of(experiments)
    assert [row.name for row in table.rows] == [f"sweep-{i + 1}" for i in range(len(experiments))]
    for row, spec in zip(table.rows, experiments, strict=True):
        assert dict(row.params) == expected_params(config, spec)
        assert (row.run is not None) == spec.started
        reported = dict(spec.metrics) if spec.started else {}
        assert row.metrics.keys() == reported.keys()
        for key, value in reported.items():
            assert row.metrics[key] == value
    # Brute force: a param differs when two rows disagree on whether they have it, or on it.
    rows = [row.params for row in table.rows]
    names = list(dict.fromkeys(name for params in rows for name in params))
    differing = [
        name
        for name in names
        if any(
            (name in one) != (name in two)
            or (name in one and not (one[name] == two[name] and same(one[name], two[name])))
            for one in rows
            for two in rows
        )
    ]
    assert list(table.params) == (names if len(rows) == 1 else differing)


@settings(max_examples=40, deadline=None)
@given(st.lists(specs, max_size=6))
def test_the_best_of_a_column_is_the_first_row_none_beats(experiments: list[Spec]) -> None:
    table, _ = table_of(experiments)
    assert {k: v for k, v in table.better.items()} == {
        k: v for k, v in BETTER.items() if k in table.metrics
    }
    for key, way in table.better.items():
        # A failed experiment is never the best, however it scored.
        values = [
            (i, row.metrics[key])
            for i, row in enumerate(table.rows)
            if key in row.metrics
            and not math.isnan(row.metrics[key])
            and row.experiment is not None
            and row.experiment.state is ExperimentState.PASSED
        ]
        if not values:
            assert key not in table.best
            continue
        top = (max if way == HIGHER else min)(v for _, v in values)
        assert table.best[key] == next(i for i, v in values if v == top)


@settings(max_examples=40, deadline=None)
@given(st.lists(specs, max_size=6), st.sampled_from(KEYS))
def test_a_metric_sorts_best_first_and_rows_without_it_last(
    experiments: list[Spec], key: MetricKey
) -> None:
    table, _ = table_of(experiments)
    if key not in table.metrics:
        return
    ordered = sort_table(table, key.text)
    assert sorted(r.key for r in ordered.rows) == sorted(r.key for r in table.rows)
    cells = [row.metrics.get(key) for row in ordered.rows]
    present = [v for v in cells if v is not None and not math.isnan(v)]
    assert cells[: len(present)] == present, "rows without a value come last"
    if table.better.get(key) == HIGHER:
        assert present == sorted(present, reverse=True)
    else:
        assert present == sorted(present)
    if key in ordered.best:
        # The first row that passed: a failed one may have scored better.
        passed = [
            index
            for index, row in enumerate(ordered.rows)
            if row.experiment is not None
            and row.experiment.state is ExperimentState.PASSED
            and key in row.metrics
        ]
        assert ordered.best[key] == passed[0]


OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}
OPS |= {"=": operator.eq, "!=": operator.ne}


@settings(max_examples=60, deadline=None)
@given(
    st.lists(specs, max_size=6),
    st.sampled_from(KEYS),
    st.sampled_from(sorted(OPS)),
    st.sampled_from([-1.0, 0.0, 0.5, 1.0, 2.5]),
)
def test_a_metric_filter_keeps_exactly_the_rows_an_oracle_keeps(
    experiments: list[Spec], key: MetricKey, op: str, threshold: float
) -> None:
    table, _ = table_of(experiments)
    if key not in table.metrics:
        return
    kept = filter_table(table, f"{key.text} {op} {threshold}")
    expected = [
        row.key
        for row in table.rows
        if key in row.metrics
        and not math.isnan(row.metrics[key])
        and OPS[op](row.metrics[key], threshold)
    ]
    assert [row.key for row in kept.rows] == expected


@settings(max_examples=60, deadline=None)
@given(st.lists(specs, max_size=6), st.sampled_from(["a", "b", "c", "d"]), values)
def test_a_param_filter_keeps_exactly_the_rows_an_oracle_keeps(
    experiments: list[Spec], name: str, value: Any
) -> None:
    table, _ = table_of(experiments)
    text = value if isinstance(value, str) else json.dumps(value)
    if not any(name in row.params for row in table.rows):
        with pytest.raises(UsageError, match=f"no column '{name}'"):
            filter_table(table, f"{name}={text}")
        return
    kept = filter_table(table, f"{name}={text}")

    def matches(cell: Any) -> bool:
        """Numbers as numbers; the rest as written (JSON, strings as they are)."""
        numbers = [
            v for v in (cell, value) if isinstance(v, (int, float)) and not isinstance(v, bool)
        ]
        if len(numbers) == 2:
            return float(cell) == float(value)
        return (cell if isinstance(cell, str) else json.dumps(cell)) == text

    expected = [row.key for row in table.rows if name in row.params and matches(row.params[name])]
    assert [row.key for row in kept.rows] == expected


def test_read_experiments_asks_the_store_the_same_few_queries_for_5_or_50(
    tmp_path: Path,
) -> None:
    config = config_in(tmp_path)
    counts = []
    for n in (5, 50):
        with Store.open(tmp_path / f"store{n}") as store:
            specs_ = [Spec({"a": i}, True, {KEYS[0]: float(i)}) for i in range(n)]
            fill(store, config, specs_)
            statements: list[str] = []
            store.runs._db.set_trace_callback(statements.append)
            table = read_experiments(store, config, runs=True)
            store.runs._db.set_trace_callback(None)
            assert len(table.rows) == n
            counts.append(len([s for s in statements if s.lstrip().upper().startswith("SELECT")]))
    assert counts[0] == counts[1] <= 4


def test_experiments_and_the_workspaces_runs_are_rows_of_their_own_kind(tmp_path: Path) -> None:
    config = config_in(tmp_path)
    with Store.open(tmp_path / ".mlci") as store:
        fill(store, config, [Spec({"a": 2}, True, {KEYS[1]: 0.5}), Spec({"a": 3}, False, {})])
        run = store.runs.create(
            "sweep",
            STAGES,
            started_at=time.time(),
            pid=1,
            pid_started=None,
            host="h",
            config_path="config.toml",
            params=dict(config.params),
        )
        only = read_experiments(store, config)
        both = read_experiments(store, config, runs=True)
    assert [row.key for row in only.rows] == ["e1", "e2"]
    assert [row.key for row in both.rows] == ["e1", "e2", f"r{run}"]
    workspace = both.rows[2]
    assert workspace.experiment is None and workspace.id_text == f"run {run}"
    assert workspace.progress == (0, 2) and both.rows[0].progress == (2, 2)
    assert both.rows[1].run is None and both.rows[1].progress == (0, 0)


def test_a_bad_column_or_expression_is_one_line_naming_what_there_is(tmp_path: Path) -> None:
    table, _ = table_of(
        [Spec({"a": 2}, True, {KEYS[1]: 0.5, KEYS[3]: 1.0}), Spec({"a": 3}, True, {})]
    )
    with pytest.raises(
        UsageError, match=r"no column 'nope' \(columns: id, name, state, duration, run, a, b, c, "
    ):
        sort_table(table, "nope")
    with pytest.raises(UsageError, match=r"several stages; say train\.loss or evaluate\.loss"):
        filter_table(table, "loss<1")
    for bad in ("acc", "train.loss >= fast", "state=pased", "state>passed", "duration<soon", "a="):
        with pytest.raises(UsageError) as raised:
            filter_table(table, bad)
        assert "\n" not in str(raised.value) and "--filter" in str(raised.value)


def test_state_name_and_duration_filter_and_sort(tmp_path: Path) -> None:
    table, _ = table_of(
        [Spec({"a": 2}, True, {}), Spec({"a": 3}, False, {}), Spec({"a": 4}, True, {})]
    )
    assert [r.key for r in filter_table(table, "state=queued").rows] == ["e2"]
    assert [r.key for r in filter_table(table, "state!=queued").rows] == ["e1", "e3"]
    assert [r.key for r in filter_table(table, "name~SWEEP-3").rows] == ["e3"]
    assert [r.key for r in filter_table(table, "duration<=1m").rows] == ["e1", "e3"]
    assert [r.key for r in sort_table(table, "a").rows] == ["e1", "e2", "e3"]
    assert [r.key for r in sort_table(table, "state").rows] == ["e1", "e3", "e2"]
    assert [r.key for r in filter_table(table, "id>=2").rows] == ["e2", "e3"]


@settings(max_examples=40, deadline=None)
@given(st.lists(specs, max_size=6), st.data())
def test_the_best_mark_stays_on_its_row_whatever_the_sort(
    experiments: list[Spec], data: st.DataObject
) -> None:
    """A tie goes to the earliest experiment: sorting by any column, either way a
    metric says, never moves the mark to another of the tied rows."""
    table, _ = table_of(experiments)
    marked = {key: table.rows[index].key for key, index in table.best.items()}
    column = data.draw(st.sampled_from(table.columns))
    ordered = sort_table(table, column)
    assert {key: ordered.rows[index].key for key, index in ordered.best.items()} == marked
