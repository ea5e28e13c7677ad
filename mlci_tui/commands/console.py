"""Plain terminal output of the headless commands: summaries and tables.

Colour only on a terminal, never with ``NO_COLOR``; every name, reason and message
from the config or the store is shown with its controls made visible
(`textsafe.visible_text`), never obeyed. The live ``[stage] line`` stream is
`live_printer`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import BinaryIO

from mlci_tui.metric_keys import MetricKey, labels
from mlci_tui.states import DeployOutcome, RunState, StageState, VersionStatus
from mlci_tui.store.records import (
    AlertRecord,
    DecisionRecord,
    DeploymentRecord,
    RunRecord,
    StageRecord,
    VersionRecord,
)
from mlci_tui.textsafe import visible_text
from mlci_tui.units import format_bytes, format_duration, local_time, metric_text

STATE_COLORS = {
    StageState.PASSED: "32",
    StageState.FAILED: "31",
    StageState.RUNNING: "33",
    StageState.CANCELLED: "35",
    StageState.SKIPPED: "2",
    StageState.PENDING: "2",
    StageState.CACHED: "36",
    RunState.PASSED: "32",
    RunState.FAILED: "31",
    RunState.RUNNING: "33",
    RunState.CANCELLED: "35",
    RunState.INTERRUPTED: "35",
    RunState.ROLLED_BACK: "35",
    VersionStatus.LIVE: "32",
    VersionStatus.FAILED: "31",
    VersionStatus.ROLLED_BACK: "35",
    VersionStatus.PREVIOUS: "2",
    DeployOutcome.SUCCEEDED: "32",
    DeployOutcome.FAILED: "31",
    DeployOutcome.INTERRUPTED: "35",
    DeployOutcome.POINTER_FAILED: "31",
    DeployOutcome.RUNNING: "33",
}


def use_color(stream: BinaryIO, environ: dict[str, str] | os._Environ[str]) -> bool:
    """Colour only on a terminal, and never when ``NO_COLOR`` is set (no-color.org)."""
    return _isatty(stream) and not environ.get("NO_COLOR") and environ.get("TERM") != "dumb"


def _isatty(stream: BinaryIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def paint(text: str, code: str | None, color: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if color and code else text


# Tables --------------------------------------------------------------------


def render_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    right: set[int],
    *,
    codes: Sequence[Sequence[str | None]] | None = None,
) -> list[str]:
    """Columns padded to their widest cell; ``right`` holds right-aligned column indexes.
    ``codes``, one per cell of ``rows``, paints each cell (not its padding): a colour,
    or None."""
    cells = [list(headers), *[list(row) for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for number, row in enumerate(cells):
        painted = None if codes is None or number == 0 else codes[number - 1]
        parts = []
        for i, cell in enumerate(row):
            pad = " " * (widths[i] - len(cell))
            if painted is not None and painted[i]:
                cell = paint(cell, painted[i], True)
            parts.append(pad + cell if i in right else cell + pad)
        lines.append("  ".join(parts).rstrip())
    return lines


def stage_table(
    stages: Sequence[StageRecord], *, color: bool, now: float | None = None
) -> list[str]:
    """The summary table: stage, state, duration, CPU, peak RSS, exit code, note."""
    rows = []
    for stage in stages:
        attempts = f" ({stage.attempt}/{stage.max_attempts})" if stage.attempt > 1 else ""
        note = stage.message or ""
        if stage.state is StageState.PASSED:
            note = stage.why_ran
        if stage.state is StageState.CACHED and stage.cached_from_stage is not None:
            note = f"from run {stage.cached_from_run}"
            if stage.cached_from_stage != stage.name:
                note += f", stage {stage.cached_from_stage}"
            if stage.cached_from_store is not None:
                note += f", in {stage.cached_from_store.text}"
        if stage.state is StageState.RUNNING and stage.cpu_percent is not None:
            note = f"cpu {stage.cpu_percent:.0f}%  rss {format_bytes(stage.rss_bytes)}"
        if not note and stage.job_id is not None:
            note = f"{stage.job_kind} job {stage.job_id}"
        rows.append(
            [
                stage.name,
                stage.state.text + attempts,
                format_duration(stage.duration_s(now)),
                "-" if stage.cpu_seconds is None else f"{stage.cpu_seconds:.2f}s",
                format_bytes(stage.peak_rss_bytes),
                "-" if stage.exit_code is None else str(stage.exit_code),
                visible_text(note),
            ]
        )
    headers = ["STAGE", "STATE", "DURATION", "CPU", "PEAK RSS", "EXIT", "NOTE"]
    lines = render_table(headers, rows, right={2, 3, 4, 5})
    return _paint_states(lines, [stage.state for stage in stages], "STATE", color)


def run_summary(run: RunRecord, *, color: bool, now: float | None = None) -> list[str]:
    """A header line and the stage table, as `mlci run` ends and `mlci status` shows."""
    now = time.time() if now is None else now
    started = local_time(run.started_at)
    state = paint(run.state.text, STATE_COLORS.get(run.state), color)
    duration = format_duration(run.duration_s(now))
    # The name is made safe before the state's colour is added.
    name = visible_text(run.pipeline)
    lines = [f"{name} · run {run.id} · {state} · started {started} · {duration}", ""]
    lines += stage_table(run.stages, color=color, now=now)
    measured = [stage for stage in run.stages if stage.metrics]
    if measured:
        width = max(len(stage.name) for stage in measured)
        lines += ["", paint("METRICS", "1", color)]
        for stage in measured:
            shown = "  ".join(f"{name} {metric_text(v)}" for name, v in stage.metrics.items())
            lines.append(visible_text(f"{stage.name.ljust(width)}  {shown}"))
    if run.message and run.state is not RunState.PASSED:
        lines += ["", visible_text(run.message)]
    return lines


def version_table(
    versions: Sequence[VersionRecord], key_metrics: Sequence[MetricKey], *, color: bool
) -> list[str]:
    """Versions newest first, like `helm history`: status, key metrics, description."""
    metrics = list(key_metrics) or sorted({k for v in versions for k in v.metrics})[:3]
    rows = []
    for version in versions:
        description = version.description or ""
        if version.pruned_at is not None:
            description = f"{description} (artifact pruned)".strip()
        rows.append(
            [
                version.name,
                local_time(version.created_at),
                version.status.text,
                *(metric_text(version.metrics.get(name)) for name in metrics),
                visible_text(version.live_text(metrics)),
                version.made_by,
                visible_text(description),
            ]
        )
    shown = labels(metrics)
    names = [visible_text(shown[m].upper()) for m in metrics]
    headers = ["VERSION", "CREATED", "STATUS", *names, "LIVE", "RUN", "DESCRIPTION"]
    # Only the description and metric names come from outside; both are made safe above.
    lines = render_table(headers, rows, set(range(3, 3 + len(metrics))))
    return _paint_states(lines, [version.status for version in versions], "STATUS", color)


def _paint_states(
    lines: list[str], states: Sequence[StageState | VersionStatus], column: str, color: bool
) -> list[str]:
    """A table with its header in bold and each row's state in its colour; ``column``
    is the header of the (left-aligned) column that holds the states."""
    if not color:
        return lines
    start = lines[0].index(column)
    painted = [paint(lines[0], "1", color)]
    for line, state in zip(lines[1:], states, strict=True):
        end = start + len(state.text)
        code = STATE_COLORS.get(state)
        painted.append(line[:start] + paint(line[start:end], code, color) + line[end:])
    return painted


def history_table(deployments: Sequence[DeploymentRecord]) -> list[str]:
    """The audit trail, newest first."""
    rows = []
    for deployment in deployments:
        why = deployment.reason or ""
        if deployment.outcome is not DeployOutcome.SUCCEEDED and deployment.message:
            why = f"{why} — {deployment.message}" if why else deployment.message
        rows.append(
            [
                str(deployment.id),
                local_time(deployment.started_at),
                deployment.kind.text,
                "-" if deployment.from_version is None else f"v{deployment.from_version}",
                f"v{deployment.to_version}",
                deployment.user or "-",
                deployment.outcome.text,
                format_duration(deployment.duration_s()),
                why,
            ]
        )
    headers = ["#", "WHEN", "KIND", "FROM", "TO", "WHO", "OUTCOME", "DURATION", "WHY"]
    return render_table(headers, [[visible_text(c) for c in r] for r in rows], {0, 7})


def alert_lines(alerts: Sequence[AlertRecord], decisions: Sequence[DecisionRecord]) -> list[str]:
    """Pending decisions first, then alerts newest first."""
    lines = []
    for decision in decisions:
        target = f"roll back to v{decision.target}" if decision.target else "no rollback target"
        lines.append(
            visible_text(
                f"PENDING  v{decision.version} failed its analysis: {decision.finding};"
                f" {target}? (mlci rollback · mlci alerts --dismiss)"
            )
        )
    if decisions:
        lines.append("")
    if not alerts:
        lines.append("no alerts")
        return lines
    rows = []
    for alert in alerts:
        delivery = "" if alert.delivery in (None, "sent") else f"  [{alert.delivery}]"
        # The ID is what `--ack` takes; the state says whether anyone has yet.
        state = "new" if alert.acknowledged_at is None else "acknowledged"
        cells = [str(alert.id), local_time(alert.created_at), state, alert.kind]
        rows.append([*cells, f"{alert.message}{delivery}"])
    headers = ["ID", "WHEN", "STATE", "KIND", "MESSAGE"]
    lines += render_table(headers, [[visible_text(c) for c in r] for r in rows], {0})
    return lines
