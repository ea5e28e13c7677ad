"""The dashboard's plots and comparisons: `g` on a stage plots its series, live
while it runs; number keys hide lines; `g` on the versions plots a metric across
them; `d` on a version and two marked runs open the comparison. Real runs of
`mlci`, a real store, real rendering."""

from __future__ import annotations

import subprocess

from textual import events

from mlci_tui.states import RunState, StageState
from mlci_tui.tui.plotting import MetricPlot, downsample
from mlci_tui.tui.screens.diff import DiffScreen
from mlci_tui.tui.screens.plot import SeriesPlotScreen, VersionPlotScreen
from mlci_tui.tui.screens.runs_screen import RunsScreen
from tests.helpers import (
    PYTHON,
    Project,
    dashboard,
    mlci_env,
    notices,
    run_state,
    settle,
    shown,
    until,
    wait_for,
)

# Forty points, slowly enough to be watched; it ends when the file `go` appears.
DRIP = """
[stages.train]
command = '''{python} -c "
import os, time
for step in range(1, 41):
    print(f'::metric step={step} loss={1 / step:.4f} val_loss={1.5 / step:.4f}', flush=True)
    time.sleep(0.02)
while not os.path.exists('go'):
    time.sleep(0.02)
"'''
"""

MODEL = """
[params]
train.lr = 0.1

[stages.train]
command = '''
mkdir -p build && echo "$MLCI_PARAM_TRAIN_LR" > build/model.txt
echo "::metric accuracy=0.9${MLCI_PARAM_TRAIN_LR#0.}"
'''
params = ["train.lr"]
artifact = "build/model.txt"

[deploy]
command = "true"
"""


async def test_g_plots_a_running_stage_live_and_reads_each_point_once(project: Project) -> None:
    project.write(DRIP)
    runner = project.start("run")
    try:
        wait_for(lambda: project.printed("train", b"step=5 "), what="the first points")
        app = dashboard(project)
        async with app.run_test(size=(100, 30)) as pilot:
            await until(pilot, lambda: app.stages.selected_name == "train")
            await pilot.press("g")
            screen = app.screen
            assert isinstance(screen, SeriesPlotScreen)
            await until(pilot, lambda: len(screen.series.get("loss", ([], []))[0]) >= 40)
            assert run_state(app) is RunState.RUNNING  # drawn while the stage runs
            (project.path / "go").touch()
            await until(pilot, lambda: run_state(app) is RunState.PASSED)
            await settle(pilot)
            xs, ys = screen.series["loss"]
            assert xs == [float(step) for step in range(1, 41)]
            assert ys[0] == 1.0 and ys[-1] == 0.025
            assert list(screen.series) == ["loss", "val_loss"]
            plot = screen.query_one(MetricPlot)
            assert [line.label for line in plot.lines] == ["loss", "val_loss"]
            legend = str(screen.legend.render())
            assert "1 ● loss 0.025" in legend and "2 ● val_loss 0.0375" in legend
            await pilot.press("1")
            assert [line.label for line in plot.lines] == ["val_loss"]
            assert "loss 0.025 (hidden)" in str(screen.legend.render())
            await pilot.press("9")  # no ninth line: nothing happens
            await pilot.press("1")
            assert [line.label for line in plot.lines] == ["loss", "val_loss"]
            await pilot.press("escape")
            assert not isinstance(app.screen, SeriesPlotScreen)
    finally:
        (project.path / "go").touch()
        runner.wait(timeout=60)


async def test_a_stage_without_metrics_says_how_to_report_them(project: Project) -> None:
    project.write('[stages.quiet]\ncommand = "echo no metrics here"\n')
    assert project.mlci("run").returncode == 0
    app = dashboard(project)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: run_state(app) is RunState.PASSED)
        await until(pilot, lambda: app.stages.selected_name == "quiet")
        await pilot.press("g")
        screen = app.screen
        assert isinstance(screen, SeriesPlotScreen)
        await until(pilot, lambda: "quiet reported no metrics" in str(screen.empty.render()))
        assert not screen.plot.display
        assert "quiet reported no metrics: a stage prints" in str(screen.empty.render())


async def test_g_without_a_run_says_so(project: Project) -> None:
    project.write('[stages.a]\ncommand = "true"\n')
    app = dashboard(project)
    said = notices(app)
    async with app.run_test(size=(80, 24)) as pilot:
        await shown(pilot)
        await pilot.press("g")
        await settle(pilot)
        assert not isinstance(app.screen, SeriesPlotScreen)
        assert "no stage of a run to plot yet: start a run with r" in said


def two_versions(project: Project) -> None:
    project.write(MODEL)
    assert project.mlci("run").returncode == 0
    assert project.mlci("run", "--set", "train.lr=0.5").returncode == 0


async def test_g_on_the_versions_plots_a_metric_across_them(project: Project) -> None:
    two_versions(project)
    app = dashboard(project)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: len(app.snapshot.versions) == 2)
        await pilot.press("v", "g")
        screen = app.screen
        assert isinstance(screen, VersionPlotScreen)
        await settle(pilot)
        lines = {line.label: (list(line.xs), list(line.ys)) for line in screen.lines()}
        assert lines == {
            "accuracy evaluated": ([1.0, 2.0], [0.91, 0.95]),
            "accuracy live": ([], []),
        }


async def test_v_and_g_typed_together_plot_the_versions(project: Project) -> None:
    two_versions(project)
    app = dashboard(project)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: len(app.snapshot.versions) == 2)
        # Both in the queue before either is handled: one read of the terminal, as over SSH.
        app.post_message(events.Key("v", "v"))
        app.post_message(events.Key("g", "g"))
        await until(pilot, lambda: isinstance(app.screen, (VersionPlotScreen, SeriesPlotScreen)))
        assert isinstance(app.screen, VersionPlotScreen)


async def test_d_on_a_version_compares_it_with_the_live_one(project: Project) -> None:
    two_versions(project)
    app = dashboard(project)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: len(app.snapshot.versions) == 2)
        await pilot.press("v")
        app.version_panel.table.select_version(1)
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, DiffScreen))
        comparison = app.screen.comparison
        assert (comparison.old.label, comparison.new.label) == ("v2 (run 2)", "v1 (run 1)")
        assert [(p.name, p.old, p.new) for p in comparison.params] == [("train.lr", 0.5, 0.1)]
        await pilot.press("escape")
        assert not isinstance(app.screen, DiffScreen)


async def test_two_marked_runs_are_compared(project: Project) -> None:
    two_versions(project)
    app = dashboard(project)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: run_state(app) is RunState.PASSED)
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))
        await pilot.press("space", "space")  # marked, then unmarked
        assert app.screen.marked == []
        await pilot.press("space", "down", "space")
        await until(pilot, lambda: isinstance(app.screen, DiffScreen))
        comparison = app.screen.comparison
        assert comparison.old.run is not None and comparison.new.run is not None
        assert (comparison.old.run.id, comparison.new.run.id) == (1, 2)
        stages = {s.name: (s.old_state, s.new_state) for s in comparison.stages}
        assert stages["train"] == (StageState.PASSED, StageState.PASSED)


def test_a_long_series_is_cut_to_two_points_a_column_keeping_its_extremes() -> None:
    xs = [float(i) for i in range(10_000)]
    ys = [float(i % 100) for i in range(10_000)]
    ys[5_123] = 1e6
    out_x, out_y = downsample(xs, ys, 120)
    assert len(out_x) <= 240 and out_x == sorted(out_x)
    assert max(out_y) == 1e6 and min(out_y) == 0.0
    short = [1.0, 2.0, 3.0]
    assert downsample(short, short, 120) == (short, short)


def test_the_dashboard_starts_without_the_plot_library() -> None:
    code = (
        "import sys, mlci_tui.tui.app;"
        "print(sorted(m for m in ('numpy', 'textual_plot') if m in sys.modules))"
    )
    result = subprocess.run([PYTHON, "-c", code], capture_output=True, env=mlci_env(), check=True)
    assert result.stdout.strip() == b"[]"
