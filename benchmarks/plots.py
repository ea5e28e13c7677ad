"""One plot update, from new data to the frame that shows it, for the benchmark suite.

    python -m benchmarks.plots WIDGET POINTS UPDATES

WIDGET is ``mlci`` (the dashboard's `MetricPlot`: textual-plot, cut to two
points a column), ``textual-plot`` (the same widget given every point),
``plotext`` or ``plotext-cut`` (textual-plotext, every point or cut the same
way). Two series of POINTS points each, made before any clock starts, in a
120x40 headless app; each update replaces the data, and its time runs to the
last frame it causes. Prints one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
import time
from typing import Any

from textual.app import App, ComposeResult

WIDTH, HEIGHT = 120, 40
QUIET_S = 0.15
"""No frame for this long after an update: the update is on screen."""

frames: list[float] = []


def series(points: int, shift: int) -> tuple[list[float], list[float], list[float]]:
    xs = [float(i) for i in range(points)]
    loss = [0.1 + math.exp(-i / (points / 5)) + 0.02 * math.sin(i + shift) for i in range(points)]
    return xs, loss, [v + 0.05 for v in loss]


class Bench(App[None]):
    def __init__(self, widget: str) -> None:
        super().__init__()
        self.widget = widget

    def compose(self) -> ComposeResult:
        if self.widget.startswith("plotext"):
            from textual_plotext import PlotextPlot

            yield PlotextPlot(id="plot")
        else:
            from mlci_tui.tui.plotting import MetricPlot

            yield MetricPlot(color=True, x_label="step", id="plot")

    def update(self, data: tuple[list[float], list[float], list[float]]) -> None:
        from mlci_tui.tui.plotting import PlotLine, downsample

        xs, a, b = data
        if self.widget == "plotext" or self.widget == "plotext-cut":
            from textual_plotext import PlotextPlot

            widget = self.query_one(PlotextPlot)
            plt = widget.plt
            plt.clear_data()
            for ys in (a, b):
                if self.widget == "plotext-cut":
                    cut_x, ys = downsample(xs, ys, WIDTH - 10)
                else:
                    cut_x = xs
                plt.plot(cut_x, ys, marker="braille")
            widget.refresh()
            return
        from mlci_tui.tui.plotting import MetricPlot

        plot = self.query_one(MetricPlot)
        if self.widget == "textual-plot":
            from textual_plot import HiResMode

            # textual-plot's own API, given every point.
            plot.clear()
            for ys, color in ((a, "#4fc3f7"), (b, "#ffb74d")):
                plot.plot(xs, ys, line_style=color, hires_mode=HiResMode.BRAILLE)
            return
        plot.show_lines([PlotLine("loss", xs, a, 0), PlotLine("val_loss", xs, b, 1)])


async def main(widget: str, points: int, updates: int) -> dict[str, Any]:
    app = Bench(widget)
    original = App._display

    def display(self: App[Any], *args: Any, **kwargs: Any) -> Any:
        frames.append(time.perf_counter())
        return original(self, *args, **kwargs)

    App._display = display  # type: ignore[method-assign]
    async with app.run_test(headless=True, size=(WIDTH, HEIGHT)):
        await asyncio.sleep(0.5)
        latencies = []
        # Made before the clock starts: the producer is not what is measured.
        data = [series(points, shift) for shift in range(updates + 1)]
        for shift in range(updates + 1):
            mark = len(frames)
            started = time.perf_counter()
            app.update(data[shift])
            while True:
                await asyncio.sleep(0.01)
                if len(frames) > mark and time.perf_counter() - frames[-1] > QUIET_S:
                    break
            if shift:  # the first one pays for imports and first layouts
                latencies.append(frames[-1] - started)
    return {"update_s": latencies}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))))
