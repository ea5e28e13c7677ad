"""The output fuzzer, in the dashboard: series and versions with any finite float64
values (-1.7e308 and 1.7e308 side by side, subnormals, steps up to 10**18) are
plotted (`g` on a stage, `v` `g` on the versions, `m` for the next metric), the
version trend drawn and versions compared (`d`), at 60x15, 80x24 and 200x50, with
and without colour. Every point lies within the axes, every tick label is whole,
tells its tick apart and reads as a number in order, and nothing raises."""

from __future__ import annotations

import asyncio
import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlci_tui.config import load_config
from mlci_tui.metric_keys import MetricKey
from mlci_tui.states import DeployKind, DeployOutcome, RunState, StageState, VersionStatus
from mlci_tui.store import Store
from mlci_tui.store.deployment_request import DeploymentRequest
from mlci_tui.tui.app import MlciApp, make_app
from mlci_tui.tui.plotting import MetricPlot, nice_ticks
from mlci_tui.tui.screens.diff import DiffScreen
from mlci_tui.tui.screens.plot import SeriesPlotScreen, VersionPlotScreen
from tests.helpers import text_of, until
from tests.metric_fuzz import examples

T0 = 1_790_000_000.0
LONG = "validation/accuracy_top5"
"""A name that makes the legend longer than 60 columns."""
BIGGEST = 1.7976931348623157e308
EXTREMES = [BIGGEST, -BIGGEST, 1.7e308, -1.7e308, 5e-324, -5e-324, 0.0, -0.0, 1e-300, 2.0**1000]

CONFIG = """
[pipeline]
name = "plot-fuzz"

[stages.train]
command = "true"

[registry]
key_metrics = ["m", "validation/accuracy_top5"]
"""

values = st.lists(
    st.sampled_from(EXTREMES) | st.floats(allow_nan=False, allow_infinity=False),
    min_size=1,
    max_size=80,
)
steps = st.none() | st.lists(st.integers(0, 10**18 - 1), min_size=80, max_size=80, unique=True)


def write_store(folder: Path, m: list[float], n: list[float], at: list[int] | None) -> MlciApp:
    """A run whose stage reported ``m`` and ``n`` (as `LONG`; at steps ``at``, else 0, 1, 2, …),
    and a version for each of the first values of ``m``, the first of them live."""
    config_path = folder / "config.toml"
    config_path.write_text(CONFIG)
    config = load_config(config_path, environ={})
    store = Store.open(config.pipeline.state_dir, create=True)
    run_id = store.runs.create(
        "plot-fuzz",
        [("train", (), 1)],
        started_at=T0,
        pid=1,
        pid_started=None,
        host="host",
        config_path=str(config_path),
    )
    for name, series in (("m", m), (LONG, n)):
        points = [(name, i if at is None else sorted(at)[i], v) for i, v in enumerate(series)]
        store.series.record_points(run_id, "train", points, T0 + 1)
        store.runs.record_metrics(run_id, "train", {name: series[-1]})
    store.runs.update_stage(
        run_id, "train", state=StageState.PASSED, started_at=T0, ended_at=T0 + 2
    )
    store.runs.finish(run_id, RunState.PASSED, exit_code=0, ended_at=T0 + 2)
    for number, value in enumerate(m[:4], start=1):
        store.versions.add(
            run_id=run_id,
            created_at=T0 + number,
            artifact_name="model.txt",
            source_path="model.txt",
            is_dir=False,
            sha256=f"{number:x}" * 64,
            size_bytes=1,
            metrics={MetricKey("train", "m"): value, MetricKey("train", LONG): n[0]},
            git_commit=None,
            git_dirty=None,
        )
        store.samples.add(
            version=number,
            passed=True,
            metrics={"m": n[-1]},
            finding=None,
            created_at=T0 + number,
            run_id=run_id,
        )
    deployment = store.deployments.begin(
        DeploymentRequest(
            kind=DeployKind.DEPLOY,
            from_version=None,
            to_version=1,
            user="fuzz",
            reason=None,
            run_id=run_id,
            pid=1,
            pid_started=None,
            host="host",
            process_tag="fuzz",
        ),
        started_at=T0 + 5,
        is_stale=lambda d: True,
    )
    live = [(1, VersionStatus.LIVE, "deployed")]
    store.deployments.finish(
        deployment.id, DeployOutcome.SUCCEEDED, ended_at=T0 + 6, message=None, statuses=live
    )
    store.close()
    return make_app(config, clock=lambda: T0 + 60, poll_interval=3600)


@contextmanager
def no_color(on: bool) -> Iterator[None]:
    previous = os.environ.pop("NO_COLOR", None)
    if on:
        os.environ["NO_COLOR"] = "1"
    try:
        yield
    finally:
        os.environ.pop("NO_COLOR", None)
        if previous is not None:
            os.environ["NO_COLOR"] = previous


def check_plot(app: MlciApp, plot: MetricPlot) -> None:
    """Every point lies within the axes; every tick label is whole, tells its tick
    apart, and reads as a number in order; the labels are on the screen."""
    ys = [y for line in plot.lines for y in line.ys]
    if not ys:
        return
    low, high, scale = plot._y_min, plot._y_max, plot.y_axis.scale
    assert math.isfinite(low) and math.isfinite(high) and low < high
    assert math.isfinite((high - low) * plot.size.height * 4)  # the rows it maps onto
    assert all(low <= y * scale <= high for y in ys)
    labels = plot.y_axis.labels(low, high)
    # Decimal: the axis may reach past the float64 range by its padding.
    numbers = [Decimal(label) for label in labels]
    assert numbers == sorted(set(numbers)), labels
    lowest, highest = Decimal(low) / Decimal(scale), Decimal(high) / Decimal(scale)
    assert all(lowest <= number <= highest for number in numbers), (labels, lowest, highest)
    assert all(len(label) < plot.margin_left for label in labels)
    screen = "\n".join(text_of(strip) for strip in app.screen._compositor.render_strips())
    assert all(label in screen for label in labels if plot.size.height > 6), (labels, screen)


async def exercise(app: MlciApp, size: tuple[int, int], m: list[float]) -> None:
    async with app.run_test(size=size) as pilot:
        await until(pilot, lambda: app.snapshot.run is not None and len(app.snapshot.versions))
        await until(pilot, lambda: app.stages.selected_name == "train")
        await pilot.press("g")
        await until(pilot, lambda: isinstance(app.screen, SeriesPlotScreen))
        screen = app.screen
        assert isinstance(screen, SeriesPlotScreen)
        await until(pilot, lambda: len(screen.series.get(LONG, ((), ()))[1]) > 0)
        await pilot.pause(0)
        check_plot(app, screen.plot)
        assert screen.legend.size.height == 1  # cut, not wrapped: the plot keeps the row
        await pilot.press("2")  # one line hidden: the axes fit the other
        check_plot(app, screen.plot)
        await pilot.press("escape", "v", "g")
        await until(pilot, lambda: isinstance(app.screen, VersionPlotScreen))
        await pilot.pause(0)
        check_plot(app, app.screen.query_one(MetricPlot))
        await pilot.press("m")
        check_plot(app, app.screen.query_one(MetricPlot))
        await pilot.press("escape")
        if len(m) > 1:
            await until(pilot, lambda: not isinstance(app.screen, VersionPlotScreen))
            await pilot.press("v", "d")  # the newest version against the live one
            await until(pilot, lambda: isinstance(app.screen, DiffScreen))
            await pilot.press("escape")


@settings(
    max_examples=examples(12),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    values,
    values,
    steps,
    st.sampled_from([(60, 15), (80, 24), (200, 50)]),
    st.booleans(),
)
def test_any_finite_values_are_plotted_trended_and_compared(
    m: list[float], n: list[float], at: list[int] | None, size: tuple[int, int], plain: bool
) -> None:
    with tempfile.TemporaryDirectory() as folder, no_color(plain):
        app = write_store(Path(folder), m, n, at)
        asyncio.run(exercise(app, size, m))


@settings(max_examples=examples(500), deadline=None)
@given(
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(1, 40),
)
def test_ticks_are_at_least_one_and_at_most_as_many_as_asked_all_within_the_span(
    a: float, b: float, most: int
) -> None:
    """However few rows a plot has, its axis gets a tick, and no more than fit."""
    low, high = sorted((Decimal(a), Decimal(b)))
    ticks = nice_ticks(low, high, most)
    assert 1 <= len(ticks) <= (most if low < high else 1)
    assert ticks == sorted(set(ticks))
    assert all(low <= tick <= high for tick in ticks)
