"""The experiments screen (`e`): the table read live from a real store, its sort,
filter and marks, the diff and the overlaid plot of marked experiments, Enter
showing an experiment's run on the main screen, and the keys that act (`P`, `s`,
`c`) starting `mlci exp` through the dashboard's spawner — none of them on a
read-only store."""

from __future__ import annotations

import io
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
from rich.console import Console
from textual.widgets import DataTable

from mlci_tui.config import load_config
from mlci_tui.states import ExperimentState, StageState
from mlci_tui.store import Store
from mlci_tui.tui.app import MlciApp
from mlci_tui.tui.keys import bindings_of, key_text, without
from mlci_tui.tui.screens.confirm import ConfirmScreen
from mlci_tui.tui.screens.diff import DiffScreen
from mlci_tui.tui.screens.experiments_screen import BEST, ExperimentsScreen
from mlci_tui.tui.screens.help import HelpScreen
from mlci_tui.tui.widgets.header_bar import HeaderBar
from mlci_tui.tui.widgets.key_bar import KeyBar
from mlci_tui.tui.widgets.version_table import VersionTable
from tests.helpers import (
    Project,
    dashboard,
    help_text,
    notices,
    run,
    settle,
    setup,
    shown,
    until,
)
from tests.tui.experiments_store import SWEEP, write_experiments

Spawned = list[list[str]]


def sweep(project: Project, *, runs: int = 0) -> list[int]:
    """The test pipeline with ``runs`` real runs, then the sweep's experiments."""
    setup(project)
    for seed in range(1, runs + 1):
        assert run(project, seed) == 0
    return write_experiments(project.state_dir, project.config_path)


def spawning(project: Project) -> tuple[MlciApp, Spawned]:
    spawned: Spawned = []
    app = dashboard(project, spawn=lambda args: spawned.append(args) or True)
    return app, spawned


async def opened(pilot, app: MlciApp, count: int = len(SWEEP)) -> ExperimentsScreen:
    await shown(pilot)
    await pilot.press("e")
    await until(pilot, lambda: isinstance(app.screen, ExperimentsScreen))
    screen = app.screen
    assert isinstance(screen, ExperimentsScreen)
    await until(pilot, lambda: screen.loaded and len(screen.rows) == count)
    await settle(pilot)
    return screen


def column(screen: ExperimentsScreen, key: str) -> list[str]:
    table = screen.query_one(DataTable)
    return [table.get_cell(f"e{r.experiment.id}", key).plain for r in screen.rows if r.experiment]


def ids(screen: ExperimentsScreen) -> list[int]:
    return [row.experiment.id for row in screen.rows if row.experiment is not None]


async def to_row(pilot, screen: ExperimentsScreen, number: int) -> None:
    table = screen.query_one(DataTable)
    table.move_cursor(row=ids(screen).index(number), animate=False)
    await settle(pilot)


async def test_e_opens_the_table_with_states_progress_and_the_best_marked(
    project: Project,
) -> None:
    sweep(project)
    app = dashboard(project)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await opened(pilot, app)
        assert ids(screen) == [1, 2, 3, 4, 5, 6]
        assert column(screen, "state") == [
            "passed",
            "passed",
            "failed",
            "passed",
            "running",
            "queued",
        ]
        # Stages ended of the run's stages; the queued one has no run yet.
        assert column(screen, "progress") == ["2/2", "2/2", "2/2", "2/2", "0/2", "-"]
        # The params that differ, each experiment's own values.
        assert column(screen, "param:train.lr") == ["0.01", "0.01", "0.05", "0.05", "0.1", "0.1"]
        # The best accuracy is #2's (0.947), the only cell of the column marked.
        accuracy = column(screen, "metric:evaluate.accuracy")
        assert [BEST in cell for cell in accuracy] == [False, True, False, False, False, False]
        # The main screen's keys are not offered over it; its own are.
        keys = str(screen.query_one(KeyBar).render())
        assert "Mark" in keys and "Promote" in keys and "Run" not in keys
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, ExperimentsScreen))
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, ExperimentsScreen))
        await pilot.press("q")  # closes it, does not quit
        await until(pilot, lambda: not isinstance(app.screen, ExperimentsScreen))
        assert app.is_running


async def test_the_table_follows_the_store_live(project: Project) -> None:
    sweep(project)
    app = dashboard(project)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await opened(pilot, app)
        store = Store.open(project.state_dir)
        try:
            run_id = store.experiments.get(5).run_id
            assert run_id is not None
            store.runs.update_stage(run_id, "train", state=StageState.PASSED, exit_code=0)
            await until(pilot, lambda: column(screen, "progress")[4] == "1/2")
            store.experiments.finish(5, ExperimentState.FAILED, ended_at=0.0)
            await until(pilot, lambda: column(screen, "state")[4] == "failed")
        finally:
            store.close()


async def test_the_table_is_read_only_when_the_store_changed_and_drawn_only_when_it_did(
    project: Project,
) -> None:
    sweep(project)
    app = dashboard(project)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await opened(pilot, app)
        reads: list[object] = []
        draws: list[object] = []
        polls: list[object] = []
        due, read, show = screen.reader.experiments_due, screen.reader.experiments, screen._show
        screen.reader.experiments_due = lambda since: polls.append(1) or due(since)  # type: ignore[method-assign]
        screen.reader.experiments = lambda config: reads.append(1) or read(config)  # type: ignore[method-assign]
        screen._show = lambda: draws.append(1) or show()  # type: ignore[method-assign]
        # Ten polls of a store nobody writes: nothing read, nothing drawn (the running
        # experiment's duration ticks in its own cell).
        await until(pilot, lambda: len(polls) >= 10)
        assert reads == [] and draws == []
        # A change elsewhere in the store: read, and nothing drawn again.
        store = Store.open(project.state_dir)
        try:
            store.alerts.add("run_failed", "elsewhere", created_at=0.0, version=None, run_id=None)
            await until(pilot, lambda: reads)
            await settle(pilot)
            assert draws == []
            store.experiments.finish(5, ExperimentState.FAILED, ended_at=0.0)
            await until(pilot, lambda: draws)
        finally:
            store.close()


async def test_sort_by_any_column_and_reverse(project: Project) -> None:
    sweep(project)
    app = dashboard(project)
    async with app.run_test(size=(160, 30)) as pilot:
        screen = await opened(pilot, app)
        # o steps through the columns: name, state, duration, the params, the metrics.
        for _ in range(20):
            if screen.sort == "evaluate.accuracy":
                break
            await pilot.press("o")
        assert screen.sort == "evaluate.accuracy"
        await settle(pilot)
        # Best first: 0.947 (#2), 0.931 (#4), 0.912 (#1), then those without.
        assert ids(screen)[:3] == [2, 4, 1]
        assert "by accuracy, best first" in title(screen)
        await pilot.press("O")
        await settle(pilot)
        assert ids(screen)[-3:] == [1, 4, 2]
        assert "by accuracy, worst first" in title(screen)
        # The best stays marked on #2's row, wherever it is listed.
        table = screen.query_one(DataTable)
        assert BEST in table.get_cell("e2", "metric:evaluate.accuracy").plain
        # A click on a header sorts by it; the same header again reverses.
        await click_header(pilot, screen, "id")
        assert screen.sort == "id" and ids(screen) == [1, 2, 3, 4, 5, 6]
        await click_header(pilot, screen, "id")
        assert ids(screen) == [6, 5, 4, 3, 2, 1]


def title(screen: ExperimentsScreen) -> str:
    return screen._title().plain


async def click_header(pilot, screen: ExperimentsScreen, key: str) -> None:
    table = screen.query_one(DataTable)
    x = 0
    for column_key, column in table.columns.items():
        if column_key.value == key:
            break
        x += column.get_render_width(table)
    await pilot.click(DataTable, offset=(x + 1, 0))
    await settle(pilot)


async def test_slash_filters_with_the_exp_show_expressions(project: Project) -> None:
    sweep(project)
    app = dashboard(project)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await opened(pilot, app)
        await pilot.press("slash", *"train.lr=0.01", "enter")
        await until(pilot, lambda: ids(screen) == [1, 2])
        assert "2 of 6" in title(screen)
        await pilot.press("escape")  # clears the filter first
        await until(pilot, lambda: len(ids(screen)) == 6)
        assert isinstance(app.screen, ExperimentsScreen)


async def test_two_marked_are_diffed_and_plotted(project: Project) -> None:
    sweep(project)
    app = dashboard(project)
    said = notices(app)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await opened(pilot, app)
        await to_row(pilot, screen, 4)
        await pilot.press("space")
        await pilot.press("d")  # one marked: nothing to diff yet
        await settle(pilot)
        assert isinstance(app.screen, ExperimentsScreen)
        await to_row(pilot, screen, 2)
        await pilot.press("space")
        assert screen.marked == [4, 2]
        assert screen.query_one(DataTable).get_cell("e2", " ").plain == "*"
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, DiffScreen))
        diff = app.screen
        assert isinstance(diff, DiffScreen)
        runs = {side.run.id for side in (diff.comparison.old, diff.comparison.new) if side.run}
        store = Store.open(project.state_dir)
        try:
            assert runs == {store.experiments.get(2).run_id, store.experiments.get(4).run_id}
            # Titled and ordered by experiment, whatever order their runs ran in.
            assert diff.comparison.old.label.startswith("#2 lr-sweep-2 (run ")
            assert diff.comparison.new.label.startswith("#4 lr-sweep-4 (run ")
        finally:
            store.close()
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen)
        await to_row(pilot, screen, 1)
        await pilot.press("space", "g")
        await until(pilot, lambda: type(app.screen).__name__ == "ExperimentPlotScreen")
        plot = app.screen
        # One line per marked experiment, of the metric they all report (loss).
        await until(pilot, lambda: all(line.xs for line in plot.lines()))  # type: ignore[attr-defined]
        lines = plot.lines()  # type: ignore[attr-defined]
        assert [line.label for line in lines] == ["#4 lr-sweep-4", "#2 lr-sweep-2", "#1 lr-sweep-1"]
        assert all(len(line.xs) == 30 for line in lines)
        # m: the next metric all three have, accuracy; its one point each.
        await pilot.press("m")
        await until(pilot, lambda: all(len(line.xs) == 1 for line in plot.lines()))  # type: ignore[attr-defined]
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen)
        # A queued experiment has no run: said, nothing opened.
        await to_row(pilot, screen, 6)
        await pilot.press("space", "g")
        await until(pilot, lambda: any("never started" in note for note in said))
        assert app.screen is screen


async def test_enter_shows_the_experiments_run_on_the_main_screen(project: Project) -> None:
    sweep(project, runs=1)
    app = dashboard(project)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await opened(pilot, app)
        await to_row(pilot, screen, 3)
        run_id = screen.cursor_row().run.id  # type: ignore[union-attr]
        await pilot.press("enter")
        await until(pilot, lambda: not isinstance(app.screen, ExperimentsScreen))
        await until(pilot, lambda: app.snapshot.run is not None and app.snapshot.run.id == run_id)
        await settle(pilot)
        assert app.pinned == run_id
        header = app.query_one(HeaderBar).render().plain
        assert f"experiment #3 lr-sweep-3 (run {run_id}) failed" in header
        assert "(latest: run 1)" in header


async def test_p_promotes_after_a_side_by_side_confirmation(project: Project) -> None:
    sweep(project, runs=1)
    app, spawned = spawning(project)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await opened(pilot, app)
        await to_row(pilot, screen, 3)  # failed: refused, said why
        await pilot.press("P")
        await settle(pilot)
        assert app.screen is screen
        await to_row(pilot, screen, 2)
        await pilot.press("P")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        confirm = app.screen
        assert isinstance(confirm, ConfirmScreen)
        app.console.begin_capture()
        app.console.print(confirm.header)  # the columns' heads, which do not scroll
        app.console.print(confirm.body)
        drawn = app.console.end_capture()
        assert "now: v1" in drawn and "after: #2 lr-sweep-2" in drawn, drawn
        assert "0.947" in drawn and "experiment #2" in drawn
        await pilot.press("n")
        await until(pilot, lambda: app.screen is screen)
        assert spawned == []
        await pilot.press("P", "y")
        await until(pilot, lambda: bool(spawned))
    assert spawned == [["exp", "promote", "2", "--reason", "from the dashboard"]]


async def test_s_starts_the_queue_and_c_cancels_after_a_confirmation(project: Project) -> None:
    sweep(project)
    app, spawned = spawning(project)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await opened(pilot, app)
        await pilot.press("s")
        await until(pilot, lambda: bool(spawned))
        assert spawned == [["exp", "start", "--detach"]]
        await to_row(pilot, screen, 1)  # passed: nothing to cancel
        await pilot.press("c")
        await settle(pilot)
        assert app.screen is screen
        await to_row(pilot, screen, 6)
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: len(spawned) == 2)
    assert spawned[1] == ["exp", "cancel", "6"]


@contextmanager
def readonly_experiments(project: Project, mount: Path) -> Iterator[None]:
    """The sweep in a store that cannot be written: on a file system remounted
    read-only (as root), or without write access."""
    mount.mkdir()
    root = os.geteuid() == 0
    if root:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(mount)], check=True)
    setup(project)
    text = project.config_path.read_text()
    project.write(text.replace("[pipeline]\n", f'[pipeline]\nstate_dir = "{mount}/.mlci"\n', 1))
    write_experiments(mount / ".mlci", project.config_path)
    if root:
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
    else:
        subprocess.run(["chmod", "-R", "a-w", str(mount)], check=True)
    try:
        yield
    finally:
        if root:
            subprocess.run(["umount", "-l", str(mount)], check=False)
        else:
            subprocess.run(["chmod", "-R", "u+w", str(mount)], check=False)


async def test_a_read_only_store_offers_no_acting_keys(project: Project, tmp_path: Path) -> None:
    with readonly_experiments(project, tmp_path / "mount"):
        assert load_config(project.config_path).pipeline.state_dir.parent == tmp_path / "mount"
        app, spawned = spawning(project)
        async with app.run_test(size=(160, 30)) as pilot:
            await until(pilot, lambda: app.snapshot.readonly)
            screen = await opened(pilot, app)
            keys = str(screen.query_one(KeyBar).render())
            assert "Mark" in keys and "Diff" in keys
            for word in ("Promote", "Start queue", "Cancel"):
                assert word not in keys, keys
            await to_row(pilot, screen, 2)
            await pilot.press("P", "s")
            await to_row(pilot, screen, 6)
            await pilot.press("c")
            await settle(pilot)
            assert app.screen is screen
        assert spawned == []


LIVE = """
[pipeline]
name = "sweep"

[params]
train.lr = 0.1

[stages.train]
command = '''
echo "::metric step=1 loss=$MLCI_PARAM_TRAIN_LR"
touch "$SYNC/started-$MLCI_PARAM_TRAIN_LR"
while [ ! -e "$SYNC/go-$MLCI_PARAM_TRAIN_LR" ]; do sleep 0.02; done
echo "::metric step=2 loss=0.5"
'''
params = ["train"]

[stages.evaluate]
command = "echo ::metric accuracy=0.9"
needs = ["train"]
"""


async def test_s_and_c_start_and_cancel_real_experiments_the_table_shows_live(
    project: Project, tmp_path_factory, monkeypatch
) -> None:
    # Outside the project: an experiment sees the project as it was when it started.
    sync = tmp_path_factory.mktemp("sync")
    project.write(LIVE)
    monkeypatch.setenv("SYNC", str(sync))  # the spawned `mlci exp start` passes it on
    queued = project.mlci("exp", "run", "--set", "train.lr=1,2", "--queue")
    assert queued.returncode == 0, queued.stderr
    app = dashboard(project)
    try:
        async with app.run_test(size=(120, 30)) as pilot:
            screen = await opened(pilot, app, count=2)
            assert column(screen, "state") == ["queued", "queued"]
            await pilot.press("s")  # the real `mlci exp start --detach`
            await until(pilot, lambda: column(screen, "state") == ["running", "running"])
            await until(pilot, lambda: column(screen, "progress") == ["0/2", "0/2"])
            (sync / "go-1.0").touch()
            await until(pilot, lambda: column(screen, "state")[0] == "passed")
            assert column(screen, "progress")[0] == "2/2"
            await to_row(pilot, screen, 2)
            await pilot.press("c")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("y")  # the real `mlci exp cancel 2`
            await until(pilot, lambda: column(screen, "state")[1] == "cancelled")
            # Its run's logs and metrics stay: Enter shows them on the main screen.
            await pilot.press("enter")
            await until(pilot, lambda: app.snapshot.experiment is not None)
            assert app.snapshot.experiment.id == 2  # type: ignore[union-attr]
    finally:
        (sync / "go-2.0").touch()


PROMOTED = """
[pipeline]
name = "sweep"

[params]
train.seed = 1

[stages.train]
command = "mkdir -p build && echo model $MLCI_PARAM_TRAIN_SEED > build/model.txt"
params = ["train"]
deps = ["data.txt"]
outs = ["build/model.txt"]
artifact = "build/model.txt"

[stages.evaluate]
command = "echo ::metric accuracy=0.9"
needs = ["train"]

[deploy]
command = 'cp "$MLCI_MODEL_PATH" served.txt'
"""


async def test_p_y_promotes_a_real_experiment_and_deploys_it(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.write(PROMOTED)
    (project.path / "data.txt").write_text("data\n")
    assert project.mlci("run").returncode == 0  # v1, live
    swept = project.mlci("exp", "run", "--set", "train.seed=2,3")
    assert swept.returncode == 0, swept.stderr
    # As `mlci serve` starts a dashboard: the audit trail names the promotion's actor.
    monkeypatch.setenv("MLCI_ACTOR", "web:3fa2c1d0")
    app = dashboard(project)  # the real spawner: a detached `mlci exp promote`
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.snapshot.live is not None)
        screen = await opened(pilot, app, count=2)
        await to_row(pilot, screen, 2)
        await pilot.press("P")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: app.snapshot.live is not None and app.snapshot.live.number == 2)
    assert (project.path / "served.txt").read_text() == "model 3\n"
    store = Store.open(project.state_dir)
    try:
        assert store.versions.get(2).experiment_id == 2  # type: ignore[union-attr]
        assert store.deployments.all()[0].user == "web:3fa2c1d0"
    finally:
        store.close()


async def test_question_mark_lists_the_screens_own_keys_and_acts_on_nothing_beneath(
    project: Project,
) -> None:
    sweep(project)
    app, spawned = spawning(project)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await opened(pilot, app)
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        await settle(pilot)
        text = help_text(app)
        assert "Experiments · focused" in text.splitlines()[1], text
        # Every key of the screen but those the app takes first (ctrl+c quits).
        for binding in without(bindings_of(ExperimentsScreen), ["ctrl+c", "ctrl+q"]):
            row = f"{key_text(app, binding)} "
            assert any(
                line.startswith(row) and binding.description in line for line in text.splitlines()
            ), f"{binding.key} ({binding.description}) is not in the help"
        # q closes the experiments here, so the dashboard's "q Quit" is not offered;
        # ctrl+c quits (the app's, first), so it is not said to copy.
        lines = text.splitlines()
        assert not any(line.startswith("q ") and "Quit" in line for line in lines)
        assert not any(line.startswith("^c") and "Copy" in line for line in lines), text
        assert any(line.startswith("^c ") and "Quit" in line for line in lines), text
        # The main screen's keys act on nothing under the help: no run is started.
        await pilot.press("r", "s", "P")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen) and spawned == []
        await pilot.press("question_mark")
        await until(pilot, lambda: app.screen is screen)


async def test_a_version_promoted_from_an_experiment_says_so_in_the_versions_and_rollback(
    project: Project,
) -> None:
    project.write(PROMOTED)
    (project.path / "data.txt").write_text("data\n")
    assert project.mlci("run").returncode == 0  # v1, from run 1
    swept = project.mlci("exp", "run", "--set", "train.seed=2,3")
    assert swept.returncode == 0, swept.stderr
    promoted = project.mlci("exp", "promote", "2", "--reason", "best")
    assert promoted.returncode == 0, promoted.stderr  # v2, live
    store = Store.open(project.state_dir)
    try:
        assert store.versions.get(2).experiment_id == 2  # type: ignore[union-attr]
    finally:
        store.close()
    app = dashboard(project)
    async with app.run_test(size=(160, 40)) as pilot:
        await shown(pilot, lambda: app.snapshot.live is not None and app.snapshot.live.number == 2)
        table = app.query_one(VersionTable)
        await until(pilot, lambda: len(table.versions) == 2)

        def description(number: int) -> str:
            return table.get_cell(str(number), "description").plain

        # As `mlci versions` says it, whatever the deploy's reason became since.
        assert description(2).startswith("from experiment #2")
        assert "experiment" not in description(1)
        table.focus()
        await pilot.press("R")  # back to v1: the live v2 on the left says what made it
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        confirm = app.screen
        assert isinstance(confirm, ConfirmScreen)
        console = Console(width=150, record=True, color_system=None, file=io.StringIO())
        console.print(confirm.body)
        built = next(line for line in console.export_text().splitlines() if "built by" in line)
        assert built.split() == ["built", "by", "experiment", "#2", "run", "1"]
        await pilot.press("n")


async def test_the_header_says_where_the_experiments_are_where_there_is_room(
    project: Project,
) -> None:
    project.write(PROMOTED)
    (project.path / "data.txt").write_text("data\n")
    assert project.mlci("run").returncode == 0  # the workspace's run the header shows
    queued = project.mlci("exp", "run", "--set", "train.seed=2,3", "--queue")
    assert queued.returncode == 0, queued.stderr
    app = dashboard(project)
    async with app.run_test(size=(160, 30)) as pilot:
        await shown(pilot)
        header = app.query_one(HeaderBar)
        await until(
            pilot, lambda: header.render().plain.endswith(" · experiments: 2 queued (e)"), 10
        )
        assert " · run 1 passed " in header.render().plain  # still the workspace's run
        started = project.mlci("exp", "start")
        assert started.returncode == 0, started.stderr
        await until(pilot, lambda: header.render().plain.endswith(" · experiments: 2 (e)"))
        # Narrower: fewer words, and never in place of what the run and versions say.
        await pilot.resize_terminal(60, 30)
        await until(pilot, lambda: header.size.width < 60)
        await settle(pilot)
        narrow = header.render().plain
        assert narrow.endswith(" · live v1 · 2 exp (e)")
        header.snapshot = replace(header.snapshot, experiments=(0, 0, 0))
        assert header.render().plain == narrow.removesuffix(" · 2 exp (e)")
