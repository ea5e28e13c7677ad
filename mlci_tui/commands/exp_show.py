"""`mlci exp show`, `mlci exp diff` and `mlci exp remove`: the experiments side by
side (as text, JSON, CSV or Markdown), two of them compared, and forgetting some."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlci_tui.commands.common import load, open_store
from mlci_tui.errors import ExitCode, NotFound, StoreError, UsageError
from mlci_tui.textsafe import visible_text
from mlci_tui.units import format_duration, metric_text

if TYPE_CHECKING:
    from mlci_tui.config import Config
    from mlci_tui.metric_keys import MetricKey
    from mlci_tui.store import Store
    from mlci_tui.store.compare import Side
    from mlci_tui.store.experiment_table import ExperimentRow, ExperimentTable
    from mlci_tui.store.records import ExperimentRecord

NONE_YET = "no experiments yet: start some with `mlci exp run --set PARAM=V1,V2`"
BEST_CODE = "1;32"
"""How a terminal shows the best value of a column (besides its ``*``)."""


# mlci exp show ------------------------------------------------------------------


def handle_exp_show(args: argparse.Namespace) -> int:
    from mlci_tui.store.experiment_table import filter_table, read_experiments, sort_table

    formats = [flag for flag in ("json", "csv", "md") if getattr(args, flag)]
    if len(formats) > 1:
        raise UsageError(f"--{formats[0]} and --{formats[1]}: choose one")
    config = load(args)
    try:
        store = open_store(config)
    except NotFound:
        return _print_empty(args)
    with store:
        table = read_experiments(store, config, runs=args.runs)
    if not table.rows:
        return _print_empty(args)
    if args.filter is not None:
        table = filter_table(table, args.filter)
    if args.sort is not None:
        table = sort_table(table, args.sort)
    if args.json:
        print(json.dumps(table_json(table), indent=2, allow_nan=False))
    elif args.csv:
        write_csv(table)
    elif args.md:
        sys.stdout.write(table_markdown(table))
    else:
        from mlci_tui.commands.console import use_color

        color = use_color(sys.stdout.buffer, os.environ)
        print("\n".join(table_text(table, color=color)))
    return ExitCode.PASSED


def _print_empty(args: argparse.Namespace) -> int:
    """An empty table says so, in the format asked for."""
    if args.json:
        print(json.dumps({"params": [], "metrics": [], "rows": []}, indent=2))
    elif args.csv:
        write_csv(None)
    else:
        print(NONE_YET)
    return ExitCode.PASSED


def _state_cell(row: ExperimentRow) -> str:
    """``passed``; ``running 2/4`` with how many of its stages ended."""
    if row.finished or row.run is None:
        return row.state_text
    done, total = row.progress
    return f"{row.state_text} {done}/{total}"


def _metric_cells(table: ExperimentTable, index: int, row: ExperimentRow) -> list[str]:
    best = table.best_of(index)
    cells = [metric_text(row.metrics.get(key)) for key in table.metrics]
    return [
        text + "*" if key in best else text for key, text in zip(table.metrics, cells, strict=True)
    ]


def _params_text(row: ExperimentRow, names: Sequence[str]) -> list[str]:
    from mlci_tui.config import param_text

    return ["-" if name not in row.params else param_text(row.params[name]) for name in names]


def table_text(table: ExperimentTable, *, color: bool) -> list[str]:
    """One row per experiment: id, name, state, duration, code, the params that
    differ, every metric's last value with the best of each column marked ``*``."""
    from mlci_tui.commands.console import STATE_COLORS, paint, render_table

    shown = table.metric_labels
    headers = ["ID", "NAME", "STATE", "DURATION", "CODE", *table.params]
    headers += [shown[key] for key in table.metrics]
    rows, codes = [], []
    for index, row in enumerate(table.rows):
        cells = [
            row.id_text,
            row.name or "-",
            _state_cell(row),
            format_duration(row.duration_s(table.read_at)),
            row.code_text,
            *_params_text(row, table.params),
            *_metric_cells(table, index, row),
        ]
        rows.append([visible_text(cell) for cell in cells])
        best_of = table.best_of(index)
        best = [BEST_CODE if key in best_of else None for key in table.metrics]
        codes.append([None, None, STATE_COLORS.get(row.state), *[None] * (2 + len(table.params))])
        codes[-1] += best
    metrics_from = 5 + len(table.params)
    right = {0, 3, *range(metrics_from, metrics_from + len(table.metrics))}
    lines = render_table(
        [visible_text(h) for h in headers], rows, right, codes=codes if color else None
    )
    if color:
        lines[0] = paint(lines[0], "1", color)
    legend = _legend(table)
    return [*lines, *([] if legend is None else ["", f"* {legend}"])]


def _legend(table: ExperimentTable) -> str | None:
    """What the mark of the best means, and which way each marked column is better."""
    if not table.best:
        return None
    shown = table.metric_labels
    ways = ", ".join(
        f"{shown[key]}: {table.better[key]}" for key in table.metrics if key in table.best
    )
    return visible_text(f"the best of its column ({ways} is better)")


def table_json(table: ExperimentTable) -> dict[str, Any]:
    shown = table.metric_labels
    return {
        "params": list(table.params),
        "metrics": [
            {
                "stage": key.stage,
                "name": key.name,
                "label": shown[key],
                "better": table.better.get(key),
                "best_id": _best_id(table, key),
            }
            for key in table.metrics
        ],
        "rows": [
            {**row.to_json(), "best": [shown[k] for k in table.metrics if table.is_best(i, k)]}
            for i, row in enumerate(table.rows)
        ],
    }


def _best_id(table: ExperimentTable, key: MetricKey) -> str | None:
    index = table.best.get(key)
    return None if index is None else table.rows[index].key


def write_csv(table: ExperimentTable | None) -> None:
    """One row a line: every field, every param (``param:NAME``) and every metric
    (``metric:STAGE.NAME``) of any row; an empty cell where a row has none."""
    import csv

    from mlci_tui.config import param_text
    from mlci_tui.store.records import iso_time

    writer = csv.writer(sys.stdout, lineterminator="\n")
    fields = ["id", "kind", "name", "state", "run_id", "started_at", "ended_at", "duration_s"]
    fields += ["code", "workspace", "message"]
    if table is None:
        writer.writerow(fields)
        return
    params = list(dict.fromkeys(name for row in table.rows for name in row.params))
    writer.writerow(
        [*fields, *(f"param:{n}" for n in params), *(f"metric:{k.text}" for k in table.metrics)]
    )
    for row in table.rows:
        duration = row.duration_s(table.read_at)
        ended = row.experiment.ended_at if row.experiment else (row.run and row.run.ended_at)
        cells: list[Any] = [
            row.number if row.number is not None else "",
            "experiment" if row.is_experiment else "run",
            row.name,
            row.state.value,
            row.run_id if row.run_id is not None else "",
            iso_time(row.started_at) or "",
            iso_time(ended) or "",
            "" if duration is None else round(duration, 3),
            row.code_text if row.git_commit else "",
            (row.experiment.workspace if row.experiment else None) or "",
            row.message or "",
        ]
        cells += [param_text(row.params[n]) if n in row.params else "" for n in params]
        cells += [repr(row.metrics[key]) if key in row.metrics else "" for key in table.metrics]
        writer.writerow([visible_text(str(cell)) for cell in cells])


def table_markdown(table: ExperimentTable, limit: int | None = None) -> str:
    """The table for a PR comment or a job summary: the best of each column in bold;
    rows left out (and said so) to stay within ``limit`` bytes (GitHub's 1 MiB)."""
    from mlci_tui.commands.reports import REPORT_LIMIT, md

    limit = REPORT_LIMIT if limit is None else limit
    shown = table.metric_labels
    headers = ["id", "name", "state", "duration", "code", *table.params]
    headers += [shown[key] for key in table.metrics]
    align = ["--:", "---", "---", "--:", "---", *["---"] * len(table.params)]
    align += ["--:"] * len(table.metrics)
    head = [
        f"### Experiments ({len(table.rows)})",
        "",
        "| " + " | ".join(md(h) for h in headers) + " |",
        "|" + "|".join(align) + "|",
    ]
    legend = _legend(table)
    tail = [] if legend is None else ["", f"**bold**: {md(legend)}"]
    body = []
    for index, row in enumerate(table.rows):
        metrics = []
        best_of = table.best_of(index)
        for key in table.metrics:
            text = md(metric_text(row.metrics.get(key)))
            metrics.append(f"**{text}**" if key in best_of else text)
        cells = [
            md(row.id_text),
            md(row.name or "-"),
            md(_state_cell(row)),
            md(format_duration(row.duration_s(table.read_at))),
            md(row.code_text),
            *(md(text) for text in _params_text(row, table.params)),
        ]
        body.append("| " + " | ".join([*cells, *metrics]) + " |")
    size = sum(len(line.encode()) + 1 for line in [*head, *tail])
    kept = 0
    # Room for the line that says how many were left out.
    room = limit - size - 200
    for line in body:
        room -= len(line.encode()) + 1
        if room < 0:
            break
        kept += 1
    lines = [*head, *body[:kept]]
    if kept < len(body):
        lines += [
            "",
            f"*{len(body) - kept} more rows left out to fit {limit // 1024} KiB;"
            " all of them: `mlci exp show --csv`.*",
        ]
    return "\n".join([*lines, *tail]) + "\n"


# mlci exp diff ------------------------------------------------------------------


def handle_exp_diff(args: argparse.Namespace) -> int:
    from mlci_tui.commands.reports import print_comparison
    from mlci_tui.store.compare import compare, with_artifact

    config = load(args)
    stage = config.artifact_stage.name if config.artifact_stage else None
    with open_store(config) as store:
        old = with_artifact(store, _side(store, config, args.first), stage)
        new = with_artifact(store, _side(store, config, args.second), stage)
    print_comparison(compare(old, new, config.metric_checks), args)
    return ExitCode.PASSED


def _side(store: Store, config: Config, experiment_id: int) -> Side:
    """An experiment as one side of a comparison: its run, named after it."""
    from mlci_tui.store.compare import Side

    experiment = _masked(config, _find(store, experiment_id))
    if experiment.run_id is None:
        raise NotFound(
            f"experiment {experiment.label} never started ({experiment.state.text}):"
            " it has no run to compare"
        )
    run = store.runs.get(experiment.run_id)
    if run is None:
        raise NotFound(f"experiment {experiment.label}: its run {experiment.run_id} is gone")
    named = f"{experiment.label} (run {run.id})"
    return Side(run, store.versions.of_run(run.id), named=visible_text(named))


def _find(store: Store, experiment_id: int) -> ExperimentRecord:
    experiment = store.experiments.get(experiment_id)
    if experiment is None:
        raise NotFound(f"no experiment {experiment_id} (see `mlci exp show`)")
    return experiment


def _masked(config: Config, experiment: ExperimentRecord) -> ExperimentRecord:
    from mlci_tui.masking import SecretMasker

    masker = SecretMasker(config.secret_values(os.environ))
    return experiment._replace(name=masker.mask_text(experiment.name))


# mlci exp remove ----------------------------------------------------------------


def handle_exp_remove(args: argparse.Namespace) -> int:
    """All or nothing: any experiment named that is missing, queued or running
    refuses the whole command before anything is removed."""
    config = load(args)
    with open_store(config) as store:
        found = []
        for experiment_id in dict.fromkeys(args.ids):
            experiment = store.experiments.get(experiment_id)
            if experiment is None:
                raise UsageError(f"no experiment {experiment_id}; nothing removed")
            experiment = _masked(config, experiment)
            if not experiment.state.finished:
                raise UsageError(
                    f"experiment {visible_text(experiment.label)} is {experiment.state.text}:"
                    f" cancel it first with `mlci exp cancel {experiment.id}`; nothing removed"
                )
            found.append(experiment)
        for experiment in found:
            print(visible_text(_remove(store, config, experiment)))
    return ExitCode.PASSED


def _remove(store: Store, config: Config, experiment: ExperimentRecord) -> str:
    """Forget one experiment: its row and run in the store, then the run's logs and
    its workspace's directory; what was removed, in a line."""
    store.experiments.remove(experiment.id)
    removed = []
    run_id = experiment.run_id
    if run_id is not None:
        if store.runs.get(run_id) is None:
            _remove_tree(store.state_dir / "runs", str(run_id))
            removed.append(f"run {run_id} and its logs")
        else:
            # A version was made from it: the version's record keeps its run.
            removed.append(f"not run {run_id} (a model version was made from it)")
    from mlci_tui.service.workspace import EXPERIMENTS_DIR

    if _remove_tree(config.root / EXPERIMENTS_DIR, str(experiment.id)):
        removed.append("its workspace")
    what = f" ({', '.join(removed)})" if removed else ""
    return f"removed experiment {experiment.label}{what}"


def _remove_tree(parent: Path, name: str) -> bool:
    """Remove ``parent/name`` whole, never anything outside ``parent``: a symlink
    (there, or ``parent`` itself being one) is unlinked, never followed. Whether
    something was removed."""
    from mlci_tui.service.workspace import remove

    if parent.is_symlink() or not parent.is_dir():
        return False
    path = parent / name
    try:
        if path.is_symlink() or path.is_file():
            path.unlink()
            return True
        if not path.is_dir():
            return False
        # As a workspace is removed when its experiment ends: rmtree never follows a
        # symlink inside the tree, and what a stage made read-only goes too.
        remove(path)
    except OSError as error:
        raise StoreError(f"{path}: cannot remove it: {error.strerror}") from None
    return not path.exists()
