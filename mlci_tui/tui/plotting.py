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
from decimal import ROUND_CEILING, ROUND_FLOOR, Context, Decimal
from typing import NamedTuple

from textual import events, on
from textual.containers import Grid
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


def nice_ticks(low: Decimal, high: Decimal, most: int = 8) -> list[Decimal]:
    """Ticks from ``low`` to ``high`` at multiples of 1, 2 or 5 × 10ⁿ, about five of
    them (at least one, at most ``most``), as textual-plot chooses them; in decimal, so that any
    float64 range works, and a padded one past the float64 range too."""
    if not low < high:
        return [low]
    most = max(most, 1)
    span = high - low
    power = (span / 5).adjusted()
    steps = [Decimal(m).scaleb(power + p) for p in range(3) for m in (1, 2, 5)]
    index = max(bisect_left(steps, span / 5) - 1, 0)
    # A step leaves span // step + 1 ticks at most. Ends: the last step is past the span.
    while span // steps[index] >= most:
        index += 1
    step = steps[index]
    first = int((low / step).to_integral_value(ROUND_CEILING))
    last = int((high / step).to_integral_value(ROUND_FLOOR))
    if first > last:
        # A step past the span may hold no multiple: one tick, near the middle, at a
        # tenth of the step, which lies within the span.
        fine = step / 10
        return [((low + high) / 2 / fine).to_integral_value() * fine]
    return [k * step for k in range(first, last + 1)]


def tick_labels(ticks: Sequence[Decimal]) -> list[str]:
    """Labels as short as tell ticks apart: ``0.2``, ``15``, ``1.2e+308``, ``-3e-310``."""
    if not ticks:
        return []
    if len(ticks) == 1:  # no step to go by: the fewest digits that are the tick
        tick = ticks[0]
        return [f"{float(tick):g}" if abs(tick) < 1_000_000 else _scientific(tick, 6)]
    exponent = abs(ticks[1] - ticks[0]).adjusted()
    decimals = max(0, -exponent)
    if max(abs(t) for t in ticks) < 1_000_000 and decimals <= 6:
        return [f"{tick:.{decimals}f}" for tick in ticks]
    return [_scientific(tick, tick.adjusted() - exponent + 1) for tick in ticks]


def _scientific(tick: Decimal, digits: int) -> str:
    if not tick:
        return "0"
    return f"{Context(prec=min(max(digits, 1), 17)).plus(tick).normalize():g}"


class MetricAxis(AxisFormatter):
    """Ticks and labels of values drawn multiplied by `scale` (a power of two), at
    most `most` of them: as many as fit, so that no label is drawn over another."""

    def __init__(self) -> None:
        self.scale = 1.0
        self.most = 8

    def get_ticks(self, min_: float, max_: float, max_ticks: int = 8) -> list[float]:
        scale = Decimal(self.scale)
        low, high = Decimal(min_) / scale, Decimal(max_) / scale
        ticks = nice_ticks(low, high, min(max_ticks, self.most))
        # Near the float64 grain (1 + 2**-52, subnormals) two ticks may be one float.
        return list(dict.fromkeys(float(tick * scale) + 0.0 for tick in ticks))

    def get_labels_for_ticks(self, ticks: Sequence[float]) -> list[str]:
        scale = Decimal(self.scale)
        return tick_labels([Decimal(tick) / scale for tick in ticks])

    def labels(self, low: float, high: float) -> list[str]:
        return self.get_labels_for_ticks(self.get_ticks(low, high))


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

    @on(events.Mount)
    def _mounted(self, event: events.Mount) -> None:
        # Textual would call textual-plot's handler after this one; it is called here
        # instead, unless the app closed as the plot opened and its parts are gone.
        event.prevent_default()
        if not self.query(Grid):
            return
        super().on_mount()
        self.set_xlabel(self.x_label)
        # The screen's line above the plot is the legend: it also gives each line's
        # key and last value, and covers no points.
        self.show_legend(is_visible=False)

    def _update_margin_sizes(self) -> None:
        # So do textual-plot's watchers, which run as the plot mounts.
        if self.query(Grid):
            super()._update_margin_sizes()

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
        and a single point (or a flat line) needs a range to be drawn at all. Then as
        many ticks as fit: a label per two rows, labels a space apart."""
        if not xs:
            return
        y_low, y_high = min(ys), max(ys)
        pad = (y_high - y_low) * 0.05 or abs(y_high) * 0.05 or 1.0
        y_low, y_high = y_low - pad, y_high + pad
        self.set_ylimits(y_low, y_high)
        self.y_axis.scale = scale
        # The canvas's rows less its two borders, which hold no label.
        rows = self.size.height - self.margin_top - self.margin_bottom - 2
        self.y_axis.most = max(1, (rows + 1) // 2)
        # The labels decide the margin: a long one is never cut to look like another.
        margin = max([LABEL_WIDTH, *map(len, self.y_axis.labels(y_low, y_high))]) + 1
        if margin != self.margin_left:
            self.margin_left = margin
            # textual-plot sizes its canvases again only on a layout of its own.
            self.call_after_refresh(self.refresh, layout=True)
        x_low, x_high = min(xs), max(xs)
        if x_low == x_high:
            # A step past 2**53 has no neighbour 1 away: room that changes the float.
            room = max(1.0, abs(x_low) * 2.0**-40)
            x_low, x_high = x_low - room, x_high + room
        self.set_xlimits(x_low, x_high)
        columns = self.size.width - self.margin_left
        # Steps and versions are whole numbers: over a short span, a tick at each (only
        # a short one is listed: a flood's 2 000 000 steps took seconds to label).
        short = x_high - x_low <= 16
        every = list(range(math.ceil(x_low), math.floor(x_high) + 1)) if short else []
        each = sum(len(label) + 1 for label in self.x_axis.get_labels_for_ticks(every))
        fits = short and each <= columns
        self.set_xticks(every if fits else None)
        self.x_axis.most = 8
        widest = max(map(len, self.x_axis.labels(x_low, x_high)), default=1)
        self.x_axis.most = max(1, columns // (widest + 2))
