"""Finding things in the dashboard: the log's search (from the first match, Esc
ends it, over the run's other stages), the filters of the lists, the whole run's
log and copying log lines — through Pilot, over real runs in real stores."""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot
from textual.widgets import Static

from mlci_tui.tui.app import MlciApp
from mlci_tui.tui.screens.runs_screen import RunsScreen
from mlci_tui.tui.screens.search import SearchScreen
from mlci_tui.tui.widgets.log_view import LogView
from tests.helpers import (
    PROGRAMS,
    PYTHON,
    Project,
    dashboard,
    notices,
    settle,
    shown,
    text_of,
    two_versions,
    until,
)

MANY = f'[stages.many]\ncommand = ["{PYTHON}", "{PROGRAMS}/lines.py", "5000", "row"]\n'


def said_by(app: MlciApp) -> list[str]:
    """Every notice the app shows from now on, Textual's own `notify` included."""
    said: list[str] = []
    notify = app.notify

    def recorded(message: str, *args: Any, **options: Any) -> None:
        said.append(str(message))
        notify(message, *args, **options)

    app.notify = recorded  # type: ignore[method-assign]
    return said


def rows(view: LogView) -> list[str]:
    return [text_of(view.render_line(y)).rstrip() for y in range(view.size.height)]


async def search_log(pilot: Pilot, query: str) -> None:
    """``/`` on the log, ``query``, Enter."""
    app = pilot.app
    app.query_one(LogView).focus()
    await pilot.press("slash")
    await until(pilot, lambda: isinstance(app.screen, SearchScreen))
    await pilot.press("ctrl+u", *query, "enter")
    await until(pilot, lambda: not isinstance(app.screen, SearchScreen))
    await settle(pilot)


async def test_a_search_starts_at_the_first_match_in_the_log_whatever_is_in_view(
    project: Project,
) -> None:
    project.write(MANY)
    project.mlci("run")
    app = dashboard(project)
    async with app.run_test(size=(100, 30)) as pilot:
        log = app.log_view
        await shown(pilot, lambda: log.index is not None and len(log.index) == 5000)
        # The view follows the end: rows 4970-4999 or so match too, in view.
        assert any(row.startswith("row 00049") for row in rows(log))
        await search_log(pilot, "row 00049")  # rows 4900-4999
        await until(pilot, lambda: "match 1 of 100" in log.status)
        assert log.match_line == 4900
        assert any(row.startswith("row 0004900") for row in rows(log))
        assert "wrapped" not in log.status
        await pilot.press("N")  # back from the first: the last, wrapping
        await until(pilot, lambda: "match 100 of 100" in log.status)
        assert log.match_line == 4999 and "wrapped to the bottom" in log.status


async def test_esc_ends_the_search_and_clears_what_it_said(project: Project) -> None:
    project.write(MANY)
    project.mlci("run")
    app = dashboard(project)
    async with app.run_test(size=(100, 30)) as pilot:
        log = app.log_view
        await shown(pilot, lambda: log.index is not None and len(log.index) == 5000)
        await search_log(pilot, "no such row")
        await until(pilot, lambda: "no match for 'no such row'" in str(log.border_subtitle))
        await pilot.press("escape")
        await settle(pilot)
        assert "no match" not in str(log.border_subtitle)
        assert (log.search_text, log.match_line) == ("", None)
        # A search that found something: Esc takes its highlight and count away too.
        await search_log(pilot, "row 0000042")
        await until(pilot, lambda: "match 1 of 1" in log.status)
        await pilot.press("escape")
        await settle(pilot)
        assert str(log.border_subtitle) == "" and log.match_line is None


async def test_a_search_with_no_match_in_the_stage_goes_to_the_next_stage_with_one(
    project: Project,
) -> None:
    project.write(
        '[stages.first]\ncommand = "echo alpha; echo beta"\n'
        '[stages.second]\ncommand = "echo gamma; echo the needle is here"\n'
        'needs = ["first"]\n'
        '[stages.third]\ncommand = "echo needle again"\nneeds = ["second"]\n'
    )
    project.mlci("run")
    app = dashboard(project)
    async with app.run_test(size=(100, 30)) as pilot:
        log = app.log_view
        await shown(pilot)
        app.stages.focus()
        await pilot.press("home")
        await until(pilot, lambda: log.path is not None and log.path.name == "first.log")
        await settle(pilot)
        await search_log(pilot, "NEEDLE")
        await until(pilot, lambda: app.stages.selected_name == "second")
        await until(pilot, lambda: log.match_line == 1 and "match 1 of 1" in log.status)
        assert "none in first; found in second" in log.status
        assert log.path is not None and log.path.name == "second.log"
        # A query found nowhere says so, naming the run.
        await search_log(pilot, "nowhere at all")
        await until(pilot, lambda: "in any stage of run 1" in log.status)
        assert app.stages.selected_name == "second"


async def test_y_copies_the_lines_in_view_or_the_matched_line(project: Project) -> None:
    project.write(MANY)
    project.mlci("run")
    app = dashboard(project)
    said = said_by(app)
    async with app.run_test(size=(100, 30)) as pilot:
        log = app.log_view
        await shown(pilot, lambda: log.index is not None and len(log.index) == 5000)
        in_view = rows(log)
        assert in_view[-1].startswith("row 0004999") and all(in_view)
        await pilot.press("y")  # from the stages pane, as from any
        await until(pilot, lambda: app.clipboard)
        assert app.clipboard == "\n".join(in_view) + "\n"
        assert said[-1] == f"copied {len(in_view)} lines"
        await search_log(pilot, "row 0000042")
        await pilot.press("y")
        await until(pilot, lambda: app.clipboard.startswith("row 0000042"))
        assert app.clipboard == "row 0000042 " + "x" * 40 + "\n"
        assert said[-1] == "copied line 43, the match"
        await pilot.press("escape", "y")  # no search: the lines in view again
        await until(pilot, lambda: app.clipboard.count("\n") == log.size.height)
        assert app.clipboard == "\n".join(rows(log)) + "\n"


async def test_what_y_copies_is_plain_text_without_escapes(project: Project) -> None:
    project.write(
        "[stages.colour]\n"
        "command = \"printf '\\\\033[31mred\\\\033[0m text \\\\033]0;title\\\\007end\\\\n'\"\n"
    )
    project.mlci("run")
    app = dashboard(project)
    async with app.run_test(size=(100, 30)) as pilot:
        log = app.log_view
        await shown(pilot, lambda: log.index is not None and len(log.index) >= 1)
        await pilot.press("y")
        await until(pilot, lambda: app.clipboard)
        assert "red text" in app.clipboard and "\x1b" not in app.clipboard


# `/` on a list filters it ------------------------------------------------------------

FOUR = (
    '[stages.data_prep]\ncommand = "echo prep"\n'
    '[stages.train]\ncommand = "echo train"\nneeds = ["data_prep"]\n'
    '[stages.train_big]\ncommand = "echo big"\nneeds = ["data_prep"]\n'
    '[stages.evaluate]\ncommand = "echo evaluate"\nneeds = ["train", "train_big"]\n'
)


async def test_slash_on_the_stages_filters_them_as_typed_and_esc_clears(
    project: Project,
) -> None:
    project.write(FOUR)
    project.mlci("run")
    app = dashboard(project)
    async with app.run_test(size=(100, 30)) as pilot:
        await shown(pilot)
        box = app.query_one("#stages-box")
        app.stages.focus()
        await pilot.press("slash")
        await until(pilot, lambda: isinstance(app.screen, SearchScreen))
        await pilot.press("T", "r")
        await until(pilot, lambda: app.stages.names == ["train", "train_big"])
        assert isinstance(app.screen, SearchScreen)  # narrowed while typing
        await pilot.press("a", "i", "n", "_", "enter")
        await until(pilot, lambda: app.stages.names == ["train_big"])
        await settle(pilot)
        assert [p.stage_name for p in app.stages.panes()] == ["train_big"]
        assert str(box.border_title) == "stages · filter /Train_"
        assert str(box.border_subtitle) == "Esc clears the filter"
        # The one kept is selected, its pane filled, its log shown; no log search.
        log = app.log_view
        await until(pilot, lambda: log.path is not None and log.path.name == "train_big.log")
        assert app.stages.panes()[0].record is not None and log.search_text == ""
        await pilot.press("escape")
        await until(pilot, lambda: len(app.stages.names) == 4)
        assert (str(box.border_title), str(box.border_subtitle)) == ("stages", "")
        assert app.stages.selected_name == "train_big"
        # Esc in the filter's box clears it too.
        await pilot.press("slash", "e", "v")
        await until(pilot, lambda: app.stages.names == ["evaluate"])
        await pilot.press("escape")
        await until(pilot, lambda: len(app.stages.names) == 4)


async def test_a_filter_that_hides_every_stage_keeps_the_selection_and_says_so(
    project: Project,
) -> None:
    project.write(FOUR)
    project.mlci("run")
    app = dashboard(project)
    said = notices(app)
    async with app.run_test(size=(100, 30)) as pilot:
        await shown(pilot)
        app.stages.focus()
        await pilot.press("home", "down", "down")
        await until(pilot, lambda: app.stages.selected_name == "train_big")
        await pilot.press("slash", "x", "y", "z", "enter")
        await until(pilot, lambda: app.stages.names == [])
        await pilot.press("g")
        await until(pilot, lambda: any("hides every stage" in m for m in said))
        await pilot.press("escape")
        await until(pilot, lambda: len(app.stages.names) == 4)
        assert app.stages.selected_name == "train_big"


async def test_slash_on_the_versions_filters_them(project: Project) -> None:
    two_versions(project)
    app = dashboard(project)
    async with app.run_test(size=(100, 30)) as pilot:
        table = app.version_panel.table
        await shown(pilot, lambda: len(table.versions) == 2)
        await pilot.press("v", "slash", "v", "1")
        await until(pilot, lambda: [v.name for v in table.versions] == ["v1"])
        await pilot.press("enter")
        await settle(pilot)
        assert table.row_count == 1 and table.selected_version is not None
        assert table.selected_version.name == "v1"
        assert str(app.version_panel.border_title) == "model versions · filter /v1"
        await pilot.press("escape")
        await until(pilot, lambda: len(table.versions) == 2)
        assert str(app.version_panel.border_title) == "model versions"
        # Status words are kept too: "live" keeps the live version.
        await pilot.press("slash", *"LIVE", "enter")
        await until(pilot, lambda: [v.name for v in table.versions] == ["v2"])


async def test_slash_on_the_runs_filters_them_and_esc_clears_then_closes(
    project: Project,
) -> None:
    project.write('[stages.check]\ncommand = "test -e ok"\n')
    assert project.mlci("run").returncode == 1
    (project.path / "ok").write_text("")
    project.mlci("run")
    project.mlci("run", "--force")
    app = dashboard(project)
    async with app.run_test(size=(100, 30)) as pilot:
        await shown(pilot)
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))
        runs = app.screen
        assert isinstance(runs, RunsScreen)
        await pilot.press("slash", *"fail")
        await until(pilot, lambda: [r.id for r in runs.shown] == [1])
        await pilot.press("enter")
        await until(pilot, lambda: app.screen is runs)
        title = str(runs.query_one("#runs-title", Static).render())
        assert title == "Runs, newest first · filter /fail (Esc clears the filter)"
        await pilot.press("escape")  # the filter first
        await until(pilot, lambda: [r.id for r in runs.shown] == [3, 2, 1])
        assert app.screen is runs
        await pilot.press("slash", *"passed", "enter")
        await until(pilot, lambda: [r.id for r in runs.shown] == [3, 2])
        await pilot.press("down", "enter")  # the second row kept: run 2
        await until(pilot, lambda: app.snapshot.run is not None and app.snapshot.run.id == 2)


# L: the whole run's log ------------------------------------------------------------

SIDE_BY_SIDE = """
[pipeline]
max_parallel = 2
[stages.a]
command = "echo a1; touch a_said; while [ ! -e b_done ]; do sleep 0.02; done; echo a2"
[stages.bee]
command = "while [ ! -e a_said ]; do sleep 0.02; done; sleep 0.2; echo b1; sleep 0.2; touch b_done"
[stages.last]
command = "echo done"
needs = ["a", "bee"]
"""


def printed_lines(out: bytes) -> list[str]:
    """What `mlci run` printed of the stages' output: its notes (``-- passed``) and
    its own lines (``mlci: …``) left out."""
    found = []
    for line in out.decode().splitlines():
        rest = line.partition("] ")[2]
        if line.startswith("[") and not rest.lstrip().startswith("-- "):
            found.append(line)
    return found


async def test_l_shows_the_whole_run_interleaved_as_mlci_run_printed_it(
    project: Project,
) -> None:
    project.write(SIDE_BY_SIDE)
    result = project.mlci("run")
    assert result.returncode == 0, result.stderr
    expected = printed_lines(result.stdout)
    assert [line.split()[-1] for line in expected] == ["a1", "b1", "a2", "done"]
    app = dashboard(project)
    async with app.run_test(size=(100, 30)) as pilot:
        log = app.log_view
        await shown(pilot)
        await pilot.press("L")
        await until(pilot, lambda: log.index is not None and len(log.index) == 4)
        await settle(pilot)
        assert rows(log)[:4] == expected
        assert str(log.border_title).startswith("log · run 1 · every stage")
        # Copied as shown, labels and all.
        await pilot.press("y")
        await until(pilot, lambda: app.clipboard)
        assert app.clipboard == "\n".join(expected) + "\n"
        # A search covers every stage, in the order shown.
        await search_log(pilot, "a2")
        await until(pilot, lambda: log.match_line == 2 and "match 1 of 1" in log.status)
        await pilot.press("L")
        await until(pilot, lambda: log.path is not None and log.run_logs is None)
        assert str(log.border_title) == f"log · {app.stages.selected_name} · run 1"


async def test_the_whole_run_log_follows_a_running_run(project: Project) -> None:
    hold = "echo before; while [ ! -e go ]; do sleep 0.05; done; echo after"
    project.write(
        f'[stages.held]\ncommand = "{hold}"\n'
        '[stages.next]\ncommand = "echo next"\nneeds = ["held"]\n'
    )
    runner = project.start("run")
    try:
        app = dashboard(project)
        async with app.run_test(size=(100, 30)) as pilot:
            log = app.log_view
            await shown(pilot, lambda: project.printed("held", b"before"))
            await pilot.press("L")
            await until(pilot, lambda: "[held] before" in rows(log))
            (project.path / "go").write_text("")
            await until(
                pilot,
                lambda: rows(log)[:3] == ["[held] before", "[held] after", "[next] next"],
            )
    finally:
        (project.path / "go").write_text("")  # a failed test leaves no stage waiting
        assert runner.wait(60) == 0
