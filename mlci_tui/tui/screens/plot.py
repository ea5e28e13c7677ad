"""PlotScreen: metric lines over the dashboard — a stage's series, live while it
runs (`SeriesPlotScreen`), or a key metric across versions (`VersionPlotScreen`).

Number keys show and hide lines. A running stage's new points are read at
most four times a second, and the plot is drawn again only when some came.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from mlci_tui.metric_keys import MONITOR, MetricKey, labels
from mlci_tui.store.records import VersionRecord
from mlci_tui.store.series import Series
from mlci_tui.textsafe import terminal_line
from mlci_tui.tui.keys import hints
from mlci_tui.tui.plotting import COLORS, MARKERS, MetricPlot, PlotLine
from mlci_tui.tui.text import plain
from mlci_tui.units import metric_text

if TYPE_CHECKING:
    from collections.abc import Callable

    from mlci_tui.store.reader import StoreReader

REDRAW_S = 0.25
"""A running stage's plot is read and drawn again at most this often."""
LINE_KEYS = 9

_CLOSE = Binding("escape,g", "dismiss(None)", "Close", id="plot.close")
_TOGGLE = [
    Binding(
        str(n),
        f"toggle_line({n - 1})",
        "Show or hide a line" if n == 1 else "",
        show=n == 1,
        key_display="1…9",
        id=f"plot.line-{n}",
    )
    for n in range(1, LINE_KEYS + 1)
]


class PlotScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [_CLOSE, *_TOGGLE]
    DEFAULT_CSS = """
    PlotScreen { align: center middle; }
    PlotScreen > Vertical {
        width: 100%; height: 100%;
        border: thick $primary; background: $surface;
    }
    PlotScreen .plot--title { text-style: bold; padding: 0 1; }
    PlotScreen .plot--lines { padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    PlotScreen .plot--empty { height: 1fr; content-align: center middle; color: $text-muted; }
    PlotScreen .plot--keys { color: $text-muted; padding: 0 1; }
    """

    def __init__(self, title: str, x_label: str) -> None:
        super().__init__()
        self.title_text = title
        self.color = not os.environ.get("NO_COLOR")
        self.plot = MetricPlot(color=self.color, x_label=x_label, id="plot")
        self.names: list[str] = []
        self.hidden: set[int] = set()
        self.legend = Static(classes="plot--lines")
        self.empty = Static(classes="plot--empty")

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(_title_text(self.title_text), classes="plot--title")
            yield self.legend
            yield self.plot
            yield self.empty
            pairs = [(_TOGGLE[0], "show or hide that line"), (_CLOSE, "close")]
            yield Static(Text(hints(self.app, pairs)), classes="plot--keys")

    def lines(self) -> list[PlotLine]:
        """Every line, hidden ones too."""
        raise NotImplementedError

    def empty_text(self) -> str:
        raise NotImplementedError

    def redraw(self) -> None:
        lines = self.lines()
        self.names = [line.label for line in lines]
        shown = [line for line in lines if line.place not in self.hidden]
        has_points = any(line.xs for line in lines)
        self.plot.display = has_points
        self.empty.display = not has_points
        self.empty.update(Text(self.empty_text()))
        self.legend.update(self._legend(lines))
        self.plot.show_lines(shown)

    def _legend(self, lines: Sequence[PlotLine]) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        for line in lines[:LINE_KEYS]:
            hidden = line.place in self.hidden
            mark = "●" if self.color else MARKERS[line.place % len(MARKERS)]
            style = "dim" if hidden else (COLORS[line.place % len(COLORS)] if self.color else "")
            last = metric_text(line.ys[-1]) if line.ys else "-"
            text.append(f"{line.place + 1} ", style="bold")
            text.append(mark, style=style)
            text.append(f" {line.label} {last}" + (" (hidden)" if hidden else ""), style=style)
            text.append("   ")
        return text

    def action_toggle_line(self, index: int) -> None:
        if index >= len(self.names):
            return
        self.hidden ^= {index}
        self.redraw()


class SeriesPlotScreen(PlotScreen):
    """The series of one stage of a run; read again while the stage runs."""

    def __init__(
        self, reader: StoreReader, run_id: int, stage: str, running: Callable[[], bool]
    ) -> None:
        """``running``: whether the stage may still report points (it is read on then)."""
        super().__init__(f"metrics · {stage} · run {run_id}", "step")
        self.reader = reader
        self.run_id = run_id
        self.stage = stage
        self.stage_running = running
        self.series: dict[str, tuple[list[float], list[float]]] = {}
        self.after: dict[str, int] = {}
        self._reading = False

    def on_mount(self) -> None:
        self.redraw()
        self._read()
        self.set_interval(REDRAW_S, self._poll)

    def _poll(self) -> None:
        if self.stage_running() and not self._reading:
            self._read()

    @work(thread=True, exclusive=True, group="plot")
    def _read(self) -> None:
        self._reading = True
        try:
            found = self.reader.series(self.run_id, self.stage, self.after)
        except Exception as error:  # a damaged store: say so, keep the dashboard up
            message = terminal_line(str(error), keep_color=False)
            self._hand_over(lambda: self.notify(message, severity="error", markup=False))
            found = []
        self._hand_over(lambda: self._merge(found))

    def _hand_over(self, callback: Callable[[], None]) -> None:
        # The dashboard may have closed while the store was read.
        with contextlib.suppress(RuntimeError):
            self.app.call_from_thread(callback)

    def _merge(self, found: list[Series]) -> None:
        self._reading = False
        if not self.is_attached:
            return
        new = False
        for series in found:
            xs, ys = self.series.setdefault(series.name, ([], []))
            if series.points:
                new = True
                xs.extend(float(p.step) for p in series.points)
                ys.extend(p.value for p in series.points)
            self.after[series.name] = series.last_row
        if new or not self.names:
            self.redraw()

    def lines(self) -> list[PlotLine]:
        return [
            PlotLine(name, xs, ys, index)
            for index, (name, (xs, ys)) in enumerate(self.series.items())
        ]

    def empty_text(self) -> str:
        waiting = " yet" if self.stage_running() else ""
        return (
            f"{self.stage} reported no metrics{waiting}: a stage prints"
            " `::metric step=N name=value` lines or writes $MLCI_METRICS_FILE"
        )


class VersionPlotScreen(PlotScreen):
    """One metric across versions: as evaluated when built, and as the monitor saw
    it live. ``m`` shows the next key metric."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("m", "next_metric", "Next metric", id="plot.next-metric")
    ]

    def __init__(self, versions: Sequence[VersionRecord], metrics: Sequence[MetricKey]) -> None:
        self.versions = sorted(versions, key=lambda v: v.number)
        known = {key for v in self.versions for key in v.all_metrics}
        self.metric_keys = [m for m in metrics if m in known] or sorted(known)[:1]
        self.metric = 0
        super().__init__(self._title(), "version")

    def _title(self) -> str:
        if not self.metric_keys:
            return "- across versions · press m for the next metric"
        key = self.metric_keys[self.metric]
        return f"{labels(self.metric_keys)[key]} across versions · press m for the next metric"

    def on_mount(self) -> None:
        self.redraw()

    def action_next_metric(self) -> None:
        if self.metric_keys:
            self.metric = (self.metric + 1) % len(self.metric_keys)
            self.query_one(".plot--title", Static).update(_title_text(self._title()))
            self.redraw()

    def lines(self) -> list[PlotLine]:
        """The metric as each version was evaluated, and what the monitor measured of the
        same name live: two metrics, named ``stage.name`` where both are shown."""
        if not self.metric_keys:
            return []
        key = self.metric_keys[self.metric]
        live_key = MetricKey(MONITOR, key.name)
        keys = [key] if key == live_key else [key, live_key]
        points = {
            one: [
                (float(v.number), v.all_metrics[one]) for v in self.versions if one in v.all_metrics
            ]
            for one in keys
        }
        # Named stage.name only where both lines hold points: two stages report the name.
        shown = labels(one for one in keys if points[one] or one == key)
        lines = []
        for one in keys:
            kind = "live" if one == live_key else "evaluated"
            name = shown.get(one, one.name)
            xs, ys = [x for x, _ in points[one]], [y for _, y in points[one]]
            lines.append(PlotLine(f"{name} {kind}", xs, ys, 1 if kind == "live" else 0))
        return lines

    def empty_text(self) -> str:
        return "no version has metrics yet: a full run that passes registers one"


class ExperimentPlotScreen(PlotScreen):
    """One metric's series of several experiments overlaid, one line per experiment
    (the loss curves of a sweep side by side); ``m`` shows the next metric they all
    report. Read again while one of them runs."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("m", "next_metric", "Next metric", id="plot.experiments.next-metric")
    ]

    def __init__(
        self,
        reader: StoreReader,
        runs: Sequence[tuple[str, int]],
        metrics: Sequence[MetricKey],
        running: Callable[[], bool],
    ) -> None:
        """``runs``: each experiment's label and run; ``metrics``: the series they all
        have; ``running``: whether one of them may still report points."""
        self.reader = reader
        self.runs = list(runs)
        self.metric_keys = list(metrics)
        self.metric = 0
        self.any_running = running
        self.points: dict[int, tuple[list[float], list[float]]] = {}
        self.after: dict[int, int] = {}
        self._reading = False
        super().__init__(self._title(), "step")

    def _title(self) -> str:
        if not self.metric_keys:
            return "- of the marked experiments"
        key = self.metric_keys[self.metric]
        return f"{labels(self.metric_keys)[key]} of {len(self.runs)} experiments · m: next metric"

    def on_mount(self) -> None:
        self.redraw()
        self._read(self.metric)
        self.set_interval(REDRAW_S, self._poll)

    def _poll(self) -> None:
        if self.any_running() and not self._reading:
            self._read(self.metric)

    def action_next_metric(self) -> None:
        if len(self.metric_keys) > 1:
            self.metric = (self.metric + 1) % len(self.metric_keys)
            self.points, self.after = {}, {}
            self.query_one(".plot--title", Static).update(_title_text(self._title()))
            self.redraw()
            self._read(self.metric)

    @work(thread=True, exclusive=True, group="plot")
    def _read(self, metric: int) -> None:
        self._reading = True
        found = []
        if self.metric_keys:
            key = self.metric_keys[metric]
            try:
                found = [
                    self.reader.metric_series(run_id, key, self.after.get(run_id, 0))
                    for _, run_id in self.runs
                ]
            except Exception as error:  # a damaged store: say so, keep the dashboard up
                message = terminal_line(str(error), keep_color=False)
                self._hand_over(lambda: self.notify(message, severity="error", markup=False))
        self._hand_over(lambda: self._merge(metric, found))

    def _hand_over(self, callback: Callable[[], None]) -> None:
        # The dashboard may have closed while the store was read.
        with contextlib.suppress(RuntimeError):
            self.app.call_from_thread(callback)

    def _merge(self, metric: int, found: list[Series]) -> None:
        self._reading = False
        if not self.is_attached or metric != self.metric:
            return  # another metric was picked meanwhile: its own read follows
        new = False
        for series in found:
            xs, ys = self.points.setdefault(series.run_id, ([], []))
            if series.points:
                new = True
                xs.extend(float(p.step) for p in series.points)
                ys.extend(p.value for p in series.points)
            self.after[series.run_id] = series.last_row
        if new or not self.names:
            self.redraw()

    def lines(self) -> list[PlotLine]:
        return [
            PlotLine(label, *self.points.get(run_id, ([], [])), index)
            for index, (label, run_id) in enumerate(self.runs)
        ]

    def empty_text(self) -> str:
        waiting = " yet" if self.any_running() else ""
        return f"the marked experiments reported no points of this metric{waiting}"


def _title_text(title: str) -> Text:
    """The title on one line, cut with an ellipsis when the screen is narrow."""
    text = plain(title)
    text.no_wrap, text.overflow = True, "ellipsis"
    return text
