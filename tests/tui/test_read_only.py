"""`mlci tui --read-only`: nothing that acts is offered — not in the palette, the
alerts, the experiments, nor (`test_keys`) the main screen's keys, help and key bar
— while everything that reads works; the header says so at every size."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable, Static

from mlci_tui.tui.app import MlciApp
from mlci_tui.tui.palette import DashboardCommands
from mlci_tui.tui.screens.alerts_screen import AlertsScreen
from mlci_tui.tui.screens.experiments_screen import ExperimentsScreen
from mlci_tui.tui.widgets.alert_bar import AlertBar
from mlci_tui.tui.widgets.header_bar import HeaderBar
from mlci_tui.tui.widgets.key_bar import KeyBar
from tests.helpers import (
    QUICK,
    Project,
    dashboard,
    run,
    settle,
    setup,
    shown,
    typed_in_a_terminal,
    until,
)
from tests.tui.test_experiments_screen import opened, sweep, to_row
from tests.tui.test_panes import chosen

Spawned = list[list[str]]
ACTING_COMMANDS = {"Run", "Re-run stage", "Re-run failed", "Cancel"}
"""The palette's names of the app's actions that act (`MlciApp.ACTING`)."""


def recording(project: Project, *, read_only: bool) -> tuple[MlciApp, Spawned]:
    spawned: Spawned = []
    app = dashboard(project, spawn=lambda args: spawned.append(args) or True, read_only=read_only)
    return app, spawned


def decision_waits(project: Project) -> None:
    """v1 live, v2 failed its analysis: a decision and alerts wait."""
    setup(project, policy='"ask"')
    assert run(project, seed=1) == 0
    (project.path / "quality").write_text("0.5")
    assert run(project, seed=2) == 1


@pytest.mark.parametrize("read_only", [False, True], ids=["acting", "read-only"])
async def test_the_palette_lists_what_acts_only_where_it_acts(
    project: Project, read_only: bool
) -> None:
    decision_waits(project)
    app, spawned = recording(project, read_only=read_only)
    async with app.run_test(size=(100, 30)) as pilot:
        await shown(pilot, lambda: len(app.snapshot.versions) == 2)
        names = {name for name, _, _ in DashboardCommands(app.screen).commands()}
        assert {"Search", "Runs", "Graph", "Alerts", "Open run 2", "Show stage train"} <= names
        acting = ACTING_COMMANDS | {"Roll back to v1"}
        assert (acting & names) == (set() if read_only else acting)
        await pilot.press("ctrl+p")
        await until(pilot, lambda: app.screen.__class__.__name__ == "CommandPalette")
        await pilot.press(*"roll back to v1")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        # Read-only, nothing is found: Enter confirms nothing.
        assert (app.screen.__class__.__name__ == "ConfirmScreen") is not read_only
        if read_only:
            await pilot.press("escape")
            await until(pilot, lambda: app.screen.__class__.__name__ != "CommandPalette")
            await pilot.press("ctrl+p")  # what reads still runs from it
            await until(pilot, lambda: app.screen.__class__.__name__ == "CommandPalette")
            await pilot.press(*"graph")
            await chosen(pilot, "graph")
            await pilot.press("enter")
            await until(pilot, lambda: app.screen.__class__.__name__ == "GraphScreen")
    assert spawned == []


async def test_read_only_the_alerts_are_read_not_acknowledged(project: Project) -> None:
    decision_waits(project)
    app, spawned = recording(project, read_only=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await shown(pilot, lambda: app.snapshot.decisions and app.snapshot.alerts)
        bar = app.query_one(AlertBar).render().plain
        assert bar.startswith("decision needed: v2 failed its analysis")
        assert "press a" not in bar
        await pilot.press("a")  # no answer here
        await settle(pilot)
        assert app.screen is app.screen_stack[0]
        await pilot.press("A")
        await until(pilot, lambda: isinstance(app.screen, AlertsScreen))
        screen = app.screen
        assert isinstance(screen, AlertsScreen)
        table = screen.query_one(DataTable)
        new = [row for row in range(table.row_count) if table.get_row_at(row)[0].plain == "NEW"]
        assert new
        hints = [str(s.render()) for s in screen.query(Static)]
        assert hints[-1] == "Esc: close"  # the keys line: no key that acknowledges
        offered = {b.binding.action for b in screen.active_bindings.values()}
        assert not offered & AlertsScreen.ACTING
        await pilot.press("enter", "A")
        await settle(pilot)
        assert app.screen is screen
        assert [table.get_row_at(row)[0].plain for row in new] == ["NEW"] * len(new)
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, AlertsScreen))
    assert spawned == []
    alerts = app.reader.alerts()
    assert alerts and not [alert for alert in alerts if alert.acknowledged_at]


async def test_read_only_the_experiments_offer_no_key_that_acts(project: Project) -> None:
    sweep(project)
    app, spawned = recording(project, read_only=True)
    async with app.run_test(size=(160, 30)) as pilot:
        screen = await opened(pilot, app)
        acting = [
            binding
            for binding in ExperimentsScreen.BINDINGS
            if not isinstance(binding, tuple) and binding.action in ExperimentsScreen.ACTING
        ]
        assert {b.key for b in acting} == {"P", "s", "c"}
        keys = str(screen.query_one(KeyBar).render())
        assert "Mark" in keys and "Sort" in keys
        assert str(screen.title_line.render()).startswith("experiments read-only · 6")
        offered = {b.binding.action for b in screen.active_bindings.values()}
        for binding in acting:
            assert binding.action not in offered
            assert f"{binding.key} {binding.description}" not in keys, keys
        for row in (2, 5, 6):  # passed, running, queued: each has something to act on
            await to_row(pilot, screen, row)
            for binding in acting:
                await pilot.press(binding.key)
                await settle(pilot)
                assert app.screen is screen
        # What reads still works: sort, and mark two to diff.
        await pilot.press("o")
        await settle(pilot)
        assert screen.sort != "id"
    assert spawned == []


@pytest.mark.parametrize("size", [(60, 15), (80, 24), (200, 50)], ids=str)
async def test_the_header_says_read_only_at_every_size(
    project: Project, size: tuple[int, int]
) -> None:
    project.write(
        QUICK.replace("[stages.hello]", '[pipeline]\nname = "' + "n" * 40 + '"\n[stages.hello]')
    )
    app, _ = recording(project, read_only=True)
    async with app.run_test(size=size) as pilot:
        await shown(pilot)
        header = app.query_one(HeaderBar).render().plain
        assert header.startswith(("mlci read-only ", "read-only ")), header
        assert "no runs yet" in header and "press r" not in header and "r starts" not in header
        assert "r Run" not in str(app.query_one(KeyBar).render())
    normal = dashboard(project)
    async with normal.run_test(size=size) as pilot:
        await shown(pilot)
        assert "read-only" not in normal.query_one(HeaderBar).render().plain


def test_mlci_tui_read_only_in_a_real_terminal(project: Project) -> None:
    project.write(QUICK)
    assert project.mlci("run").returncode == 0
    # "r" is offered nowhere: nothing opens, nothing runs.
    code, out = typed_in_a_terminal(project, ("tui", "--read-only"), b"rq")
    assert code == 0
    assert b"read-only" in out and b"Traceback" not in out
    assert b"Start a run" not in out
    assert not (project.state_dir / "runs" / "2").exists()  # no second run
