"""Shared helpers: real projects in tmp_path, real `mlci` subprocesses."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROGRAMS = Path(__file__).parent / "programs"
PYTHON = sys.executable


def mlci_env(**extra: str) -> dict[str, str]:
    """The environment for an `mlci` child: this interpreter's package, no CI markers."""
    env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_ACTIONS", "NO_COLOR")}
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
        result = self.mlci("status", "--json", *args)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

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


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path)


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
    import psutil

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
