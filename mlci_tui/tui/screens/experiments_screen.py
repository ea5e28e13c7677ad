"""ExperimentsScreen: every experiment in one table, live while they run — state,
progress (stages ended of the run's stages), duration, the params that differ,
each metric's last value with the best of each column marked.

It reads as the main screen does: a cheap poll of the store's data version, and
only when that changed a read of the table in a worker thread (`StoreReader.
experiments`); the rows are drawn again only when what they show changed, and a
running experiment's duration ticks once a second. Idle, it reads nothing.

Keys: sort by the next column (``o``) or reverse the order (``O``), or click a
header; ``/`` filters with `mlci exp show --filter`'s expressions; ``space``
marks rows: two marked, ``d`` is their diff; two or more, ``g`` plots one
metric's series of each, overlaid; Enter shows the experiment's run on the main
screen; ``P`` promotes it after a confirmation, ``s`` starts the queue, ``c``
cancels the highlighted experiment — each a detached ``mlci exp`` process, none of
them offered on a read-only store or in a read-only dashboard (`ACTING`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, ClassVar, NamedTuple, Protocol

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import DataTable, Static

from mlci_tui.config import Config, param_text
from mlci_tui.errors import MlciError
from mlci_tui.metric_keys import MetricKey
from mlci_tui.states import ExperimentState
from mlci_tui.store.experiment_table import (
    ExperimentRow,
    ExperimentTable,
    filter_table,
    sort_table,
)
from mlci_tui.textsafe import terminal_line, visible_text
from mlci_tui.tui.screens.search import open_filter
from mlci_tui.tui.text import metric_cell, plain, state_text
from mlci_tui.units import format_duration

if TYPE_CHECKING:
    from mlci_tui.store.reader import Snapshot, StoreReader

BEST = "★"
"""Before the best value of a metric's column: seen without colour too."""
FIXED = ("id", "name", "state", "progress", "duration")
"""The columns every table has, before its params and metrics."""
UNSORTED = "id"
"""The order as read (oldest first): the column no sort is asked of."""

_CLOSE = Binding("escape,q", "close", "Close", id="experiments.close")


class Dashboard(Protocol):
    """What the screen asks of the app (`MlciApp`, which screens do not import)."""

    snapshot: Snapshot
    spawn: Callable[[list[str]], object]

    def say(
        self, message: str, *, title: str = "", severity: SeverityLevel = "information"
    ) -> None: ...

    def compare(self, old: str, new: str) -> object: ...

    def open_plot(self, make: Callable[[ModuleType], Screen[None]]) -> object: ...

    def open_run(self, run_id: int) -> None: ...


class Column(NamedTuple):
    key: str
    """The column's key in the table: unique, a param may be named as a metric."""
    label: Text
    sort: str
    """What `sort_table` is asked to sort by ("": the column does not sort)."""


class ExperimentsScreen(Screen[None]):
    """The experiments' table, over the dashboard; closes back to it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "mark", "Mark", tooltip="two: d diffs them; more: g plots", id="exp.mark"),
        Binding("d", "diff", "Diff", tooltip="the two marked experiments", id="exp.diff"),
        Binding("g", "plot", "Plot", tooltip="one metric of the marked experiments", id="exp.plot"),
        Binding("slash", "filter", "Filter", tooltip="as mlci exp show --filter", id="exp.filter"),
        Binding("o", "next_sort", "Sort", tooltip="by the next column", id="exp.sort"),
        Binding("O", "reverse", "Reverse", tooltip="the order of the rows", id="exp.reverse"),
        Binding(
            "P",
            "promote",
            "Promote",
            tooltip="register and deploy, after a confirmation",
            id="exp.promote",
        ),
        Binding("s", "start_queue", "Start queue", tooltip="mlci exp start", id="exp.start"),
        Binding("c", "cancel_experiment", "Cancel", tooltip="the highlighted one", id="exp.cancel"),
        # The table takes Enter itself (`on_data_table_row_selected`): here for the help.
        Binding("enter", "open", "Open", show=False, tooltip="its stages and logs", id="exp.open"),
        _CLOSE,
    ]
    ACTING: ClassVar[frozenset[str]] = frozenset({"promote", "start_queue", "cancel_experiment"})
    """The actions that change something: none of them with ``readonly``."""
    DASHBOARD_KEYS = False
    """The main screen's keys are off here (`MlciApp.check_action`)."""
    HELP_TITLE = "Experiments"
    DEFAULT_CSS = """
    ExperimentsScreen { layout: vertical; }
    ExperimentsScreen .experiments--title { height: 1; padding: 0 1; background: $panel; }
    ExperimentsScreen DataTable { height: 1fr; }
    ExperimentsScreen .experiments--note {
        height: auto; padding: 0 1; color: $text-muted; text-wrap: nowrap; text-overflow: ellipsis;
    }
    """

    def __init__(
        self,
        reader: StoreReader,
        config: Config,
        clock: Callable[[], float],
        *,
        poll_interval: float,
        readonly: bool,
        key_bar: Widget,
    ) -> None:
        """``key_bar``: the dashboard's line of keys, built from the bindings (widgets
        are the app's to import). ``readonly``: nothing that acts is offered (the
        store cannot be written, or the dashboard is read-only)."""
        super().__init__()
        self.key_bar = key_bar
        self.reader = reader
        self.config = config
        self.clock = clock
        self.poll_interval = poll_interval
        self.readonly = readonly
        self.table_read: ExperimentTable | None = None
        """The table as last read."""
        self.shown: ExperimentTable | None = None
        """As filtered and sorted (not yet reversed)."""
        self.rows: list[ExperimentRow] = []
        """The rows in the order the table lists them."""
        self.loaded = False
        self.version: int | None = None
        self.sort = UNSORTED
        self.reverse = False
        self.filter_text = ""
        self.filter_error = ""
        self.marked: list[int] = []
        """Marked experiments' ids, in the order they were marked."""
        self._reading = False
        self._columns: list[Column] = []
        self._cells: dict[str, list[Text]] = {}
        self._ticks = 0
        self.title_line = Static(classes="experiments--title")
        self.note = Static(classes="experiments--note")

    @property
    def dashboard(self) -> Dashboard:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield self.title_line
        table: DataTable[Text] = DataTable(cursor_type="row", zebra_stripes=True)
        yield table
        yield self.note
        yield self.key_bar

    @property
    def data_table(self) -> DataTable[Text]:
        return self.query_one(DataTable)

    def on_mount(self) -> None:
        self.data_table.focus()
        self._show()
        self.set_interval(self.poll_interval, self._poll)
        self._poll()

    # Reading -------------------------------------------------------------------------

    def _poll(self) -> None:
        if not self._reading and self.reader.experiments_due(self.version):
            self._reading = True
            self._read()
            return
        # A running experiment's duration ticks: once a second, not at every poll.
        self._ticks += 1
        if self._ticks * self.poll_interval >= 1:
            self._ticks = 0
            self._tick()

    @work(thread=True, exclusive=True, group="experiments")
    def _read(self) -> None:
        try:
            version, table = self.reader.experiments(self.config)
        except Exception as error:  # a damaged store: say so, keep the dashboard up
            message = str(error)
            self._hand_over(lambda: self._failed(message))
            return
        self._hand_over(lambda: self._apply(version, table))

    def _hand_over(self, callback: Callable[[], None]) -> None:
        with contextlib.suppress(RuntimeError):  # the app closed meanwhile
            self.app.call_from_thread(callback)

    def _failed(self, message: str) -> None:
        self._reading = False
        self.dashboard.say(message, title="cannot read the experiments", severity="error")

    def _apply(self, version: int | None, table: ExperimentTable | None) -> None:
        self._reading = False
        self.version = version
        first = not self.loaded
        self.loaded = True
        if not first and _same(table, self.table_read):
            return  # something else in the store changed: nothing to draw again
        self.table_read = table
        self._show()

    def _tick(self) -> None:
        """The duration cells of the running rows, and nothing else: drawing every
        row again would cost a thousand rows' cells each second."""
        at = FIXED.index("duration") + 1
        now = self.clock()
        table = self.data_table
        for row in self.rows:
            if row.state.finished or row.started_at is None:
                continue
            cell = _duration(row, now)
            cells = self._cells.get(row.key)
            if cells is not None and cells[at] != cell:
                cells[at] = cell
                table.update_cell(row.key, "duration", cell)

    # Drawing -------------------------------------------------------------------------

    def _arranged(self) -> ExperimentTable | None:
        """The table read, filtered and sorted; a filter that does not parse is said
        under the table, and the rows the last one that did kept are shown."""
        table = self.table_read
        if table is None:
            return None
        if self.filter_text:
            try:
                table = filter_table(table, self.filter_text)
                self.filter_error = ""
            except MlciError as error:
                self.filter_error = str(error)
                table = self.shown if self.shown is not None else table
                return table
        if self.sort != UNSORTED:
            try:
                table = sort_table(table, self.sort)
            except MlciError as error:
                self.dashboard.say(str(error), severity="warning")
                self.sort = UNSORTED
        return table

    def _show(self) -> None:
        """The table drawn again from what was read: in place where only cells changed
        (the cursor stays), rebuilt where the columns or the rows' order did."""
        shown = self._arranged()
        self.shown = shown
        rows = list(shown.rows) if shown is not None else []
        best = _best_rows(shown)
        if self.reverse:
            rows.reverse()
        self.rows = rows
        known = {row.key for row in rows}
        self.marked = [m for m in self.marked if f"e{m}" in known]
        columns = self._columns_of(shown)
        now = self.clock()
        cells = {row.key: self._cells_of(row, columns, best, now) for row in rows}
        table = self.data_table
        keys = list(cells)
        same_shape = columns == self._columns and keys == list(self._cells)
        if same_shape:
            for key, row_cells in cells.items():
                for column, old, new in zip(columns, self._cells[key], row_cells, strict=True):
                    if old != new:  # a wider value (queued → running 2/4) widens its column
                        table.update_cell(key, column.key, new, update_width=True)
        else:
            at = self.cursor_key()
            table.clear(columns=columns != self._columns)
            if columns != self._columns:
                for column in columns:
                    table.add_column(column.label, key=column.key)
            for key, row_cells in cells.items():
                table.add_row(*row_cells, key=key)
            if at in cells:
                table.move_cursor(row=keys.index(at), animate=False)
        self._columns = columns
        self._cells = cells
        self.title_line.update(self._title())
        self.note.update(self._note())
        self.refresh_bindings()

    def _columns_of(self, table: ExperimentTable | None) -> list[Column]:
        params = table.params if table is not None else ()
        shown = table.metric_labels if table is not None else {}
        # The metrics before the params, as `dvc exp show` has them: what is compared
        # stays in view on a narrow screen.
        named = [
            *((key, key.upper(), "" if key == "progress" else key) for key in FIXED),
            *((f"metric:{key.text}", label, key.text) for key, label in shown.items()),
            *((f"param:{name}", name, name) for name in params),
        ]
        columns = [Column(" ", Text(" "), "")]
        for key, label, sort in named:
            text = plain(label)
            if sort and sort == self.sort:
                # Best first (the read order: oldest first) unless reversed.
                text.append(" ▲" if self.reverse else " ▼", style="bold")
            columns.append(Column(key, text, sort))
        return columns

    def _cells_of(
        self,
        row: ExperimentRow,
        columns: Sequence[Column],
        best: dict[MetricKey, set[int]],
        now: float,
    ) -> list[Text]:
        marked = row.number is not None and row.number in self.marked
        cells = [
            Text("*", style="bold") if marked else Text(" "),
            Text(row.id_text, justify="right"),
            plain(row.name),
            state_text(row.state),
        ]
        ended, stages = row.progress
        progress = f"{ended}/{stages}" if stages else "-"
        cells.append(Text(progress, justify="right", style="" if stages else "dim"))
        cells.append(_duration(row, now))
        metric_keys = (
            {f"metric:{key.text}": key for key in self.shown.metrics} if self.shown else {}
        )
        for column in columns[len(FIXED) + 1 :]:
            key = metric_keys.get(column.key)
            if key is None:
                value = row.params.get(column.sort)
                cells.append(Text("-") if value is None else plain(param_text(value)))
                continue
            number = row.metrics.get(key)
            cell = metric_cell(number)
            if id(row) in best.get(key, ()):
                # Before the value: the numbers stay aligned on the right.
                cell = Text.assemble((f"{BEST} ", "bold"), (cell.plain, "bold green"))
                cell.justify = "right"
            cells.append(cell)
        return cells

    def _title(self) -> Text:
        rows = self.rows
        states = [row.experiment.state for row in rows if row.experiment is not None]
        running = states.count(ExperimentState.RUNNING)
        queued = states.count(ExperimentState.QUEUED)
        text = Text("experiments", style="bold", end="")
        if self.readonly:
            # Over the main screen's header, which says so: said here too.
            text.append(" read-only", style="bold reverse")
        total = len(self.table_read.rows) if self.table_read is not None else 0
        count = f"{len(rows)} of {total}" if self.filter_text else str(total)
        text.append(f" · {count}")
        if running:
            text.append(f" · {running} running", style="bold yellow")
        if queued:
            text.append(f" · {queued} queued")
        if self.marked:
            text.append(f" · {len(self.marked)} marked")
        if self.sort != UNSORTED:
            text.append(f" · by {self._sort_label()}, {self._order()}")
        elif self.reverse:
            text.append(" · newest first")
        if self.filter_text:
            text.append(" · filter ")
            text.append_text(plain(self.filter_text))
        return text

    def _order(self) -> str:
        """How `sort_table` orders the column: a metric with a direction best first,
        any other ascending; the words flip with the order."""
        shown = self.shown
        directed = shown is not None and any(key.text == self.sort for key in shown.better)
        if directed:
            return "worst first" if self.reverse else "best first"
        return "descending" if self.reverse else "ascending"

    def _sort_label(self) -> str:
        column = next((c for c in self._columns if c.sort == self.sort), None)
        return column.label.plain.rstrip(" ▲▼") if column else self.sort

    def _note(self) -> Text:
        if self.filter_error:
            return Text.assemble(("filter: ", "bold red"), plain(self.filter_error))
        if self.table_read is not None and self.table_read.rows and not self.rows:
            return Text("no experiment matches the filter (Esc clears it)")
        if not self.rows:
            queue = "" if self.readonly else " (`--queue` queues it for s)"
            return Text(f"no experiments yet: `mlci exp run --set NAME=V1,V2` runs a sweep{queue}")
        cancel = "" if self.readonly else " · c: cancel"
        return Text(f"o O or a header: sort · Enter: its stages and logs{cancel} · Esc: close")

    # Keys ----------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in self.ACTING:
            return not self.readonly
        if action == "diff":
            return True if len(self.marked) == 2 else None
        if action == "plot":
            return True if len(self.marked) >= 2 else None
        return True

    def cursor_key(self) -> str | None:
        table = self.data_table
        if not 0 <= table.cursor_row < len(self.rows):
            return None
        return self.rows[table.cursor_row].key

    def cursor_row(self) -> ExperimentRow | None:
        table = self.data_table
        if not 0 <= table.cursor_row < len(self.rows):
            return None
        return self.rows[table.cursor_row]

    def action_mark(self) -> None:
        row = self.cursor_row()
        if row is None or row.experiment is None:
            return
        number = row.experiment.id
        if number in self.marked:
            self.marked.remove(number)
        else:
            self.marked.append(number)
        key = row.key
        mark = Text("*", style="bold") if number in self.marked else Text(" ")
        self.data_table.update_cell(key, " ", mark)
        self._cells[key][0] = mark
        self.title_line.update(self._title())
        self.refresh_bindings()

    def _marked_rows(self) -> list[ExperimentRow]:
        by_id = {row.experiment.id: row for row in self.rows if row.experiment is not None}
        return [by_id[number] for number in self.marked if number in by_id]

    def _runs_of(self, rows: list[ExperimentRow]) -> list[tuple[str, int]] | None:
        """Each row's label and run; None (said why) when one has not started."""
        waiting = [_label(row) for row in rows if row.run is None]
        if waiting:
            self.dashboard.say(
                f"{', '.join(waiting)}: no run, it never started", severity="warning"
            )
            return None
        return [(_label(row), row.run.id) for row in rows if row.run is not None]

    def action_diff(self) -> None:
        marked = sorted(self._marked_rows(), key=lambda row: row.number or 0)
        runs = self._runs_of(marked)
        if runs is None:
            return
        if len(runs) != 2:
            self.dashboard.say("mark two experiments (space) to diff them", severity="warning")
            return
        # By experiment, not by run (a queue runs them in any order); each side is
        # titled with its experiment (`store.compare.resolve`).
        (_, older), (_, newer) = runs
        self.dashboard.compare(str(older), str(newer))

    def action_plot(self) -> None:
        runs = self._runs_of(self._marked_rows())
        if runs is None:
            return
        if len(runs) < 2:
            self.dashboard.say("mark two or more experiments (space) to plot", severity="warning")
            return
        self._open_plot(runs)

    @work(thread=True, exclusive=True, group="experiments-plot")
    def _open_plot(self, runs: list[tuple[str, int]]) -> None:
        shared = self.reader.shared_metrics([run_id for _, run_id in runs])
        self._hand_over(lambda: self._plot(runs, shared))

    def _plot(self, runs: list[tuple[str, int]], shared: list[MetricKey]) -> None:
        if not shared:
            self.dashboard.say(
                "the marked experiments have no metric series in common", severity="warning"
            )
            return
        marked = set(self.marked)

        def running() -> bool:
            return any(
                row.experiment is not None
                and row.experiment.id in marked
                and row.experiment.state is ExperimentState.RUNNING
                for row in self.rows
            )

        reader = self.reader
        self.dashboard.open_plot(
            lambda plots: plots.ExperimentPlotScreen(reader, runs, shared, running)
        )

    def action_filter(self) -> None:
        open_filter(self.app, "experiments", self.filter_text, self.set_filter)

    def set_filter(self, text: str) -> None:
        """Keep the rows where ``text`` holds (`mlci exp show --filter`'s expressions)."""
        if text == self.filter_text:
            return
        self.filter_text = text.strip()
        self.filter_error = ""
        self._show()

    def action_next_sort(self) -> None:
        sorts = [c.sort for c in self._columns if c.sort]
        at = sorts.index(self.sort) if self.sort in sorts else 0
        self.sort_by(sorts[(at + 1) % len(sorts)])

    def action_reverse(self) -> None:
        self.reverse = not self.reverse
        self._show()

    def sort_by(self, key: str) -> None:
        """Sort by column ``key``, best first (``id``: as read, oldest first)."""
        self.sort, self.reverse = key, False
        self._show()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        # A click on a header sorts by it; on the sorted column again, reverses.
        event.stop()
        column = next((c for c in self._columns if c.key == event.column_key.value), None)
        if column is None or not column.sort:
            return
        if column.sort == self.sort:
            self.action_reverse()
        else:
            self.sort_by(column.sort)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_open(self) -> None:
        """Enter: the experiment's run on the main screen, as `p` shows a past run."""
        row = self.cursor_row()
        if row is None:
            return
        if row.run is None:
            self.dashboard.say(f"{_label(row)} has no run: it never started", severity="warning")
            return
        self.dashboard.open_run(row.run.id)
        self.dismiss()

    def action_promote(self) -> None:
        from mlci_tui.store.compare import Side, compare
        from mlci_tui.tui.screens.promote import promote_screen

        row = self.cursor_row()
        if row is None or row.experiment is None:
            self.dashboard.say("no experiment highlighted", severity="warning")
            return
        experiment = row.experiment
        if experiment.state is not ExperimentState.PASSED or row.run is None:
            self.dashboard.say(
                f"{experiment.label} {experiment.state.text}: only one that passed is promoted",
                severity="warning",
            )
            return
        live = self.dashboard.snapshot.live
        comparison = compare(Side(None, live), Side(row.run, None), self.config.metric_checks)
        number = experiment.id

        def answered(yes: bool | None) -> None:
            if yes and self.dashboard.spawn(
                ["exp", "promote", str(number), "--reason", "from the dashboard"]
            ):
                self.dashboard.say(f"promoting {experiment.label}; it goes on if you quit")

        screen = promote_screen(comparison, experiment, self.clock(), list(self.config.key_metrics))
        self.app.push_screen(screen, answered)

    def action_start_queue(self) -> None:
        queued = [
            r for r in self.rows if r.experiment and r.experiment.state is ExperimentState.QUEUED
        ]
        if self.table_read is not None and not queued and not self.filter_text:
            self.dashboard.say(
                "no experiment is queued: `mlci exp run --queue` queues some",
                severity="warning",
            )
            return
        if self.dashboard.spawn(["exp", "start", "--detach"]):
            self.dashboard.say("starting the queue; it goes on if you quit")

    def action_cancel_experiment(self) -> None:
        from mlci_tui.tui.screens.confirm import ConfirmScreen

        row = self.cursor_row()
        if row is None or row.experiment is None:
            self.dashboard.say("no experiment highlighted", severity="warning")
            return
        experiment = row.experiment
        if experiment.state.finished:
            self.dashboard.say(
                f"{experiment.label} has ended ({experiment.state.text})", severity="warning"
            )
            return
        number = experiment.id

        def answered(yes: bool | None) -> None:
            if yes and self.dashboard.spawn(["exp", "cancel", str(number)]):
                self.dashboard.say(f"cancelling {experiment.label}")

        what = (
            "Its running stages are stopped"
            if experiment.state is ExperimentState.RUNNING
            else "It leaves the queue"
        )
        self.app.push_screen(
            ConfirmScreen(
                f"Cancel experiment {visible_text(experiment.label)}?",
                plain(f"{what}; its logs and metrics so far stay in the store."),
                yes="cancel it",
                no="keep it",
            ),
            answered,
        )

    def action_close(self) -> None:
        if self.filter_text:
            self.set_filter("")
        else:
            self.dismiss()


def _duration(row: ExperimentRow, now: float) -> Text:
    duration = row.duration_s(now)
    return Text(format_duration(duration) if duration is not None else "-")


def _label(row: ExperimentRow) -> str:
    """``#3 lr-sweep``, made safe for a notice or a plot's legend."""
    return terminal_line(row.label, keep_color=False)


def _same(first: ExperimentTable | None, second: ExperimentTable | None) -> bool:
    """Whether two reads hold the same rows: when each was read aside."""
    if first is None or second is None:
        return first is second
    return first._replace(read_at=0.0) == second._replace(read_at=0.0)


def _best_rows(table: ExperimentTable | None) -> dict[MetricKey, set[int]]:
    """Per metric column, the row (by identity) that holds the best value: kept
    whichever order the rows are listed in."""
    if table is None:
        return {}
    return {key: {id(table.rows[index])} for key, index in table.best.items()}
