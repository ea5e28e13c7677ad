"""RunsScreen: pick a past run to read its logs (or go back to following the latest),
or mark two runs to compare them; ``/`` filters the runs (id, start, state, message)."""

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
from mlci_tui.tui.screens.search import filter_hint, filter_title, open_filter
from mlci_tui.tui.text import plain, state_text
from mlci_tui.units import format_duration, local_time

LATEST = 0
"""The answer that means: show the latest run, whichever it is."""


_LATEST = Binding("l", "latest", "Latest", id="runs.latest")
_MARK = Binding("space", "mark", "Mark", id="runs.mark")
_FILTER = Binding("slash", "filter", "Filter", id="runs.filter")
_CLOSE = Binding("escape", "close", "Close", id="runs.close")
_SHOW = binding_for(DataTable, "select_cursor")
"""The table's own key that picks a row, named in the hint."""


class RunsScreen(ModalScreen[int | tuple[int, int] | None]):
    """Answers a run's id, `LATEST`, or two marked runs (older first) to compare."""

    BINDINGS: ClassVar[list[BindingType]] = [_LATEST, _MARK, _FILTER, _CLOSE]
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
        self.shown = runs
        """The runs the filter keeps, as the table lists them."""
        self.filter_text = ""
        self.now = now
        self.marked: list[int] = []

    def compose(self) -> ComposeResult:
        table: DataTable[Text] = DataTable(cursor_type="row", zebra_stripes=True)
        with Vertical():
            yield Static(self._title(), classes="runs--keys", id="runs-title")
            yield table
            pairs = [
                (_SHOW, "show this run"),
                (_MARK, "mark two to compare"),
                (_LATEST, "follow the latest"),
                (_FILTER, "filter"),
                (_CLOSE, "close (with a filter on: clear it)"),
            ]
            keys = hints(self.app, pairs)
            yield Static(Text(keys), classes="runs--keys")

    def _title(self) -> Text:
        title = filter_title("Runs, newest first", self.filter_text).plain
        hint = filter_hint(self.filter_text)
        return Text(f"{title} ({hint})" if hint else title, style="bold")

    def on_mount(self) -> None:
        self._fill()
        self.query_one(DataTable).focus()

    def _fill(self) -> None:
        table = self.query_one(DataTable)
        table.clear(columns=True)
        table.add_column(" ", key="mark")
        table.add_columns("RUN", "STARTED", "STATE", "DURATION", "MESSAGE")
        for run in self.shown:
            table.add_row(
                Text("*", style="bold") if run.id in self.marked else Text(" "),
                Text(str(run.id), justify="right"),
                Text(local_time(run.started_at)),
                state_text(run.state),
                Text(format_duration(run.duration_s(self.now))),
                plain(run.message or ""),
                key=str(run.id),
            )

    def _words(self, run: RunRecord) -> str:
        started = local_time(run.started_at)
        return f"{run.id} {started} {run.state.text} {run.message or ''}".lower()

    def set_filter(self, text: str) -> None:
        """Keep the runs whose id, start, state or message holds ``text`` (any case)."""
        if text == self.filter_text:
            return
        self.filter_text = text
        self.shown = [run for run in self.runs if text.lower() in self._words(run)]
        self._fill()
        self.query_one("#runs-title", Static).update(self._title())

    def action_filter(self) -> None:
        open_filter(self.app, "runs", self.filter_text, self.set_filter)

    def action_close(self) -> None:
        if self.filter_text:
            self.set_filter("")
        else:
            self.dismiss(None)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        # Enter (and a click) on a row: the table's own binding, which takes the key.
        event.stop()
        if 0 <= event.cursor_row < len(self.shown):
            self.dismiss(self.shown[event.cursor_row].id)

    def action_mark(self) -> None:
        table = self.query_one(DataTable)
        if not 0 <= table.cursor_row < len(self.shown):
            return
        run_id = self.shown[table.cursor_row].id
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
