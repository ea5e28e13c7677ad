"""StagePane: one stage at a glance — state, time, CPU and memory, last output.

StageList shows the stages in DAG order, a pane each for those in view;
moving through it selects the stage whose full log the LogView shows. A
filter (``/``) keeps the stages whose name holds its text; Esc clears it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual import events
from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.reactive import reactive
from textual.scrollbar import ScrollBar, ScrollDown, ScrollTo, ScrollUp
from textual.widget import Widget

from mlci_tui.states import StageState
from mlci_tui.store.logs import LogRecord
from mlci_tui.store.records import StageRecord
from mlci_tui.tui.text import GLYPHS, STATE_STYLES, middle_cut, output_line, plain
from mlci_tui.units import format_bytes, format_duration

NOT_IN_RUN = "not in this run"
"""The state shown for a stage of the config that the run shown did not have."""
MIN_NAME = 6


class StagePane(Widget):
    """Two lines: ``✓ train  passed  2.6s  28 MB`` and the stage's last output line."""

    DEFAULT_CSS = """
    StagePane {
        height: 2;
        padding: 0 1 0 0;
    }
    StagePane > .stage-pane--output { color: $text-muted; }
    StagePane > .stage-pane--selected { background: $primary 30%; }
    """
    # The selection is painted by render(), not by a CSS class: toggling a class
    # restyles the whole list, and moving through stages must feel instant.
    COMPONENT_CLASSES: ClassVar[set[str]] = {"stage-pane--output", "stage-pane--selected"}

    selected: reactive[bool] = reactive(False)
    """Drawn by `render`; setting it repaints the pane (a reactive does by default)."""

    def __init__(self, name: str, name_width: int = 10) -> None:
        super().__init__(classes="stage-pane")
        self.stage_name = name
        self.name_width = name_width
        self.output_lines = 1
        """How many lines of output to show under the title; set by `StageList`."""
        self.record: StageRecord | None = None
        self.last_lines: Sequence[LogRecord] = ()
        self.now = 0.0
        self.needs: Sequence[str] = ()
        """What the config says this stage needs, with the outs it reads of a stage it
        does not name (``prep (its out data/clean.csv)``): shown until it has run."""
        self.in_run = True
        """False for a stage of the config that the run shown does not have."""
        self.clock_stopped = False
        """True when the run's runner is gone: a stage it left `running` has no clock,
        nor live CPU and memory figures (as the header's run)."""

    def update_stage(
        self,
        record: StageRecord | None,
        tail: Sequence[LogRecord],
        now: float,
        *,
        needs: Sequence[str] = (),
        in_run: bool = True,
        clock_stopped: bool = False,
    ) -> None:
        self.now = now
        running = record is not None and record.state is StageState.RUNNING
        if (not running or clock_stopped) and (record, tail, needs, in_run, clock_stopped) == (
            self.record,
            self.last_lines,
            self.needs,
            self.in_run,
            self.clock_stopped,
        ):
            return  # as drawn: only a running stage's figures change with the time
        self.record, self.last_lines = record, tail
        self.needs, self.in_run, self.clock_stopped = needs, in_run, clock_stopped
        self.refresh()

    def render(self) -> Text:
        record = self.record
        state = record.state if record else StageState.PENDING
        style = STATE_STYLES.get(state, "")
        word = state.text if self.in_run else NOT_IN_RUN
        width = max(1, self.size.width)
        title = Text(end="")
        # A marker as well as a colour: the selection must show with NO_COLOR too.
        title.append("\u203a" if self.selected else " ", style="bold")
        title.append(f"{GLYPHS[state]} ", style=style)
        # The state word always shows: a long name is cut in its middle instead. Five
        # columns besides: the marker, the glyph and a space, the space after the name,
        # and the one an ellipsis takes when the details after the word are cut.
        room = max(MIN_NAME, min(self.name_width, width - 5 - len(word)))
        name = middle_cut(self.stage_name, room)
        title.append_text(plain(name))
        title.pad_right(max(1, room + 1 - len(name)))
        title.append(word, style=style if self.in_run else "italic")
        if record is not None and state is StageState.CACHED:
            # Its time is a restore's: where its result came from says more (as an
            # arrow where the words do not fit).
            if record.cached_from_stage is not None:
                source = f" from run {record.cached_from_run}"
                if title.cell_len + len(source) > width:
                    source = f" \u2190 run {record.cached_from_run}"
                title.append(source, style="dim")
        elif record is not None:
            # A stage its gone runner left running: no end, so no clock to tick on.
            stopped = state is StageState.RUNNING and self.clock_stopped
            duration = None if stopped else record.duration_s(self.now)
            if duration is not None:
                title.append(f" {format_duration(duration)}")
            if state is StageState.RUNNING and record.cpu_percent is not None:
                if not stopped:  # the last figures a gone runner wrote are no one's now
                    title.append(f" {record.cpu_percent:.0f}% {format_bytes(record.rss_bytes)}")
            elif record.peak_rss_bytes:
                title.append(f" {format_bytes(record.peak_rss_bytes)}", style="dim")
            if record.attempt > 1:
                title.append(f" try {record.attempt}/{record.max_attempts}", style="yellow")
            if record.job_kind is not None:
                title.append_text(plain(f" on {record.job_kind}"))
        # No room for output on a short screen: the title line alone.
        lines = [title, *(self._output_lines() if self.output_lines else ())]
        lines += [Text("", end="") for _ in range(self.output_lines + 1 - len(lines))]
        for line in lines:
            line.truncate(width, overflow="ellipsis", pad=self.selected)
            if self.selected:
                # On top of the line's own colours: a reset in them must not punch holes.
                background = self.get_component_rich_style("stage-pane--selected").bgcolor
                line.stylize(Style(bgcolor=background))
        return Text("\n", end="").join(lines)

    def _output_lines(self) -> list[Text]:
        """Why a stage did not pass, or else its last lines of output."""
        record = self.record
        ended_badly = (StageState.FAILED, StageState.SKIPPED, StageState.CANCELLED)
        if record is not None and record.state in ended_badly:
            note = record.message or (record.failed_gate and f"gate {record.failed_gate}")
            if note:
                text = Text("   ", end="") + plain(note)
                text.stylize("red" if record.state is StageState.FAILED else "dim")
                return [text]
        style = self.get_component_rich_style("stage-pane--output")
        if record is None or record.started_at is None:
            # The outs it reads are paths from the config: shown as plain text, over
            # the lines the pane has (what does not fit ends in an ellipsis).
            waits = plain(f"needs {', '.join(self.needs)}" if self.needs else "needs nothing")
            waits.stylize(style)
            room = max(1, self.size.width - 3)
            wrapped = list(waits.wrap(self.app.console, room, no_wrap=False))
            shown = wrapped[: self.output_lines]
            rest = wrapped[len(shown) - 1 :]
            for line in rest:
                line.rstrip()
            shown[-1] = Text(" ", end="").join(rest)
            return [Text("   ", end="") + line for line in shown]
        shown = []
        for record_line in self.last_lines[-self.output_lines :]:
            line = output_line(record_line.content)
            line.stylize_before(style)
            shown.append(Text("   ", end="") + line)
        return shown


class StageList(Widget, can_focus=True, inherit_bindings=False):
    """The stages, one pane each; the keys select which stage's log is shown.

    Only the panes that fit are widgets: a pool as tall as the list, each showing
    the stage of its row from `top` down (``fill`` puts that stage's figures in
    it). Moving through 500 stages then lays out and paints a screenful, not 500
    panes, and a refresh of the figures touches the panes in view alone.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "move(-1)", "Previous stage", show=False, id="stages.up"),
        Binding("down,j", "move(1)", "Next stage", show=False, id="stages.down"),
        Binding("pageup", "page(-1)", "A page of stages up", show=False, id="stages.page-up"),
        Binding("pagedown", "page(1)", "A page of stages down", show=False, id="stages.page-down"),
        Binding("home", "jump(0)", "First stage", show=False, id="stages.first"),
        Binding("end", "jump(-1)", "Last stage", show=False, id="stages.last"),
        Binding("escape", "clear_filter", "Clear the filter", show=False, id="stages.unfilter"),
    ]
    DEFAULT_CSS = """
    StageList { height: 1fr; overflow: hidden hidden; }
    StageList > ScrollBar { dock: right; width: 1; display: none; }
    StageList.-overflow > ScrollBar { display: block; }
    """

    class Selected(Message):
        """Another stage was selected, by the user or by following the run."""

        def __init__(self, name: str, *, by_user: bool) -> None:
            super().__init__()
            self.name = name
            self.by_user = by_user

    class Filtered(Message):
        """The filter changed: its text, "" when none."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(
        self, *, fill: Callable[[StagePane], None] | None = None, id: str | None = None
    ) -> None:
        super().__init__(id=id)
        self.fill = fill
        """Puts the figures of its stage in a pane that shows another stage now."""
        self.names: list[str] = []
        """The stages shown: those of the run that the filter keeps."""
        self.all_names: list[str] = []
        self.filter_text = ""
        self.selected = 0
        self.top = 0
        """The row of the first pane: the stages above it are scrolled out of view."""
        self._pool: list[StagePane] = []
        self._name_width = 0
        self._lines = 0
        """Output lines under each pane's title."""
        self._bar = ScrollBar(vertical=True)
        self._hidden_selection: str | None = None
        """The stage selected when a filter hid every stage: selected again when it shows."""

    def compose(self) -> ComposeResult:
        yield self._bar

    def set_stages(self, names: list[str]) -> None:
        """Show panes for those of ``names`` that the filter keeps."""
        self.all_names = list(names)
        self._show_panes([n for n in names if self.filter_text.lower() in n.lower()])

    def set_filter(self, text: str) -> None:
        """Keep the stages whose name holds ``text`` (any case); "" keeps all. When the
        selected stage is filtered out, the first one kept is selected."""
        if text == self.filter_text:
            return
        before = self.selected_name
        self.filter_text = text
        self.set_stages(self.all_names)
        self.post_message(self.Filtered(text))
        if self.selected_name is not None and self.selected_name != before:
            self.post_message(self.Selected(self.selected_name, by_user=True))

    def action_clear_filter(self) -> None:
        if not self.filter_text:
            raise SkipAction()
        self.set_filter("")

    def _show_panes(self, names: list[str]) -> None:
        if names == self.names:
            return
        previous = self.names[self.selected] if self.names else self._hidden_selection
        self._hidden_selection = None if names else previous
        self.names = list(names)
        # Names line up; a very long one is cut (in `StagePane.render`), not the rest.
        self._name_width = min(60, max((len(name) for name in names), default=0))
        self.selected = names.index(previous) if previous in names else 0
        self._fit()

    def panes(self) -> list[StagePane]:
        """The panes in view, top to bottom, each showing its stage."""
        return self._pool[: max(0, min(len(self._pool), len(self.names) - self.top))]

    def on_resize(self) -> None:
        self._fit()

    def _fit(self) -> None:
        """As many panes as fit, each with as many output lines (up to 3) as the
        height allows: none when the stages would not all fit with one."""
        height, count = self.size.height, len(self.names)
        lines = max(0, min(3, height // count - 1)) if count else 0
        rows = min(count, height // (lines + 1))
        if rows > len(self._pool):
            added = [StagePane("", self._name_width) for _ in range(rows - len(self._pool))]
            self._pool += added
            self.mount_all(added, before=self._bar)
        elif rows < len(self._pool):
            gone, self._pool = self._pool[rows:], self._pool[:rows]
            self.remove_children(gone)
        self._lines = lines
        for pane in self._pool:
            pane.name_width = self._name_width
            if pane.output_lines != lines:
                pane.output_lines = lines
                pane.styles.height = lines + 1
        self.set_class(count > rows, "-overflow")
        self._bar.window_virtual_size = count
        self._bar.window_size = rows
        self._reveal()

    @property
    def selected_name(self) -> str | None:
        return self.names[self.selected] if self.names else None

    def select(self, name: str, *, by_user: bool = False) -> None:
        if name in self.names:
            self.selected = self.names.index(name)
            self._reveal()
            self.post_message(self.Selected(name, by_user=by_user))

    def action_move(self, step: int) -> None:
        if not self.names:
            return
        self.select(self.names[(self.selected + step) % len(self.names)], by_user=True)

    def action_page(self, pages: int) -> None:
        """As many stages on as fit in the list, stopping at either end."""
        if not self.names:
            return
        step = max(1, len(self._pool)) * pages
        self.select(
            self.names[max(0, min(len(self.names) - 1, self.selected + step))], by_user=True
        )

    def action_jump(self, index: int) -> None:
        if self.names:
            self.select(self.names[index], by_user=True)

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        event.stop()
        self._scroll(1)

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        event.stop()
        self._scroll(-1)

    def _on_scroll_to(self, message: ScrollTo) -> None:
        """The scrollbar's thumb dragged: the view follows it."""
        message.stop()
        if message.y is not None:
            self._show_from(round(message.y))

    def _on_scroll_up(self, message: ScrollUp) -> None:
        """A click on the scrollbar above its thumb: a page up."""
        message.stop()
        self._scroll(-len(self._pool))

    def _on_scroll_down(self, message: ScrollDown) -> None:
        message.stop()
        self._scroll(len(self._pool))

    def _scroll(self, rows: int) -> None:
        """The view ``rows`` down (up if negative), the selection left where it is."""
        self._show_from(self.top + rows)

    def _reveal(self) -> None:
        """The view moved as little as brings the selected stage into it."""
        rows = len(self._pool)
        top = min(self.top, self.selected)
        self._show_from(max(top, self.selected - rows + 1))

    def _show_from(self, top: int) -> None:
        """Each pane showing the stage of its row, the first one ``top``'s."""
        rows = len(self._pool)
        self.top = max(0, min(top, len(self.names) - rows))
        self._bar.position = self.top
        for row, pane in enumerate(self._pool, start=self.top):
            name = self.names[row]
            if pane.stage_name != name:
                pane.stage_name = name
                if self.fill is not None:
                    self.fill(pane)
                pane.refresh()
            pane.selected = row == self.selected
