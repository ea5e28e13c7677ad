"""StagePane: one stage at a glance — state, time, CPU and memory, last output.

StageList holds one pane per stage, in DAG order; moving through it selects
the stage whose full log the LogView shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget

from mlci_tui.states import StageState
from mlci_tui.store.logs import LogRecord
from mlci_tui.store.records import StageRecord
from mlci_tui.tui.text import GLYPHS, STATE_STYLES, output_line, plain
from mlci_tui.units import format_bytes, format_duration


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

    def update_stage(
        self, record: StageRecord | None, tail: Sequence[LogRecord], now: float
    ) -> None:
        self.record, self.last_lines, self.now = record, tail, now
        self.refresh()

    def render(self) -> Text:
        record = self.record
        state = record.state if record else StageState.PENDING
        style = STATE_STYLES.get(state, "")
        title = Text(end="")
        # A marker as well as a colour: the selection must show with NO_COLOR too.
        title.append("\u203a" if self.selected else " ", style="bold")
        title.append(f"{GLYPHS[state]} ", style=style)
        title.append_text(plain(self.stage_name))
        title.pad_right(max(1, self.name_width + 1 - len(self.stage_name)))
        title.append(state.value, style=style)
        if record is not None:
            duration = record.duration_s(self.now)
            if duration is not None:
                title.append(f" {format_duration(duration)}")
            if state is StageState.RUNNING and record.cpu_percent is not None:
                title.append(f" {record.cpu_percent:.0f}% {format_bytes(record.rss_bytes)}")
            elif record.peak_rss_bytes:
                title.append(f" {format_bytes(record.peak_rss_bytes)}", style="dim")
            if record.attempt > 1:
                title.append(f" try {record.attempt}/{record.max_attempts}", style="yellow")
            if record.job_kind is not None:
                title.append_text(plain(f" on {record.job_kind}"))
        width = max(1, self.size.width)
        lines = [title, *self._output_lines()]
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
        shown = []
        for record_line in self.last_lines[-self.output_lines :]:
            line = output_line(record_line.content)
            line.stylize_before(style)
            shown.append(Text("   ", end="") + line)
        return shown


class StageList(VerticalScroll, can_focus=True):
    """One pane per stage; up and down select which stage's log is shown."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "move(-1)", "Previous stage", show=False, id="stages.up"),
        Binding("down,j", "move(1)", "Next stage", show=False, id="stages.down"),
    ]
    DEFAULT_CSS = """
    StageList { height: 1fr; scrollbar-size-vertical: 1; }
    """

    class Selected(Message):
        """Another stage was selected, by the user or by following the run."""

        def __init__(self, name: str, *, by_user: bool) -> None:
            super().__init__()
            self.name = name
            self.by_user = by_user

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.names: list[str] = []
        self.selected = 0

    def set_stages(self, names: list[str]) -> None:
        """Show panes for ``names`` (nothing to do if they are the ones shown)."""
        if names == self.names:
            return
        previous = self.names[self.selected] if self.names else None
        self.names = list(names)
        self.remove_children()
        width = min(16, max((len(name) for name in names), default=0))
        self.mount_all([StagePane(name, width) for name in names])
        self.selected = names.index(previous) if previous in names else 0
        self.call_after_refresh(self._fit)
        self.call_after_refresh(self._mark)

    def panes(self) -> list[StagePane]:
        return list(self.query(StagePane))

    def on_resize(self) -> None:
        self._fit()

    def _fit(self) -> None:
        """Give each pane as many output lines (1 to 3) as the height allows."""
        panes = self.panes()
        if not panes:
            return
        lines = max(1, min(3, self.size.height // len(panes) - 1))
        for pane in panes:
            if pane.output_lines != lines:
                pane.output_lines = lines
                pane.styles.height = lines + 1

    @property
    def selected_name(self) -> str | None:
        return self.names[self.selected] if self.names else None

    def select(self, name: str, *, by_user: bool = False) -> None:
        if name in self.names:
            self.selected = self.names.index(name)
            self._mark()
            self.post_message(self.Selected(name, by_user=by_user))

    def action_move(self, step: int) -> None:
        if not self.names:
            return
        self.select(self.names[(self.selected + step) % len(self.names)], by_user=True)

    def _mark(self) -> None:
        for index, pane in enumerate(self.panes()):
            pane.selected = index == self.selected
            if pane.selected:
                self.scroll_to_widget(pane, animate=False)
