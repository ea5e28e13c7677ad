"""The keys are declared once, as bindings: the help screen and the README's key
table are checked against them."""

from __future__ import annotations

import re

from textual.containers import VerticalScroll
from textual.widgets import Static

from mlci_tui.tui.app import MlciApp
from mlci_tui.tui.keys import bindings_of, key_text
from mlci_tui.tui.screens.help import HelpScreen
from mlci_tui.tui.widgets.log_view import LogView
from mlci_tui.tui.widgets.stage_pane import StageList
from mlci_tui.tui.widgets.version_table import VersionTable
from tests.helpers import QUICK, ROOT, Project, dashboard, until


def help_text(app: MlciApp) -> str:
    return "\n".join(str(static.content) for static in app.screen.query(Static))


async def test_the_help_screen_lists_every_binding_of_every_pane(project: Project) -> None:
    project.write(QUICK)
    app = dashboard(project)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        text = help_text(app)
        panes = [MlciApp, StageList, LogView, VersionTable]
        every = [*LogView.DASHBOARD_BINDINGS, *(b for pane in panes for b in bindings_of(pane))]
        assert len(every) > 30
        for binding in every:
            row = f"{key_text(app, binding)} "
            assert any(
                line.startswith(row) and line.rstrip().endswith(binding.description)
                for line in text.splitlines()
            ), f"{binding.key} ({binding.description}) is not in the help"
        for title, _ in app.key_groups():
            assert title in text


async def test_the_help_screen_fits_80x24_and_scrolls(project: Project) -> None:
    project.write(QUICK)
    app = dashboard(project)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.pause(0.2)
        scroll = app.screen.query_one(VerticalScroll)
        assert scroll.size.width >= 60 and scroll.size.height >= 15  # not a collapsed frame
        assert scroll.virtual_size.height > scroll.size.height
        await pilot.press("end")
        await pilot.pause(0.2)
        assert scroll.scroll_y == scroll.max_scroll_y > 0
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, HelpScreen))


def readme_keys() -> set[str]:
    """The keys in the README's table of the dashboard's keys."""
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("| key | what it does |") :]
    table = table[: table.index("\n\n")]
    keys: set[str] = set()
    for row in table.splitlines()[2:]:
        keys.update(re.findall(r"`([^`]+)`", row.split("|")[1]))
    return keys


async def test_the_readme_key_table_matches_the_bindings(project: Project) -> None:
    project.write(QUICK)
    app = dashboard(project)
    async with app.run_test(size=(80, 24)):
        bound = {key_text(app, b) for b in MlciApp.BINDINGS if not isinstance(b, tuple)}
        bound.add("tab")  # the screen's own: next pane
        assert readme_keys() == bound
