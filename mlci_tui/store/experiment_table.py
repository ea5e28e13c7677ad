"""The experiments table: one row per experiment (and, if asked, per run of the
workspace), the params that differ between them, every metric's last value, and
the best value of each metric whose direction a gate or a check tells.

`mlci exp show` and the dashboard's experiments screen both read an
`ExperimentTable`; each only renders it. `sort_table` and `filter_table` are the
``--sort`` and ``--filter`` of both.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from mlci_tui.checks import Check, parse_check
from mlci_tui.config.params import masked_params, param_text
from mlci_tui.errors import UsageError
from mlci_tui.masking import SecretMasker
from mlci_tui.metric_keys import MONITOR, MetricKey, labels, to_json
from mlci_tui.states import ExperimentState, RunState, StageState
from mlci_tui.store.records import ExperimentRecord, RunRecord, iso_time
from mlci_tui.units import metric_text, parse_duration

if TYPE_CHECKING:
    from mlci_tui.config import Config
    from mlci_tui.store.db import Store

HIGHER, LOWER = "higher", "lower"
"""Which way a metric is better (`ExperimentTable.better`)."""
BUILTIN_COLUMNS = ("id", "name", "state", "duration", "run")
"""The columns every row has, besides its params and metrics."""
_DIRECTIONS = {">=": HIGHER, ">": HIGHER, "<=": LOWER, "<": LOWER}
_ENDED_STAGES = frozenset(
    (
        StageState.PASSED,
        StageState.FAILED,
        StageState.SKIPPED,
        StageState.CANCELLED,
        StageState.CACHED,
    )
)


class ExperimentRow(NamedTuple):
    """One experiment, or (with ``runs=True``) one run of the workspace."""

    experiment: ExperimentRecord | None
    """None for a run of the workspace."""
    run: RunRecord | None
    """With its stages; None while the experiment is queued (or was cancelled so)."""
    params: Mapping[str, Any]
    """Every param the row ran with (or will): the config's, with the experiment's
    sets; secrets masked."""
    metrics: Mapping[MetricKey, float]
    """The last value of each metric its run's stages reported."""

    @property
    def key(self) -> str:
        """Unique among the rows of a table, stable as it changes: ``e3``, ``r12``."""
        if self.experiment is not None:
            return f"e{self.experiment.id}"
        assert self.run is not None
        return f"r{self.run.id}"

    @property
    def is_experiment(self) -> bool:
        return self.experiment is not None

    @property
    def number(self) -> int | None:
        """The experiment's id (what `mlci exp` commands take); None for a run."""
        return None if self.experiment is None else self.experiment.id

    @property
    def run_id(self) -> int | None:
        return None if self.run is None else self.run.id

    @property
    def id_text(self) -> str:
        """``3`` for an experiment, ``run 12`` for a run of the workspace."""
        if self.experiment is not None:
            return str(self.experiment.id)
        assert self.run is not None
        return f"run {self.run.id}"

    @property
    def name(self) -> str:
        """The experiment's name (secrets masked); empty for a run of the workspace."""
        return "" if self.experiment is None else self.experiment.name

    @property
    def label(self) -> str:
        """``#3 lr-sweep`` or ``run 12``: how a line names the row."""
        return self.id_text if self.experiment is None else self.experiment.label

    @property
    def state(self) -> ExperimentState | RunState:
        if self.experiment is not None:
            return self.experiment.state
        assert self.run is not None
        return self.run.state

    @property
    def state_text(self) -> str:
        return self.state.text

    @property
    def finished(self) -> bool:
        return self.state.finished

    @property
    def started_at(self) -> float | None:
        if self.experiment is not None:
            return self.experiment.started_at
        assert self.run is not None
        return self.run.started_at

    @property
    def created_at(self) -> float:
        """When it was queued (an experiment) or started (a run): the rows' order."""
        if self.experiment is not None:
            return self.experiment.queued_at
        assert self.run is not None
        return self.run.started_at

    def duration_s(self, now: float | None = None) -> float | None:
        """From its start to its end (or ``now`` while it runs); None before it starts."""
        if self.experiment is not None:
            return self.experiment.duration_s(now)
        assert self.run is not None
        return self.run.duration_s(now)

    @property
    def git_commit(self) -> str | None:
        if self.experiment is not None:
            return self.experiment.git_commit
        return None if self.run is None else self.run.git_commit

    @property
    def code_text(self) -> str:
        """The code it ran: ``1a2b3c4``, ``1a2b3c4+dirty-5d6e7f80`` with uncommitted
        changes (``+dirty`` for a run, which records no hash of them); ``-`` unknown."""
        commit = self.git_commit
        if commit is None:
            return "-"
        if self.experiment is not None:
            code_hash = self.experiment.code_hash
            return commit[:7] + ("" if code_hash is None else f"+dirty-{code_hash[:8]}")
        assert self.run is not None
        return commit[:7] + ("+dirty" if self.run.git_dirty else "")

    @property
    def progress(self) -> tuple[int, int]:
        """``(ended, all)`` of its run's stages; ``(0, 0)`` before its run starts."""
        stages = self.run.stages if self.run is not None else ()
        return sum(s.state in _ENDED_STAGES for s in stages), len(stages)

    @property
    def running_stage(self) -> str | None:
        """The first stage of its run that is running now, if any."""
        stages = self.run.stages if self.run is not None else ()
        return next((s.name for s in stages if s.state is StageState.RUNNING), None)

    @property
    def message(self) -> str | None:
        if self.experiment is not None and self.experiment.message:
            return self.experiment.message
        return None if self.run is None else self.run.message

    def to_json(self) -> dict[str, Any]:
        """Every field: what ``--json`` prints of a row, the same keys for a run of the
        workspace as for an experiment (None where a run has no such thing)."""
        if self.experiment is not None:
            base = self.experiment.to_json()
        else:
            assert self.run is not None
            base = {
                "id": None,
                "name": None,
                "queued_at": None,
                "started_at": iso_time(self.run.started_at),
                "ended_at": iso_time(self.run.ended_at),
                "workspace": None,
                "method": None,
                "git_commit": self.run.git_commit,
                "code_hash": None,
                "message": self.run.message,
            }
        done, total = self.progress
        return {
            **base,
            "kind": "experiment" if self.experiment is not None else "run",
            "state": self.state.value,
            "run_id": self.run_id,
            "duration_s": _round(self.duration_s()),
            "code": self.code_text,
            "params": dict(self.params),
            "metrics": to_json(self.metrics),
            "stages_ended": done,
            "stages": total,
        }


class ExperimentTable(NamedTuple):
    rows: tuple[ExperimentRow, ...]
    params: tuple[str, ...]
    """The params whose values differ between rows (every param when one row)."""
    metrics: tuple[MetricKey, ...]
    """Every metric column, the config's key metrics first, then by stage."""
    better: Mapping[MetricKey, str]
    """`HIGHER` or `LOWER`, where a gate or a monitor check says which way is better."""
    best: Mapping[MetricKey, int]
    """Each metric column of `better` → the index of the row with the best value."""
    read_at: float = 0.0
    """When it was read: the end of what is still running, for durations."""

    @property
    def metric_labels(self) -> dict[MetricKey, str]:
        """How a column is named: ``accuracy``, or ``stage.accuracy`` where two stages
        report it."""
        return labels(self.metrics)

    @property
    def columns(self) -> list[str]:
        """Every column `sort_table` and `filter_table` know, as they are named."""
        every_param = dict.fromkeys(name for row in self.rows for name in row.params)
        return [*BUILTIN_COLUMNS, *every_param, *self.metric_labels.values()]

    def is_best(self, index: int, key: MetricKey) -> bool:
        return self.best.get(key) == index

    def best_of(self, index: int) -> frozenset[MetricKey]:
        """The columns whose best value is the row's at ``index``."""
        return frozenset(key for key, at in self.best.items() if at == index)


def read_experiments(
    store: Store,
    config: Config | None,
    *,
    runs: bool = False,
    environ: Mapping[str, str] | None = None,
    now: float | None = None,
) -> ExperimentTable:
    """Every experiment, oldest first (with ``runs``, the workspace's runs among them
    by when they began), read in four queries whatever their number. Secrets of
    ``config`` (`pipeline.secrets`, from ``environ``: default the process's) are masked
    in names and params."""
    masker = (
        SecretMasker(config.secret_values(os.environ if environ is None else environ))
        if config is not None
        else SecretMasker(())
    )
    with store.experiments.reading():
        experiments = store.experiments.all()
        by_id = {run.id: run for run in store.runs.of_experiments(workspace_runs=runs)}
    declared: Mapping[str, Any] = {} if config is None else config.params
    rows = []
    for experiment in experiments:
        run = by_id.pop(experiment.run_id, None) if experiment.run_id is not None else None
        if run is not None:
            params: Mapping[str, Any] = run.params
        else:
            params = {**declared, **experiment.params}
        if masker:
            params = masked_params(params, masker)
            experiment = experiment._replace(
                name=masker.mask_text(experiment.name),
                message=None
                if experiment.message is None
                else masker.mask_text(experiment.message),
            )
        rows.append(ExperimentRow(experiment, run, params, _metrics(run)))
    for run in by_id.values():
        if run.kind == "run":
            params = masked_params(run.params, masker) if masker else run.params
            rows.append(ExperimentRow(None, run, params, _metrics(run)))
    if runs:
        rows.sort(key=lambda row: row.created_at)
    return make_table(
        rows,
        better=_directions(config, rows),
        key_metrics=() if config is None else config.key_metrics,
        stage_order=() if config is None else config.order,
        read_at=time.time() if now is None else now,
    )


def make_table(
    rows: Iterable[ExperimentRow],
    *,
    better: Mapping[MetricKey, str],
    key_metrics: Sequence[MetricKey] = (),
    stage_order: Sequence[str] = (),
    read_at: float = 0.0,
) -> ExperimentTable:
    """The table of ``rows`` in their order: its differing params, metric columns and
    best values (sort and filter make a new one from the rows they keep)."""
    rows = tuple(rows)
    seen = dict.fromkeys(key for row in rows for key in row.metrics)
    position = {name: index for index, name in enumerate(stage_order)}
    leading = [key for key in key_metrics if key in seen]
    others = sorted(
        (key for key in seen if key not in leading),
        key=lambda key: position.get(key.stage, len(position)),
    )
    metrics = (*leading, *others)
    shown_better = {key: way for key, way in better.items() if key in seen}
    return ExperimentTable(
        rows=rows,
        params=differing_params(rows),
        metrics=metrics,
        better=shown_better,
        best=_best(rows, shown_better),
        read_at=read_at,
    )


def differing_params(rows: Sequence[ExperimentRow]) -> tuple[str, ...]:
    """The params whose value is not the same in every row (a param some rows lack
    differs), in first-seen order; with one row, all of its params."""
    names = dict.fromkeys(name for row in rows for name in row.params)
    if len(rows) <= 1:
        return tuple(names)
    missing = object()
    return tuple(
        name
        for name in names
        if len({_hashable(row.params.get(name, missing)) for row in rows}) > 1
    )


def _hashable(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return ("[]", tuple(_hashable(v) for v in value))
    if isinstance(value, dict):
        return ("{}", tuple(sorted((k, _hashable(v)) for k, v in value.items())))
    # 1 and 1.0 are one value; True and 1 are not.
    return (type(value) is bool, value)


def _metrics(run: RunRecord | None) -> dict[MetricKey, float]:
    if run is None:
        return {}
    return {MetricKey(s.name, name): v for s in run.stages for name, v in s.metrics.items()}


def _directions(config: Config | None, rows: Sequence[ExperimentRow]) -> dict[MetricKey, str]:
    """Which way each metric is better: as its gates say; else, by name, as the
    monitor's checks say (``accuracy >= 0.85`` makes evaluate's accuracy higher-better
    too). A metric whose checks disagree (a range: ``>= 1`` and ``<= 9``) has none."""
    if config is None:
        return {}
    gated: dict[MetricKey, set[str]] = {}
    by_name: dict[str, set[str]] = {}
    for key, check in config.metric_checks:
        way = _DIRECTIONS.get(check.op)
        if way is None:
            continue
        gated.setdefault(key, set()).add(way)
        if key.stage == MONITOR:
            by_name.setdefault(key.name, set()).add(way)
    found = {}
    for key in dict.fromkeys(k for row in rows for k in row.metrics):
        ways = gated.get(key) or by_name.get(key.name, set())
        if len(ways) == 1:
            found[key] = next(iter(ways))
    return found


def _best(rows: Sequence[ExperimentRow], better: Mapping[MetricKey, str]) -> dict[MetricKey, int]:
    best = {}
    for key, way in better.items():
        # A failed, cancelled or interrupted one is no candidate, however it scored.
        values = [
            (value, index)
            for index, row in enumerate(rows)
            if (value := row.metrics.get(key)) is not None
            and not math.isnan(value)
            and not _ended_badly(row)
        ]
        if values:
            # A tie goes to the earliest experiment (then the earliest run), whatever
            # the order the rows are sorted in: the mark never moves with a sort.
            sign = -1.0 if way == HIGHER else 1.0
            best[key] = min(values, key=lambda item: (sign * item[0], _age(rows[item[1]])))[1]
    return best


def _age(row: ExperimentRow) -> tuple[int, int]:
    """Experiments before the workspace's runs, each by id: older first."""
    if row.experiment is not None:
        return (0, row.experiment.id)
    assert row.run is not None
    return (1, row.run.id)


def _ended_badly(row: ExperimentRow) -> bool:
    state = row.experiment.state if row.experiment is not None else None
    if state is not None:
        return state.finished and state is not ExperimentState.PASSED
    return row.run is not None and row.run.state.finished and row.run.state is not RunState.PASSED


# Columns ----------------------------------------------------------------------


class _Column(NamedTuple):
    """A column named by a `--sort` or `--filter`: one of `BUILTIN_COLUMNS`, a param
    or a metric."""

    kind: str
    """``builtin``, ``param`` or ``metric``."""
    name: str
    metric: MetricKey | None = None


def _column(table: ExperimentTable, text: str, option: str) -> _Column:
    name = text.strip()
    if name in BUILTIN_COLUMNS:
        return _Column("builtin", name)
    shown = table.metric_labels
    for key, label in shown.items():
        if name in (label, key.text):
            return _Column("metric", label, key)
    if any(name in row.params for row in table.rows):
        return _Column("param", name)
    same_name = [key for key in table.metrics if key.name == name]
    if same_name:
        which = " or ".join(key.text for key in same_name)
        raise UsageError(f"{option} {name!r}: reported by several stages; say {which}")
    raise UsageError(f"{option}: no column {name!r} (columns: {', '.join(table.columns)})")


def _cell(row: ExperimentRow, column: _Column, now: float) -> Any:
    """The row's value in ``column``; None where it has none."""
    if column.kind == "metric":
        assert column.metric is not None
        return row.metrics.get(column.metric)
    if column.kind == "param":
        return row.params.get(column.name)
    if column.name == "id":
        return row.number
    if column.name == "run":
        return row.run_id
    if column.name == "name":
        return row.name if row.is_experiment else None
    if column.name == "state":
        return row.state.value
    return row.duration_s(now)


# Sorting ----------------------------------------------------------------------


def sort_table(table: ExperimentTable, column: str) -> ExperimentTable:
    """The table sorted by ``column`` (as `ExperimentTable.columns` names it): a metric
    whose direction is known best first, every other column ascending (numbers before
    text); rows without a value last, each kind in its former order. An unknown
    column is a `UsageError` naming the columns."""
    found = _column(table, column, "--sort")
    descending = found.metric is not None and table.better.get(found.metric) == HIGHER

    def order(row: ExperimentRow) -> tuple[Any, ...]:
        value = _cell(row, found, table.read_at)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return (1, 0, 0.0, "")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return (0, 0, -value if descending else value, "")
        if isinstance(value, str):
            return (0, 1, 0.0, value.casefold())
        return (0, 2, 0.0, param_text(value))

    rows = sorted(table.rows, key=order)
    return _remake(table, rows)


def only_experiments(table: ExperimentTable, ids: Collection[int]) -> ExperimentTable:
    """The rows of the experiments ``ids`` (those one `mlci exp run` ran)."""
    wanted = set(ids)
    rows = [row for row in table.rows if row.experiment and row.experiment.id in wanted]
    return _remake(table, rows)


def _remake(table: ExperimentTable, rows: Sequence[ExperimentRow]) -> ExperimentTable:
    """``rows`` as a table with ``table``'s column order and directions."""
    return make_table(rows, better=table.better, key_metrics=table.metrics, read_at=table.read_at)


# Filtering --------------------------------------------------------------------

_FILTER = re.compile(
    r"^\s*(?P<column>[^<>=!~]+?)\s*(?P<op>>=|<=|==|!=|=|~|>|<)\s*(?P<value>.*?)\s*$"
)
FILTER_EXAMPLE = (
    "COLUMN OP VALUE, like 'evaluate.accuracy>=0.9', 'train.lr=0.01', 'state=passed'"
    " or 'name~sweep' (OP: >= <= > < = != ~)"
)
_STATES = frozenset(s.value for s in ExperimentState) | frozenset(s.value for s in RunState)


def filter_table(table: ExperimentTable, expr: str) -> ExperimentTable:
    """The rows where ``expr`` holds: ``COLUMN OP VALUE``, OP one of ``>= <= > < =
    == != ~`` (``~``: the cell's text contains VALUE, case aside). A metric compares as
    a number, a row without it never matches; a param as a number where both are
    numbers, else as its text; ``duration`` takes ``90s``, ``5m``. A bad ``expr`` is a
    `UsageError` in one line."""
    match = _FILTER.match(expr)
    if match is None or not match["value"]:
        raise UsageError(f"--filter {expr!r}: expected {FILTER_EXAMPLE}")
    column = _column(table, match["column"], "--filter")
    test = _test(column, match["op"], match["value"], expr)
    rows = [row for row in table.rows if test(_cell(row, column, table.read_at))]
    return _remake(table, rows)


def _test(column: _Column, op: str, text: str, expr: str) -> Callable[[Any], bool]:
    """What a cell must be to match ``op text``."""
    op = "==" if op == "=" else op
    if op == "~":
        wanted = text.casefold()
        return lambda cell: cell is not None and wanted in _text(cell).casefold()
    if column.kind == "metric" or column.name in ("id", "run", "duration"):
        number = _number(column, text, expr)
        check = Check(column.name, op, number)
        return lambda cell: (
            isinstance(cell, (int, float)) and not math.isnan(cell) and check.passes(cell)
        )
    if column.name == "state":
        state = text.replace(" ", "_")
        if state not in _STATES:
            raise UsageError(
                f"--filter {expr!r}: no state {text!r} (states: {', '.join(sorted(_STATES))})"
            )
        if op not in ("==", "!="):
            raise UsageError(f"--filter {expr!r}: a state is compared with = or !=")
        return lambda cell: (cell == state) == (op == "==")
    as_number = _maybe_number(text)
    check = Check(column.name, op, 0.0)

    def param_test(cell: Any) -> bool:
        if cell is None:
            return False
        if as_number is not None and _is_number(cell):
            return check._replace(threshold=as_number).passes(float(cell))
        return _compare(_text(cell), op, text)

    return param_test


def _number(column: _Column, text: str, expr: str) -> float:
    if column.name == "duration":
        try:
            return parse_duration(text)
        except ValueError:
            raise UsageError(
                f"--filter {expr!r}: expected a duration like 90s or 5m, got {text!r}"
            ) from None
    try:
        return parse_check(f"x >= {text}").threshold
    except ValueError:
        raise UsageError(
            f"--filter {expr!r}: {column.name} compares with a number, got {text!r}"
        ) from None


def _maybe_number(text: str) -> float | None:
    try:
        return parse_check(f"x >= {text}").threshold
    except ValueError:
        return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _compare(left: str, op: str, right: str) -> bool:
    return {
        "==": left == right,
        "!=": left != right,
        ">=": left >= right,
        "<=": left <= right,
        ">": left > right,
        "<": left < right,
    }[op]


def _text(value: Any) -> str:
    if isinstance(value, float):
        return metric_text(value)
    return param_text(value)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
