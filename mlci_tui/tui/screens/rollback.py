"""The rollback confirmation: current versus target, side by side."""

from __future__ import annotations

from rich.cells import cell_len
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from mlci_tui.metric_keys import MetricKey, labels
from mlci_tui.store.compare import Comparison
from mlci_tui.store.records import VersionRecord
from mlci_tui.tui.screens.confirm import ConfirmScreen
from mlci_tui.tui.text import metric_cell, plain, state_text
from mlci_tui.units import format_duration

MAX_METRICS = 8
MAX_PARAMS = 6


def comparison_table(comparison: Comparison, now: float, metrics: list[MetricKey]) -> Table:
    """The live version (`Comparison.old`, none if nothing is live) and the target
    (`Comparison.new`) side by side: metrics, params, sha256, age, run."""
    target = comparison.new.version
    assert target is not None
    table = side_by_side(comparison, metrics, Text(f"after: {target.name}"))
    rows = [
        ("monitored", plain(target.live_text(metrics))),
        ("status", state_text(target.status)),
        ("sha256", Text((comparison.new.sha256 or "-")[:16])),
        ("age", Text(f"{format_duration(now - target.created_at)}")),
        ("built by", Text(built_by(target))),
        ("commit", plain((target.git_commit or "-")[:12])),
    ]
    add_rows(table, comparison, now, metrics, rows)
    return table


def built_by(version: VersionRecord) -> str:
    """What made a version: ``run 12``, or ``experiment #3`` for one promoted from an
    experiment (as `mlci versions` names it; short enough for two beside each other)."""
    if version.experiment_id is not None:
        return f"experiment #{version.experiment_id}"
    return f"run {version.run_id}" if version.run_id else "-"


def side_by_side(comparison: Comparison, metrics: list[MetricKey], after: Text) -> Table:
    """The live version (`Comparison.old`, none if nothing is live) and what would
    replace it (`Comparison.new`, headed ``after``): their metrics, the key ones first,
    and their params, those that differ first. `add_rows` adds the rest."""
    current = comparison.old.version
    table = Table(box=None, padding=(0, 2), show_header=True, header_style="bold")
    table.add_column("")
    table.add_column(Text(f"now: {current.name}" if current else "now: nothing live"))
    table.add_column(after)
    rows = comparison.metrics_led_by(metrics)[:MAX_METRICS]
    shown = labels(MetricKey(row.stage, row.name) for row in rows)
    for row in rows:
        table.add_row(
            plain(shown[MetricKey(row.stage, row.name)]), metric_cell(row.old), metric_cell(row.new)
        )
    # The params they were built with: those that differ first, as the reason they differ.
    params = sorted(comparison.params, key=lambda p: (not p.changed, p.name))
    for param in params[:MAX_PARAMS]:
        table.add_row(
            plain(param.name),
            plain(param.old_text),
            plain(param.new_text),
            style="bold" if param.changed else None,
        )
    return table


def add_rows(
    table: Table,
    comparison: Comparison,
    now: float,
    metrics: list[MetricKey],
    after: list[tuple[str, Text]],
) -> None:
    """The rows below the metrics and params: the live version's monitored values,
    status, sha256, age, run and commit, beside ``after``'s (by row name, in order)."""
    current = comparison.old.version
    now_side = {
        "monitored": plain(current.live_text(metrics)) if current else Text("-"),
        "status": state_text(current.status) if current else Text("-"),
        "sha256": Text((comparison.old.sha256 or "-")[:16]),
        "age": Text(f"{format_duration(now - current.created_at)}" if current else "-"),
        "built by": Text(built_by(current) if current else "-"),
        "commit": plain((current.git_commit or "-")[:12] if current else "-"),
    }
    for name, text in after:
        table.add_row(name, now_side.get(name, Text("-")), text)


def header_and_rows(table: Table) -> tuple[Table, Table]:
    """``table``'s header alone, and its rows without it, their columns as wide in
    both (each as wide as its widest cell, narrowed alike when they do not fit): the
    header stays in sight above rows that scroll, over the columns it names."""

    def width(cell: RenderableType) -> int:
        text = cell.plain if isinstance(cell, Text) else str(cell)
        return max((cell_len(line) for line in text.splitlines()), default=0)

    widths = [max(width(c) for c in (column.header, *column.cells)) for column in table.columns]

    def like(show_header: bool) -> Table:
        made = Table(
            box=None,
            padding=table.padding,
            show_header=show_header,
            header_style=table.header_style,
        )
        for column, size in zip(table.columns, widths, strict=True):
            # The header is one line: a name cut short, never a second line.
            made.add_column(column.header, width=size, no_wrap=show_header)
        return made

    header, rows = like(True), like(False)
    cells = [list(column.cells) for column in table.columns]
    for index, row in enumerate(table.rows):
        rows.add_row(*(column[index] for column in cells), style=row.style)
    return header, rows


def rollback_screen(
    comparison: Comparison, default: VersionRecord | None, now: float, metrics: list[MetricKey]
) -> ConfirmScreen:
    """``comparison``: the live version's with the target's (`compare_versions`).
    ``default`` is what `mlci rollback` without a version would pick: named when the
    target is another, so that a highlight moved long ago is not taken for it."""
    target = comparison.new.version
    assert target is not None
    header, rows = header_and_rows(comparison_table(comparison, now, metrics))
    body: RenderableType = rows
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
        f"Roll production back to {target.name}?",
        body,
        yes=f"roll back to {target.name}",
        header=header,
    )
