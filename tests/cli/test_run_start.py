"""A run's start-up, phase by phase: whatever fails — a phase, or what the caller
does with the started run — leaves nothing behind in the process or the project.

Each test makes one phase fail (for real where the fault can be made: a store of
a newer mlci, an outs lock another run holds, a run directory or params file in
the way; by patching the phase where nothing real can fail) through `mlci run`
in this process, and then checks every leak at once: no descriptor of anything in
the project open, no thread of the run alive, the outs lock free at once, no run
left ``running``, the subreaper and signal handlers as they were, and the error
said in one line.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mlci_tui.cli import main
from mlci_tui.errors import StoreError
from mlci_tui.execution.executors import local
from mlci_tui.service.outs_lock import OUTS_LOCK
from mlci_tui.store import Store
from tests.helpers import Project

PIPELINE = """
[pipeline]
name = "start"
[params]
seed = 1
[stages.make]
command = "cp in.txt out.txt"
deps = ["in.txt"]
params = ["seed"]
outs = ["out.txt"]
[stages.after]
command = "cat out.txt"
needs = ["make"]
"""
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _own_handler(signum: int, frame: object) -> None:
    raise AssertionError(f"signal {signum} reached a handler the run should have replaced")


@pytest.fixture
def pipeline(project: Project) -> Iterator[Project]:
    """A pipeline that takes every phase: outs (the lock), deps (the cache), params;
    this process with Python's SIGINT handler and its own SIGTERM and SIGHUP
    handlers, which a run must give back."""
    project.write(PIPELINE)
    (project.path / "in.txt").write_text("data\n")
    before = {signum: signal.getsignal(signum) for signum in SIGNALS}
    # Ctrl-C as an interactive `mlci run` has it, whatever this process inherited (a
    # process started in the background by a shell starts with SIGINT ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _own_handler)
    signal.signal(signal.SIGHUP, _own_handler)
    try:
        yield project
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)


def mlci_run(project: Project, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """`mlci run` in this process: its exit code and what it said on stderr."""
    code = main(["run", "--config", str(project.config_path)])
    return code, capsys.readouterr().err


def open_in(path: Path) -> list[str]:
    """What this process holds open under ``path``."""
    held = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # the listing's own descriptor, closed by now
        if target.startswith(str(path.resolve())):
            held.append(target)
    return held


def run_states(project: Project) -> dict[int, tuple[str, str | None]]:
    """Each run's state and message, read with plain sqlite3 (not through mlci)."""
    database = project.state_dir / "mlci.db"
    if not database.exists():
        return {}
    connection = sqlite3.connect(database)
    try:
        rows = connection.execute("SELECT id, state, message FROM runs").fetchall()
    finally:
        connection.close()
    return {row[0]: (row[1], row[2]) for row in rows}


def assert_nothing_leaked(project: Project, handlers: dict[int, Any], subreaper: bool) -> None:
    assert open_in(project.path) == [], "descriptors of the project stay open"
    assert not [t for t in threading.enumerate() if t.name == "mlci-store"], "a store writer"
    lock = os.open(project.path / OUTS_LOCK, os.O_RDWR)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # at once, or BlockingIOError
    finally:
        os.close(lock)
    running = {i: s for i, s in run_states(project).items() if s[0] == "running"}
    assert running == {}, "a run stays running"
    assert local.is_subreaper() == subreaper, "the subreaper state changed"
    assert {s: signal.getsignal(s) for s in SIGNALS} == handlers, "signal handlers changed"


def fails_cleanly(
    project: Project, capsys: pytest.CaptureFixture[str], code: int, line: str
) -> dict[int, tuple[str, str | None]]:
    """`mlci run` fails with ``code`` and one line holding ``line``; nothing leaks.
    Returns the runs then in the store."""
    handlers = {s: signal.getsignal(s) for s in SIGNALS}
    subreaper = local.is_subreaper()
    # The outs lock's file exists from the start, so that a leaked lock shows as held.
    (project.path / OUTS_LOCK).parent.mkdir(exist_ok=True)
    (project.path / OUTS_LOCK).touch()
    got, err = mlci_run(project, capsys)
    assert (got, err.count("\n")) == (code, 1), err
    assert err.startswith("mlci: ") and line in err and "internal error" not in err, err
    assert_nothing_leaked(project, handlers, subreaper)
    return run_states(project)


# The phases, in the order `Runner.start` takes them.


def test_a_store_of_a_newer_mlci(pipeline: Project, capsys: pytest.CaptureFixture[str]) -> None:
    Store.open(pipeline.state_dir).close()
    connection = sqlite3.connect(pipeline.state_dir / "mlci.db")
    connection.execute("PRAGMA user_version = 999")
    connection.close()
    fails_cleanly(pipeline, capsys, 2, "written by a newer mlci (schema 999")


def test_recovery_that_raises(
    pipeline: Project, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recovery says what it could not settle rather than raising: patched to raise."""

    def recover(*args: object) -> None:
        raise StoreError("recovery failed here")

    monkeypatch.setattr("mlci_tui.service.runner.recover", recover)
    assert fails_cleanly(pipeline, capsys, 2, "recovery failed here") == {}


def test_a_subreaper_that_cannot_be(
    pipeline: Project, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """prctl answers rather than raising: patched to raise."""

    def become_subreaper() -> bool:
        raise StoreError("no subreaper here")

    monkeypatch.setattr("mlci_tui.service.runner.become_subreaper", become_subreaper)
    assert fails_cleanly(pipeline, capsys, 2, "no subreaper here") == {}


def test_outs_locked_by_another_run(pipeline: Project, capsys: pytest.CaptureFixture[str]) -> None:
    (pipeline.path / OUTS_LOCK).parent.mkdir()
    other = os.open(pipeline.path / OUTS_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        text = json.dumps({"run": 7, "config": str(pipeline.config_path)})
        os.write(other, text.encode())
        got, err = mlci_run(pipeline, capsys)
        assert got == 2 and err.startswith("mlci: run 7 is running in this project"), err
    finally:
        os.close(other)
    handlers = {s: signal.getsignal(s) for s in SIGNALS}
    assert_nothing_leaked(pipeline, handlers, subreaper=False)
    assert run_states(pipeline) == {}


def test_a_run_whose_directory_cannot_be_made(
    pipeline: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    """The run's row and its directory are made together, or neither is."""
    (pipeline.state_dir / "runs").mkdir(parents=True)
    (pipeline.state_dir / "runs" / "1").write_text("in the way\n")
    runs = fails_cleanly(pipeline, capsys, 2, "runs/1: cannot make the run's directory: File")
    assert runs == {}


def test_params_file_that_cannot_be_written(
    pipeline: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    (pipeline.state_dir / "runs" / "1" / "params.json").mkdir(parents=True)
    runs = fails_cleanly(pipeline, capsys, 2, "params.json: cannot write the run's params: Is a")
    state, message = runs[1]
    assert state == "interrupted" and message is not None
    assert message.startswith("the run could not start: ") and "params.json" in message
    # The next run starts at once, and runs.
    (pipeline.state_dir / "runs" / "1" / "params.json").rmdir()
    assert pipeline.mlci("run").returncode == 0
    assert pipeline.status()["run_id"] == 2


@pytest.mark.parametrize(
    "phase",
    [
        "mlci_tui.pipeline.stage_cache.StageCache.__init__",
        "mlci_tui.service.runner.Engine",
        "mlci_tui.service.runner.StoreRecorder",
        "mlci_tui.mirror.trigger.Mirroring",
    ],
)
def test_a_later_phase_that_raises(
    pipeline: Project,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    phase: str,
) -> None:
    """Nothing real fails in these (the cache's own connection, the engine, the
    recorder, MLflow mirroring, which only set things up): patched to raise."""
    text = pipeline.config_path.read_text()
    pipeline.config_path.write_text(text + '[mlflow]\ntracking_uri = "sqlite:///mlflow.db"\n')

    def fail(*args: object, **kwargs: object) -> None:
        raise StoreError(f"{phase.rsplit('.', 1)[1]} failed")

    monkeypatch.setattr(phase, fail)
    runs = fails_cleanly(pipeline, capsys, 2, f"{phase.rsplit('.', 1)[1]} failed")
    assert runs[1][0] == "interrupted"
    assert runs[1][1] == f"the run could not start: {phase.rsplit('.', 1)[1]} failed"


# What the caller does with a started run.


def test_an_interrupt_before_the_run_executes(
    pipeline: Project, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C between the start and the run's own handlers: a real SIGINT, sent as
    `mlci run` sets up its printer."""
    from mlci_tui.commands.live_printer import LivePrinter

    made: Callable[..., None] = LivePrinter.__init__

    def interrupted(self: LivePrinter, *args: Any, **kwargs: Any) -> None:
        made(self, *args, **kwargs)
        os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(LivePrinter, "__init__", interrupted)
    handlers = {s: signal.getsignal(s) for s in SIGNALS}
    got, err = mlci_run(pipeline, capsys)
    assert (got, err) == (130, "")
    assert_nothing_leaked(pipeline, handlers, subreaper=False)
    # Cancelled, as a Ctrl-C a moment later leaves it: no class name for a message.
    assert run_states(pipeline)[1] == ("cancelled", None)
    stages = pipeline.status("--run", "1")["stages"]
    assert {(s["state"], s["message"]) for s in stages} == {("cancelled", "cancelled")}


def test_a_run_that_ends_gives_everything_back(
    pipeline: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    handlers = {s: signal.getsignal(s) for s in SIGNALS}
    got, _ = mlci_run(pipeline, capsys)
    assert got == 0
    assert_nothing_leaked(pipeline, handlers, subreaper=False)
    assert run_states(pipeline) == {1: ("passed", None)}
