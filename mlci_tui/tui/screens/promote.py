"""The promote confirmation: the live version and the experiment side by side."""

from __future__ import annotations

from rich.console import Group
from rich.text import Text

from mlci_tui.metric_keys import MetricKey
from mlci_tui.store.compare import Comparison
from mlci_tui.store.records import ExperimentRecord
from mlci_tui.textsafe import visible_text
from mlci_tui.tui.screens.confirm import ConfirmScreen
from mlci_tui.tui.screens.rollback import add_rows, header_and_rows, side_by_side
from mlci_tui.tui.text import plain, state_text
from mlci_tui.units import format_duration


def promote_screen(
    comparison: Comparison, experiment: ExperimentRecord, now: float, metrics: list[MetricKey]
) -> ConfirmScreen:
    """``comparison``: the live version (`Comparison.old`, none if nothing is live) with
    the experiment's run (`Comparison.new`), as the rollback confirmation shows a target."""
    label = visible_text(experiment.label)
    table = side_by_side(comparison, metrics, Text.assemble("after: ", plain(label)))
    commit = (experiment.git_commit or "-")[:12]
    if experiment.code_hash:
        commit += " + changes"  # it ran uncommitted changes: the commit alone is not it
    ended = experiment.ended_at
    add_rows(
        table,
        comparison,
        now,
        metrics,
        [
            ("monitored", Text("-")),
            ("status", state_text(experiment.state)),
            ("sha256", Text("on promote", style="dim")),
            ("age", Text(format_duration(now - ended) if ended is not None else "-")),
            ("built by", plain(f"experiment #{experiment.id} (run {experiment.run_id})")),
            ("commit", plain(commit)),
        ],
    )
    note = Text.assemble(
        ("Registers ", "bold"),
        "its artifact as a new version and deploys it, with its params, metrics and"
        " experiment id: gates, post-deploy analysis and automatic rollback as for a run.",
    )
    header, rows = header_and_rows(table)
    return ConfirmScreen(
        f"Promote experiment {label} to production?",
        Group(rows, Text(), note),
        yes="promote and deploy",
        header=header,
    )
