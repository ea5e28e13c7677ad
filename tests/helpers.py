"""What the test tiers share — real projects in tmp_path, real `mlci` subprocesses,
the registry's test pipeline, and the engine and dashboard harnesses. Not a test
module: test modules import from here, never from each other."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

from mlci_tui.config import load_config
from mlci_tui.events import StageOutput
from mlci_tui.pipeline.engine import Engine
from mlci_tui.states import RunState, Stream
from mlci_tui.store.logs import encode

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


def wait_for(condition: Callable[[], object], timeout: float = 30.0, what: str = "") -> object:
    """Poll until ``condition()`` is truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or condition}")


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
        if isinstance(e, StageOutput) and e.stage == stage
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


async def until(pilot: Pilot, condition: Callable[[], object], timeout: float = 30.0) -> None:
    """Let the app work until ``condition()`` holds."""
    for _ in range(int(timeout / 0.05)):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"timed out waiting for {condition}")


def dashboard(project: Project, **options) -> MlciApp:
    from mlci_tui.tui.app import make_app

    return make_app(load_config(project.config_path), poll_interval=0.1, **options)


def text_of(strip: Strip) -> str:
    """A rendered line of the screen as plain text."""
    return "".join(segment.text for segment in strip)


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


def log_records(stream: Stream, block: bytes, time: float, *, partial: bool = False) -> bytes:
    """The log records of ``block`` as one byte string (`store.logs.encode`, joined)."""
    return b"".join(encode(stream, block, time, partial=partial))
