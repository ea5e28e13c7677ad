"""The keys are declared once, as bindings: the help screen and the README's key
table are checked against them."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.pilot import Pilot
from textual.widgets import Static

from mlci_tui.tui.app import MlciApp
from mlci_tui.tui.keys import bindings_of, key_text, keys_of
from mlci_tui.tui.screens.help import KEY_COLUMN, HelpScreen
from mlci_tui.tui.widgets.key_bar import KeyBar
from mlci_tui.tui.widgets.log_view import LogView
from mlci_tui.tui.widgets.stage_pane import StageList
from mlci_tui.tui.widgets.version_table import VersionTable
from tests.helpers import (
    PROGRAMS,
    PYTHON,
    QUICK,
    ROOT,
    Project,
    dashboard,
    help_lines,
    help_text,
    notices,
    run,
    settle,
    setup,
    shown,
    text_of,
    until,
)


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
                line.startswith(row) and binding.description in line for line in text.splitlines()
            ), f"{binding.key} ({binding.description}) is not in the help"
        for title, _ in app.key_groups():
            assert title in text


async def test_the_help_lists_the_focused_panes_keys_first(project: Project) -> None:
    project.write(QUICK)
    app = dashboard(project)
    async with app.run_test(size=(80, 24)) as pilot:
        await shown(pilot)
        for keys, pane in (((), "Stages"), (("tab",), "Log"), (("v",), "Versions")):
            await pilot.press(*keys, "question_mark")
            await until(pilot, lambda: isinstance(app.screen, HelpScreen))
            await settle(pilot)
            titles = [line for line in help_lines(app) if line and not line.startswith(" ")]
            # "Keys", then the first group's title.
            assert titles[1].startswith(pane) and titles[1].endswith("· focused"), titles[:3]
            assert "Everywhere" in titles[2:]
            await pilot.press("escape")
            await until(pilot, lambda: not isinstance(app.screen, HelpScreen))


async def test_a_description_that_wraps_goes_on_under_the_descriptions(project: Project) -> None:
    project.write(QUICK)
    app = dashboard(project)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        await settle(pilot)
        described = tuple(b.description for _, bindings in app.key_groups() for b in bindings)
        rows: list[str] = []
        wrapped: list[str] = []
        for static in app.screen.query(Static):
            lines = [text_of(static.render_line(y)).rstrip() for y in range(static.size.height)]
            if not lines[0][KEY_COLUMN:].startswith(described):
                continue  # a title, not a group's keys
            for line in lines:
                # A key's row, or the rest of the description above it.
                (rows if line[KEY_COLUMN:].startswith(described) else wrapped).append(line)
        assert len(rows) > 30
        assert wrapped, "at 80 columns some descriptions wrap"
        for line in wrapped:
            assert len(line) - len(line.lstrip()) == KEY_COLUMN, line


async def test_the_help_screen_fits_80x24_and_scrolls(project: Project) -> None:
    project.write(QUICK)
    app = dashboard(project)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        await settle(pilot)
        scroll = app.screen.query_one(VerticalScroll)
        assert scroll.size.width >= 60 and scroll.size.height >= 15  # not a collapsed frame
        assert scroll.virtual_size.height > scroll.size.height
        await pilot.press("end")
        await settle(pilot)  # the scroll's animation done
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


# Every key in the help, pressed: each has the effect it is listed with. -------------

WALK_STAGES = "".join(f'[stages.s{i:02d}]\ncommand = "true"\n' for i in range(14))
WIDE = f'[stages.s07]\ncommand = ["{PYTHON}", "{PROGRAMS}/lines.py", "400", "{"w" * 200}"]\n'


@dataclass(frozen=True)
class Seen:
    """What a key can change, read from the app."""

    screen: str
    focus: str
    stage: str | None
    log_x: float
    log_y: float
    follow: bool
    wrap: bool
    zoomed: bool
    match: int | None
    row: int
    table_x: float
    spawned: int
    notes: int
    clipboard: str
    filtered: str
    whole_run: bool


def seen(app: MlciApp, spawned: list[list[str]], said: list[str]) -> Seen:
    log = app.query_one(LogView)
    table = app.query_one(VersionTable)
    return Seen(
        screen=type(app.screen).__name__,
        focus=type(app.focused).__name__,
        stage=app.query_one(StageList).selected_name,
        log_x=log.scroll_x,
        log_y=log.scroll_y,
        follow=log.follow,
        wrap=log.wrap,
        zoomed=log.is_maximized,
        match=log.match_line,
        row=table.cursor_row,
        table_x=table.scroll_x,
        spawned=len(spawned),
        notes=len(said),
        clipboard=app.clipboard,
        filtered=getattr(app.focused, "filter_text", ""),
        whole_run=log.run_logs is not None,
    )


Effect = Callable[[Seen, Seen], bool]
QUITS = {"quit_dashboard"}
END_STAGES = ("deploy", "monitor")
"""Quitting ends the app: `test_every_quit_key_quits` presses those."""
EFFECTS: dict[str, Effect] = {
    "start_run": lambda a, b: b.screen == "RunDialog",
    "show_experiments": lambda a, b: b.screen == "ExperimentsScreen",
    "rerun_stage": lambda a, b: b.screen == "RunDialog",
    "rerun_failed": lambda a, b: b.screen == "RunDialog",
    "cancel_run": lambda a, b: b.notes == a.notes + 1,  # nothing runs: it says so
    "focus_versions": lambda a, b: b.focus == "VersionTable" and b.row == 1,
    "rollback": lambda a, b: b.screen == "ConfirmScreen",
    "app.rollback": lambda a, b: b.screen == "ConfirmScreen",
    "answer": lambda a, b: b.screen == "DecisionScreen",
    "pick_run": lambda a, b: b.screen == "RunsScreen",
    "plot": lambda a, b: b.screen in ("SeriesPlotScreen", "VersionPlotScreen"),
    "app.compare_version": lambda a, b: b.screen == "DiffScreen",
    "show_alerts": lambda a, b: b.screen == "AlertsScreen",
    "show_graph": lambda a, b: b.screen == "GraphScreen",
    "help": lambda a, b: b.screen == "HelpScreen",
    "command_palette": lambda a, b: b.screen == "CommandPalette",
    "app.focus_next": lambda a, b: b.focus != a.focus,
    "app.focus_previous": lambda a, b: b.focus != a.focus,
    "move(-1)": lambda a, b: b.stage == "s06",
    "move(1)": lambda a, b: b.stage == "s08",
    # A page of one-line panes at 80x24 may reach the first or last stage.
    "page(-1)": lambda a, b: b.stage is not None and (b.stage < "s06" or b.stage == "train"),
    "page(1)": lambda a, b: b.stage is not None and (b.stage > "s08" or b.stage in END_STAGES),
    "jump(0)": lambda a, b: b.stage == "train",
    "jump(-1)": lambda a, b: b.stage == "monitor",
    "find": lambda a, b: b.screen == "SearchScreen",
    "log('copy')": lambda a, b: b.clipboard and not a.clipboard,
    "clear_search": lambda a, b: b.match is None and a.match is not None,
    "clear_filter": lambda a, b: a.filtered and not b.filtered,
    "toggle_run_log": lambda a, b: b.whole_run and not a.whole_run,
    "log('next_match')": lambda a, b: (
        b.match is not None and a.match is not None and b.match > a.match
    ),
    "log('previous_match')": lambda a, b: (
        b.match is not None and a.match is not None and b.match < a.match
    ),
    "log('toggle_follow')": lambda a, b: b.follow != a.follow,
    "log('zoom')": lambda a, b: b.zoomed and not a.zoomed,
    "log('toggle_wrap')": lambda a, b: b.wrap and not a.wrap,
    "last_line": lambda a, b: b.follow and b.log_y > a.log_y,
    "first_line": lambda a, b: b.log_y == 0 and not b.follow,
    "scroll_up": lambda a, b: b.log_y < a.log_y,
    "scroll_down": lambda a, b: b.log_y > a.log_y,
    "page_up": lambda a, b: b.log_y < a.log_y or b.row < a.row,
    "page_down": lambda a, b: b.log_y > a.log_y or b.row > a.row,
    "scroll_left": lambda a, b: b.log_x < a.log_x or b.table_x < a.table_x,
    "scroll_right": lambda a, b: b.log_x > a.log_x or b.table_x > a.table_x,
    "page_left": lambda a, b: b.log_x < a.log_x,
    "page_right": lambda a, b: b.log_x > a.log_x,
    "cursor_up": lambda a, b: b.row == a.row - 1,
    "cursor_down": lambda a, b: b.row == a.row + 1,
    "scroll_top": lambda a, b: b.row == 0,
    "scroll_bottom": lambda a, b: b.row == 2,
}


async def _middle(pilot: Pilot, app: MlciApp, pane: str) -> None:
    """Back to the main screen, every pane away from its ends, ``pane`` focused."""
    while len(app.screen_stack) > 1:
        app.pop_screen()
    log = app.query_one(LogView)
    if log.is_maximized:
        app.screen.minimize()
    stages = app.query_one(StageList)
    stages.set_filter("")
    app.whole_run = False
    app.query_one(VersionTable).set_filter("")
    # Its log is the wide one: the log can scroll every way. Picked as a user picks
    # it, so that a read of the store landing later does not follow another stage.
    stages.select("s07", by_user=True)
    await until(pilot, lambda: log.path is not None and log.path.name == "s07.log")
    await until(pilot, lambda: log.index is not None and len(log.index) == 400)
    log.wrap = False
    log.follow = False
    # Unwrapping scrolls to the end after the next refresh: done before scrolling here.
    await settle(pilot)
    log.scroll_to(50, 200, animate=False, immediate=True, force=True)
    log.search_text, log.match_line = "w", 200
    app.copy_to_clipboard("")
    table = app.query_one(VersionTable)
    table.select_version(2)
    assert table.max_scroll_x >= 2  # the table is wider than its pane at 80 columns
    table.scroll_to(x=table.max_scroll_x // 2, animate=False, immediate=True, force=True)
    {"log": log, "versions": table}.get(pane, stages).focus()
    await settle(pilot)


ACTING_SCREENS = {"ConfirmScreen", "RunDialog", "DecisionScreen"}
"""Where every key that acts leads: a confirmation, the run dialog, the decision."""


def acting_bindings() -> list[tuple[str, Binding]]:
    """Every binding of the main screen and its panes whose action is one of the
    app's `ACTING` (a pane names the app's actions ``app.…``), with the pane it is
    pressed in: read from the bindings, so a key added later is in it."""
    panes = {"everywhere": MlciApp, "log": LogView, "stages": StageList, "versions": VersionTable}
    found = []
    for pane, kind in panes.items():
        for binding in bindings_of(kind):
            action = binding.action if kind is MlciApp else binding.action.removeprefix("app.")
            if action in MlciApp.ACTING and (kind is MlciApp or binding.action != action):
                found.append((pane, binding))
    return found


@pytest.mark.parametrize("read_only", [False, True], ids=["acting", "read-only"])
async def test_every_key_in_the_help_does_what_it_says(project: Project, read_only: bool) -> None:
    """Read-only, the same walk: every key the help lists still does what it says,
    and none of them starts anything or leads to a confirmation; the keys that act
    are in neither the help nor the key bar, and pressed, do nothing at all."""
    setup(project, policy='"ask"')
    # 14 stages more, s07 printing 400 lines of 200 columns and more.
    stages = WALK_STAGES.replace('[stages.s07]\ncommand = "true"\n', WIDE)
    # Key metrics enough that the versions table is wider than its pane at 80 columns,
    # even with CREATED and LIVE left out for DESCRIPTION.
    metrics = ["f1", "precision_macro", "recall_macro", "balanced_accuracy", "average_precision"]
    wide = " ".join(f"{name}=0.8" for name in metrics)
    config = project.config_path.read_text().replace("f1=0.8", wide)
    keys = f"key_metrics = {['accuracy', *metrics]!r}\n".replace("'", '"')
    config = config.replace("[registry]\n", "[registry]\n" + keys)
    project.write(config.replace("[deploy]", stages + "[deploy]"))
    for seed in (1, 2):
        assert run(project, seed) == 0
    (project.path / "quality").write_text("0.5")
    assert run(project, 3) == 1  # v3 failed its analysis: a decision waits
    spawned: list[list[str]] = []
    app = dashboard(project, spawn=lambda args: spawned.append(args) or True, read_only=read_only)
    said = notices(app)
    async with app.run_test(size=(80, 24)) as pilot:
        await shown(
            pilot, lambda: len(app.query_one(VersionTable).versions) == 3 and app.snapshot.decisions
        )
        groups = app.key_groups()
        acting = acting_bindings()
        assert {key for _, b in acting for key in keys_of(b)} >= {"r", "s", "E", "c", "R", "a"}
        listed = [b for _, bindings in groups for b in bindings]
        bar = str(app.query_one(KeyBar).render())
        for _, binding in acting:
            # Absent in read-only: neither in the help nor in the key bar.
            assert (binding in listed) is not read_only, binding
            if binding.show:
                assert (f"{key_text(app, binding)} {binding.description} " in bar) is not read_only
        pressed = 0
        for title, bindings in groups:
            pane = "log" if title.startswith("Log") else title.split()[0].lower()
            for binding in bindings:
                if binding.action in QUITS:
                    continue
                assert binding.action in EFFECTS, f"no effect known for {binding.action}"
                for key in keys_of(binding):
                    await _middle(pilot, app, pane)
                    if binding.action == "clear_filter":  # a filter on, to clear
                        app.focused.set_filter("s0")  # type: ignore[union-attr]
                        await settle(pilot)
                    before = seen(app, spawned, said)
                    await pilot.press(key)
                    effect = EFFECTS[binding.action]
                    # A screen may be read in a worker first: its effect comes when it does.
                    try:
                        await until(pilot, lambda: effect(before, seen(app, spawned, said)))  # noqa: B023
                    except AssertionError:
                        after = seen(app, spawned, said)
                        raise AssertionError(
                            f"{title}: {key} ({binding.description}) did nothing: {after}"
                        ) from None
                    if read_only:
                        after = seen(app, spawned, said)
                        assert not spawned and after.screen not in ACTING_SCREENS, (
                            f"{title}: {key} ({binding.description}) acts in a read-only dashboard"
                        )
                    pressed += 1
        assert pressed > 40
        for pane, binding in acting:
            await _middle(pilot, app, pane)
            # The screen's keys where the binding's pane has the focus: what the key bar
            # draws (and Textual runs), each binding's action as its check says.
            offered = [b.binding for b in app.screen.active_bindings.values()]
            assert (binding in offered) is not read_only, f"{pane}: {binding}"
            if not read_only:
                continue  # what each does: the walk above
            for key in keys_of(binding):
                await _middle(pilot, app, pane)
                before = seen(app, spawned, said)
                await pilot.press(key)
                await settle(pilot)
                after = seen(app, spawned, said)
                assert after == before, f"{pane}: {key} ({binding.description}): {after}"
        assert not read_only or spawned == []


@pytest.mark.parametrize("key", ["q", "ctrl+c", "ctrl+q"])
async def test_every_quit_key_quits(project: Project, key: str) -> None:
    project.write(QUICK)
    app = dashboard(project)
    async with app.run_test(size=(80, 24)) as pilot:
        await shown(pilot)
        await pilot.press(key)
        await until(pilot, lambda: not app.is_running, what=f"{key} to quit")
    quits = {
        key
        for b in MlciApp.BINDINGS
        if isinstance(b, Binding) and b.action in QUITS
        for key in keys_of(b)
    }
    assert quits == {"q", "ctrl+c", "ctrl+q"}


async def test_the_keys_line_shows_what_can_act_and_a_click_presses_a_key(
    project: Project,
) -> None:
    project.write(QUICK)
    app = dashboard(project)
    async with app.run_test(size=(100, 30)) as pilot:
        bar = app.query_one(KeyBar)
        await until(pilot, lambda: "Versions" in str(bar.render()))
        line = str(bar.render())
        assert line.startswith("r Run c Cancel v Versions ")
        assert line.rstrip().endswith("q Quit")
        # "? Help" is where a click lands: the help opens as if ? was pressed.
        await pilot.click(KeyBar, offset=(line.index("? Help") + 2, 0))
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
    narrow = dashboard(project)
    async with narrow.run_test(size=(50, 24)) as pilot:
        bar = narrow.query_one(KeyBar)
        await until(pilot, lambda: "Versions" in str(bar.render()))
        # A key cut off at the edge is no help: it is left out whole, and the keys
        # before help and quit give way to them.
        line = str(bar.render()).rstrip()
        assert len(line) <= 50
        assert line.startswith("r Run c Cancel ") and line.endswith(" ? Help q Quit"), line
        assert line.split()[-1] in {b.description.split()[-1] for b in bindings_of(MlciApp)}
