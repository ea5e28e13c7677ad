"""A headless dashboard that measures itself, for the benchmark suite.

    python -m benchmarks.probe frame CONFIG
    python -m benchmarks.probe idle CONFIG SECONDS
    python -m benchmarks.probe watch CONFIG
    python -m benchmarks.probe keys CONFIG LEAST
    python -m benchmarks.probe table CONFIG PRESSES
    python -m benchmarks.probe plotkeys CONFIG LEAST
    python -m benchmarks.probe stages CONFIG PRESSES
    python -m benchmarks.probe experiments CONFIG PRESSES

It runs the real app (Textual's headless driver, 100x30) on a store and
prints one JSON line. Latencies are from sending a key, the way a terminal
would, to the frame in which the change is painted: the widget's render
is wrapped to note the time it first draws the new state.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from mlci_tui.config import load_config
from mlci_tui.states import RunState
from mlci_tui.tui.app import MlciApp, make_app
from mlci_tui.tui.widgets.header_bar import HeaderBar
from mlci_tui.tui.widgets.stage_pane import StagePane
from mlci_tui.tui.widgets.version_table import VersionTable

STARTED = time.perf_counter()
painted: list[tuple[float, str, object]] = []
"""(time, widget, state) for every render of the watched widgets."""


def _watch_renders() -> None:
    header_render = HeaderBar.render
    pane_render = StagePane.render
    table_render = VersionTable.render_lines

    def header(self: HeaderBar) -> Any:
        painted.append((time.perf_counter(), "header", self.follow))
        return header_render(self)

    def pane(self: StagePane) -> Any:
        painted.append((time.perf_counter(), f"pane:{self.stage_name}", self.selected))
        return pane_render(self)

    def table(self: VersionTable, crop: Any) -> Any:
        painted.append((time.perf_counter(), "table", self.cursor_row))
        return table_render(self, crop)

    from textual.widgets import DataTable

    data_table_render = DataTable.render_lines

    def data_table(self: DataTable[Any], crop: Any) -> Any:
        # The experiments' table: its state is where its cursor is.
        if not isinstance(self, VersionTable):
            painted.append((time.perf_counter(), "datatable", self.cursor_row))
        return data_table_render(self, crop)

    from textual.widgets import Static

    static_render = Static.render

    def static(self: Static) -> Any:
        # The plot screen's legend line: its state is which lines are hidden.
        if self.has_class("plot--lines"):
            hidden: set[int] = getattr(self.screen, "hidden", set())
            painted.append((time.perf_counter(), "legend", frozenset(hidden)))
        return static_render(self)

    Static.render = static  # type: ignore[method-assign]
    HeaderBar.render = header  # type: ignore[method-assign]
    StagePane.render = pane  # type: ignore[method-assign]
    VersionTable.render_lines = table  # type: ignore[method-assign,assignment]
    DataTable.render_lines = data_table  # type: ignore[method-assign]


async def _until(condition: Callable[[], object], timeout: float = 60.0) -> None:
    deadline = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > deadline:
            raise TimeoutError("the dashboard never got there")
        await asyncio.sleep(0.005)


async def _press(app: MlciApp, key: str, widget: str, state: object) -> float:
    """Send ``key``; seconds until ``widget`` is painted in ``state``."""
    mark = len(painted)
    sent = time.perf_counter()
    await app._press_keys([key])  # the path a terminal's keys take

    def shown() -> bool:
        return any(w == widget and s == state for _, w, s in painted[mark:])

    await _until(shown, timeout=10)
    first = next(t for t, w, s in painted[mark:] if w == widget and s == state)
    return first - sent


async def main(mode: str, config_path: str, argument: str | None) -> dict[str, Any]:
    _watch_renders()
    app = make_app(load_config(config_path))
    async with app.run_test(headless=True, size=(100, 30)) as pilot:
        if mode == "frame":
            await _until(lambda: app.snapshot.run is not None or app.snapshot.versions)
            await pilot.pause()
            # At once, not at exit: the benchmark times the first frame, not the teardown.
            print(json.dumps({"first_frame": True}), flush=True)
            return {"first_frame_s": time.perf_counter() - STARTED}
        if mode == "idle":
            await _until(lambda: app.snapshot.run is not None)
            await asyncio.sleep(1)
            seconds = float(argument or 10)
            cpu = time.process_time()
            await asyncio.sleep(seconds)
            return {"cpu_s": time.process_time() - cpu, "seconds": seconds}
        if mode == "keys":
            return await _keys(app, int(argument or 10))
        if mode == "plotkeys":
            return await _plot_keys(app, int(argument or 10))
        if mode == "watch":
            return await _watch(app)
        if mode == "stages":
            return await _stage_keys(app, int(argument or 50))
        if mode == "table":
            table = app.version_panel.table
            await _until(lambda: table.versions)
            table.focus()
            await pilot.pause()
            latencies = []
            for _ in range(int(argument or 50)):
                latencies.append(await _press(app, "down", "table", table.cursor_row + 1))
            return {"latencies_s": latencies}
        if mode == "experiments":
            return await _experiment_keys(app, int(argument or 200))
    raise ValueError(f"unknown mode {mode}")


async def _paged(app: MlciApp, before: int) -> float:
    """Send `pagedown`; seconds until the table is painted with its cursor moved."""
    mark = len(painted)
    sent = time.perf_counter()
    await app._press_keys(["pagedown"])

    def moved() -> bool:
        return any(w == "datatable" and s != before for _, w, s in painted[mark:])

    await _until(moved, timeout=10)
    return next(t for t, w, s in painted[mark:] if w == "datatable" and s != before) - sent


async def _experiment_keys(app: MlciApp, presses: int) -> dict[str, Any]:
    """`e`, then `down` key after key through the experiments' table (it scrolls once
    the cursor passes the rows in view), then `pagedown`."""
    from mlci_tui.tui.screens.experiments_screen import ExperimentsScreen

    await _until(lambda: app.stages.names)  # the config's stages: the dashboard is up
    await app._press_keys(["e"])
    await _until(lambda: isinstance(app.screen, ExperimentsScreen) and app.screen.loaded)
    screen = app.screen
    assert isinstance(screen, ExperimentsScreen)
    await asyncio.sleep(0.5)
    table = screen.data_table
    latencies = []
    for _ in range(presses):
        latencies.append(await _press(app, "down", "datatable", table.cursor_row + 1))
        await asyncio.sleep(0.02)
    table.move_cursor(row=0, animate=False)
    await asyncio.sleep(0.2)
    pages = []
    # As many pages as the table has below its first rows: none of them at the end.
    for _ in range(min(max(1, presses // 10), table.row_count // table.size.height - 1)):
        pages.append(await _paged(app, table.cursor_row))
        await asyncio.sleep(0.02)
    return {"rows": len(screen.rows), "latencies_s": latencies, "pages_s": pages}


async def _next_run(app: MlciApp) -> None:
    """Wait for a run newer than the one shown when the dashboard opened (the store
    has one), after saying on a line of its own that the next run may start."""
    await _until(lambda: app.snapshot.run is not None)
    before = app.snapshot.run.id if app.snapshot.run else 0
    print(json.dumps({"ready": True}), flush=True)
    await _until(lambda: app.snapshot.run is not None and app.snapshot.run.id > before)


async def _watch(app: MlciApp) -> dict[str, Any]:
    """Watch a run from start to end, as a person would, without touching a key.

    Reports nothing: the scenario measures this process from outside."""
    await _next_run(app)
    await _until(
        lambda: app.snapshot.run is not None and app.snapshot.run.state is not RunState.RUNNING,
        timeout=600,
    )
    return {}


async def _keys(app: MlciApp, least: int) -> dict[str, Any]:
    """While a run floods its log: toggle follow and move the stage selection.

    Waits for a run newer than the one shown at start, presses keys until it
    has ended and at least ``least`` were measured, and says how many were
    measured while it was still running.
    """
    await _next_run(app)
    latencies: list[float] = []
    during = 0
    stages = app.stages

    def running() -> bool:
        return app.snapshot.run is not None and app.snapshot.run.state is RunState.RUNNING

    while running() or len(latencies) < least:
        live = running()
        follow = app.log_view.follow
        latencies.append(await _press(app, "f", "header", not follow))
        await asyncio.sleep(0.1)  # keys a person presses are never microseconds apart
        if len(stages.names) > 1:
            if app.focused is not stages:
                stages.focus()
            target = stages.names[(stages.selected + 1) % len(stages.names)]
            latencies.append(await _press(app, "down", f"pane:{target}", True))
        during += 2 if live else 0
        await asyncio.sleep(0.1)
    return {"latencies_s": latencies, "during_run": during}


async def _stage_keys(app: MlciApp, presses: int) -> dict[str, Any]:
    """On the last run's stages: `down` moves the selection, key after key."""
    await _until(lambda: app.snapshot.run is not None and app.stages.names)
    stages = app.stages
    stages.focus()
    await asyncio.sleep(0.5)
    # As a person's first key would: from here on the selection is the user's, and
    # the dashboard no longer follows the run's active stage.
    stages.select(stages.names[0], by_user=True)
    await asyncio.sleep(0.2)
    latencies = []
    for _ in range(presses):
        target = stages.names[(stages.selected + 1) % len(stages.names)]
        latencies.append(await _press(app, "down", f"pane:{target}", True))
        await asyncio.sleep(0.05)
    return {"latencies_s": latencies, "stages": len(stages.names)}


async def _plot_keys(app: MlciApp, least: int) -> dict[str, Any]:
    """While a run floods its log with output and metric lines: the stage's plot is
    open, and its first line is hidden and shown again, key after key."""
    await _next_run(app)
    await _until(lambda: "flood" in app.stages.names)
    app.stages.select("flood", by_user=True)
    await app._press_keys(["g"])
    await _until(lambda: hasattr(app.screen, "hidden"))
    screen: Any = app.screen
    await _until(lambda: screen.names)  # the first points are in
    latencies: list[float] = []
    during = 0

    def running() -> bool:
        return app.snapshot.run is not None and app.snapshot.run.state is RunState.RUNNING

    while running() or len(latencies) < least:
        live = running()
        hidden = frozenset(screen.hidden ^ {0})
        latencies.append(await _press(app, "1", "legend", hidden))
        during += 1 if live else 0
        await asyncio.sleep(0.1)
    return {"latencies_s": latencies, "during_run": during}


if __name__ == "__main__":
    result = asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None))
    print(json.dumps(result), flush=True)
