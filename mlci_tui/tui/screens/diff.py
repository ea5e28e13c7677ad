"""DiffScreen: two runs or versions side by side, as `mlci diff` prints them:
params that changed, metrics with Δ and their gates, stages, the artifact."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from mlci_tui.states import StageState
from mlci_tui.store.compare import Comparison, MetricRow
from mlci_tui.tui.keys import hints
from mlci_tui.tui.text import metric_cell, plain, state_text
from mlci_tui.units import format_duration

_CLOSE = Binding("escape,d,q", "dismiss(None)", "Close", id="diff.close")


class DiffScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [_CLOSE]
    DEFAULT_CSS = """
    DiffScreen { align: center middle; }
    DiffScreen > VerticalScroll {
        width: 96%; max-width: 120; height: auto; max-height: 96%;
        border: thick $primary; background: $surface; padding: 0 1;
        scrollbar-size-vertical: 1;
    }
    DiffScreen .diff--title { text-style: bold; }
    DiffScreen .diff--section { margin-top: 1; }
    DiffScreen .diff--keys { color: $text-muted; margin-top: 1; }
    """

    def __init__(self, comparison: Comparison) -> None:
        super().__init__()
        self.comparison = comparison

    def compose(self) -> ComposeResult:
        c = self.comparison
        with VerticalScroll():
            # Old → new, left to right, in the title and every table; Δ is new − old.
            yield Static(plain(c.title), classes="diff--title")
            yield Static(plain(c.artifact_text))
            yield Static(self._params(), classes="diff--section")
            if c.metrics:
                yield Static(self._metrics(), classes="diff--section")
            if c.stages:
                yield Static(self._stages(), classes="diff--section")
            yield Static(Text(hints(self.app, [(_CLOSE, "close")])), classes="diff--keys")

    def _params(self) -> Table | Text:
        changed = [p for p in self.comparison.params if p.changed]
        if not changed:
            return Text("params: the same", style="dim")
        table = _table("PARAM", *self._sides())
        for row in changed:
            table.add_row(plain(row.name), plain(row.old_text), plain(row.new_text))
        return table

    def _metrics(self) -> Table:
        table = _table("METRIC", *self._sides(), "Δ", "Δ%", "GATE")
        for row, label in zip(self.comparison.metrics, self.comparison.metric_labels, strict=True):
            table.add_row(
                plain(label),
                metric_cell(row.old),
                metric_cell(row.new),
                Text(row.delta_text, justify="right"),
                Text(row.percent_text, justify="right"),
                _gate(row),
            )
        return table

    def _sides(self) -> tuple[str, str]:
        return self.comparison.old.label.upper(), self.comparison.new.label.upper()

    def _stages(self) -> Table:
        c = self.comparison
        table = _table("STAGE", *self._sides())
        for row in c.stages:
            table.add_row(
                plain(row.name),
                _stage(row.old_state, row.old_duration),
                _stage(row.new_state, row.new_duration),
            )
        return table


def _table(*headers: str) -> Table:
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for index, header in enumerate(headers):
        # On a narrow screen the gates' words wrap, so that names and Δ stay whole.
        table.add_column(Text(header), no_wrap=header != "GATE" or index == 0)
    return table


def _gate(row: MetricRow) -> Text:
    if not row.gates:
        return Text("")
    verdict = row.gate_text
    style = "green" if verdict == "pass" else "bold red"
    text = Text(verdict, style=style)
    text.append(" " + row.gate_note, style="dim")
    return text


def _stage(state: StageState | None, duration: float | None) -> Text:
    if state is None:
        return Text("-", style="dim")
    text = state_text(state)
    text.append(f" {format_duration(duration)}")
    return text
