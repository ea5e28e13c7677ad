"""MetricPlot: lines of metric series on axes, drawn by textual-plot.

Each line is cut down to about two points per column (the lowest and highest
of the points that fall in it, in order), so a series of a million points
costs what one of a few hundred does, and its spikes still show. With colour,
lines are told apart by colour; without (``NO_COLOR``), by their marker.

Imported only when a plot is opened: textual-plot brings numpy, which the
dashboard's start does not need.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

from textual_plot import HiResMode, PlotWidget

COLORS = ("#4fc3f7", "#ffb74d", "#81c784", "#e57373", "#ba68c8", "#fff176", "#90a4ae")
MARKERS = ("●", "+", "x", "◆", "*", "o", "#", "%", "@")


class PlotLine(NamedTuple):
    label: str
    xs: Sequence[float]
    ys: Sequence[float]
    place: int
    """The line's place among all lines (hidden ones too): its colour and marker."""


def downsample(
    xs: Sequence[float], ys: Sequence[float], columns: int
) -> tuple[list[float], list[float]]:
    """At most about ``2 * columns`` points: per column the lowest and highest, in order."""
    count = len(xs)
    if count <= 2 * columns or columns <= 0:
        return list(xs), list(ys)
    out_x: list[float] = []
    out_y: list[float] = []
    size = count / columns
    for column in range(columns):
        start, end = int(column * size), min(count, int((column + 1) * size))
        if start >= end:
            continue
        chunk = ys[start:end]
        low = min(range(len(chunk)), key=chunk.__getitem__)
        high = max(range(len(chunk)), key=chunk.__getitem__)
        for i in sorted({low, high}):
            out_x.append(xs[start + i])
            out_y.append(chunk[i])
    return out_x, out_y


class MetricPlot(PlotWidget):
    """A plot of metric lines; `show_lines` replaces what it shows."""

    DEFAULT_CSS = """
    MetricPlot { height: 1fr; }
    """

    def __init__(self, *, color: bool, x_label: str, id: str | None = None) -> None:
        super().__init__(id=id, allow_pan_and_zoom=False)
        self.color = color
        self.x_label = x_label
        self.lines: list[PlotLine] = []

    def on_mount(self) -> None:
        super().on_mount()
        self.set_xlabel(self.x_label)
        # The screen's line above the plot is the legend: it also gives each line's
        # key and last value, and covers no points.
        self.show_legend(is_visible=False)

    def show_lines(self, lines: Sequence[PlotLine]) -> None:
        self.lines = list(lines)
        if self.size.width:
            self._draw()

    def on_resize(self) -> None:
        # Cut down to the width it has: drawn again whenever that changes.
        self._draw()

    def _draw(self) -> None:
        lines = self.lines
        self.clear()
        columns = max(1, self.size.width - self.margin_left)
        drawn = [(line, *downsample(line.xs, line.ys, columns)) for line in lines if line.xs]
        self._set_limits([x for _, xs, _ in drawn for x in xs], [y for *_, ys in drawn for y in ys])
        for line, xs, ys in drawn:
            if self.color:
                self.plot(
                    xs,
                    ys,
                    line_style=COLORS[line.place % len(COLORS)],
                    hires_mode=HiResMode.BRAILLE,
                )
                if len(xs) == 1:
                    self.scatter(xs, ys, marker="●", marker_style=COLORS[line.place % len(COLORS)])
            else:
                self.scatter(xs, ys, marker=MARKERS[line.place % len(MARKERS)])
        # Drawn onto the canvases now: textual-plot draws them while painting its own
        # frame, which paints the canvases only in the frame after, 30-40 ms later.
        self.render()

    def _set_limits(self, xs: list[float], ys: list[float]) -> None:
        """Room around the points: a line along the edge would be drawn under the axis,
        and a single point (or a flat line) needs a range to be drawn at all."""
        if not xs:
            return
        x_low, x_high = min(xs), max(xs)
        if x_low == x_high:
            x_low, x_high = x_low - 1, x_high + 1
        self.set_xlimits(x_low, x_high)
        # Steps and versions are whole numbers: over a short span, a tick at each.
        short = x_high - x_low <= 16
        self.set_xticks(list(range(math.ceil(x_low), math.floor(x_high) + 1)) if short else None)
        y_low, y_high = min(ys), max(ys)
        pad = (y_high - y_low) * 0.05 or abs(y_high) * 0.05 or 1.0
        self.set_ylimits(y_low - pad, y_high + pad)
