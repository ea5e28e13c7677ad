"""Timing commands fairly: interleaved runs, medians and spreads, peak memory.

Every command under comparison runs once as a warm-up (compiled bytecode,
caches, a dvc repository), then A B A B … so that drift on a shared machine
hits every side alike.
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil


@dataclass
class Samples:
    """Measurements of one command, in seconds (or any unit)."""

    values: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.values)
        index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
        return ordered[index]


@dataclass
class Target:
    """One promise of the suite, and whether this run kept it."""

    key: str
    """Names the target in `benchmarks/missed.md`, where a missed one's profiled cause is
    written; stable from run to run."""
    text: str
    value: float
    limit: float
    unit: str = ""
    moonshot: float | None = None
    """What the issue hopes for beyond the limit, if it names something."""

    @property
    def met(self) -> bool:
        return self.value <= self.limit


@dataclass
class Scenario:
    """The results of one scenario, ready for the report."""

    title: str
    description: str
    table: list[list[str]] = field(default_factory=list)
    headers: list[str] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped: str | None = None
    about: list[str] = field(default_factory=list)
    """What runs: the producer, the peers and their versions."""
    command: str = ""
    """The command that measures this scenario alone (set by `python -m benchmarks`)."""
    elapsed: float = 0.0
    """Seconds the scenario took, set up and measured (set by `python -m benchmarks`)."""


def bench_env(**extra: str) -> dict[str, str]:
    """The environment for measured commands: like a user's, with bytecode caching
    on (this machine's shell turns it off, which would make every start compile)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.pop("GITHUB_ACTIONS", None)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    env.update(extra)
    return env


def mlci_command() -> list[str]:
    """How to start mlci: the console script next to this interpreter, as users do."""
    script = Path(sys.executable).parent / "mlci"
    return [str(script)] if script.exists() else [sys.executable, "-m", "mlci_tui"]


def find_tool(name: str, explicit: str | None = None) -> str | None:
    if explicit:
        return explicit if Path(explicit).exists() else None
    return shutil.which(name)


def timed(argv: Sequence[str], *, cwd: Path, env: Mapping[str, str]) -> float:
    """Wall time of one run; a failing command is an error, not a fast result."""
    started = time.perf_counter()
    result = subprocess.run(
        list(argv),
        cwd=cwd,
        env=dict(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.decode()[-500:]}"
        )
    return elapsed


def interleave(runs: int, commands: Mapping[str, Callable[[], float]]) -> dict[str, Samples]:
    """Run each command once to warm up, then ``runs`` times, alternating; returns
    their samples."""
    for command in commands.values():
        command()
    samples = {name: Samples() for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            samples[name].values.append(command())
    return samples


class PeakRss:
    """Samples one process's resident memory (not its children's) until stopped."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.peak = 0
        self._process = psutil.Process(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, args=(interval,), daemon=True)
        self._thread.start()

    def _watch(self, interval: float) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self._process.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(interval)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def version(argv: Sequence[str]) -> str:
    """The first line a tool prints about its version."""
    try:
        out = subprocess.run(list(argv), capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown version"
    return out.splitlines()[0].strip() if out.strip() else "unknown version"


def package_version(name: str) -> str:
    """``name VERSION`` of an installed Python distribution."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return f"{name} {installed(name)}"
    except PackageNotFoundError:
        return f"{name} (not installed)"


def version_of_sh() -> str:
    """Which shell /bin/sh is (dash has no --version), with the package's version."""
    shell = Path(os.path.realpath("/bin/sh")).name
    packaged = version(["dpkg-query", "-W", "-f", "${Version}", shell])
    return shell if packaged == "unknown version" else f"{shell} {packaged}"


def machine() -> dict[str, str]:
    memory = psutil.virtual_memory().total / (1 << 30)
    return {
        "cores": str(os.cpu_count()),
        "memory": f"{memory:.1f} GiB",
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "cpu": platform.processor() or platform.machine(),
    }


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def secs(seconds: float) -> str:
    return f"{seconds:.3f} s"


def spread(samples: Samples) -> list[str]:
    return [secs(samples.median), f"{secs(samples.low)} – {secs(samples.high)}"]
