"""Load and hostile output: nothing lost, nothing harmful shown."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from mlci_tui.config import load_config
from mlci_tui.tui.app import make_app
from mlci_tui.tui.widgets.log_view import LogView
from tests.helpers import (
    FLOOD_LINES,
    FLOOD_STAGES,
    HOSTILE,
    PROGRAMS,
    PYTHON,
    ROOT,
    Output,
    Project,
    flood_config,
    flood_output,
    mlci_env,
    shown,
    text_of,
    until,
    wait_for,
)


@pytest.mark.slow
def test_eight_floods_watched_by_two_dashboards_and_a_follower_lose_nothing(
    project: Project,
) -> None:
    project.write(flood_config())
    assert project.mlci("validate").returncode == 0
    viewers = [
        subprocess.Popen(
            [PYTHON, str(PROGRAMS / "viewer.py"), str(project.config_path)],
            cwd=ROOT,
            env=mlci_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    screens = [Output(viewer.stdout.fileno()) for viewer in viewers if viewer.stdout]
    errors = [Output(viewer.stderr.fileno()) for viewer in viewers if viewer.stderr]
    for screen in screens:  # both dashboards are up before the run starts
        screen.wait_for(b"ready\n", timeout=120)
    runner = project.start("run")
    log = project.state_dir / "runs" / "1" / "s0.log"
    wait_for(log.exists, timeout=60)
    follower = project.start("logs", "s0", "-f")
    followed, _ = follower.communicate(timeout=600)
    runner.communicate(timeout=600)
    assert runner.returncode == 0
    for i in range(FLOOD_STAGES):
        expected = flood_output(f"s{i}")
        stored = project.log(f"s{i}")
        assert stored.count(b"\n") == FLOOD_LINES
        assert hashlib.sha256(stored).hexdigest() == hashlib.sha256(expected).hexdigest()
    assert followed == flood_output("s0")
    for viewer, screen, error in zip(viewers, screens, errors, strict=True):
        viewer.wait(timeout=300)
        # It fails unless it saw the run running, then ended.
        assert viewer.returncode == 0, error.end().decode()[-2000:]
        last = json.loads(screen.end().splitlines()[-1])
        assert last == {
            f"s{i}": f"s{i} {FLOOD_LINES - 1:07d} {'x' * 40}" for i in range(FLOOD_STAGES)
        }


TEN_MB = 10 * 1024 * 1024


async def test_hostile_output_and_a_10_mb_line_without_newline(project: Project) -> None:
    payload = HOSTILE + b"tail-without-newline "
    project.write(
        f"""
[stages.evil]
command = ["{PYTHON}", "{PROGRAMS}/raw.py", "{payload.hex()}"]
[stages.huge]
command = ["{PYTHON}", "-c", "import sys; sys.stdout.write('y' * {TEN_MB})"]
"""
    )
    assert project.mlci("run").returncode == 0
    assert project.log("evil") == payload
    assert project.log("huge") == b"y" * TEN_MB
    app = make_app(load_config(project.config_path), poll_interval=0.1)
    async with app.run_test(size=(100, 30)) as pilot:
        log = app.query_one(LogView)
        await shown(pilot, lambda: log.index is not None and len(log.index) > 0)
        drawn = [text_of(log.render_line(y)) for y in range(log.size.height)]
        # The huge line, cut, says so; then its start, cut to the screen.
        assert drawn[0].startswith("[a line of 10.0 MB, cut") and drawn[0].endswith(" yyyyyyyyyy")
        app.stages.select("evil", by_user=True)
        await until(pilot, lambda: log.path is not None and log.path.name == "evil.log")
        await shown(pilot, lambda: log.index is not None and len(log.index) == 8)
        strips = [log.render_line(y) for y in range(8)]
        text = [text_of(strip) for strip in strips]
        assert text[0].startswith("[bold red]x[/] [link=file:///etc/passwd]y[/]")
        assert text[7].startswith("tail-without-newline")
        for strip in strips:
            for segment in strip:
                assert "\x1b" not in segment.text and "\x00" not in segment.text
                assert segment.style is None or segment.style.link is None


async def test_the_dashboard_shows_masked_text_only(project: Project) -> None:
    secret = "another-s3cret"
    project.write('[pipeline]\nsecrets = ["TOKEN"]\n[stages.leak]\ncommand = "echo key=$TOKEN"\n')
    assert project.mlci("run", env=mlci_env(TOKEN=secret)).returncode == 0
    app = make_app(load_config(project.config_path, environ={}), poll_interval=0.1)
    async with app.run_test(size=(100, 30)) as pilot:
        log = app.query_one(LogView)
        await shown(pilot, lambda: log.index is not None and len(log.index) == 1)
        assert text_of(log.render_line(0)).startswith("key=***")
        pane = app.stages.panes()[0]
        assert pane.last_lines[-1].content == b"key=***"
    assert Path(project.state_dir / "runs" / "1" / "leak.log").read_bytes() == b"key=***\n"
