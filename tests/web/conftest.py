"""The browser tier's fixtures: the system's Chromium driven by Playwright, and a real
`mlci serve` on a loopback port over a project `mlci init` made.

Without Chromium, Playwright or the `serve` extra these tests skip, saying which is
missing; CI sets ``MLCI_REQUIRE_BROWSER=1`` (`.ci/run`), under which each of them is
a failure instead, so that a CI machine without a browser cannot pass by skipping."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import psutil
import pytest

from tests.helpers import Output, Project, pid_alive, run_python, run_stages, wait_for

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

REQUIRED = os.environ.get("MLCI_REQUIRE_BROWSER") == "1"
"""Set by CI: what these tests need must be there."""

SERVE_START_S = 60.0
"""How long `mlci serve` may take to print its address (imports on a loaded machine)."""
SCREEN_S = 45.0
"""How long a dashboard may take to show what a test waits for: a tab starts a
Python process that imports Textual, on 2 cores shared with the other tabs."""
STOP_S = 30.0
"""How long `mlci serve` may take to end its dashboards and exit after SIGTERM."""

LOOPBACK = ("127.0.0.1", "localhost", "::1")

# textual-serve keeps its xterm.js terminal in a local variable. This script, run
# before the page's own, catches the Terminal when textual.js stores it (as
# `this.terminal = new Terminal(...)`) and keeps it as `window.mlciTerminal`, so that
# a test reads the screen's text through xterm's own buffer API: the renderer draws
# into a canvas (WebGL), which holds no text to read.
CATCH_TERMINAL = """
Object.defineProperty(Object.prototype, "terminal", {
  configurable: true,
  set(value) {
    Object.defineProperty(this, "terminal", {
      value, writable: true, configurable: true, enumerable: true,
    });
    if (value && typeof value.write === "function" && !window.mlciTerminal) {
      window.mlciTerminal = value;
    }
  },
});
window.mlciScreen = () => {
  const terminal = window.mlciTerminal;
  if (!terminal) return "";
  const buffer = terminal.buffer.active;
  const rows = [];
  for (let row = 0; row < terminal.rows; row++) {
    const line = buffer.getLine(buffer.viewportY + row);
    rows.push(line ? line.translateToString(true) : "");
  }
  return rows.join("\\n");
};
"""


def need(present: bool, what: str) -> None:
    """Skip the test when ``what`` is not ``present`` — or fail it, in CI."""
    if present:
        return
    if REQUIRED:
        pytest.fail(f"{what}, and MLCI_REQUIRE_BROWSER=1 says it must be here", pytrace=False)
    pytest.skip(f"{what} (CI runs these tests: MLCI_REQUIRE_BROWSER=1)")


def installed(distribution: str) -> bool:
    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@pytest.fixture(scope="session")
def chromium() -> str:
    """The system's Chromium (Playwright drives it: no browser download)."""
    path = shutil.which("chromium")
    need(path is not None, "no `chromium` on PATH: apt-get install chromium")
    need(installed("playwright"), "Playwright is not installed: pip install -e '.[test]'")
    need(installed("textual-serve"), "`mlci serve` needs its extra: pip install -e '.[serve]'")
    assert path is not None
    return path


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Browser]:
    """One headless Chromium for a test module (each test gets its own context)."""
    from playwright.sync_api import sync_playwright

    args = ["--no-sandbox"] if os.geteuid() == 0 else []  # Chromium's sandbox refuses root
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, headless=True, args=args)
        yield launched
        launched.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile: no cookies, 1280×800. Requests to any host but
    loopback are refused (the page asks for a web font), so the tests need no network
    and never wait for one."""
    made = browser.new_context(viewport={"width": 1280, "height": 800})
    made.set_default_timeout(SCREEN_S * 1000)
    made.add_init_script(CATCH_TERMINAL)

    def local_only(route: Any) -> None:
        if urlsplit(route.request.url).hostname in LOOPBACK:
            route.continue_()
        else:
            route.abort()

    made.route("**/*", local_only)
    yield made
    made.close()


def screen(page: Page) -> str:
    """The text of the terminal the page shows, row by row."""
    return page.evaluate("window.mlciScreen()")


def wait_for_screen(
    page: Page, shows: Callable[[str], object], what: str, timeout: float = SCREEN_S
) -> str:
    """Until the terminal's text satisfies ``shows``; the text then. A timeout
    fails saying what was waited for and what the screen showed."""
    seen = ""

    def check() -> bool:
        nonlocal seen
        seen = screen(page)
        if shows(seen):
            return True
        # textual-serve marks the page when the websocket closes: nothing more will come.
        if page.evaluate("document.body.classList.contains('-closed')"):
            raise AssertionError(f"the tab's session ended while waiting for {what}")
        return False

    try:
        wait_for(check, timeout=timeout, what=what)
    except AssertionError as error:
        raise AssertionError(f"{error}; the screen shows:\n{seen}") from None
    return seen


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def demo(path: Path, *runs: tuple[str, ...]) -> Project:
    """`mlci init PATH`, then one `mlci run ARGS` for each of ``runs`` (each must pass)."""
    made = run_python("-m", "mlci_tui", "init", str(path))
    assert made.returncode == 0, made.stderr
    project = Project(path)
    for args in runs:
        run_stages(project, *args)
    return project


DEMO_STAGES = ("test", "train", "evaluate", "deploy", "monitor")
"""The stages of the config `mlci init` writes."""


class Served:
    """A running `mlci serve`: its address, its token and its processes."""

    ADDRESS = re.compile(rb"Dashboard at http://127\.0\.0\.1:(\d+)/\?token=\S+")
    """The line `mlci serve` prints once listening (with --token-file, the token is
    not in it: `?token=…`)."""

    def __init__(self, project: Project, args: tuple[str, ...], token_dir: Path) -> None:
        self.project = project
        self.port = free_port()
        self.token_file = token_dir / f"token-{self.port}"
        self.token = secrets.token_urlsafe(24)
        descriptor = os.open(self.token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(self.token + "\n")
        self.process = project.start(
            "serve", "--port", str(self.port), "--token-file", str(self.token_file), *args
        )
        assert self.process.stdout is not None and self.process.stderr is not None
        self.stdout = Output(self.process.stdout.fileno())
        self.stderr = Output(self.process.stderr.fileno())
        try:
            self.stdout.wait_for(
                lambda data: self.ADDRESS.search(data) or self.process.poll() is not None,
                timeout=SERVE_START_S,
                what="`mlci serve` to print its address",
            )
        except AssertionError as error:
            raise AssertionError(f"{error}; stderr: {self.stderr.data[-2000:]!r}") from None
        found = self.ADDRESS.search(self.stdout.data)
        assert found, f"`mlci serve` exited {self.process.returncode}: {self.stderr.data!r}"
        assert int(found[1]) == self.port
        self.origin = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.origin}/?token={self.token}"
        """The address with the token, as the token file's reader would make it."""

    def dashboards(self) -> list[psutil.Process]:
        """The dashboard processes serving tabs now (`python -m mlci_tui tui`)."""
        found = []
        for child in self.descendants():
            try:
                command = child.cmdline()
            except psutil.Error:
                continue  # it ended meanwhile
            if "tui" in command and "mlci_tui" in command and pid_alive(child.pid):
                found.append(child)
        return found

    def descendants(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def stop(self) -> None:
        """SIGTERM, as a service manager stops it: it must exit 0 and leave no
        process of its own behind (every descendant, gathered before the signal)."""
        if self.process.poll() is not None:
            raise AssertionError(
                f"`mlci serve` ended on its own, exit {self.process.returncode}: "
                f"{self.stderr.data[-2000:]!r}"
            )
        started = self.descendants()
        commands = {}  # what each is, said if it outlives the server
        for child in started:
            with contextlib.suppress(psutil.Error):
                commands[child.pid] = " ".join(child.cmdline())
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(STOP_S)
        except subprocess.TimeoutExpired:
            self.kill(started)
            raise AssertionError(
                f"`mlci serve` did not exit within {STOP_S:g}s of SIGTERM"
            ) from None
        left = [child for child in started if pid_alive(child.pid)]
        try:
            # Its dashboards may still be on their way out when it exits.
            wait_for(lambda: not [c for c in left if pid_alive(c.pid)], timeout=STOP_S)
        except AssertionError:
            alive = [c for c in left if pid_alive(c.pid)]
            described = [f"{c.pid} {commands.get(c.pid, '?')}" for c in alive]
            self.kill(alive)
            raise AssertionError(f"`mlci serve` left processes behind: {described}") from None
        assert code == 0, f"`mlci serve` exited {code} on SIGTERM: {self.stderr.data[-2000:]!r}"

    def kill(self, processes: list[psutil.Process]) -> None:
        """Kill what a failed stop left, so that it cannot load the tests after it."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()
        for process in processes:
            with contextlib.suppress(psutil.Error):  # it ended meanwhile
                process.kill()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """``serve(project, *ARGS)`` starts `mlci serve --port P --token-file F ARGS`
    and waits for its address; each is stopped with SIGTERM at the end of the test,
    which fails if it exits other than 0 or leaves a process behind."""
    started: list[Served] = []
    tokens = tmp_path / "tokens"
    tokens.mkdir()

    def start(project: Project, *args: str) -> Served:
        served = Served(project, args, tokens)
        started.append(served)
        return served

    yield start
    errors = []
    for served in started:
        try:
            served.stop()
        except AssertionError as error:
            errors.append(str(error))
    assert not errors, "\n".join(errors)


def goto(page: Page, url: str) -> Any:
    """Open ``url`` in the page; the response to it (after redirects)."""
    response = page.goto(url)
    assert response is not None
    return response
