"""What each pane shows and how it moves: stages before any run and stages the run
shown lacks, the stage pane's width and names, the version cursor and its marker,
live metrics, switching runs, the alerts, the cancel wording and the palette."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from textual import events
from textual.binding import Binding
from textual.command import Command, CommandList
from textual.pilot import Pilot
from textual.scrollbar import ScrollBar
from textual.widgets import DataTable, Static

from mlci_tui.states import RunState
from mlci_tui.tui.app import MlciApp
from mlci_tui.tui.palette import dashboard_commands
from mlci_tui.tui.screens.alerts_screen import AlertsScreen
from mlci_tui.tui.screens.confirm import ConfirmScreen
from mlci_tui.tui.text import middle_cut
from mlci_tui.tui.widgets.alert_bar import AlertBar
from mlci_tui.tui.widgets.log_view import LogView
from mlci_tui.tui.widgets.stage_pane import StageList, StagePane
from mlci_tui.tui.widgets.version_table import MARKER, VersionTable
from tests.helpers import (
    PIPELINE,
    PROGRAMS,
    PYTHON,
    QUICK,
    Project,
    dashboard,
    readonly_store,
    run,
    run_state,
    settle,
    setup,
    shown,
    text_of,
    two_versions,
    until,
)


def pane_text(pane: StagePane) -> list[str]:
    return pane.render().plain.splitlines()


def by_name(app) -> dict[str, StagePane]:
    return {pane.stage_name: pane for pane in app.query_one(StageList).panes()}


async def chosen(pilot: Pilot, typed: str) -> None:
    """Wait until the palette has searched for what was typed, and the command Enter
    runs is the one named so (the best match is highlighted when the search ends)."""
    commands = pilot.app.screen.query_one(CommandList)

    def highlighted() -> str | None:
        option = commands.highlighted_option
        return option.hit.text if isinstance(option, Command) else None

    await settle(pilot)
    await until(pilot, lambda: (highlighted() or "").lower() == typed, what=f"{typed!r} chosen")


async def test_a_pipeline_that_never_ran_shows_its_stages_pending_with_their_needs(
    project: Project,
) -> None:
    setup(project)
    app = dashboard(project)
    async with app.run_test(size=(100, 30)) as pilot:
        await shown(pilot, lambda: len(by_name(app)) == 4)
        panes = by_name(app)
        assert list(panes) == ["train", "evaluate", "deploy", "monitor"]
        assert "pending" in pane_text(panes["train"])[0]
        assert pane_text(panes["train"])[1].strip() == "needs nothing"
        assert pane_text(panes["evaluate"])[1].strip() == "needs train"
        assert pane_text(panes["deploy"])[1].strip() == "needs train, evaluate"
        assert pane_text(panes["monitor"])[1].strip() == "needs deploy"


# A stage that reads train's artifact without naming train, before mlci's own tables.
_REPORT = '[stages.report]\ncommand = "true"\ndeps = ["build/model.txt"]\n\n'
_FULL = (
    PIPELINE.replace("[deploy]", _REPORT + "[deploy]")
    .replace("{policy}", "true")
    .replace("{keep}", "20")
    .replace("{deploy_timeout}", "30s")
)


@pytest.mark.parametrize(
    "text",
    [_FULL.split("[deploy]")[0], _FULL.split("[monitor]")[0], _FULL],
    ids=["stages", "deploy", "deploy_and_monitor"],
)
def test_the_stages_shown_before_a_run_are_those_a_full_run_runs(
    project: Project, text: str
) -> None:
    """The panes before a run (`MlciApp.planned_stages`) are the runner's stages, mlci's
    deploy and monitor included, each needing what the run's stage needed."""
    project.write(text)
    planned = dashboard(project).planned_stages
    assert project.mlci("run").returncode == 0
    ran = {stage["name"]: stage["needs"] for stage in project.status()["stages"]}
    # A need is shown as its name, then the outs read of it: `train (its out …)`.
    assert {name: [need.split(" ")[0] for need in needs] for name, needs in planned.items()} == ran
    assert planned["report"] == ("train (its out build/model.txt)",)


async def test_a_stage_needed_for_its_outs_is_shown_with_them_and_their_controls_visible(
    project: Project,
) -> None:
    # An out whose name carries a title escape and a direction override.
    project.write(
        '[stages.train]\ncommand = "true"\ndeps = ["data"]\n'
        '[stages.prepare]\ncommand = "true"\nouts = ["data/clean\\u001b]0;x\\u0007\\u202e.csv"]\n'
    )
    app = dashboard(project)
    async with app.run_test(size=(100, 30)) as pilot:
        await shown(pilot, lambda: len(by_name(app)) == 2)
        needs = " ".join(line.strip() for line in pane_text(by_name(app)["train"])[1:])
        assert needs == "needs prepare (its out data/clean<U+202E>.csv)"


async def test_a_stage_added_since_the_run_shown_is_not_in_this_run(project: Project) -> None:
    project.write(QUICK)
    assert project.mlci("run").returncode == 0
    project.write(QUICK + '[stages.added]\ncommand = "true"\nneeds = ["after"]\n')
    app = dashboard(project)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: "added" in by_name(app))
        await until(pilot, lambda: run_state(app) is RunState.PASSED)
        # A pane mounted this moment has no width yet and renders as "…".
        await until(pilot, lambda: "passed" in pane_text(by_name(app)["hello"])[0])
        assert "not in this run" in pane_text(by_name(app)["added"])[0]


@pytest.mark.parametrize("width", [80, 200])
async def test_a_long_stage_name_is_cut_in_the_middle_never_its_state(
    project: Project, width: int
) -> None:
    name = "prepare_the_training_data_from_the_warehouse_snapshot"
    project.write(f'[stages.{name}]\ncommand = "true"\n[stages.b]\ncommand = "true"\n')
    assert project.mlci("run").returncode == 0
    app = dashboard(project)
    async with app.run_test(size=(width, 30)) as pilot:
        await shown(pilot, lambda: run_state(app) is RunState.PASSED)
        box = app.query_one("#stages-box")
        assert box.outer_size.width >= 30 and box.outer_size.width >= width * 0.3
        title = pane_text(by_name(app)[name])[0]
        assert " passed" in title
        if width == 200:
            assert title.split()[1] == name  # room enough for the whole name
        else:
            head, tail = title.split()[1].split("\u2026")
            assert name.startswith(head) and name.endswith(tail) and len(tail) >= 3
    assert middle_cut("abcdefghij", 5) == "ab\u2026ij"
    assert middle_cut("short", 5) == "short"


async def test_v_lands_on_the_version_rollback_would_choose_and_marks_it(
    project: Project,
) -> None:
    setup(project)
    for seed in (1, 2, 3):
        assert run(project, seed) == 0
    spawned: list[list[str]] = []
    app = dashboard(project, spawn=lambda args: spawned.append(args) or True)
    async with app.run_test(size=(100, 30)) as pilot:
        table = app.query_one(VersionTable)
        await until(pilot, lambda: len(table.versions) == 3)
        await pilot.press("v")
        await settle(pilot)
        assert table.selected_version is not None and table.selected_version.name == "v2"
        marked = [str(table.get_cell_at((row, 0))) for row in range(3)]
        assert marked == [" ", MARKER, " "]
        await pilot.press("down")
        await settle(pilot)
        assert [str(table.get_cell_at((row, 0))) for row in range(3)] == [" ", " ", MARKER]
        await pilot.press("up", "R")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert app.screen.title_text == "Roll production back to v2?"
        await pilot.press("y")
        await until(pilot, lambda: spawned)
    assert spawned == [["rollback", "v2", "--reason", "from the dashboard"]]


async def test_no_color_keeps_every_status_readable(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    two_versions(project)
    app = dashboard(project)
    async with app.run_test(size=(100, 30)) as pilot:
        table = app.query_one(VersionTable)
        await until(pilot, lambda: len(table.versions) == 2)
        # The terminal's own colours, filtered to none: not a grey palette.
        assert app.ansi_color
        assert not any(f.__class__.__name__ == "Monochrome" for f in app._filters)


async def test_versions_show_the_monitor_latest_metrics_beside_the_evaluation(
    project: Project,
) -> None:
    setup(project)
    assert run(project, 1) == 0
    (project.path / "quality").write_text("0.5875")
    assert run(project, 2) == 1  # v2 is rolled back for its live accuracy
    versions = {v["version"]: v for v in json.loads(project.mlci("versions", "--json").stdout)}
    assert {"stage": "evaluate", "name": "accuracy", "value": 0.9} in versions["v2"]["metrics"]
    assert versions["v2"]["live_metrics"] == [
        {"stage": "monitor", "name": "accuracy", "value": 0.5875}
    ]
    table_text = project.mlci("versions").stdout.decode()
    assert "LIVE" in table_text.splitlines()[0]
    assert "accuracy 0.5875" in next(line for line in table_text.splitlines() if "v2" in line)
    app = dashboard(project)
    async with app.run_test(size=(120, 30)) as pilot:
        table = app.query_one(VersionTable)
        await until(pilot, lambda: len(table.versions) == 2)
        live_column = [c.label.plain for c in table.columns.values()].index("LIVE")
        assert str(table.get_cell_at((0, live_column))) == "accuracy 0.5875"


async def test_switching_runs_keeps_the_selected_stage(project: Project) -> None:
    project.write(QUICK)
    for _ in range(2):
        assert project.mlci("run").returncode == 0
    app = dashboard(project)
    async with app.run_test(size=(100, 30)) as pilot:
        stages = app.query_one(StageList)
        await until(pilot, lambda: run_state(app) is RunState.PASSED)
        stages.focus()
        await pilot.press("up")  # from "after" to "hello"
        await until(pilot, lambda: stages.selected_name == "hello")
        await pilot.press("p")
        await until(pilot, lambda: app.screen.__class__.__name__ == "RunsScreen")
        await pilot.press("down", "enter")  # run 1
        await shown(pilot, lambda: app.snapshot.run is not None and app.snapshot.run.id == 1)
        assert stages.selected_name == "hello"
        log = app.query_one(LogView)
        assert log.path is not None and log.path.parts[-2:] == ("1", "hello.log")


async def test_a_shows_the_alerts_and_acknowledging_them_clears_the_bar(
    project: Project,
) -> None:
    two_versions(project)
    (project.path / "fail-deploy").touch()
    assert run(project, 3) == 1  # deploy_failed and run_failed
    app = dashboard(project)
    async with app.run_test(size=(100, 30)) as pilot:
        bar = app.query_one(AlertBar)
        # Once shown and laid out: the bar cuts its text to its width.
        await until(pilot, lambda: bar.has_class("-shown") and bar.size.width > 1)
        assert "run_failed" in bar.render().plain and "(+1 more)" in bar.render().plain
        await pilot.press("A")
        await until(pilot, lambda: isinstance(app.screen, AlertsScreen))
        kinds = [alert.kind for alert in app.screen.alerts]
        assert kinds == ["run_failed", "deploy_failed"]  # newest first
        await pilot.press("enter")  # the newest one; the dialog stays open
        await until(pilot, lambda: "deploy_failed" in bar.render().plain)
        assert isinstance(app.screen, AlertsScreen)
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, AlertsScreen))
        await pilot.press("A")
        await until(pilot, lambda: isinstance(app.screen, AlertsScreen))
        await pilot.press("A")  # all the rest, and the dialog closes
        await until(pilot, lambda: not isinstance(app.screen, AlertsScreen))
        await until(pilot, lambda: not bar.has_class("-shown"))
    alerts = json.loads(project.mlci("alerts", "--json").stdout)["alerts"]
    assert all(alert["acknowledged_at"] for alert in alerts)


async def test_several_alerts_are_acknowledged_one_by_one_in_one_visit(
    project: Project,
) -> None:
    two_versions(project)
    (project.path / "fail-deploy").touch()
    assert run(project, 3) == 1  # deploy_failed and run_failed
    (project.path / "fail-deploy").unlink()
    assert run(project, 4) == 0
    (project.path / "fail-deploy").touch()
    assert run(project, 5) == 1  # two more
    app = dashboard(project)
    async with app.run_test(size=(100, 30)) as pilot:
        await shown(pilot)
        await pilot.press("A")
        await until(pilot, lambda: isinstance(app.screen, AlertsScreen))
        screen = app.screen
        assert isinstance(screen, AlertsScreen)
        ids = [alert.id for alert in screen.alerts]
        assert len(ids) == 4
        # Enter on the first, then on the third: each acknowledged at once, the
        # dialog open all along, each row saying so.
        await pilot.press("enter", "down", "enter")

        def acknowledged() -> set[int]:
            return {a.id for a in app.reader.alerts() if a.acknowledged_at is not None}

        await until(pilot, lambda: acknowledged() == {ids[0], ids[2]})
        assert app.screen is screen
        table = screen.query_one(DataTable)
        states = [table.get_row_at(row)[0].plain for row in range(4)]
        assert states == ["seen", "NEW", "seen", "NEW"]
        assert "2 not acknowledged" in str(screen.query_one("#alerts-title", Static).render())
        # As drawn: every alert was new when the dialog opened, and the state column
        # still shows the longer word whole (not "see").
        await settle(pilot)
        drawn = [text_of(strip) for strip in screen._compositor.render_strips()]
        rows = [line for line in drawn if "█" in line and "_failed " in line]
        assert len(rows) == 4, drawn
        assert [" seen " in row for row in rows] == [True, False, True, False], rows


async def test_the_cancel_dialog_says_what_each_key_does(project: Project) -> None:
    project.write('[stages.s]\ncommand = "sleep 30"\n')
    app = dashboard(project)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("r", "enter")
        await until(pilot, lambda: run_state(app) is RunState.RUNNING)
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        text = "\n".join(str(s.render()) for s in app.screen.query("Static"))
        assert "y / Enter: cancel the run · n / Esc: keep it running" in text
        await pilot.press("enter")
        await until(pilot, lambda: run_state(app) is RunState.CANCELLED)


async def test_the_palette_runs_the_dashboard_commands(project: Project) -> None:
    two_versions(project)
    app = dashboard(project)
    async with app.run_test(size=(100, 30)) as pilot:
        table = app.query_one(VersionTable)
        await until(pilot, lambda: len(table.versions) == 2)
        await pilot.press("ctrl+p")
        await until(pilot, lambda: app.screen.__class__.__name__ == "CommandPalette")
        await pilot.press(*"roll back to v1")
        await chosen(pilot, "roll back to v1")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert app.screen.title_text == "Roll production back to v1?"
        await pilot.press("n")
        await until(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
        await pilot.press("ctrl+p")
        await until(pilot, lambda: app.screen.__class__.__name__ == "CommandPalette")
        await pilot.press(*"show stage evaluate")
        await chosen(pilot, "show stage evaluate")
        await pilot.press("enter")
        stages = app.query_one(StageList)
        await until(pilot, lambda: stages.selected_name == "evaluate")
        await pilot.press("ctrl+p")
        await until(pilot, lambda: app.screen.__class__.__name__ == "CommandPalette")
        await pilot.press(*"wrap")
        await chosen(pilot, "wrap")
        await pilot.press("enter")
        await until(pilot, lambda: app.query_one(LogView).wrap)
        await pilot.press("ctrl+p")
        await until(pilot, lambda: app.screen.__class__.__name__ == "CommandPalette")
        await pilot.press(*"graph")
        await chosen(pilot, "graph")
        await pilot.press("enter")
        await until(pilot, lambda: app.screen.__class__.__name__ == "GraphScreen")


async def test_the_palette_names_every_action_the_keys_offer(project: Project) -> None:
    """As the help names them; a read-only dashboard's palette leaves out those that act,
    as its keys do. Next and previous match only go on with a search `/` started."""
    two_versions(project)
    for read_only in (False, True):
        app = dashboard(project, read_only=read_only)
        async with app.run_test(size=(100, 30)) as pilot:
            await until(pilot, lambda: len(app.query_one(VersionTable).versions) == 2)  # noqa: B023
            names = {name for name, _, _ in dashboard_commands(app)}
            keys = {
                binding.description
                for binding in [*MlciApp.BINDINGS, *LogView.DASHBOARD_BINDINGS]
                if isinstance(binding, Binding) and app.offers(binding.action)
            }
            missing = keys - names - {"Commands", "Next match", "Previous match", "Answer"}
            assert missing == set(), (read_only, missing)
            assert read_only == ("Roll back" not in names), names
            # No decision is pending: nothing to answer, as the key bar says.
            assert "Answer" not in names, names


async def test_answer_with_no_decision_pending_says_so_and_the_dashboard_goes_on(
    project: Project,
) -> None:
    """The palette lists Answer only while a decision is pending, as `a` acts only
    then; one that was answered elsewhere between the listing and the choice is said
    so. Before, the palette listed it always, and choosing it crashed the dashboard
    (IndexError on the decisions)."""
    two_versions(project)
    app = dashboard(project)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: len(app.query_one(VersionTable).versions) == 2)
        assert app.snapshot.decisions == ()
        assert "Answer" not in {name for name, _, _ in dashboard_commands(app)}
        app.action_answer()  # as a palette listed before the decision was answered
        await settle(pilot)
        assert app.is_running
        assert [n.message for n in app._notifications] == ["no decision is pending"]


async def test_a_progress_bar_is_one_line_in_the_pane_and_the_log(project: Project) -> None:
    bar = "".join(f"{i:3d}%\r" for i in range(0, 100, 10)).encode().hex()
    project.write(f'[stages.bar]\ncommand = ["{PYTHON}", "{PROGRAMS}/raw.py", "{bar}31303025"]\n')
    assert project.mlci("run").returncode == 0
    app = dashboard(project)
    async with app.run_test(size=(100, 30)) as pilot:
        log = app.query_one(LogView)
        await shown(pilot, lambda: log.index is not None and len(log.index) == 1)
        assert text_of(log.render_line(0)).strip() == "100%"
        assert pane_text(by_name(app)["bar"])[1].strip() == "100%"


async def test_notices_are_plain_text_and_textual_own_keep_their_markup(
    project: Project,
) -> None:
    from textual.widgets._toast import Toast

    project.write(QUICK)
    app = dashboard(project)
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        app.say("stage [b]x[/b] printed \x1b]0;title\x07")  # untrusted: shown as it is
        app.notify("press [b]q[/b] to quit")  # Textual's own way: markup

        def placed() -> bool:
            # Both there, and laid out (a frame after they are mounted).
            toasts = list(app.screen.query(Toast))
            return len(toasts) == 2 and all(toast.region.width for toast in toasts)

        await until(pilot, placed)
        shown = [str(toast.render()) for toast in app.screen.query(Toast)]
        assert shown[0].startswith("stage [b]x[/b] printed ") and "\x1b" not in shown[0]
        assert shown[1] == "press q to quit"
        # At the top right, under the header: clear of the versions at the bottom.
        first = min(toast.region.y for toast in app.screen.query(Toast))
        assert 1 <= first <= 3
        assert all(toast.region.right >= 95 for toast in app.screen.query(Toast))


async def test_a_read_only_store_is_shown(project: Project, tmp_path: Path) -> None:
    with readonly_store(project, tmp_path / "mount"):
        app = dashboard(project)
        async with app.run_test(size=(120, 30)) as pilot:
            table = app.query_one(VersionTable)
            await until(pilot, lambda: len(table.versions) == 2)
            assert app.snapshot.run is not None and app.snapshot.run.id == 2


STAGE_KEYS = ["down", "up", "pagedown", "pageup", "home", "end", "wheel down", "wheel up"]


def many_stages(project: Project, count: int) -> MlciApp:
    """A dashboard on a passed run of ``count`` stages, each printing its name."""
    project.write(
        "".join(f'[stages.s{i:03d}]\ncommand = "echo out of s{i:03d}"\n' for i in range(count))
    )
    assert project.mlci("run").returncode == 0
    return dashboard(project)


@pytest.mark.parametrize("seed", [1, 2])
async def test_many_stages_keep_panes_for_those_in_view_each_showing_its_own_stage(
    project: Project, seed: int
) -> None:
    """Random keys and wheel turns through 120 stages: the panes are as many as fit,
    they show consecutive stages, each with its own run's figures and output, and the
    selected stage is in view, marked, after every key (the wheel leaves it where it
    is, as a scrolled list does)."""
    count = 120
    app = many_stages(project, count)
    async with app.run_test(size=(80, 24)) as pilot:
        stages = app.query_one(StageList)
        await shown(pilot, lambda: run_state(app) is RunState.PASSED)
        stages.focus()
        moves = random.Random(seed)
        for _ in range(40):
            key = moves.choice(STAGE_KEYS)
            selected_before = stages.selected_name
            if key.startswith("wheel"):
                await pilot.mouse_down(StageList)  # the pointer over the list
                await pilot.mouse_up(StageList)
                event = events.MouseScrollDown if key.endswith("down") else events.MouseScrollUp
                stages.post_message(event(stages, 1, 1, 0, 0, 0, False, False, False))
            else:
                await pilot.press(key)
            await settle(pilot)
            panes = stages.panes()
            widgets = list(app.query(StagePane))
            assert widgets == panes and 1 <= len(panes) <= stages.size.height
            shown_names = [pane.stage_name for pane in panes]
            assert shown_names == stages.names[stages.top : stages.top + len(panes)]
            for pane in panes:
                assert pane.record is not None and pane.record.name == pane.stage_name
                assert pane.last_lines[-1].content == f"out of {pane.stage_name}".encode()
                assert pane_text(pane)[0][1:].startswith(f"\u2713 {pane.stage_name}")
            marked = [pane.stage_name for pane in panes if pane.selected]
            if key.startswith("wheel"):
                assert stages.selected_name == selected_before
                assert marked == ([selected_before] if selected_before in shown_names else [])
            else:
                assert marked == [stages.selected_name]
            assert app.query_one(LogView).path.name == f"{stages.selected_name}.log"
        # More stages than rows: the scrollbar says where the view is.
        assert stages.has_class("-overflow")


async def test_the_stage_lists_scrollbar_scrolls_it_when_dragged_or_clicked(
    project: Project,
) -> None:
    count = 120
    app = many_stages(project, count)
    async with app.run_test(size=(80, 24)) as pilot:
        stages = app.query_one(StageList)
        await shown(pilot, lambda: run_state(app) is RunState.PASSED)
        bar = stages.query_one(ScrollBar)
        stages.focus()
        await pilot.press("home")
        await settle(pilot)
        assert stages.top == 0
        # The thumb, at the top, dragged down half the bar: the view follows it.
        await pilot.mouse_down(bar, offset=(0, 0))
        await pilot.hover(bar, offset=(0, bar.size.height // 2))
        await pilot.mouse_up(bar, offset=(0, bar.size.height // 2))
        await settle(pilot)
        assert count // 4 < stages.top < count * 3 // 4
        shown_names = [pane.stage_name for pane in stages.panes()]
        assert shown_names == stages.names[stages.top : stages.top + len(shown_names)]
        assert stages.selected_name == "s000"  # the selection stays where it was
        # A click below the thumb: a page down.
        dragged = stages.top
        await pilot.click(bar, offset=(0, bar.size.height - 1))
        await settle(pilot)
        assert stages.top == dragged + len(stages.panes())


async def test_a_stage_of_a_run_whose_runner_is_gone_has_no_clock(project: Project) -> None:
    """The header's clock stops when the runner is gone (README), and so does the
    running stage's: a store that cannot be written to mark the run interrupted (a
    full disk, a read-only store) keeps it `running` for as long as one looks.
    Before, the stage's duration went on ticking from its start."""
    import socket
    import subprocess
    import sys

    from mlci_tui.config import load_config
    from mlci_tui.states import StageState
    from mlci_tui.store import Store
    from mlci_tui.tui.app import make_app

    setup(project)
    config = load_config(project.config_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    t0 = 1_700_000_000.0
    store = Store.open(config.pipeline.state_dir)
    run_id = store.runs.create(
        "tiny",
        [("train", (), 1)],
        started_at=t0,
        pid=dead.pid,
        pid_started=None,
        host=socket.gethostname(),
        config_path=str(project.config_path),
    )
    store.runs.update_stage(
        run_id,
        "train",
        state=StageState.RUNNING,
        attempt=1,
        started_at=t0 + 1,
        cpu_percent=97.0,
        rss_bytes=310 << 20,
    )
    store.close()
    now = [t0 + 60]
    # The `mlci recover` it starts is asked for, not started: as when it cannot write.
    app = make_app(
        config,
        clock=lambda: now[0],
        poll_interval=0.1,
        spawn=lambda args: subprocess.Popen(["true"]),
    )
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.snapshot.runner_gone)
        pane = by_name(app)["train"]
        await settle(pilot)
        first = pane_text(pane)[0]
        now[0] += 3600
        await until(pilot, lambda: pane.now == now[0])
        await settle(pilot)
        assert pane_text(pane)[0] == first
        assert "running" in first and "s" not in first.split("running", 1)[1], first
