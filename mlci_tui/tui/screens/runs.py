"""RunsScreen: pick a past run to read its logs (or go back to following the latest),
or mark two runs to compare them."""

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
_MARK = Binding("space", "mark", "Mark", id="runs.mark")
_CLOSE = Binding("escape", "dismiss(None)", "Close", id="runs.close")
_SHOW = binding_for(DataTable, "select_cursor")
"""The table's own key that picks a row, named in the hint."""


class RunsScreen(ModalScreen[int | tuple[int, int] | None]):
    """Answers a run's id, `LATEST`, or two marked runs (older first) to compare."""

    BINDINGS: ClassVar[list[BindingType]] = [_LATEST, _MARK, _CLOSE]
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
        self.marked: list[int] = []

    def compose(self) -> ComposeResult:
        table: DataTable[Text] = DataTable(cursor_type="row", zebra_stripes=True)
        with Vertical():
            yield Static(Text("Runs, newest first", style="bold"), classes="runs--keys")
            yield table
            pairs = [
                (_SHOW, "show this run"),
                (_MARK, "mark two to compare"),
                (_LATEST, "follow the latest"),
                (_CLOSE, "close"),
            ]
            keys = hints(self.app, pairs)
            yield Static(Text(keys), classes="runs--keys")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_column(" ", key="mark")
        table.add_columns("RUN", "STARTED", "STATE", "DURATION", "MESSAGE")
        for run in self.runs:
            table.add_row(
                Text(" "),
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

    def action_mark(self) -> None:
        table = self.query_one(DataTable)
        if not 0 <= table.cursor_row < len(self.runs):
            return
        run_id = self.runs[table.cursor_row].id
        if run_id in self.marked:
            self.marked.remove(run_id)
            table.update_cell(str(run_id), "mark", Text(" "))
            return
        self.marked.append(run_id)
        table.update_cell(str(run_id), "mark", Text("*", style="bold"))
        if len(self.marked) == 2:
            older, newer = sorted(self.marked)
            self.dismiss((older, newer))

    def action_latest(self) -> None:
        self.dismiss(LATEST)
