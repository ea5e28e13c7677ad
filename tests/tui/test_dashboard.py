"""The dashboard, driven with Textual's Pilot against real runs in real stores."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import io
import os
import pty
import re
import signal
import sqlite3
import struct
import subprocess
import termios
import threading
from pathlib import Path

import psutil
import pytest
from rich.console import Console
from textual.app import App, ComposeResult

from mlci_tui.states import RunState, StageState, Stream
from mlci_tui.store.log_index import LogIndex
from mlci_tui.store.logs import LogWriter
from mlci_tui.store.reader import Snapshot, StoreReader
from mlci_tui.tui.screens.alerts_screen import AlertsScreen
from mlci_tui.tui.screens.confirm import ConfirmScreen
from mlci_tui.tui.screens.decision import DecisionScreen
from mlci_tui.tui.screens.runs_screen import RunsScreen
from mlci_tui.tui.screens.search import SearchScreen
from mlci_tui.tui.widgets.alert_bar import AlertBar
from mlci_tui.tui.widgets.log_view import LogView
from mlci_tui.tui.widgets.stage_pane import StageList
from mlci_tui.tui.widgets.version_table import MARKER, VersionTable
from tests.helpers import (
    HOSTILE,
    PROGRAMS,
    PYTHON,
    QUICK,
    Output,
    Project,
    dashboard,
    history,
    mlci_env,
    notices,
    read_pids,
    run,
    run_state,
    settle,
    setup,
    shown,
    statuses,
    text_of,
    two_versions,
    typed_in_a_terminal,
    until,
    wait_dead,
    wait_for,
)

HOLD = "i=0; while [ ! -e go ] && [ $i -lt 2400 ]; do sleep 0.05; i=$((i + 1)); done"
"""A stage's command held until the test creates ``go``: it runs as long as the test
needs to see it running, however slow the machine (and ends by itself after two
minutes or more, should the test fail first)."""


async def test_r_starts_a_detached_run_and_the_panes_reach_passed(project: Project) -> None:
    project.write(QUICK)
    app = dashboard(project)
    async with app.run_test(size=(100, 30)) as pilot:
        await shown(pilot)
        assert app.snapshot.run is None
        await pilot.press("r", "enter")  # the run dialog, then its default run
        await until(pilot, lambda: run_state(app) is RunState.PASSED)
        panes = app.query_one(StageList).panes()
        assert [pane.stage_name for pane in panes] == ["hello", "after"]
        await until(
            pilot, lambda: all(p.record and p.record.state is StageState.PASSED for p in panes)
        )
        hello = panes[0]
        assert hello.last_lines[-1].content == b"second line"
        assert app.snapshot.run is not None and app.snapshot.run.pid != os.getpid()


async def test_the_first_frame_shows_the_run_before_the_rest_of_the_store_is_read(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run and its stages are read at mount: they are on screen while the full read
    (versions, alerts, the logs' last lines) is held back; its output comes with it."""
    project.write(QUICK)
    assert project.mlci("run").returncode == 0
    release = threading.Event()
    full_read = StoreReader.snapshot

    def held(self: StoreReader, run_id: int | None = None) -> Snapshot:
        release.wait(30)
        return full_read(self, run_id)

    monkeypatch.setattr(StoreReader, "snapshot", held)
    app = dashboard(project)
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            panes = app.query_one(StageList).panes()
            assert [pane.stage_name for pane in panes] == ["hello", "after"]
            assert all(p.record and p.record.state is StageState.PASSED for p in panes)
            assert "run 1 passed" in app.header.render().plain
            assert app.reading and not panes[0].last_lines
            release.set()
            await until(pilot, lambda: panes[0].last_lines)
            assert panes[0].last_lines[-1].content == b"second line"
    finally:
        release.set()


async def test_a_run_started_elsewhere_appears(project: Project) -> None:
    project.write(f'[stages.slow]\ncommand = "echo started; {HOLD}; echo finished"\n')
    app = dashboard(project)
    async with app.run_test(size=(100, 30)) as pilot:
        await shown(pilot)  # the store read before the run starts: the run appears
        runner = project.start("run")
        await until(pilot, lambda: run_state(app) is RunState.RUNNING)
        log = app.query_one(LogView)
        await until(pilot, lambda: log.index is not None and len(log.index) >= 1)
        (project.path / "go").touch()
        await until(pilot, lambda: run_state(app) is RunState.PASSED)
        runner.communicate(timeout=30)
        await until(pilot, lambda: log.index is not None and len(log.index) == 2)
        assert [log.index.line(i).content for i in range(2)] == [b"started", b"finished"]


async def test_c_cancels_after_a_confirmation(project: Project) -> None:
    project.write(f'[stages.long]\ncommand = ["{PYTHON}", "{PROGRAMS}/spawn.py", "pids"]\n')
    app = dashboard(project)
    said = notices(app)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("r", "enter")  # the run dialog, then its default run
        await until(
            pilot, lambda: (project.path / "pids").exists() and run_state(app) is RunState.RUNNING
        )
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")  # not yet
        # The dialog closed, its answer taken: no runner was signalled (the dashboard
        # says "cancelling run 1" when it signals one), and a read of the store after
        # the key still finds the run running.
        await until(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
        assert not [message for message in said if "cancelling" in message]
        answered = app.snapshot
        await until(pilot, lambda: app.snapshot is not answered, what="a read after the answer")
        assert run_state(app) is RunState.RUNNING
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: run_state(app) is RunState.CANCELLED)
    wait_dead(read_pids(project.path / "pids"))


async def test_roll_back_to_the_highlighted_version(project: Project) -> None:
    setup(project)
    for seed in (1, 2):
        assert run(project, seed) == 0
    app = dashboard(project)
    async with app.run_test(size=(100, 30)) as pilot:
        table = app.query_one(VersionTable)
        await until(pilot, lambda: len(table.versions) == 2)
        await pilot.press("v", "down")
        assert table.selected_version is not None and table.selected_version.name == "v1"
        await pilot.press("R")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert app.screen.title_text == "Roll production back to v1?"
        await pilot.press("y")
        await until(pilot, lambda: app.snapshot.live is not None and app.snapshot.live.name == "v1")
    assert statuses(project) == {"v2": "rolled_back", "v1": "live"}
    assert history(project)[0]["reason"] == "from the dashboard"


async def test_n_in_the_rollback_confirmation_changes_nothing(project: Project) -> None:
    two_versions(project)
    before = (statuses(project), history(project))
    spawned: list[list[str]] = []
    app = dashboard(project, spawn=lambda args: spawned.append(args))
    async with app.run_test(size=(100, 30)) as pilot:
        table = app.query_one(VersionTable)
        await until(pilot, lambda: len(table.versions) == 2)
        await pilot.press("v", "down", "R")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")
        # Closed: the answer was taken (a rollback is started, here recorded in
        # `spawned`, by the dialog's callback as it closes).
        await until(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
        await pilot.press("R")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
        await settle(pilot)
    assert spawned == []
    assert (statuses(project), history(project)) == before


async def test_search_finds_a_line_and_steps_through_matches(project: Project) -> None:
    project.write(f'[stages.many]\ncommand = ["{PYTHON}", "{PROGRAMS}/lines.py", "5000", "row"]\n')
    project.mlci("run")
    app = dashboard(project)
    async with app.run_test(size=(100, 30)) as pilot:
        log = app.query_one(LogView)
        await until(pilot, lambda: log.index is not None and len(log.index) == 5000)
        log.focus()  # on the stages, / filters them
        await pilot.press("slash")
        await until(pilot, lambda: isinstance(app.screen, SearchScreen))
        await pilot.press(*"row 0001234", "enter")
        await until(pilot, lambda: not isinstance(app.screen, SearchScreen))
        await settle(pilot)
        assert log.match_line == 1234
        assert log.scroll_offset.y <= 1234 < log.scroll_offset.y + log.size.height
        await pilot.press("slash")
        await until(pilot, lambda: isinstance(app.screen, SearchScreen))
        await pilot.press("ctrl+u", *"00012", "enter")  # rows 120-129 and 1200-1299 match
        await until(pilot, lambda: not isinstance(app.screen, SearchScreen))
        await settle(pilot)
        first = log.match_line
        await pilot.press("n")
        await settle(pilot)
        assert log.match_line is not None and first is not None and log.match_line > first
        await pilot.press("N")
        await settle(pilot)
        assert log.match_line == first
        assert not log.follow


async def test_a_resize_lays_the_screen_out_again(project: Project) -> None:
    project.write(QUICK)
    project.mlci("run")
    app = dashboard(project)
    async with app.run_test(size=(100, 30)) as pilot:
        await shown(pilot, lambda: run_state(app) is RunState.PASSED)
        stages = app.query_one(StageList)
        log = app.query_one(LogView)
        wide = (stages.size.width, log.size.width, stages.panes()[0].output_lines)
        await pilot.resize_terminal(80, 24)
        await settle(pilot)
        narrow = (stages.size.width, log.size.width, stages.panes()[0].output_lines)
        assert narrow[1] < wide[1] and narrow[0] <= wide[0]
        assert app.query_one(VersionTable).size.width <= 80
        await pilot.resize_terminal(100, 30)
        await settle(pilot)
        assert (stages.size.width, log.size.width, stages.panes()[0].output_lines) == wide


async def test_f_toggles_follow(project: Project) -> None:
    project.write(QUICK)
    project.mlci("run")
    app = dashboard(project)
    async with app.run_test(size=(100, 30)) as pilot:
        await shown(pilot, lambda: run_state(app) is RunState.PASSED)
        log = app.query_one(LogView)
        assert log.follow
        await pilot.press("f")
        assert not log.follow
        await pilot.press("f")
        assert log.follow


async def test_hostile_output_is_shown_as_harmless_text(project: Project) -> None:
    project.write(
        f'[stages.evil]\ncommand = ["{PYTHON}", "{PROGRAMS}/raw.py", "{HOSTILE.hex()}"]\n'
    )
    project.mlci("run")
    assert project.log("evil") == HOSTILE  # the file keeps the bytes as printed
    app = dashboard(project)
    async with app.run_test(size=(100, 30)) as pilot:
        log = app.query_one(LogView)
        await shown(pilot, lambda: log.index is not None and len(log.index) == 7)
        drawn = [log.render_line(y) for y in range(7)]
        texts = [text_of(strip) for strip in drawn]
        assert texts[0].startswith("[bold red]x[/] [link=file:///etc/passwd]y[/]")
        assert texts[1].startswith("link")
        assert texts[2].startswith("clipcursor")
        # U+009B is CSI: with the "c" after it, a "what terminal are you" query: dropped.
        assert texts[3].startswith("nul\u2400bell\u2407c1si bad\ufffd\ufffdutf8")
        assert texts[4].startswith("red plain")
        assert texts[5].startswith("100%")
        # A right-to-left override shown as a symbol; concealed text shown plainly.
        assert texts[6].startswith("safe<U+202E>txt.exe hidden")
        for strip in drawn:
            for segment in strip:
                assert not any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in segment.text)
                assert "\u202e" not in segment.text
                assert segment.style is None or segment.style.link is None
                assert segment.style is None or not segment.style.conceal
        red = next(seg for seg in drawn[4] if seg.text.startswith("red"))
        assert red.style is not None and red.style.color is not None  # colour became a style
        pane = app.query_one(StageList).panes()[0]
        assert b"hidden" in pane.last_lines[-1].content


async def test_pick_a_past_run(project: Project) -> None:
    project.write('[stages.s]\ncommand = "echo run $MLCI_RUN_ID"\n')
    project.mlci("run")
    project.mlci("run")
    app = dashboard(project)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.snapshot.run is not None and app.snapshot.run.id == 2)
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))
        await pilot.press("down", "enter")
        await until(pilot, lambda: app.snapshot.run is not None and app.snapshot.run.id == 1)
        log = app.query_one(LogView)
        await until(pilot, lambda: log.index is not None and len(log.index) == 1)
        assert log.index.line(0).content == b"run 1"
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))
        await pilot.press("l")
        await until(pilot, lambda: app.snapshot.run is not None and app.snapshot.run.id == 2)


async def test_a_run_picked_while_the_store_is_being_read_is_shown(project: Project) -> None:
    project.write('[stages.s]\ncommand = "echo run $MLCI_RUN_ID"\n')
    project.mlci("run")
    project.mlci("run")
    app = dashboard(project)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.snapshot.run is not None and app.snapshot.run.id == 2)
        reading, release = threading.Event(), threading.Event()
        snapshot = app.reader.snapshot

        def held_snapshot(run_id: int | None = None) -> Snapshot:
            reading.set()
            release.wait(30)
            return snapshot(run_id)

        app.reader.snapshot = held_snapshot  # type: ignore[method-assign]
        project.mlci("run")  # run 3: the dashboard starts reading it, and is held there
        await until(pilot, reading.is_set)
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))
        await pilot.press("down", "down", "enter")  # newest first: run 1
        await until(pilot, lambda: app.pinned == 1, what="run 1 picked")
        assert app.reading  # the read of run 3 is still held
        release.set()
        await until(
            pilot, lambda: app.snapshot.run is not None and app.snapshot.run.id == 1, timeout=5
        )


async def test_a_pending_decision_is_shown_and_answered(project: Project) -> None:
    two_versions(project, policy='"ask"')
    (project.path / "quality").write_text("0.5")
    run(project, seed=3)
    app = dashboard(project)
    async with app.run_test(size=(100, 30)) as pilot:
        bar = app.query_one(AlertBar)
        await until(pilot, lambda: bool(app.snapshot.decisions) and bar.size.width > 0)
        assert bar.display
        assert "decision needed: v3 failed its analysis: accuracy 0.5 < 0.85" in bar.render().plain
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, DecisionScreen))
        await pilot.press("y")
        await until(pilot, lambda: app.snapshot.live is not None and app.snapshot.live.name == "v2")
        await until(pilot, lambda: not app.snapshot.decisions)


async def test_a_run_whose_runner_was_killed_is_said_so_at_once_and_settled(
    project: Project,
) -> None:
    """kill -9 of the runner: the dashboard shows at once that the runner is gone
    (no clock ticking on), and has recovery done by a detached `mlci recover`: the
    stage's process is stopped and the run marked interrupted."""
    pids = project.path / "pids"
    project.write(f'[stages.wait]\ncommand = "echo $$ > {pids}; echo waiting; exec sleep 300"\n')
    runner = project.start("run")
    wait_for(lambda: pids.exists() and pids.read_text().strip(), what="the stage to start")
    (sleeper,) = read_pids(pids)
    os.kill(runner.pid, signal.SIGKILL)
    runner.wait(timeout=30)
    assert psutil.pid_exists(sleeper)  # nothing has settled the run yet
    app = dashboard(project)
    said = notices(app)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: run_state(app) is RunState.INTERRUPTED, timeout=60)
        assert not app.snapshot.runner_gone
        assert said == ["run 1's runner is gone: stopping what it left, marking it interrupted"]
    wait_dead([sleeper], timeout=30)
    assert project.status()["state"] == "interrupted"


async def test_quitting_leaves_a_run_it_started_running_to_completion(project: Project) -> None:
    project.write(f'[stages.s]\ncommand = "{HOLD}; echo finished"\n')
    app = dashboard(project)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("r", "enter")  # the run dialog, then its default run
        await until(pilot, lambda: run_state(app) is RunState.RUNNING)
        await pilot.press("q")
    assert project.status()["state"] == "running"
    (project.path / "go").touch()
    wait_for(lambda: project.status()["state"] == "passed", timeout=30)
    assert project.log("s") == b"finished\n"


def test_the_dashboard_survives_a_hangup_and_its_run_completes(project: Project) -> None:
    """The SSH connection drops: the terminal goes away under the dashboard (its pty
    is hung up, as sshd does), the dashboard ends, and the run it started goes on."""
    project.write(f'[stages.s]\ncommand = "{HOLD}; echo finished"\n')
    terminal = subprocess.Popen(
        project.in_terminal(),
        cwd=project.path,
        env=mlci_env(TERM="xterm-256color"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        start_new_session=True,
        # As a login shell's child has it, whatever this test inherited (under
        # `nohup pytest`, SIGHUP is ignored, and a hung-up dashboard would stay).
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL),
    )
    assert terminal.stdin is not None and terminal.stdout is not None
    screen = Output(terminal.stdout.fileno())
    viewers: list[psutil.Process] = []
    try:
        # Up: it has read the store and drawn the stage's pane (`r` then starts a run).
        screen.wait_for(b"needs nothing")
        terminal.stdin.write(b"r\r")  # the run dialog, then Enter: a default run
        terminal.stdin.flush()
        # The dialog's preview makes the store (as `mlci why` does): wait for the run.
        wait_for(lambda: project.mlci("status").returncode == 0, timeout=30)
        wait_for(lambda: project.status()["state"] == "running", timeout=30)
        # What runs on the terminal: the dashboard, not the run it started (detached).
        viewers = [
            process
            for process in psutil.Process(terminal.pid).children(recursive=True)
            if process.terminal() is not None
        ]
        assert viewers, "the dashboard runs under the terminal"
        terminal.kill()  # the terminal dies; the kernel hangs up its pty
        terminal.wait(timeout=30)
        wait_dead((v.pid for v in viewers), timeout=30)
    finally:
        for process in [terminal, *viewers]:
            with contextlib.suppress(ProcessLookupError, psutil.Error):
                process.kill()
    assert project.status()["state"] == "running"
    (project.path / "go").touch()
    wait_for(lambda: project.status()["state"] == "passed", timeout=30)
    assert project.log("s") == b"finished\n"


@pytest.mark.parametrize("term", ["xterm-256color", "screen"])
def test_the_dashboard_starts_and_quits_in_a_real_terminal(project: Project, term: str) -> None:
    project.write(QUICK)
    project.mlci("run")
    code, out = typed_in_a_terminal(project, (), b"q", term=term)
    assert code == 0
    assert b"hello" in out and b"Traceback" not in out
    assert project.status()["state"] == "passed"


async def test_a_store_with_10000_versions_and_1000_runs_opens(project: Project) -> None:
    """Scale: the table shows the newest versions; everything else stays reachable."""
    from benchmarks.store_generator import build_store

    setup(project)
    build_store(project.state_dir, versions=10_000, runs=1_000)
    app = dashboard(project)
    async with app.run_test(size=(100, 30)) as pilot:
        table = app.query_one(VersionTable)
        await until(pilot, lambda: len(table.versions) > 0)
        assert table.versions[0].name == "v10000"
        assert app.snapshot.version_count == 10_000
        await pilot.press("v", "down", "down", "pagedown")
        assert table.cursor_row > 2


async def test_a_log_shown_while_another_is_still_being_read_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "first.log", tmp_path / "second.log"
    for path, printed in ((first, b"a"), (second, b"b1\nb2")):
        writer = LogWriter(path)
        writer.output(Stream.STDOUT, printed, 1.0)
        writer.close()
    release = threading.Event()
    update = LogIndex.update

    def held_update(self: LogIndex, *, follow: bool = False) -> int:
        if self.path == first:
            release.wait(5)  # the pass over the first log is still running...
        return update(self, follow=follow)

    monkeypatch.setattr(LogIndex, "update", held_update)

    class Viewer(App[None]):
        def compose(self) -> ComposeResult:
            yield LogView()

    app = Viewer()
    async with app.run_test(size=(60, 10)) as pilot:
        view = app.query_one(LogView)
        view.show(first)
        view.show(second)  # ...when the second is shown: its first read waits for it
        release.set()
        await until(pilot, lambda: view.index is not None and len(view.index) == 2)
        assert view.virtual_size.height == 2


def test_leaving_clears_the_screen_after_the_terminal_was_resized(project: Project) -> None:
    """In a real pseudo-terminal, grown from 100x30 to 200x50 while the dashboard
    runs: on leaving, the screen is cleared before the alternate screen ends, so
    no terminal (tmux copies it) is left showing the last frame."""
    project.write(QUICK)
    project.mlci("run")
    pid, terminal = pty.fork()
    if pid == 0:  # the child: the dashboard, on the terminal's other end
        os.chdir(project.path)
        env = mlci_env(TERM="xterm-256color")
        os.execve(PYTHON, [PYTHON, "-m", "mlci_tui", "--config", str(project.config_path)], env)
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    screen = Output(terminal)
    try:
        screen.wait_for(b"hello")
        fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
        screen.wait_for(lambda out: max(columns(out)) > 150, what="a frame 200 columns wide")
        os.write(terminal, b"q")
        _, status = os.waitpid(pid, 0)
        out = screen.end()
    finally:
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(terminal)
    assert os.waitstatus_to_exitcode(status) == 0
    assert max(columns(out)) > 150  # it was drawn at 200 columns
    leave = out.rindex(b"\x1b[?1049l")
    clear = out.rindex(b"\x1b[H\x1b[2J", 0, leave)
    # Between the clear and the leaving: escape sequences only, no frame.
    between = re.sub(rb"\x1b\[[0-9;?<>=]*[a-zA-Z~]", b"", out[clear:leave])
    assert between.strip() == b""


def columns(out: bytes) -> list[int]:
    """The columns of every cursor move in a terminal's output (0 for none)."""
    return [int(c) for c in re.findall(rb"\x1b\[\d+;(\d+)H", out)] or [0]


async def test_the_dashboard_says_rolled_back_in_words(project: Project) -> None:
    two_versions(project)
    (project.path / "quality").write_text("0.61")
    assert run(project, seed=3) == 1
    app = dashboard(project)
    async with app.run_test(size=(120, 30)) as pilot:
        await shown(pilot, lambda: len(app.snapshot.versions) == 3)

        def screen() -> str:
            return "\n".join(text_of(strip) for strip in app.screen._compositor.render_strips())

        assert "rolled back" in screen()
        await pilot.press("ctrl+p", *"roll back to v3")
        await until(pilot, lambda: "after a confirmation" in screen(), what="the palette's hit")
        assert "rolled back, after a confirmation" in screen()
        assert "rolled_back" not in screen()


async def test_c_on_a_past_run_offers_to_cancel_the_running_one(project: Project) -> None:
    project.write(f'[stages.s]\ncommand = "echo started; [ ! -e hold ] || {{ {HOLD}; }}"\n')
    assert project.mlci("run").returncode == 0  # run 1, past
    (project.path / "hold").touch()
    runner = project.start("run")  # run 2, held
    app = dashboard(project)
    async with app.run_test(size=(100, 30)) as pilot:
        await shown(pilot, lambda: run_state(app) is RunState.RUNNING)
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))
        await pilot.press("down", "enter")  # run 1
        await shown(pilot, lambda: app.snapshot.run is not None and app.snapshot.run.id == 1)
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert isinstance(app.screen, ConfirmScreen)
        assert app.screen.title_text == "Cancel run 2?"
        body = str(app.screen.body)
        assert "run 2 is running" in body and "you are looking at run 1" in body
        await pilot.press("y")
        _, _ = runner.communicate(timeout=60)
    assert runner.returncode == 130
    assert project.status("--run", "2")["state"] == "cancelled"


async def test_the_highlighted_version_follows_the_table_to_rollbacks_target(
    project: Project,
) -> None:
    setup(project)
    assert run(project, 1) == 0  # v1, live: the only row when the table is first drawn
    app = dashboard(project)
    table = app.version_panel.table
    async with app.run_test(size=(120, 30)) as pilot:
        await shown(pilot, lambda: len(app.snapshot.versions) == 1)
        for seed in (2, 3):
            assert await asyncio.to_thread(run, project, seed) == 0
        (project.path / "quality").write_text("0.61")
        assert await asyncio.to_thread(run, project, 4) == 1  # v4 rolled back: v3 live
        # The store as the rollback left it (a read during it shows v4 still live).
        await shown(pilot, lambda: app.snapshot.live and app.snapshot.live.name == "v3")
        target = app.snapshot.rollback_target
        assert target is not None and target.name == "v2"  # as `mlci rollback` picks
        diagnosis = (table.default, table.picked, [(v.name, v.status) for v in table.versions])
        assert table.selected_version is not None, diagnosis
        assert table.selected_version.name == "v2", diagnosis
        await pilot.press("R")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert app.screen.title_text == "Roll production back to v2?"
        await pilot.press("n")
        await until(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
        # A version picked by hand stays picked as the table changes, and the
        # confirmation says what `mlci rollback` would pick instead.
        table.focus()
        await pilot.press("down")
        await until(pilot, lambda: table.selected_version.name == "v1")
        (project.path / "quality").write_text("0.95")
        assert await asyncio.to_thread(run, project, 5) == 0  # v5 live, v3 the target
        await shown(pilot, lambda: app.snapshot.live and app.snapshot.live.name == "v5")
        assert table.selected_version.name == "v1"
        rows = [table.get_row_at(row) for row in range(table.row_count)]
        assert [r[1].plain for r in rows if r[0].plain == MARKER] == ["v1"]
        await pilot.press("R")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert app.screen.title_text == "Roll production back to v1?"
        body = Console(width=200, record=True, file=io.StringIO())
        body.print(app.screen.body)
        assert "`mlci rollback` without a version would pick v3" in body.export_text()


async def test_what_a_dashboard_starts_names_its_mlci_actor(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As `mlci serve` starts a dashboard: MLCI_ACTOR in its environment names who
    answered a decision (a rollback), acknowledged the alerts and deployed from a run."""
    setup(project, policy='"ask"')
    assert run(project, seed=1) == 0
    (project.path / "quality").write_text("0.5")
    assert run(project, seed=2) == 1  # v2 failed its analysis: a decision waits
    (project.path / "quality").unlink()
    (project.path / "seed").write_text("3")  # the dashboard's run makes a new version
    login = history(project)[0]["user"]
    monkeypatch.setenv("MLCI_ACTOR", "web:3fa2c1d0")
    app = dashboard(project)  # the real spawner: detached `mlci` processes
    async with app.run_test(size=(100, 30)) as pilot:
        await shown(pilot, lambda: app.snapshot.decisions)
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, DecisionScreen))
        await pilot.press("y")
        await until(pilot, lambda: app.snapshot.live is not None and app.snapshot.live.name == "v1")
        await pilot.press("A")
        await until(pilot, lambda: isinstance(app.screen, AlertsScreen))
        await pilot.press("A")  # acknowledges them all
        await until(pilot, lambda: all(alert.acknowledged_at for alert in app.snapshot.alerts))
        await pilot.press("r", "enter")  # the run dialog, then its default run
        await until(pilot, lambda: app.snapshot.live is not None and app.snapshot.live.name == "v3")
    actor = "web:3fa2c1d0"
    assert [(d["kind"], d["to"], d["user"]) for d in history(project)] == [
        ("deploy", "v3", actor),
        ("rollback", "v1", actor),
        ("deploy", "v2", login),
        ("deploy", "v1", login),
    ]
    with contextlib.closing(sqlite3.connect(project.state_dir / "mlci.db")) as db:
        assert db.execute("SELECT state, decided_by FROM decisions").fetchall() == [
            ("approved", actor)
        ]
        acknowledged = db.execute("SELECT DISTINCT acknowledged_by FROM alerts").fetchall()
    assert acknowledged == [(actor,)]
    shown_history = project.mlci("history").stdout.decode()
    assert shown_history.count(f" {actor} ") == 2
