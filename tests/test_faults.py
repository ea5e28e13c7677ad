"""Faults: a full disk, a damaged database, a deploy command that is killed."""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from mlci_tui.pipeline.events import RunNoted, StageOutput
from mlci_tui.states import RunState, StageState
from tests.conftest import PROGRAMS, PYTHON, Project
from tests.test_engine import engine_for
from tests.test_registry import history, run, served, setup, statuses


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 1 MiB file system (tmpfs), for a disk that fills up for real."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; the simulated full disk below still runs")
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_disk_that_fills_up_stops_the_run_clearly_and_keeps_the_store(
    project: Project, small_disk: Path
) -> None:
    project.write(
        f"""
[pipeline]
state_dir = "{small_disk}/.mlci"
[stages.big]
command = ["{PYTHON}", "{PROGRAMS}/lines.py", "100000"]
[stages.after]
command = "true"
needs = ["big"]
"""
    )
    result = project.mlci("run")
    out, err = result.stdout.decode(), result.stderr.decode()
    assert result.returncode in (1, 2)
    assert "No space left on device; stopping the run" in out
    assert "Traceback" not in out + err
    assert err.count("\n") <= 1  # at most one line: the final write could not land
    db = sqlite3.connect(small_disk / ".mlci" / "mlci.db")
    assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    db.close()
    log = (small_disk / ".mlci" / "runs" / "1" / "big.log").read_bytes()
    assert b"line 0000000" in log  # what was written is readable
    status = project.mlci("status")
    assert status.returncode == 0 and b"run 1" in status.stdout


def test_a_failing_store_write_fails_the_run_with_the_reason(project: Project) -> None:
    """The same as a full disk, simulated: the recording subscriber raises ENOSPC."""
    import asyncio

    engine, events = engine_for(
        project, f'[stages.big]\ncommand = ["{PYTHON}", "{PROGRAMS}/lines.py", "50000"]\n'
    )
    written = [0]

    def recorder(event: object) -> None:
        if isinstance(event, StageOutput):
            written[0] += len(event.lines)
            if written[0] > 10_000:
                raise OSError(errno.ENOSPC, "No space left on device")

    # After the event list: a subscriber that raises does not stop the others.
    engine.subscribe(recorder)
    result = asyncio.run(engine.run())
    assert result.state is RunState.FAILED and result.exit_code == 1
    assert result.message == "cannot record the run: [Errno 28] No space left on device"
    assert result.stages["big"].state is StageState.CANCELLED
    assert any(isinstance(e, RunNoted) and "stopping the run" in e.text for e in events)


def test_a_truncated_database_is_named_and_the_logs_stay_readable(project: Project) -> None:
    project.write('[stages.a]\ncommand = "echo kept in the log"\n')
    project.mlci("run")
    db_path = project.state_dir / "mlci.db"
    db = sqlite3.connect(db_path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    data = db_path.read_bytes()
    db_path.write_bytes(data[: len(data) // 3])
    result = project.mlci("status")
    err = result.stderr.decode()
    assert result.returncode == 2 and err.count("\n") == 1
    assert str(db_path) in err and "Traceback" not in err
    assert b"kept in the log" in (project.state_dir / "runs" / "1" / "a.log").read_bytes()


def test_a_deploy_command_that_is_killed_changes_nothing(project: Project) -> None:
    setup(project)
    for seed in (1, 2):
        assert run(project, seed) == 0
    config = project.config_path.read_text()
    project.config_path.write_text(
        config.replace("[deploy]\ncommand = '''", "[deploy]\ncommand = '''\nkill -9 $$\n", 1)
    )
    result = project.mlci("rollback", "v1")
    assert result.returncode == 1
    assert result.stderr.decode() == "mlci: the deploy command failed (killed by SIGKILL)\n"
    assert statuses(project) == {"v2": "live", "v1": "previous"}
    assert served(project) == "model 2\n"
    assert history(project)[0]["outcome"] == "failed"
