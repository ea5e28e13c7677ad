"""`mlci metrics`, `mlci diff` and `mlci report`: a run's series, two runs or
versions side by side, and a run's report as text, JSON or Markdown (the
Markdown is what GitHub's job summary shows)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from mlci_tui.commands.common import find_run, load, open_store, stage_hint
from mlci_tui.errors import NotFound, UsageError
from mlci_tui.textsafe import visible_text
from mlci_tui.units import format_duration, metric_text, sparkline

if TYPE_CHECKING:
    from mlci_tui.config import Config
    from mlci_tui.store import RunRecord, Store
    from mlci_tui.store.compare import Comparison, MetricRow
    from mlci_tui.store.series import Series

REPORT_LIMIT = 1 << 20
"""GitHub's cap on a step's job summary (1 MiB): a longer report is cut to fit."""
SERIES_SHOWN = 12
"""The report's sparklines: this many series at most."""


# mlci metrics ---------------------------------------------------------------


def handle_metrics(args: argparse.Namespace) -> int:
    """Exit 1 when the run (or the stage) reported no metrics: nothing was found (as
    JSON or CSV, the empty document is printed all the same)."""
    with open_store(load(args)) as store:
        run = find_run(store, args.run)
        if args.stage is not None and run.stage(args.stage) is None:
            names = [s.name for s in run.stages]
            raise UsageError(
                f"run {run.id} has no stage {args.stage!r}{stage_hint(args.stage, names)}"
            )
        series = store.series.all(run.id, args.stage)
    found = 0 if series else 1
    out = sys.stdout
    if args.csv:
        import csv

        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["run", "stage", "metric", "step", "value", "time"])
        for one in series:
            for point in one.points:
                writer.writerow(
                    [run.id, one.stage, one.name, point.step, repr(point.value), point.time]
                )
        return found
    if args.json:
        stages: dict[str, dict[str, Any]] = {}
        for one in series:
            stages.setdefault(one.stage, {})[one.name] = [
                {"step": p.step, "value": p.value, "time": p.time} for p in one.points
            ]
        print(json.dumps({"run_id": run.id, "stages": stages}, indent=2, allow_nan=False))
        return found
    if not series:
        where = f"stage {args.stage} of run {run.id}" if args.stage else f"run {run.id}"
        raise NotFound(f"{where} reported no metrics")
    print("\n".join(series_table(series)))
    return 0


def series_table(series: Sequence[Series]) -> list[str]:
    from mlci_tui.commands.console import render_table

    rows = []
    for one in series:
        values = [p.value for p in one.points]
        steps = f"{one.points[0].step}–{one.points[-1].step}" if one.points else "-"
        rows.append(
            [
                visible_text(one.stage),
                visible_text(one.name),
                str(len(values)),
                steps,
                metric_text(values[-1] if values else None),
                metric_text(min(values) if values else None),
                metric_text(max(values) if values else None),
                sparkline(values, 30),
            ]
        )
    headers = ["STAGE", "METRIC", "POINTS", "STEPS", "LAST", "MIN", "MAX", "SERIES"]
    return render_table(headers, rows, right={2, 4, 5, 6})


# mlci diff ------------------------------------------------------------------


def handle_diff(args: argparse.Namespace) -> int:
    from mlci_tui.store.compare import baseline, compare, resolve, with_artifact

    config = load(args)
    stage = config.artifact_stage.name if config.artifact_stage else None
    with open_store(config) as store:
        # The defaults are the workspace's runs: where there are experiments, say how
        # to compare those.
        hint = args.old is None and bool(store.experiments.counts())
        try:
            if args.new is None:
                # One side or none named: it is the new side, against what is live.
                new = resolve(store, args.old, default="latest")
                old = baseline(store, new)
            else:
                new = resolve(store, args.new, default="latest")
                old = resolve(store, args.old, default="live")
        except NotFound as error:
            if hint:
                raise NotFound(f"{error}; experiments: {EXP_DIFF}") from None
            raise
        old, new = with_artifact(store, old, stage), with_artifact(store, new, stage)
    print_comparison(compare(old, new, config.metric_checks), args)
    if hint and not (args.json or args.md):
        print(f"experiments: {EXP_DIFF}")
    return 0


EXP_DIFF = "mlci exp diff A B compares two (mlci exp show lists them)"


def print_comparison(comparison: Comparison, args: argparse.Namespace) -> None:
    """A diff as ``--json``, ``--md`` or text ask (`mlci diff`, `mlci exp diff`)."""
    if args.json:
        print(json.dumps(comparison.to_json(), indent=2, allow_nan=False))
    elif args.md:
        print("\n".join(diff_markdown(comparison)))
    else:
        print("\n".join(diff_text(comparison)))


def diff_text(comparison: Comparison) -> list[str]:
    from mlci_tui.commands.console import render_table

    old, new = comparison.old, comparison.new
    # The title and every table read old → new, left to right; Δ is new − old.
    lines = [comparison.title, comparison.artifact_text, ""]
    sides = [old.label.upper(), new.label.upper()]
    changed = [p for p in comparison.params if p.changed]
    if changed:
        rows = [[p.name, p.old_text, "→", p.new_text] for p in changed]
        lines += [*render_table(["PARAM", sides[0], "", sides[1]], rows, right=set()), ""]
    else:
        lines += ["params: the same", ""]
    if comparison.metrics:
        rows = _metric_rows(comparison)
        headers = ["METRIC", *sides, "Δ", "Δ%", "GATE"]
        lines += [*render_table(headers, rows, right={1, 2, 3, 4}), ""]
    rows = [
        [
            s.name,
            _stage_cell(s.old_state, s.old_duration),
            _stage_cell(s.new_state, s.new_duration),
        ]
        for s in comparison.stages
    ]
    if rows:
        lines += render_table(["STAGE", *sides], rows, right=set())
    return [visible_text(line) for line in lines]


def diff_markdown(comparison: Comparison, *, heading: str = "###") -> list[str]:
    old, new = comparison.old, comparison.new
    lines = [
        f"{heading} {md(comparison.title)}",
        "",
        md(comparison.artifact_text),
    ]
    changed = [p for p in comparison.params if p.changed]
    lines.append("")
    if changed:
        lines += [f"| param | {md(old.label)} | {md(new.label)} |", "|---|---|---|"]
        lines += [f"| {md(p.name)} | {md(p.old_text)} | {md(p.new_text)} |" for p in changed]
    else:
        lines.append("Params: the same.")
    if comparison.metrics:
        lines += [
            "",
            f"| metric | {md(old.label)} | {md(new.label)} | Δ | Δ% | gate |",
            "|---|--:|--:|--:|--:|---|",
        ]
        lines += ["| " + " | ".join(md(c) for c in row) + " |" for row in _metric_rows(comparison)]
    if comparison.stages:
        lines += ["", f"| stage | {md(old.label)} | {md(new.label)} |", "|---|---|---|"]
        lines += [
            f"| {md(s.name)} | {_stage_cell(s.old_state, s.old_duration)}"
            f" | {_stage_cell(s.new_state, s.new_duration)} |"
            for s in comparison.stages
        ]
    return lines


def _metric_rows(comparison: Comparison) -> list[list[str]]:
    return [
        _metric_cells(m, n)
        for m, n in zip(comparison.metrics, comparison.metric_labels, strict=True)
    ]


def _metric_cells(row: MetricRow, label: str) -> list[str]:
    gate = row.gate_text
    if row.gates:
        gate = f"{gate} ({row.gate_note})"
    return [
        label,
        metric_text(row.old),
        metric_text(row.new),
        row.delta_text,
        row.percent_text,
        gate,
    ]


def _stage_cell(state: Any, duration: float | None) -> str:
    if state is None:
        return "-"
    return f"{state.text} {format_duration(duration)}"


def md(text: str) -> str:
    """Untrusted text as one Markdown table cell or line: no markup, no HTML, no breaks."""
    text = visible_text(text.replace("\n", " "))
    return "".join("\\" + c if c in _MD_SPECIAL else c for c in text)


_MD_SPECIAL = set("\\`*_[]<>|~&#")


# mlci report ------------------------------------------------------------------


def handle_report(args: argparse.Namespace) -> int:
    config = load(args)
    with open_store(config) as store:
        run = find_run(store, args.run)
        if args.json:
            print(json.dumps(report_json(store, config, run), indent=2, allow_nan=False))
        elif args.md:
            sys.stdout.write(report_markdown(store, config, run))
        else:
            print("\n".join(report_text(store, config, run)))
    return 0


def _against_live(store: Store, config: Config, run: RunRecord) -> Comparison | None:
    """The run against the version live before it (or live now, if it deployed none)."""
    from mlci_tui.store.compare import Side, baseline, compare, with_artifact

    new = Side(run, store.versions.of_run(run.id))
    try:
        old = baseline(store, new, as_deployed=True)
    except NotFound:
        return None
    stage = config.artifact_stage.name if config.artifact_stage else None
    return compare(old, with_artifact(store, new, stage), config.metric_checks)


def _events(store: Store, run: RunRecord) -> list[str]:
    """What became of the run's version: registered, deployed, rolled back, and why."""
    lines = []
    version = store.versions.of_run(run.id)
    if version is not None:
        lines.append(
            f"registered {version.name} (sha256 {version.sha256[:12]}, now {version.status.text})"
        )
    for row in store.deployments.all(run.id):
        source = "" if row.from_version is None else f"v{row.from_version} → "
        line = f"{row.kind.text} {source}v{row.to_version}: {row.outcome.text}"
        why = row.reason or row.message
        lines.append(line + (f" ({why})" if why else ""))
    return lines


def _main_series(store: Store, run: RunRecord) -> list[Series]:
    return [s for s in store.series.all(run.id) if len(s.points) >= 2][:SERIES_SHOWN]


def report_text(store: Store, config: Config, run: RunRecord) -> list[str]:
    from mlci_tui.commands.console import run_summary

    lines = run_summary(run, color=False)
    events = _events(store, run)
    if events:
        lines += ["", *events]
    comparison = _against_live(store, config, run)
    if comparison is not None:
        lines += ["", *diff_text(comparison)]
    series = _main_series(store, run)
    if series:
        lines += ["", *series_table(series)]
    return [visible_text(line) for line in lines]


def report_markdown(store: Store, config: Config, run: RunRecord, limit: int = REPORT_LIMIT) -> str:
    lines = [f"## {md(run.pipeline)} · run {run.id} · {run.state.text}", ""]
    lines += ["| stage | state | duration | note |", "|---|---|--:|---|"]
    for stage in run.stages:
        note = stage.message or ""
        if stage.cached_from_stage is not None:
            note = f"cached from run {stage.cached_from_run}"
        elif stage.why_ran:
            note = stage.why_ran
        lines.append(
            f"| {md(stage.name)} | {stage.state.text} | {format_duration(stage.duration_s())}"
            f" | {md(note)} |"
        )
    events = _events(store, run)
    if events:
        lines += ["", *(f"- {md(event)}" for event in events)]
    comparison = _against_live(store, config, run)
    if comparison is not None:
        lines += ["", *diff_markdown(comparison)]
    series = _main_series(store, run)
    if series:
        lines += ["", "| series | points | last | curve |", "|---|--:|--:|---|"]
        for one in series:
            values = [p.value for p in one.points]
            lines.append(
                f"| {md(one.stage)} · {md(one.name)} | {len(values)} | {metric_text(values[-1])}"
                f" | {sparkline(values, 40)} |"
            )
    return fit(lines, limit, f"mlci report --run {run.id}")


def fit(lines: Iterable[str], limit: int, whole: str) -> str:
    """The lines, cut at a line so that the text stays within ``limit`` bytes."""
    note = f"\n\n*Cut to fit {limit // 1024} KiB; the whole report: `{whole}`.*\n"
    out: list[str] = []
    size = len(note.encode())
    for line in lines:
        size += len(line.encode()) + 1
        if size > limit:
            return "\n".join(out) + note
        out.append(line)
    return "\n".join(out) + "\n"


def report_json(store: Store, config: Config, run: RunRecord) -> dict[str, Any]:
    comparison = _against_live(store, config, run)
    version = store.versions.of_run(run.id)
    return {
        "run": run.to_json(),
        "version": None if version is None else version.to_json(),
        "deployments": [row.to_json() for row in store.deployments.all(run.id)],
        "against_live": None if comparison is None else comparison.to_json(),
        "series": [
            {
                "stage": one.stage,
                "metric": one.name,
                "points": len(one.points),
                "last": one.points[-1].value if one.points else None,
                "min": min((p.value for p in one.points), default=None),
                "max": max((p.value for p in one.points), default=None),
            }
            for one in store.series.all(run.id)
        ],
    }
