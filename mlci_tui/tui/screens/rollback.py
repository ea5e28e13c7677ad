"""The rollback confirmation: current versus target, side by side."""

from __future__ import annotations

from collections.abc import Mapping

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from mlci_tui.config import param_text
from mlci_tui.metric_keys import MetricKey, labels
from mlci_tui.store.records import VersionRecord
from mlci_tui.tui.screens.confirm import ConfirmScreen
from mlci_tui.tui.text import metric_cell, plain, state_text
from mlci_tui.units import format_duration

MAX_PARAMS = 6


def comparison(
    current: VersionRecord | None, target: VersionRecord, now: float, metrics: list[MetricKey]
) -> Table:
    """A table of the live version and the target: metrics, sha256, age, run."""
    table = Table(box=None, padding=(0, 2), show_header=True, header_style="bold")
    table.add_column("")
    table.add_column(Text(f"now: {current.name}" if current else "now: nothing live"))
    table.add_column(Text(f"after: {target.name}"))
    keys = list(metrics) + sorted(
        {k for v in (current, target) if v for k in v.metrics} - set(metrics)
    )
    shown = labels(keys[:8])
    for key in keys[:8]:
        table.add_row(
            plain(shown[key]),
            metric_cell(current.metrics.get(key) if current else None),
            metric_cell(target.metrics.get(key)),
        )
    # The params they were built with: those that differ first, as the reason they differ.
    params = {n for v in (current, target) if v for n in v.params}
    before = current.params if current else {}

    def differs(name: str) -> bool:
        return before.get(name) != target.params.get(name)

    for name in sorted(params, key=lambda n: (not differs(n), n))[:MAX_PARAMS]:
        table.add_row(
            plain(name),
            plain(_param(before, name)),
            plain(_param(target.params, name)),
            style="bold" if differs(name) else None,
        )
    table.add_row(
        "monitored",
        plain(current.live_text(metrics) if current else "-"),
        plain(target.live_text(metrics)),
    )
    table.add_row(
        "status", state_text(current.status) if current else Text("-"), state_text(target.status)
    )
    table.add_row(
        "sha256",
        Text(current.sha256[:16] if current else "-"),
        Text(target.sha256[:16]),
    )
    table.add_row(
        "age",
        Text(f"{format_duration(now - current.created_at)}" if current else "-"),
        Text(f"{format_duration(now - target.created_at)}"),
    )
    table.add_row(
        "built by",
        Text(f"run {current.run_id}" if current and current.run_id else "-"),
        Text(f"run {target.run_id}" if target.run_id else "-"),
    )
    table.add_row(
        "commit",
        plain((current.git_commit or "-")[:12] if current else "-"),
        plain((target.git_commit or "-")[:12]),
    )
    return table


def _param(params: Mapping[str, object], name: str) -> str:
    return param_text(params[name]) if name in params else "-"


def rollback_screen(
    current: VersionRecord | None,
    target: VersionRecord,
    default: VersionRecord | None,
    now: float,
    metrics: list[MetricKey],
) -> ConfirmScreen:
    """``default`` is what `mlci rollback` without a version would pick: named when the
    target is another, so that a highlight moved long ago is not taken for it."""
    body: RenderableType = comparison(current, target, now, metrics)
    if default is None or default.number != target.number:
        picks = (
            f"would pick {default.name}"
            if default is not None
            else "has no target (no earlier healthy version)"
        )
        note = Text.assemble(
            ("Not the default: ", "bold"), f"`mlci rollback` without a version {picks}."
        )
        body = Group(body, Text(), note)
    return ConfirmScreen(
        f"Roll production back to {target.name}?", body, yes=f"roll back to {target.name}"
    )
