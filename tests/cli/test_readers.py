"""Readers never disturb a run: any number of processes open and close the store
while a run writes it, through every stage of the demo, deploy and monitor too.

On POSIX, closing any descriptor of a file drops every lock its process holds
on it; a runner that did so lost SQLite's locks, and the next reader to close
deleted the WAL under it (`disk I/O error` at registration). The oracle here is
the run itself: with readers of every kind coming and going, it must end as it
ends alone, every reader must have read without an error, and `mlci logs -f`
must have seen exactly what the log holds.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import re
import signal
import sqlite3
import struct
import subprocess
import termios
import threading
import time
from pathlib import Path

import pytest

from tests.helpers import PYTHON, Project, demo_project, mlci_env, wait_for

pytestmark = pytest.mark.slow

STAGES = ("test", "prepare", "train", "evaluate", "deploy", "monitor")
TROUBLE = re.compile(rb"disk I/O|malformed|not a database|Traceback|internal error|locked")


def slowed_demo(tmp_path: Path) -> Project:
    """The demo, each stage's command held until a reader has seen it running (a state,
    not a time: a loaded machine outlasts any sleep); and an MLflow mirror, whose sync
    after the run writes the store from another process."""
    project = demo_project(tmp_path)
    (project.path / "seen").mkdir()
    lines, table = [], ""
    for line in project.config_path.read_text().splitlines():
        if found := re.match(r"\[(?:stages\.)?([\w-]+)\]", line):
            table = found.group(1)
        if table in STAGES and (command := re.match(r'command = ("""|")', line)):
            # Held at most a minute, so that a reader that never sees it fails the test.
            hold = (
                f"i=0; until [ -e seen/{table} ] || [ $i -ge 1200 ];"
                " do sleep 0.05; i=$((i+1)); done; "
            )
            line = f"command = {command.group(1)}{hold}{line[command.end() :]}"
        lines.append(line)
    text = "\n".join(lines) + '\n\n[mlflow]\ntracking_uri = "sqlite:///mlflow.db"\n'
    project.config_path.write_text(text)
    return project


class Readers:
    """Reader processes of every kind, started again and again until told to stop."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.stop = threading.Event()
        self.seen_running: set[str] = set()
        self.problems: list[str] = []
        self.reads = 0
        self.followers: dict[str, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._guard(target), daemon=True)
            for target in (self._status, self._commands, self._plain_sqlite, self._dashboard)
        ]

    def __enter__(self) -> Readers:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)
        for follower in self.followers.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                follower.wait(timeout=60)

    def _guard(self, target):  # type: ignore[no-untyped-def]
        def run() -> None:
            try:
                target()
            except Exception as error:  # a reader that broke is a finding, not a hang
                self._problem(f"{target.__name__}: {error!r}")

        return run

    def _problem(self, text: str) -> None:
        with self._lock:
            self.problems.append(text)

    def _check(self, what: str, result: subprocess.CompletedProcess[bytes]) -> None:
        with self._lock:
            self.reads += 1
        if result.returncode not in (0, 1) or TROUBLE.search(result.stderr):
            self._problem(f"{what} exit {result.returncode}: {result.stderr[-400:]!r}")

    def _status(self) -> None:
        """`mlci status --json` in a loop; a `logs -f` for each stage seen running."""
        while not self.stop.is_set():
            result = self.project.mlci("status", "--json")
            self._check("status --json", result)
            if result.returncode in (0, 1) and result.stdout:
                for stage in json.loads(result.stdout)["stages"]:
                    if stage["state"] == "running":
                        self.seen_running.add(stage["name"])
                        (self.project.path / "seen" / stage["name"]).touch()
                        if stage["name"] not in self.followers:
                            self.followers[stage["name"]] = self.project.start(
                                "logs", "-f", stage["name"]
                            )

    def _commands(self) -> None:
        commands = [("versions",), ("why",), ("history",), ("mlflow", "status"), ("logs", "test")]
        while not self.stop.is_set():
            for command in commands:
                self._check(" ".join(command), self.project.mlci(*command))

    def _plain_sqlite(self) -> None:
        """Another program reading the database as SQLite's own tools do: open, read,
        close, many times a second."""
        database = self.project.state_dir / "mlci.db"
        while not self.stop.is_set():
            if not database.exists():
                time.sleep(0.01)
                continue
            connection = sqlite3.connect(database, timeout=30)
            try:
                connection.execute("SELECT COUNT(*) FROM stages").fetchone()
            except sqlite3.OperationalError as error:
                if "no such table" not in str(error):  # the store being made
                    self._problem(f"sqlite3: {error}")
            finally:
                connection.close()
            with self._lock:
                self.reads += 1

    def _dashboard(self) -> None:
        """The dashboard, opened in a real pseudo-terminal and quit with `q`, again."""
        while not self.stop.is_set():
            pid, terminal = pty.fork()
            if pid == 0:
                os.chdir(self.project.path)
                env = mlci_env(TERM="xterm-256color")
                argv = [PYTHON, "-m", "mlci_tui", "--config", str(self.project.config_path)]
                os.execve(PYTHON, argv, env)
            fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
            shown = bytearray()

            def read(fd: int = terminal, into: bytearray = shown) -> None:
                with contextlib.suppress(OSError):
                    while chunk := os.read(fd, 65536):
                        into.extend(chunk)

            reader = threading.Thread(target=read, daemon=True)
            reader.start()
            try:
                wait_for(lambda s=shown: b"pump-failure" in s, timeout=60, what="the dashboard")
                os.write(terminal, b"q")
                _, status = os.waitpid(pid, 0)
                reader.join(timeout=10)
            finally:
                with contextlib.suppress(ProcessLookupError, ChildProcessError):
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                os.close(terminal)
            with self._lock:
                self.reads += 1
            if os.waitstatus_to_exitcode(status) != 0 or TROUBLE.search(bytes(shown)):
                self._problem(f"dashboard exit {status}: {bytes(shown)[-400:]!r}")


def test_readers_of_every_kind_never_disturb_a_run(tmp_path: Path) -> None:
    project = slowed_demo(tmp_path)
    with Readers(project) as readers:
        run = project.start("run")
        out, err = run.communicate(timeout=600)
    assert run.returncode == 0, err.decode(errors="replace")[-2000:]
    assert not TROUBLE.search(out + err)
    assert readers.problems == []
    # Every stage, deploy and monitor included, ran while readers came and went.
    assert readers.seen_running == set(STAGES), readers.seen_running
    assert readers.reads > 50
    status = project.status()
    assert status["state"] == "passed"
    versions = json.loads(project.mlci("versions", "--json").stdout)
    assert [(v["version"], v["status"]) for v in versions] == [("v1", "live")]
    alerts = project.mlci("alerts", "--json")
    assert "run_failed" not in alerts.stdout.decode()
    # What each follower printed is the stage's log, byte for byte.
    assert set(readers.followers) == set(STAGES)
    for stage, follower in readers.followers.items():
        printed, _ = follower.communicate(timeout=60)
        assert follower.returncode == 0, stage
        assert printed == project.log(stage), stage


def test_many_processes_opening_a_new_store_at_once_all_succeed(tmp_path: Path) -> None:
    """Six processes open (and so create and migrate) one store at the same instant:
    each takes the migration lock and reads the schema version again under it."""
    code = (
        "import os, sys; from pathlib import Path; from mlci_tui.store import Store\n"
        "Path(sys.argv[3]).touch()\n"
        "while not os.path.exists(sys.argv[2]): pass\n"
        "for _ in range(10):\n"
        "    Store.open(Path(sys.argv[1])).close()\n"
    )
    for attempt in range(3):
        state_dir = tmp_path / f"store{attempt}"
        go = tmp_path / f"go{attempt}"
        processes = [
            subprocess.Popen(
                [
                    PYTHON,
                    "-c",
                    code,
                    str(state_dir),
                    str(go),
                    str(tmp_path / f"ready{attempt}-{n}"),
                ],
                env=mlci_env(),
                stderr=subprocess.PIPE,
            )
            for n in range(6)
        ]
        # All six imported and spinning: then they start at once.
        wait_for(lambda a=attempt: len(list(tmp_path.glob(f"ready{a}-*"))) == 6, timeout=120)
        go.touch()
        for process in processes:
            _, err = process.communicate(timeout=120)
            assert process.returncode == 0, err.decode(errors="replace")
        with sqlite3.connect(state_dir / "mlci.db") as connection:
            tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        assert {"runs", "stages", "versions", "metric_points", "mirrored"} <= tables


def test_a_run_that_cannot_reach_its_store_still_raises_its_alert(
    project: Project, tmp_path: Path
) -> None:
    """The store's disk fills while a stage runs: the run stops, and the alert command
    still hears that it failed, and why, though the store could not record the alert."""
    if os.geteuid() != 0:
        pytest.skip("a small file system needs root to mount")
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], check=True)
    try:
        alerts = tmp_path / "alerts.txt"
        fill = f"open('{mount}/filler', 'wb').write(bytes(8 << 20))"
        project.write(
            f'[pipeline]\nname = "filled"\nstate_dir = "{mount}/.mlci"\n'
            "[stages.fill]\n"
            f'command = ["{{python}}", "-c", "{fill}"]\n'
            '[stages.after]\ncommand = "echo after"\nneeds = ["fill"]\n'
            "[alerts]\n"
            f"command = 'echo \"$MLCI_ALERT_KIND|$MLCI_ALERT_MESSAGE\" >> {alerts}'\n"
        )
        result = project.mlci("run")
        assert result.returncode != 0
        assert b"Traceback" not in result.stderr
        said = alerts.read_text()
        assert said.startswith("run_failed|filled run 1 cannot record the run: ")
        assert "No space left on device" in said
        assert "not recorded in the run store" in said
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


DEPLOYER = """
import sys
from pathlib import Path
from mlci_tui.states import DeployKind, DeployOutcome, VersionStatus
from mlci_tui.store import Store
from mlci_tui.store.deployment_request import DeploymentRequest

store = Store.open(Path(sys.argv[1]))
run_id = store.runs.create("torn", [("train", (), 1)], started_at=1.0, pid=1,
                          pid_started=None, host="host", config_path="config.toml")
for number in (1, 2, 3):
    store.versions.add(run_id=run_id, created_at=float(number), artifact_name="m",
                      source_path="m", is_dir=False, sha256=f"{number:x}" * 64, size_bytes=1,
                      metrics={}, git_commit=None, git_dirty=None)
Path(sys.argv[2]).touch()
live = None
step = 0
while not Path(sys.argv[3]).exists():
    step += 1
    target = step % 3 + 1
    request = DeploymentRequest(kind=DeployKind.DEPLOY, from_version=live, to_version=target,
        user="u", reason=None, run_id=run_id, host="host", pid=1, pid_started=None,
        process_tag="t")
    deployment = store.deployments.begin(request, started_at=float(step),
        is_stale=lambda d: True)
    statuses = [(target, VersionStatus.LIVE, "deployed")]
    if live is not None:
        statuses.append((live, VersionStatus.PREVIOUS, "superseded"))
    store.deployments.finish(deployment.id, DeployOutcome.SUCCEEDED, ended_at=float(step),
                            message=None, statuses=statuses)
    live = target
"""


def test_a_snapshot_of_the_store_is_never_half_of_a_deploy(tmp_path: Path) -> None:
    """A writer deploys version after version; every snapshot the dashboard reads
    meanwhile shows one moment of the store: its live version is the one its version
    table says is live, and its rollback target is not live."""
    from mlci_tui.states import VersionStatus
    from mlci_tui.store.reader import StoreReader

    state_dir = tmp_path / "store"
    ready, stop = tmp_path / "ready", tmp_path / "stop"
    writer = subprocess.Popen(
        [PYTHON, "-c", DEPLOYER, str(state_dir), str(ready), str(stop)],
        env=mlci_env(),
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(lambda: ready.exists() or writer.poll() is not None, timeout=60)
        assert writer.poll() is None, writer.stderr.read() if writer.stderr else ""
        reader = StoreReader(state_dir)
        fresh = []
        deadline = time.monotonic() + 120
        while len(fresh) < 5000 and time.monotonic() < deadline:
            snapshot = reader.snapshot()
            if fresh and snapshot is fresh[-1]:
                continue  # nothing committed since: the same snapshot
            fresh.append(snapshot)
            table = [v.number for v in snapshot.versions if v.status is VersionStatus.LIVE]
            live = None if snapshot.live is None else snapshot.live.number
            assert table == ([] if live is None else [live]), (table, live)
            target = snapshot.rollback_target
            assert target is None or target.number != live, (target, live)
        assert len(fresh) == 5000  # read while the writer moved the live version 5000 times
    finally:
        stop.touch()
        writer.wait(timeout=60)


def test_a_link_to_the_store_s_database_is_never_opened_by_the_runner(tmp_path: Path) -> None:
    """A metrics file, an out, a dep and an artifact that lead to the store's database
    (a link, a hard link, or its own path) are refused, never opened: closing a
    descriptor of it would drop the runner's locks, and a reader closing after that
    would delete the WAL under the run (then a second writer damages the store). Here
    a reader opens and closes the store while the run waits after those stages: the
    WAL is still there, and the store is whole."""
    project = Project(tmp_path)
    (tmp_path / "in.txt").write_text("in\n")
    database = '\\"$MLCI_STATE_DIR/mlci.db\\"'
    project.write(
        f"""
[pipeline]
name = "links"

[stages.metrics]
command = "ln -sf {database} \\"$MLCI_METRICS_FILE\\""

[stages.out]
command = "mkdir -p o && ln -f {database} o/hard.db"
deps = ["in.txt"]
outs = ["o"]

[stages.dep]
command = "true"
deps = [".mlci/mlci.db"]

[stages.wait]
command = "until [ -e read ]; do sleep 0.02; done"
needs = ["metrics", "out"]
timeout = "60s"
"""
    )
    assert project.mlci("validate").returncode == 0
    runner = project.start("run")
    try:

        def waiting() -> bool:
            found = project.mlci("status", "--json")
            running = b'"name": "wait",\n      "state": "running"'
            return found.returncode == 0 and running in found.stdout

        wait_for(waiting, timeout=60, what="stage wait running")
        assert (project.state_dir / "mlci.db-wal").exists()
        reader = sqlite3.connect(project.state_dir / "mlci.db")
        assert reader.execute("SELECT count(*) FROM runs").fetchone() == (1,)
        reader.close()
        assert (project.state_dir / "mlci.db-wal").exists(), "the WAL went under the run"
        (tmp_path / "read").touch()
        out, err = runner.communicate(timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(runner.pid, signal.SIGKILL)
    assert runner.returncode == 1, err  # `dep` fails: its dep is the store's database
    assert b"dep .mlci/mlci.db cannot be read: it is the run store's database" in out
    assert b"[metrics] -- cannot read the metrics file: it is the run store's database" in out
    # Said with the path, not as Python says an OSError (`[Errno 1] …`).
    assert re.search(
        rb"\[out\] +-- not cached: [^\n\[]*/o/hard.db: it is the run store's database", out
    )
    check = sqlite3.connect(project.state_dir / "mlci.db")
    assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    check.close()

    # The artifact, registered after every stage passed: refused in one line.
    project.write(
        f"""
[pipeline]
name = "links"

[stages.model]
command = "ln -sf {database} model.bin"
artifact = "model.bin"
"""
    )
    result = project.mlci("run")
    assert result.returncode == 1
    assert b"could not be registered" in result.stdout
    assert b"it is the run store's database" in result.stdout
    assert project.mlci("versions").stdout.startswith(b"no versions")
