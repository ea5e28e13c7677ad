"""RunsScreen: pick a past run to read its logs (or go back to following the latest)."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from mlci_tui.store.records import RunRecord
from mlci_tui.tui.keys import binding_for, hints
from mlci_tui.tui.text import plain, state_text
from mlci_tui.units import format_duration, local_time

LATEST = 0
"""The answer that means: show the latest run, whichever it is."""


_LATEST = Binding("l", "latest", "Latest", id="runs.latest")
_CLOSE = Binding("escape", "dismiss(None)", "Close", id="runs.close")
_SHOW = binding_for(DataTable, "select_cursor")
"""The table's own key that picks a row, named in the hint."""


class RunsScreen(ModalScreen[int | None]):
    BINDINGS: ClassVar[list[BindingType]] = [_LATEST, _CLOSE]
    DEFAULT_CSS = """
    RunsScreen { align: center middle; }
    RunsScreen > Vertical {
        width: 90%; max-width: 100; height: 80%;
        border: thick $primary; background: $surface;
    }
    RunsScreen DataTable { height: 1fr; }
    RunsScreen .runs--keys { color: $text-muted; padding: 0 1; }
    """

    def __init__(self, runs: list[RunRecord], now: float) -> None:
        super().__init__()
        self.runs = runs
        self.now = now

    def compose(self) -> ComposeResult:
        table: DataTable[Text] = DataTable(cursor_type="row", zebra_stripes=True)
        with Vertical():
            yield Static(Text("Runs, newest first", style="bold"), classes="runs--keys")
            yield table
            pairs = [(_SHOW, "show this run"), (_LATEST, "follow the latest"), (_CLOSE, "close")]
            keys = hints(self.app, pairs)
            yield Static(Text(keys), classes="runs--keys")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("RUN", "STARTED", "STATE", "DURATION", "MESSAGE")
        for run in self.runs:
            table.add_row(
                Text(str(run.id), justify="right"),
                Text(local_time(run.started_at)),
                state_text(run.state),
                Text(format_duration(run.duration_s(self.now))),
                plain(run.message or ""),
                key=str(run.id),
            )
        table.focus()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        # Enter (and a click) on a row: the table's own binding, which takes the key.
        event.stop()
        if 0 <= event.cursor_row < len(self.runs):
            self.dismiss(self.runs[event.cursor_row].id)

    def action_latest(self) -> None:
        self.dismiss(LATEST)
