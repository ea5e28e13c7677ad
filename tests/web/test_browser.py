"""`mlci serve` in a real browser: Chromium, driven by Playwright, against a real
`mlci serve` on loopback over a project `mlci init` made. The page's text is the
terminal's, read through xterm.js's buffer (conftest.py); every wait is for a state.

Each test's server is stopped with SIGTERM at its end, which must leave no process
behind (the `serve` fixture)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.helpers import Project, history, pid_alive, wait_for
from tests.web.conftest import (
    DEMO_STAGES,
    SCREEN_S,
    Served,
    demo,
    goto,
    screen,
    wait_for_screen,
)

if TYPE_CHECKING:  # imported when Playwright is installed (conftest.py skips without it)
    from playwright.sync_api import BrowserContext, Page

STAGE_ROW = re.compile(r"[✓↺] (\w+) +(passed|cached)")
TRAIN_LINE = "trained for 30 epochs on 1000 samples"
"""What the demo's train stage prints at its end (starter/src/train.py)."""
RUN_DIALOG = "Start a run"
ROLLBACK_DIALOG = "Roll production back to"
PANES = re.compile(r"[━─] stages [━─]")
"""The stages pane's title: gone while the log is zoomed (`z`)."""


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """The demo after two runs with different seeds: v1 and v2, v2 live."""
    return demo(tmp_path_factory.mktemp("deployed") / "demo", (), ("--set", "train.seed=1"))


def keys_line(text: str) -> str:
    """The footer: the screen's last row with text."""
    return [row for row in text.splitlines() if row.strip()][-1]


def offers(keys: str, key: str, name: str) -> bool:
    return re.search(rf"(^| ){re.escape(key)} {re.escape(name)}( |$)", keys) is not None


def rendered(text: str) -> bool:
    return bool(text.strip()) and offers(keys_line(text), "q", "Quit")


def open_dashboard(context: BrowserContext, served: Served, url: str | None = None) -> Page:
    """A new tab on the dashboard, once it shows its keys; the keyboard goes to it."""
    page = context.new_page()
    response = goto(page, url or served.url)
    assert response.status == 200, response.status
    wait_for_screen(page, rendered, "the dashboard's keys line")
    page.locator(".xterm-helper-textarea").focus()
    return page


def press(page: Page, key: str, then: str, shows: object) -> str:
    """Press ``key``, then wait until the screen ``shows`` (a string in it, or a
    predicate of it): keys sent before the last one took effect may arrive as one
    (Escape then ``r`` is Alt+r)."""
    page.keyboard.press(key)
    check = shows if callable(shows) else lambda text: shows in text
    return wait_for_screen(page, check, then)


def last_run(project: Project) -> dict | None:
    """`mlci status --json` of the newest run, or None before the first."""
    result = project.mlci("status", "--json")
    if result.returncode not in (0, 1):
        return None
    return json.loads(result.stdout)


def test_the_page_without_the_token_is_refused(
    deployed: Project, serve, context: BrowserContext
) -> None:
    served = serve(deployed)
    page = context.new_page()
    for url in (f"{served.origin}/", f"{served.origin}/?token=not-{served.token}"):
        response = goto(page, url)
        assert response.status == 401, (url, response.status)
        assert page.locator("#terminal").count() == 0
        assert screen(page) == ""
    assert context.cookies() == []
    assert served.dashboards() == []


def test_the_token_url_sets_the_cookie_and_the_dashboard_renders(
    deployed: Project, serve, context: BrowserContext, tmp_path: Path
) -> None:
    served = serve(deployed)
    page = context.new_page()
    response = goto(page, served.url)
    # Redirected to the address without the token, with the cookie that replaces it.
    assert page.url == f"{served.origin}/"
    assert response.status == 200
    first = response.request.redirected_from
    assert first is not None and first.url == served.url
    redirect = first.response()
    assert redirect is not None and redirect.status == 303
    (cookie,) = context.cookies()
    assert cookie["name"] == f"mlci-serve-{served.port}"
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/"

    text = wait_for_screen(
        page,
        lambda text: rendered(text) and {m[1] for m in STAGE_ROW.finditer(text)} >= {*DEMO_STAGES},
        "every stage of the demo's last run",
    )
    assert "mlci my-model" in text
    assert offers(keys_line(text), "r", "Run") and offers(keys_line(text), "R", "Roll back")
    assert len(served.dashboards()) == 1
    page.screenshot(path=tmp_path / "dashboard.png")
    shutil.copy(tmp_path / "dashboard.png", "/tmp/browser-dashboard.png")  # for eyes


def test_a_run_started_in_the_browser_streams_its_log(
    tmp_path: Path, serve, context: BrowserContext
) -> None:
    project = demo(tmp_path / "demo")  # no run yet: the one the browser starts is run 1
    served = serve(project)
    page = open_dashboard(context, served)
    press(page, "r", "the run dialog", RUN_DIALOG)
    press(page, "Enter", "the train stage's last line", TRAIN_LINE)
    run = wait_for(
        lambda: (found := last_run(project)) and found["state"] != "running" and found,
        timeout=SCREEN_S,
        what="the run to end",
    )
    assert isinstance(run, dict)
    assert (run["run_id"], run["state"]) == (1, "passed"), run
    assert TRAIN_LINE.encode() in project.log("train", 1)


def test_a_rollback_confirmed_in_the_browser_is_recorded_as_the_web_session(
    tmp_path: Path, serve, context: BrowserContext
) -> None:
    project = demo(tmp_path / "demo", (), ("--set", "train.seed=1"))
    before = history(project)
    served = serve(project)
    page = open_dashboard(context, served)
    press(page, "R", "the rollback's confirmation", f"{ROLLBACK_DIALOG} v1?")
    page.keyboard.press("y")
    done = wait_for(
        lambda: [e for e in history(project)[: -len(before)] if e["ended_at"]],
        timeout=SCREEN_S,
        what="the rollback, ended, in `mlci history`",
    )
    assert isinstance(done, list)
    (rollback,) = done
    assert (rollback["kind"], rollback["to"], rollback["outcome"]) == (
        "rollback",
        "v1",
        "succeeded",
    ), rollback
    wait_for_screen(page, lambda text: "live v1" in text.splitlines()[0], "v1 live in the header")
    actor = re.fullmatch(r"web:([0-9a-f]{8})", rollback["user"])
    assert actor, rollback["user"]
    # The session `mlci serve` logged for this tab.
    assert f"session {actor[1]}".encode() in served.stderr.data


def test_read_only_offers_nothing_that_acts(
    deployed: Project, serve, context: BrowserContext
) -> None:
    runs, deploys = last_run(deployed), history(deployed)
    assert runs is not None
    served = serve(deployed, "--read-only")
    page = open_dashboard(context, served)
    keys = keys_line(screen(page))
    assert not offers(keys, "r", "Run") and not offers(keys, "R", "Roll back"), keys
    # Keys arrive in order: once `z` has zoomed the log, `r` (or `R`) before it has
    # done all it would.
    for key, dialog in (("r", RUN_DIALOG), ("R", ROLLBACK_DIALOG)):
        page.keyboard.press(key)
        text = press(page, "z", "the log zoomed", lambda text: not PANES.search(text))
        assert dialog not in text, text
        press(page, "z", "the panes back", lambda text: PANES.search(text))
    after = last_run(deployed)
    assert after is not None and after["run_id"] == runs["run_id"]
    assert history(deployed) == deploys


def test_closing_the_tab_ends_its_dashboard(
    deployed: Project, serve, context: BrowserContext
) -> None:
    served = serve(deployed)
    page = open_dashboard(context, served)
    (dashboard,) = served.dashboards()
    page.close()
    wait_for(
        lambda: not served.dashboards() and not pid_alive(dashboard.pid),
        timeout=SCREEN_S,
        what="the tab's dashboard process to end",
    )


@pytest.mark.slow
def test_the_tab_beyond_max_sessions_is_refused_and_the_others_render(
    deployed: Project, serve, context: BrowserContext
) -> None:
    served = serve(deployed, "--max-sessions", "8")
    pages = [open_dashboard(context, served, served.url)]
    pages += [open_dashboard(context, served, f"{served.origin}/") for _ in range(7)]
    assert len(served.dashboards()) == 8
    ninth = context.new_page()
    response = goto(ninth, f"{served.origin}/")
    assert response.status == 503
    said = ninth.locator("body").inner_text()
    assert "8" in said and "--max-sessions" in said, said
    assert ninth.locator("#terminal").count() == 0
    assert len(served.dashboards()) == 8
    for page in pages:  # each still its own live dashboard
        assert rendered(screen(page))
