"""MetricPlot: lines of metric series on axes, drawn by textual-plot.

Each line is cut down to about two points per column (the lowest and highest
of the points that fall in it, in order), so a series of a million points
costs what one of a few hundred does, and its spikes still show. With colour,
lines are told apart by colour; without (``NO_COLOR``), by their marker.

Any finite float64 can be drawn, ``-1.7e308`` and ``1.7e308`` in one line:
textual-plot maps a point with ``(y - low) * rows / (high - low)``, which
overflows past about 1e305, so values that large are drawn scaled by a power
of two (exact), and the axis (`MetricAxis`) labels them unscaled. Ticks are
worked out in decimal, where no span overflows and no step underflows.

Imported only when a plot is opened: textual-plot brings numpy, which the
dashboard's start does not need.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import NamedTuple

from textual_plot import HiResMode, PlotWidget
from textual_plot.axis_formatter import AxisFormatter

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


DRAWN_MAX = 2.0**1000
"""Values drawn are at most this large: spans times a screen's rows stay finite."""
SHRINK = 2.0**-24
"""What values past `DRAWN_MAX` (up to about 2**1024) are multiplied by to be drawn."""
LABEL_WIDTH = 9
"""The width textual-plot's left margin leaves a label; a wider one widens it."""


def nice_ticks(low: float, high: float, most: int = 8) -> list[float]:
    """Ticks from ``low`` to ``high`` at multiples of 1, 2 or 5 × 10ⁿ, about five of
    them (at most ``most``): as textual-plot chooses them, for any finite float64s."""
    if not low < high:
        return [low]
    start, end = Decimal(low), Decimal(high)
    span = end - start
    power = (span / 5).adjusted()
    steps = [1, 2, 5, 10]
    index = bisect_left(steps, (span / 5).scaleb(-power))
    step = Decimal(steps[max(index - 1, 0)]).scaleb(power)
    if span // step > most:
        step = Decimal(steps[index]).scaleb(power)
    first = int((start / step).to_integral_value(ROUND_CEILING))
    last = int((end / step).to_integral_value(ROUND_FLOOR))
    # Near the float64 grain (1 + 2**-52, subnormals) two ticks may be one float.
    return list(dict.fromkeys(float(k * step) + 0.0 for k in range(first, last + 1)))


def tick_labels(ticks: Sequence[float]) -> list[str]:
    """Labels as short as tell ticks apart: ``0.2``, ``15``, ``1.2e+308``, ``-3e-310``."""
    if not ticks:
        return []
    step = abs(Decimal(ticks[1]) - Decimal(ticks[0])) if len(ticks) > 1 else Decimal(1)
    exponent = step.adjusted() if step else 0
    decimals = max(0, -exponent)
    if max(abs(t) for t in ticks) < 1e6 and decimals <= 6:
        return [f"{Decimal(t):.{decimals}f}" for t in ticks]
    labels = []
    for tick in ticks:
        digits = Decimal(tick).adjusted() - exponent + 1 if tick else 1
        labels.append(f"{tick:.{min(max(digits, 1), 17)}g}")
    return labels


class MetricAxis(AxisFormatter):
    """Ticks and labels of values drawn multiplied by `scale` (a power of two)."""

    def __init__(self) -> None:
        self.scale = 1.0

    def get_ticks(self, min_: float, max_: float, max_ticks: int = 8) -> list[float]:
        ticks = nice_ticks(min_ / self.scale, max_ / self.scale, max_ticks)
        return [tick * self.scale for tick in ticks]

    def get_labels_for_ticks(self, ticks: Sequence[float]) -> list[str]:
        return tick_labels([tick / self.scale for tick in ticks])


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
        self.x_axis = MetricAxis()
        self.y_axis = MetricAxis()
        self.set_x_formatter(self.x_axis)
        self.set_y_formatter(self.y_axis)

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
        biggest = max((abs(y) for *_, ys in drawn for y in ys), default=0.0)
        scale = SHRINK if biggest > DRAWN_MAX else 1.0
        drawn = [(line, xs, [y * scale for y in ys]) for line, xs, ys in drawn]
        self._set_limits(
            [x for _, xs, _ in drawn for x in xs], [y for *_, ys in drawn for y in ys], scale
        )
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

    def _set_limits(self, xs: list[float], ys: list[float], scale: float) -> None:
        """Room around the points: a line along the edge would be drawn under the axis,
        and a single point (or a flat line) needs a range to be drawn at all."""
        if not xs:
            return
        x_low, x_high = min(xs), max(xs)
        if x_low == x_high:
            # A step past 2**53 has no neighbour 1 away: room that changes the float.
            room = max(1.0, abs(x_low) * 2.0**-40)
            x_low, x_high = x_low - room, x_high + room
        self.set_xlimits(x_low, x_high)
        # Steps and versions are whole numbers: over a short span, a tick at each.
        short = x_high - x_low <= 16
        self.set_xticks(list(range(math.ceil(x_low), math.floor(x_high) + 1)) if short else None)
        y_low, y_high = min(ys), max(ys)
        pad = (y_high - y_low) * 0.05 or abs(y_high) * 0.05 or 1.0
        y_low, y_high = y_low - pad, y_high + pad
        self.set_ylimits(y_low, y_high)
        self.y_axis.scale = scale
        # The labels decide the margin: a long one is never cut to look like another.
        labels = self.y_axis.get_labels_for_ticks(self.y_axis.get_ticks(y_low, y_high))
        self.margin_left = max(LABEL_WIDTH, *map(len, labels)) + 1
