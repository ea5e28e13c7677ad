"""What the test tiers share — real projects in tmp_path, real `mlci` subprocesses,
the registry's test pipeline, and the engine and dashboard harnesses. Not a test
module: test modules import from here, never from each other."""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import psutil
import pytest

from mlci_tui.config import load_config
from mlci_tui.events import CommandOutput
from mlci_tui.pipeline.engine import Engine
from mlci_tui.states import RunState, Stream
from mlci_tui.store.logs import LogWriter, read_notes

if TYPE_CHECKING:  # only the dashboard tier imports Textual
    from textual.pilot import Pilot
    from textual.strip import Strip

    from mlci_tui.tui.app import MlciApp

ROOT = Path(__file__).resolve().parents[1]
PROGRAMS = Path(__file__).parent / "programs"
PYTHON = sys.executable
BAD = Path(__file__).parent / "configs" / "bad"
"""Broken configs, each starting with ``# expect: `` and the one line it must give."""
BAD_CONFIGS = sorted(BAD.glob("*.toml"))


def require_extra(distribution: str, install: str) -> None:
    """Skip the calling test module when ``distribution`` is not installed at all.

    Installed but broken (an import that fails, a missing dependency) is not a
    reason to skip: the module's own imports then fail the run, where
    `pytest.importorskip` would have turned the breakage into a quiet skip."""
    import importlib.metadata

    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(f"{distribution} is not installed: {install}", allow_module_level=True)


# Projects and `mlci` processes ---------------------------------------------------


def mlci_env(**extra: str) -> dict[str, str]:
    """The environment for an `mlci` child: this interpreter's package, no CI markers."""
    ci = ("GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY", "GITLAB_CI", "NO_COLOR")
    env = {k: v for k, v in os.environ.items() if k not in ci}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


class Project:
    """A pipeline directory with its own config and store."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.config_path = path / "config.toml"
        self.state_dir = path / ".mlci"

    def write(self, text: str) -> Path:
        """Write config.toml; ``{python}`` and ``{programs}`` are filled in."""
        text = text.replace("{python}", json.dumps(PYTHON)[1:-1])
        text = text.replace("{programs}", json.dumps(str(PROGRAMS))[1:-1])
        self.config_path.write_text(text)
        return self.config_path

    def mlci(
        self, *args: str, timeout: float = 120, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [PYTHON, "-m", "mlci_tui", *args, "--config", str(self.config_path)],
            cwd=self.path,
            env=env or mlci_env(),
            capture_output=True,
            timeout=timeout,
        )

    def start(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """`mlci` in the background, in its own process group like a terminal job."""
        return subprocess.Popen(
            [PYTHON, "-m", "mlci_tui", *args, "--config", str(self.config_path)],
            cwd=self.path,
            env=env or mlci_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )

    def status(self, *args: str) -> dict:
        """`mlci status --json`, whose exit says whether the run passed (or still runs)."""
        result = self.mlci("status", "--json", *args)
        assert result.returncode in (0, 1), result.stderr
        run = json.loads(result.stdout)
        assert result.returncode == (0 if run["state"] in ("passed", "running") else 1)
        return run

    def stage(self, name: str, *args: str) -> dict:
        return next(s for s in self.status(*args)["stages"] if s["name"] == name)

    def log(self, stage: str, run: int | None = None) -> bytes:
        args = ["logs", stage] + ([] if run is None else ["--run", str(run)])
        result = self.mlci(*args)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def printed(self, stage: str, text: bytes) -> bool:
        """Whether the stage of the first run has printed ``text`` yet."""
        path = self.state_dir / "runs" / "1" / f"{stage}.log"
        return path.exists() and text in path.read_bytes()

    def in_terminal(self, *args: str) -> list[str]:
        """argv for `mlci ARGS` under script(1), which gives it a pseudo-terminal."""
        command = [PYTHON, "-m", "mlci_tui", *args, "--config", str(self.config_path)]
        return ["script", "-qec", shlex.join(command), "/dev/null"]


def typed_in_a_terminal(
    project: Project, args: tuple[str, ...], keys: bytes, *, term: str = "xterm-256color"
) -> tuple[int, bytes]:
    """`mlci ARGS` in a real terminal (script(1)), without colour: once the quick
    pipeline's stage has drawn (``hello``), ``keys`` are typed one by one; its exit
    code and everything it drew."""
    session = subprocess.Popen(
        project.in_terminal(*args),
        cwd=project.path,
        env=mlci_env(TERM=term, NO_COLOR="1"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    assert session.stdin is not None and session.stdout is not None
    screen = Output(session.stdout.fileno())
    try:
        screen.wait_for(b"hello")  # up, the store read and drawn: the stage's pane
        for key in keys:
            session.stdin.write(bytes([key]))
            session.stdin.flush()
        session.wait(timeout=30)
        return session.returncode, screen.end()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(session.pid, signal.SIGKILL)


def demo_project(tmp_path: Path) -> Project:
    """The repository's demo pipeline, copied as a fresh clone would have it."""
    shutil.copytree(ROOT / "demo", tmp_path / "demo", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "config.toml", tmp_path / "config.toml")
    return Project(tmp_path)


def run_python(
    *args: str, cwd: Path | None = None, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """This interpreter with ``args`` in an `mlci` child's environment, output as text."""
    return subprocess.run(
        [PYTHON, *args],
        cwd=cwd,
        env=mlci_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# A flood: eight stages at once, 200,000 numbered lines each (tests/programs/lines.py).
FLOOD_STAGES = 8
FLOOD_LINES = 200_000


def flood_config() -> str:
    stages = "".join(
        f'[stages.s{i}]\ncommand = ["{PYTHON}", "{PROGRAMS}/lines.py", "{FLOOD_LINES}", "s{i}"]\n'
        for i in range(FLOOD_STAGES)
    )
    return f"[pipeline]\nmax_parallel = {FLOOD_STAGES}\n{stages}"


def flood_output(stage: str) -> bytes:
    """What one flood stage prints, byte for byte."""
    return "".join(f"{stage} {n:07d} {'x' * 40}\n" for n in range(FLOOD_LINES)).encode()


POLL_S = 0.05
"""How often a wait looks again at the state it waits for."""


def described(condition: Callable[[], object], what: str) -> str:
    """What a wait waited for, for its failure: ``what``, else the condition's source."""
    if what:
        return what
    try:
        return " ".join(inspect.getsource(condition).split())
    except (OSError, TypeError):
        return repr(condition)


def wait_for(condition: Callable[[], object], timeout: float = 30.0, what: str = "") -> object:
    """Poll until ``condition()`` is truthy; fail the test after ``timeout``, saying
    what it waited for."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout:g}s waiting for {described(condition, what)}"
            )
        time.sleep(POLL_S)


class Output:
    """Everything a child writes to a pipe or a terminal (``fd``), collected by a
    thread as it comes: a test waits for what it needs to see there, never for time."""

    def __init__(self, fd: int) -> None:
        # Its own descriptor, closed when the output ends: one the test closes meanwhile
        # (and the system hands out again) is never read from here.
        self._fd = os.dup(fd)
        self._data = bytearray()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            with contextlib.suppress(OSError):  # EIO: a terminal's other end has closed
                while chunk := os.read(self._fd, 65536):
                    with self._lock:
                        self._data.extend(chunk)
        finally:
            os.close(self._fd)

    @property
    def data(self) -> bytes:
        with self._lock:
            return bytes(self._data)

    def wait_for(
        self, seen: bytes | Callable[[bytes], object], timeout: float = 30.0, what: str = ""
    ) -> None:
        """Until ``seen`` is in the output (or ``seen(output)`` holds)."""

        def found() -> object:
            data = self.data
            return seen in data if isinstance(seen, bytes) else seen(data)

        if isinstance(seen, bytes):
            what = what or f"{seen!r} in the output"
        else:
            what = described(seen, what)
        try:
            wait_for(found, timeout, what=what)
        except AssertionError as error:
            raise AssertionError(f"{error}; the output ends {self.data[-600:]!r}") from None

    def end(self, timeout: float = 30.0) -> bytes:
        """All of it, once the writer has closed its end."""
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the output did not end"
        return self.data


def pid_alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def read_pids(path: Path) -> list[int]:
    """The process ids tests/programs/spawn.py wrote to ``path``."""
    return [int(pid) for pid in path.read_text().split()]


def wait_dead(pids: Iterable[int], timeout: float = 10.0) -> None:
    """Wait until none of ``pids`` is alive (cleaning up may take a moment)."""
    watched = list(pids)
    wait_for(lambda: not any(pid_alive(pid) for pid in watched), timeout=timeout)


def run_stages(project: Project, *args: str) -> dict[str, dict]:
    """`mlci run ARGS`, which must pass; its stages by name, from `status --json`."""
    result = project.mlci("run", *args)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    return {stage["name"]: stage for stage in project.status()["stages"]}


def stage_states(stages: dict[str, dict]) -> dict[str, str]:
    return {name: stage["state"] for name, stage in stages.items()}


def why_rows(project: Project, *args: str) -> dict[str, dict]:
    """`mlci why --json ARGS`: what a run would do with each stage, by name."""
    result = project.mlci("why", "--json", *args)
    assert result.returncode == 0, result.stderr
    return {row["stage"]: row for row in json.loads(result.stdout)}


# Configs -------------------------------------------------------------------------


def expected_error(path: Path) -> str:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name} must start with '# expect: '"
    expected = first.removeprefix("# expect: ").replace("{file}", path.name)
    return expected.replace("{dir}", str(path.parent.resolve()))


def validate(path: Path | str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_python("-m", "mlci_tui", "validate", "--config", str(path), cwd=cwd)


def assert_one_line_error(result: subprocess.CompletedProcess[str], expected: str) -> None:
    assert result.returncode == 2, result
    assert result.stdout == ""
    assert result.stderr == expected + "\n"
    assert "Traceback" not in result.stderr


RAY_CONFIG = """
[pipeline]
executor = "ray"

[executors.ray]
address = "$RAY_HEAD"
entrypoint_num_cpus = 2
entrypoint_num_gpus = 0.5
entrypoint_memory = 1_000_000
metadata = { "team" = "forecasting" }

[executors.ray.runtime_env]
working_dir = "src"
pip = ["numpy==2.1.0"]
env_vars = { OMP_NUM_THREADS = "4" }

[stages.test]
command = "pytest"
executor = "local"

[stages.train]
command = "python3 train.py"
needs = ["test"]
"""


# The engine, in-process ------------------------------------------------------------


def engine_for(project: Project, text: str, **kwargs) -> tuple[Engine, list]:
    config = load_config(project.write(text), environ={})
    metrics_dir = project.path / "metrics"
    metrics_dir.mkdir(exist_ok=True)
    engine = Engine(config, metrics_path=lambda stage: metrics_dir / f"{stage}.json", **kwargs)
    events: list = []
    engine.subscribe(events.append)
    return engine, events


def output(events: list, stage: str) -> bytes:
    return b"".join(
        e.data + (b"" if e.partial else b"\n")
        for e in events
        if isinstance(e, CommandOutput) and e.stage == stage
    )


# The registry's test pipeline ----------------------------------------------------

# A model is a text file; `quality` decides what the monitor reports, and flag
# files make the deploy command fail, hang or wait.
PIPELINE = """
[pipeline]
name = "tiny"
kill_grace = "1s"

[stages.train]
command = "mkdir -p build && echo \\"model $(cat seed 2>/dev/null || echo 0)\\" > build/model.txt"
artifact = "build/model.txt"

[stages.evaluate]
command = "echo '::metric accuracy=0.9 f1=0.8'"
needs = ["train"]

[deploy]
command = '''
[ -e fail-deploy ] && { echo "deploy broke" >&2; exit 3; }
[ -e hang-deploy ] && sleep 300
if [ -e hold-deploy ]; then touch deploy-started; while [ ! -e go ]; do sleep 0.05; done; fi
cp "$MLCI_MODEL_PATH" served.txt
echo "$MLCI_MODEL_VERSION from ${MLCI_PREVIOUS_VERSION:-nothing}" >> deploys.txt
'''
timeout = "{deploy_timeout}"

[monitor]
command = "echo \\"::metric accuracy=$(cat quality 2>/dev/null || echo 0.95)\\""
checks = ["accuracy >= 0.85"]
interval = "0.1s"
samples = 3
failures_before_rollback = 2
auto_rollback = {policy}

[alerts]
command = '''
echo "$MLCI_ALERT_KIND|$MLCI_ALERT_VERSION|$MLCI_ALERT_MESSAGE" >> alerts.txt
[ ! -e fail-alert ]
'''

[registry]
keep_versions = {keep}
"""


def setup(project: Project, *, policy: str = "true", keep: int = 20, timeout: str = "30s") -> None:
    project.write(
        PIPELINE.replace("{policy}", policy)
        .replace("{keep}", str(keep))
        .replace("{deploy_timeout}", timeout)
    )


def run(project: Project, seed: int, **env: str) -> int:
    (project.path / "seed").write_text(str(seed))
    return project.mlci("run", env=mlci_env(**env)).returncode


def two_versions(project: Project, *, policy: str = "true") -> None:
    """v1 then v2, each from a run (v2 is live)."""
    setup(project, policy=policy)
    for seed in (1, 2):
        run(project, seed)


def start_held_rollback(project: Project) -> subprocess.Popen[bytes]:
    """`mlci rollback v1` in the background, held inside its deploy command."""
    two_versions(project)
    (project.path / "hold-deploy").touch()
    rolling_back = project.start("rollback", "v1")
    wait_for((project.path / "deploy-started").exists)
    return rolling_back


HELD_MONITOR = (
    'command = """\n'
    "if [ -e hold-monitor ]; then touch monitor-started;"
    " while [ ! -e go-monitor ]; do sleep 0.05; done; fi\n"
    'echo "::metric accuracy=$(cat quality 2>/dev/null || echo 0.95)"\n'
    '"""\n'
)


def hold_monitor(project: Project) -> None:
    """The test pipeline's monitor command, made to wait for `go-monitor` when told."""
    text = project.config_path.read_text()
    start = text.index("[monitor]\ncommand = ") + len("[monitor]\n")
    end = text.index("\n", start) + 1
    project.write(text[:start] + HELD_MONITOR + text[end:])


def versions(project: Project) -> dict[str, dict]:
    result = project.mlci("versions", "--json")
    assert result.returncode == 0, result.stderr
    return {v["version"]: v for v in json.loads(result.stdout)}


def statuses(project: Project) -> dict[str, str]:
    return {name: v["status"] for name, v in versions(project).items()}


def history(project: Project) -> list[dict]:
    result = project.mlci("history", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# A pipeline to sweep ---------------------------------------------------------------

# Every stage is cached (deps), `train` reads params and makes the artifact, `prepare`
# a directory out; what each writes depends only on its inputs, so a forced run in a
# fresh copy is an oracle of what the cache holds.
SWEEP_SCRIPTS = {
    "prepare.py": """\
import pathlib
out = pathlib.Path("build/data")
(out / "split").mkdir(parents=True, exist_ok=True)
(out / "a.txt").write_text("rows 1 2 3\\n")
(out / "split" / "b.txt").write_text("rows 4 5\\n")
""",
    "train.py": """\
import os, pathlib
params = {k: v for k, v in sorted(os.environ.items()) if k.startswith("MLCI_PARAM_")}
data = pathlib.Path("build/data/a.txt").read_text()
pathlib.Path("build/extra").mkdir(parents=True, exist_ok=True)
pathlib.Path("build/model.txt").write_text(f"model {params} {data}")
pathlib.Path("build/extra/notes.txt").write_text(f"notes {params['MLCI_PARAM_TRAIN_LR']}\\n")
""",
    "evaluate.py": """\
import os
lr = float(os.environ["MLCI_PARAM_TRAIN_LR"])
print(f"::metric accuracy={0.99 - lr} lr={lr}")
""",
}
SWEEP_PARAMS = """\
# what the sweep tries
[train]
lr = 0.02  # the learning rate
depth = 3
optimizer = "adam"
"""
SWEEP_PIPELINE = """
[pipeline]
name = "sweep"
kill_grace = "1s"
{params}

[stages.prepare]
command = ["{python}", "prepare.py"]
deps = ["prepare.py"]
outs = ["build/data"]

[stages.train]
command = ["{python}", "train.py"]
needs = ["prepare"]
deps = ["train.py", "build/data"]
params = ["train"]
outs = ["build/model.txt", "build/extra"]
artifact = "build/model.txt"

[stages.evaluate]
command = ["{python}", "evaluate.py"]
needs = ["train"]
deps = ["evaluate.py", "build/model.txt"]
params = ["train.lr"]
gates = ["accuracy >= 0.5"]
"""
SWEEP_DEPLOY = """
[deploy]
command = 'cp "$MLCI_MODEL_PATH" served.txt && echo "$MLCI_MODEL_VERSION" >> deploys.txt'

[monitor]
command = 'echo "::metric accuracy=$(cat quality 2>/dev/null || echo 0.95)"'
checks = ["accuracy >= 0.85"]
interval = "0.1s"
samples = 3
failures_before_rollback = 2
auto_rollback = true
"""


def sweep_project(path: Path, *, params_file: bool = False, deploy: bool = False) -> Project:
    """The pipeline to sweep, in ``path``: its params in `[params]`, or in a params
    file (params.toml); with `[deploy]` and `[monitor]` when asked."""
    project = Project(path)
    path.mkdir(parents=True, exist_ok=True)
    for name, text in SWEEP_SCRIPTS.items():
        (path / name).write_text(text)
    if params_file:
        (path / "params.toml").write_text(SWEEP_PARAMS)
        params = 'params_file = "params.toml"'
    else:
        params = '\n[params]\ntrain.lr = 0.02\ntrain.depth = 3\ntrain.optimizer = "adam"'
    project.write(SWEEP_PIPELINE.replace("{params}", params) + (SWEEP_DEPLOY if deploy else ""))
    return project


def experiment(project: Project, *sets: str, name: str = "try") -> int:
    """The id of one experiment `mlci exp run` ran with ``sets`` (it passed)."""
    arguments = [part for text in sets for part in ("--set", text)]
    result = project.mlci("exp", "run", *arguments, "--name", name, "-j", "1")
    assert result.returncode == 0, result.stderr
    with contextlib.closing(sqlite3.connect(project.state_dir / "mlci.db")) as db:
        return int(db.execute("SELECT MAX(id) FROM experiments").fetchone()[0])


@contextlib.contextmanager
def readonly_store(project: Project, mount: Path) -> Iterator[None]:
    """The registry's test pipeline with two versions, its store then impossible to
    write: on a file system remounted read-only (as root), or without write access."""
    mount.mkdir()
    root = os.geteuid() == 0
    if root:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(mount)], check=True)
    setup(project)
    text = project.config_path.read_text()
    project.write(text.replace("[pipeline]\n", f'[pipeline]\nstate_dir = "{mount}/.mlci"\n', 1))
    for seed in (1, 2):
        assert run(project, seed) == 0
    if root:
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
    else:
        subprocess.run(["chmod", "-R", "a-w", str(mount)], check=True)
    try:
        yield
    finally:
        if root:
            subprocess.run(["umount", "-l", str(mount)], check=False)
        else:
            subprocess.run(["chmod", "-R", "u+w", str(mount)], check=False)


def served(project: Project) -> str:
    return (project.path / "served.txt").read_text()


# The dashboard ---------------------------------------------------------------------

QUICK = """
[stages.hello]
command = "echo hello from the stage; echo second line"
[stages.after]
command = "echo done"
needs = ["hello"]
"""


async def until(
    pilot: Pilot, condition: Callable[[], object], timeout: float = 30.0, what: str = ""
) -> None:
    """Let the app work until ``condition()`` holds; fail the test after ``timeout``,
    saying what it waited for."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout:g}s waiting for {described(condition, what)}"
            )
        await pilot.pause(POLL_S)


async def settle(pilot: Pilot, timeout: float = 30.0) -> None:
    """Wait until the app has taken in all it was given: every message handled, no
    worker in flight (a read of the store, a log being indexed, matches counted), no
    animation running or scheduled, the screen laid out. Twice in a row: laying out
    and a worker's result send messages of their own."""
    app = pilot.app
    deadline = time.monotonic() + timeout
    calm = 0
    while calm < 2:
        await pilot.wait_for_scheduled_animations()
        busy = [worker.name for worker in app.workers if not worker.is_finished]
        if getattr(app, "reading", False):  # a read asked for, its result not yet shown
            busy.append("a read of the store")
        if not busy:
            calm += 1
            continue
        calm = 0
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {busy} to finish")
        await pilot.pause(POLL_S)


async def shown(
    pilot: Pilot,
    condition: Callable[[], object] | None = None,
    timeout: float = 30.0,
    what: str = "",
) -> None:
    """Wait until the dashboard has read the store and drawn what it read: its stage
    list is filled (its first read fills it), ``condition()`` holds, and it has
    `settle`-d with the condition still holding."""
    app: MlciApp = pilot.app  # type: ignore[assignment]
    deadline = time.monotonic() + timeout

    def ready() -> bool:
        return bool(app.stages.names) and (condition is None or bool(condition()))

    awaited = "the dashboard to read the store"
    if condition is not None:
        awaited += f" and show {described(condition, what)}"
    while True:
        await until(pilot, ready, max(0.0, deadline - time.monotonic()), awaited)
        await settle(pilot, max(0.0, deadline - time.monotonic()))
        if ready():
            return


def notices(app: MlciApp) -> list[str]:
    """Every message the dashboard says from now on, kept: on screen a notice goes
    after a few seconds, which a slow machine may take to look."""
    said: list[str] = []
    say = app.say

    def recorded(message: str, **options: Any) -> None:
        said.append(message)
        say(message, **options)

    app.say = recorded  # type: ignore[method-assign]
    return said


def dashboard(project: Project, **options) -> MlciApp:
    from mlci_tui.tui.app import make_app

    return make_app(load_config(project.config_path), poll_interval=0.1, **options)


def text_of(strip: Strip) -> str:
    """A rendered line of the screen as plain text."""
    return "".join(segment.text for segment in strip)


def help_lines(app: MlciApp) -> list[str]:
    """Every line the help draws, as drawn (scrolled out of view or not), from the
    left edge of its text."""
    from textual.widgets import Static

    return [
        text_of(static.render_line(y)).rstrip()
        for static in app.screen.query(Static)
        for y in range(static.size.height)
    ]


def help_text(app: MlciApp) -> str:
    return "\n".join(help_lines(app))


def run_state(app: MlciApp) -> RunState | None:
    return app.snapshot.run.state if app.snapshot.run else None


HOSTILE = (
    b"[bold red]x[/] [link=file:///etc/passwd]y[/]\n"
    b"\x1b]0;evil title\x07\x1b]2;title\x07\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\\n"
    b"\x1b]52;c;ZXZpbA==\x07clip\x1b[2J\x1b[H\x1b[?1049h\x1b[?2004hcursor\n"
    b"nul\x00bell\x07c1\xc2\x9bcsi bad\xff\xfeutf8\n"
    b"\x1b[31mred\x1b[0m plain\n"
    b"10%\r50%\r100%\n"
    b"safe\xe2\x80\xaetxt.exe \x1b[8mhidden\x1b[0m\n"
)


def notes_of(path: Path) -> str:
    """mlci's notes about a stage (a retry, a restore, why it failed), one a line: they
    stand beside its log, never among its output."""
    return "".join(note.text + "\n" for note in read_notes(path))


def append_log(
    path: Path, stream: Stream, block: bytes, time: float, *, partial: bool = False
) -> None:
    """Append ``block`` (lines, the last without its newline unless ``partial``) to the
    stage log at ``path`` as the runner does; a note of mlci's for `Stream.MESSAGE`."""
    log = LogWriter(path)
    try:
        if stream is Stream.MESSAGE:
            log.note(block.decode("utf-8", "replace"), time)
        else:
            log.output(stream, block, time, partial=partial)
    finally:
        log.close()


# What CI systems read in a job's log --------------------------------------------

# .NET's char.IsWhiteSpace, which the Actions runner's TrimStart uses.
_DOTNET_BLANKS = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
_DOTNET_BLANKS += "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"


class Command(NamedTuple):
    name: str
    info: str
    """The name and its properties: ``error title=…``."""
    data: str


def github_commands(out: bytes) -> list[Command]:
    """The workflow commands GitHub Actions' runner takes from ``out`` (a step's
    output): a port of its parser (``ActionCommand.TryParseV2`` and ``TryParse``,
    ``ActionCommandManager.TryProcessCommand``) that takes every name for one it
    knows, so that it finds more than GitHub would, never less. The resume of
    stop-commands is named ``resume``, its token the data."""
    found: list[Command] = []
    stopped: str | None = None
    # The runner reads lines as .NET's ReadLine does: CR, LF or CR LF end one.
    for line in re.split(r"\r\n|\r|\n", out.decode("utf-8", "replace")):
        candidates = []
        trimmed = line.lstrip(_DOTNET_BLANKS)
        if trimmed.startswith("::") and (end := trimmed.find("::", 2)) >= 0:
            candidates.append((trimmed[2:end], trimmed[end + 2 :]))
        if (start := line.find("##[")) >= 0 and (end := line.find("]", start)) >= 0:
            candidates.append((line[start + 3 : end], line[end + 1 :]))
        commands = [Command(i.split(" ", 1)[0], i, d) for i, d in candidates if i.split(" ", 1)[0]]
        if stopped is not None:
            if any(command.name.lower() == stopped.lower() for command in commands):
                found.append(Command("resume", "", stopped))
                stopped = None
        elif commands:
            found.append(commands[0])
            if commands[0].name.lower() == "stop-commands":
                stopped = commands[0].data
    return found


def check_github_markup(out: bytes, failed: dict[str, bool]) -> list[str]:
    """That every workflow command in ``out`` is one of mlci's own, in mlci's order:
    per stage (``failed``: each stage's name, and whether it failed) a group that
    holds stop-commands and their resume, then an annotation if it failed; and
    mlci's own text between stop-commands and their resume. The stages grouped."""
    tokens: list[str] = []
    groups: list[str] = []
    annotated: list[str] = []
    state = "out"
    for command in github_commands(out):
        if command.name == "stop-commands":
            assert state in ("out", "group"), (state, command)
            assert re.fullmatch("[0-9a-f]{32}", command.data) and command.data not in tokens
            tokens.append(command.data)
            state = "stopped in group" if state == "group" else "stopped"
        elif command.name == "resume":
            assert command.data == tokens[-1] and state.startswith("stopped"), (state, command)
            state = "closing" if state == "stopped in group" else "out"
        elif (command.info, state) == ("group", "out"):
            assert command.data in failed and command.data not in groups, command
            groups.append(command.data)
            state = "group"
        elif (command.info, command.data, state) == ("endgroup", "", "closing"):
            state = "out"
        elif command.name == "error" and state == "out":
            title = re.fullmatch(r"error title=stage (\S+) failed", command.info)
            assert title is not None and failed[title[1]] and title[1] not in annotated, command
            annotated.append(title[1])
        else:
            raise AssertionError(f"a workflow command that is not mlci's: {command} ({state})")
    assert state == "out"
    return groups


GITLAB_SECTION = re.compile(
    rb"section_((?:start)|(?:end)):(\d+):([a-zA-Z0-9_.-]+)"
    rb"(\[(?:\w+=\w+)(?:, ?(?:\w+=\w+))*\])?\r\x1b\[0K"
)
"""GitLab's section marker (``Gitlab::Regex.build_trace_section_regex``), which its
log viewer tries wherever a token may start: searched for anywhere here."""


def gitlab_sections(out: bytes) -> list[tuple[str, str]]:
    """Every section edge GitLab could read in ``out``: ``(start|end, name)``."""
    return [(m[1].decode(), m[3].decode()) for m in GITLAB_SECTION.finditer(out)]
