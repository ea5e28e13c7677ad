"""The scenarios, each comparing mlci with what a user would use instead."""

from __future__ import annotations

import filecmp
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import psutil

from benchmarks.harness import (
    PeakRss,
    Samples,
    Scenario,
    Target,
    bench_env,
    interleave,
    mlci_command,
    ms,
    package_version,
    secs,
    spread,
    timed,
    version,
    version_of_sh,
)
from benchmarks.store_generator import build_experiments, build_store

CHAIN = 20
LINE = "{:08d} " + "x" * 50  # 60 bytes with the newline
SHORT_LINE = "{:08d} " + "x" * 8  # 18 bytes with the newline


@dataclass(frozen=True)
class Sizes:
    runs: int
    lines: tuple[int, int]
    flood: int
    idle_s: float
    versions: int
    scale_runs: int
    key_presses: int
    dep_bytes: int
    dep_files: int
    stages: int
    out_bytes: int
    plot_points: int
    experiment_rounds: int
    served_tabs: int


FULL = Sizes(
    runs=7,
    lines=(200_000, 2_000_000),
    flood=2_000_000,
    idle_s=10.0,
    versions=10_000,
    scale_runs=1_000,
    key_presses=50,
    dep_bytes=1 << 30,
    dep_files=10_000,
    stages=500,
    out_bytes=1 << 30,
    plot_points=10_000,
    experiment_rounds=3,
    served_tabs=20,
)
QUICK = Sizes(
    runs=1,
    lines=(20_000, 100_000),
    flood=100_000,
    idle_s=2.0,
    versions=1_000,
    scale_runs=100,
    key_presses=10,
    dep_bytes=64 << 20,
    dep_files=1_000,
    stages=100,
    out_bytes=16 << 20,
    plot_points=2_000,
    experiment_rounds=1,
    served_tabs=3,
)


def _metric_generator(work: Path) -> Path:
    """A script printing N numbered lines in chunks of 10 000, every 100th a metric line
    (a training loop's loss), as a chatty training script would."""
    script = work / "metric_lines.py"
    line = (
        f"(f'::metric step={{i}} loss={{1 / (i + 1):.6f}}' if i % 100 == 0 else {LINE!r}.format(i))"
    )
    script.write_text(
        "import sys\n"
        "count = int(sys.argv[1])\n"
        "out = sys.stdout\n"
        "for start in range(0, count, 10_000):\n"
        f"    out.write(''.join({line} + '\\n'"
        " for i in range(start, min(count, start + 10_000))))\n"
    )
    return script


def _mlci(*args: str) -> list[str]:
    return [*mlci_command(), *args]


def _timed_mlci(config: Path, *args: str, env: dict[str, str]) -> float:
    """Wall time of `mlci ARGS --config CONFIG`, run in the config's directory."""
    return timed(_mlci(*args, "--config", str(config)), cwd=config.parent, env=env)


# 1. Engine overhead ------------------------------------------------------------


def _true_chain(directory: Path, count: int) -> Path:
    """A chain of ``count`` stages running `true`, for mlci and for make (`tN` needs
    `tN-1`), one at a time; returns the config."""
    directory.mkdir()
    stages = [
        f'[stages.t{i}]\ncommand = "true"' + (f'\nneeds = ["t{i - 1}"]' if i else "")
        for i in range(count)
    ]
    config = directory / "config.toml"
    config.write_text("[pipeline]\nmax_parallel = 1\n\n" + "\n\n".join(stages) + "\n")
    make = [f"t{i}:{f' t{i - 1}' if i else ''}\n\t@true" for i in range(count)]
    (directory / "Makefile").write_text(
        "\n".join(make) + "\n.PHONY: " + " ".join(f"t{i}" for i in range(count)) + "\n"
    )
    return config


def engine_overhead(work: Path, sizes: Sizes, dvc: str | None) -> Scenario:
    if shutil.which("make") is None:
        return Scenario(
            "1. Engine overhead",
            "mlci vs make vs dvc on a chain of 20 stages.",
            skipped="make is not installed (apt-get install make).",
        )
    directory = work / "chain"
    directory.mkdir()
    stages = []
    make = [f"all: s{CHAIN - 1}"]
    dvc_stages = ["stages:"]
    for i in range(CHAIN):
        command = f"echo {i} > o{i}"
        stages.append(f'[stages.s{i}]\ncommand = "{command}"')
        if i:
            stages[-1] += f'\nneeds = ["s{i - 1}"]'
        make.append(f"s{i}:{f' s{i - 1}' if i else ''}\n\t@{command}")
        deps = f"\n    deps: [o{i - 1}]" if i else ""
        dvc_stages.append(
            f"  s{i}:\n    cmd: {command}{deps}\n    outs:\n      - o{i}:\n          cache: false"
        )
    (directory / "config.toml").write_text(
        "[pipeline]\nmax_parallel = 1\n\n" + "\n\n".join(stages) + "\n"
    )
    (directory / "Makefile").write_text(
        "\n".join(make) + "\n.PHONY: all " + " ".join(f"s{i}" for i in range(CHAIN)) + "\n"
    )
    one = _true_chain(work / "true-1", 1)
    many = _true_chain(work / f"true-{CHAIN}", CHAIN)
    env = bench_env()
    python = [sys.executable, "-c"]

    def make_true(config: Path, count: int) -> float:
        return timed(["make", "-s", "-B", "-j1", f"t{count - 1}"], cwd=config.parent, env=env)

    commands = {
        "mlci run, 1 `true` stage": lambda: _timed_mlci(one, "run", env=env),
        "python -c pass": lambda: timed([*python, "pass"], cwd=directory, env=env),
        f"mlci run, {CHAIN} `true` stages": lambda: _timed_mlci(many, "run", env=env),
        "make -B -j1, 1 `true` stage": lambda: make_true(one, 1),
        f"make -B -j1, {CHAIN} `true` stages": lambda: make_true(many, CHAIN),
        # The floor any Python program with asyncio and sqlite3 starts from.
        "python -c 'import asyncio, sqlite3, subprocess'": lambda: timed(
            [*python, "import asyncio, sqlite3, subprocess"], cwd=directory, env=env
        ),
        f"mlci run, {CHAIN} `echo` stages": lambda: _timed_mlci(
            directory / "config.toml", "run", env=env
        ),
        f"make -B, {CHAIN} `echo` stages": lambda: timed(
            ["make", "-s", "-B", f"s{CHAIN - 1}"], cwd=directory, env=env
        ),
    }
    scenario = Scenario(
        "1. Engine overhead",
        f"What mlci costs around commands that cost nothing: one stage running `true`"
        " beside `python -c pass`, the bare interpreter; a chain of"
        f" {CHAIN} `true` stages beside the same chain in a Makefile (`make -s -B -j1`),"
        f" which with the single stage gives the cost of each further stage. Then a chain"
        f" of {CHAIN} stages, each `echo N > oN`, the same dependencies for each tool:"
        " `mlci run` vs `make -B` vs `dvc repro -f`. Each mlci config has"
        " `max_parallel = 1`, as `make -j1` runs.",
        headers=["command", "median", "min – max"],
        about=[
            f"peers: make ({version(['make', '--version'])}),"
            + (f" dvc ({version([dvc, '--version'])})" if dvc else " dvc not installed")
            + f", Python {sys.version.split()[0]}",
            f"mlci's stages run through `/bin/sh` ({version_of_sh()}), as dvc's do; make"
            " runs a command as simple as `true` without a shell",
        ],
    )
    if dvc:
        dvc_dir = work / "chain-dvc"
        dvc_dir.mkdir()
        (dvc_dir / "dvc.yaml").write_text("\n".join(dvc_stages) + "\n")
        subprocess.run([dvc, "init", "--no-scm", "-q"], cwd=dvc_dir, env=env, check=True)
        commands[f"dvc repro -f, {CHAIN} `echo` stages"] = lambda: timed(
            [dvc, "repro", "-f", "-q"], cwd=dvc_dir, env=env
        )
    else:
        scenario.notes.append("dvc is not installed: skipped (`pip install dvc` to include it).")
    samples = interleave(sizes.runs, commands)
    for name, values in samples.items():
        scenario.table.append([name, *spread(values)])
    single = samples["mlci run, 1 `true` stage"].median
    bare = samples["python -c pass"].median
    marginal = (samples[f"mlci run, {CHAIN} `true` stages"].median - single) / (CHAIN - 1)
    make_marginal = (
        samples[f"make -B -j1, {CHAIN} `true` stages"].median
        - samples["make -B -j1, 1 `true` stage"].median
    ) / (CHAIN - 1)
    scenario.targets.append(
        Target(
            "engine-one-stage",
            "mlci run of 1 `true` stage / python -c pass",
            single / bare,
            3.0,
            "×",
            moonshot=2.0,
        )
    )
    scenario.targets.append(
        Target(
            "engine-further-stage",
            f"each further stage ({CHAIN} `true` stages vs 1)",
            marginal * 1000,
            1.0,
            " ms",
            moonshot=make_marginal * 1000,
        )
    )
    floor = samples["python -c 'import asyncio, sqlite3, subprocess'"].median
    chain_ratio = (
        samples[f"mlci run, {CHAIN} `true` stages"].median
        / samples[f"make -B -j1, {CHAIN} `true` stages"].median
    )
    scenario.notes.append(
        f"A one-stage run is {single / bare:.2f}× `python -c pass` ({single * 1000:.0f} ms vs"
        f" {bare * 1000:.0f} ms); {floor * 1000:.0f} ms is the interpreter and the"
        " standard-library modules any asyncio and sqlite3 program loads."
    )
    scenario.notes.append(
        f"Each further stage costs mlci {marginal * 1000:.2f} ms and make"
        f" {make_marginal * 1000:.2f} ms ({CHAIN} stages vs 1; make's is the moonshot)."
        f" {CHAIN} `true` stages: mlci / `make -B -j1` is {chain_ratio:.1f}× (for"
        " information: no target)."
    )
    if dvc:
        ratio = (
            samples[f"mlci run, {CHAIN} `echo` stages"].median
            / samples[f"dvc repro -f, {CHAIN} `echo` stages"].median
        )
        scenario.targets.append(Target("engine-dvc", "mlci / dvc", ratio, 0.25, "×"))
    return scenario


# 2. Log throughput ---------------------------------------------------------------


def _fast_producer(count: int, line: str = LINE) -> str:
    """`yes | head`: C programs that write a pipe faster than anything reads it."""
    return f"yes {line.format(0)} | head -n {count}"


def _measured(
    argv: list[str], cwd: Path, env: dict[str, str], *, drained: bool
) -> tuple[float, float, int]:
    """Wall and CPU seconds of one run, its stdout into /dev/null or, ``drained``, into a
    pipe `cat` empties into /dev/null, and the peak RSS of its first process. The CPU is
    every process's of the run, `cat` included (each reaps its children, so their times
    add up in ours)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE if drained else subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    rss = PeakRss(process.pid)
    reader = None
    if drained:
        assert process.stdout is not None
        reader = subprocess.Popen(["cat"], stdin=process.stdout, stdout=subprocess.DEVNULL)
        process.stdout.close()  # the reader's alone: its end is the pipe's
    assert process.stderr is not None
    err = process.stderr.read()
    process.wait()
    if reader is not None:
        reader.wait()
    elapsed = time.perf_counter() - started
    peak = rss.stop()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if process.returncode != 0 or (reader is not None and reader.returncode != 0):
        raise RuntimeError(f"{' '.join(argv)} failed: {err.decode()[-300:]}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return elapsed, cpu, peak


def _latest_run(config: Path, env: dict[str, str]) -> int:
    """The id of the config's latest run, as `mlci status --json` says."""
    status = subprocess.run(
        _mlci("status", "--json", "--config", str(config)),
        cwd=config.parent,
        env=env,
        capture_output=True,
        check=True,
    )
    return int(json.loads(status.stdout)["run_id"])


def _stored(config: Path, stage: str, run: int, out: Path, env: dict[str, str]) -> int:
    """Writes `mlci logs STAGE --run RUN` (what the stage printed, as the store has it) to
    ``out``; returns how many lines it has."""
    with open(out, "wb") as file:
        subprocess.run(
            _mlci("logs", stage, "--run", str(run), "--config", str(config)),
            cwd=config.parent,
            env=env,
            stdout=file,
            stderr=subprocess.DEVNULL,
            check=True,
        )
    with open(out, "rb") as file:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: file.read(1 << 20), b""))


# (width of a line in bytes, newline included) → (wall, CPU) limits and the moonshot
THROUGHPUT_TARGETS = {60: (1.3, 1.5, 1.1), 18: (1.6, 2.0, 1.3)}
SINKS = {"null": "> /dev/null", "pipe": "| cat > /dev/null"}


def log_throughput(work: Path, sizes: Sizes) -> Scenario:
    env = bench_env()
    small, big = sizes.lines
    scenario = Scenario(
        "2. Log throughput",
        "One stage printing lines of 60 bytes, then of 18 bytes (the newline included), as"
        " fast as a C program writes them; the runner reads its stdout and stderr, masks"
        " them, writes them to its log and prints them with the stage's name. Beside it"
        " `tee`, which writes the same bytes to a file and prints them, nothing more. Each"
        " both with its stdout into /dev/null and into a pipe that `cat` drains, as a CI"
        " system reads a job's output. CPU is every process's of the run (the producer's,"
        " `cat`'s), as `time` counts it. The stage's output, as `mlci logs flood` gives it"
        " back, is compared with the producer's, byte for byte.",
        headers=["line", "lines", "command", "wall", "min – max", "CPU", "runner peak RSS"],
        about=[
            f"producer: `yes LINE | head -n N` ({version(['yes', '--version'])}), LINE"
            f" `{LINE.format(0)}` or `{SHORT_LINE.format(0)}`; C programs, faster than"
            " what they feed (the `producer` rows: into /dev/null, nothing read)",
            "`mlci run > /dev/null` and `mlci run | cat > /dev/null`, of a config whose one"
            " stage is `PRODUCER`",
            "`tee > /dev/null` is `sh -c 'PRODUCER | tee out.log > /dev/null'`,"
            " `tee | cat > /dev/null` is `sh -c 'PRODUCER | tee out.log | cat > /dev/null'`",
            f"peer: `tee` ({version(['tee', '--version'])}), `sh` is {version_of_sh()}",
            "moonshots (issue 27): 1.1× tee's wall time for 60-byte lines, 1.3× for 18-byte",
        ],
    )
    peaks: dict[int, int] = {}
    checked: list[tuple[str, str, Path, int]] = []
    """(target key, what, config, run) of each run whose log is compared with the
    producer's."""
    for line, count in [(LINE, small), (LINE, big), (SHORT_LINE, big)]:
        width = len(line.format(0)) + 1
        producer = _fast_producer(count, line)
        directory = work / f"throughput-{width}-{count}"
        directory.mkdir()
        config = directory / "config.toml"
        config.write_text(f'[stages.flood]\ncommand = "{producer}"\n')
        subprocess.run(["sh", "-c", f"{producer} > printed.out"], cwd=directory, check=True)
        sinks = list(SINKS) if count == big else ["null"]
        peak: dict[str, int] = {}
        """The runner's peak RSS, by command."""
        cpu: dict[str, Samples] = {}
        latest: dict[str, int] = {}
        commands: dict[str, Callable[[], float]] = {}

        def run(
            name: str,
            argv: list[str],
            drained: bool,
            runner: bool,
            directory: Path = directory,
            peak: dict[str, int] = peak,
            cpu: dict[str, Samples] = cpu,
            latest: dict[str, int] = latest,
        ) -> float:
            wall, used, rss = _measured(argv, directory, env, drained=drained)
            cpu.setdefault(name, Samples()).values.append(used)
            if runner:
                latest[name] = _latest_run(directory / "config.toml", env)
                peak[name] = max(peak.get(name, 0), rss)
            return wall

        for sink in sinks:
            drained = sink == "pipe"
            mlci_name, tee_name = f"mlci run {SINKS[sink]}", f"tee {SINKS[sink]}"
            tee = f"{producer} | tee out.log" + ("" if drained else " > /dev/null")
            mlci_argv = _mlci("run", "--config", str(config))
            commands[mlci_name] = partial(run, mlci_name, mlci_argv, drained, True)
            commands[tee_name] = partial(run, tee_name, ["sh", "-c", tee], drained, False)
        commands["producer > /dev/null"] = partial(
            run, "producer > /dev/null", ["sh", "-c", f"{producer} > /dev/null"], False, False
        )
        samples = interleave(sizes.runs, commands)
        for name in cpu:
            del cpu[name].values[0]  # the warm-up run's
        for name, values in samples.items():
            rss = f"{peak[name] / (1 << 20):.1f} MB" if name in peak else ""
            scenario.table.append(
                [f"{width} B", f"{count:,}", name, *spread(values), secs(cpu[name].median), rss]
            )
        for sink in sinks:
            key = f"log-{width}-{sink}-missing" if count == big else "log-small-missing"
            what = f"{count:,} × {width} B, `{SINKS[sink]}`"
            checked.append((key, what, config, latest[f"mlci run {SINKS[sink]}"]))
        alone = samples["producer > /dev/null"].median
        fastest_peer = min(samples[f"tee {SINKS[sink]}"].median for sink in sinks)
        scenario.notes.append(
            f"{width}-byte lines, {count:,}: the producer alone took {alone / fastest_peer:.0%}"
            " of tee's wall time"
            + (
                "."
                if alone < fastest_peer
                else ": **not faster than what it feeds**, so these rows measure the producer."
            )
        )
        if count == small:
            wall = samples["mlci run > /dev/null"].median / samples["tee > /dev/null"].median
            used = cpu["mlci run > /dev/null"].median / cpu["tee > /dev/null"].median
            scenario.notes.append(
                f"At {count:,} lines mlci / tee is {wall:.2f}× in wall time and {used:.2f}× in"
                " CPU: tee's whole run is shorter than mlci's start-up (scenario 1), which"
                " these ratios are mostly made of."
            )
            peaks[small] = peak["mlci run > /dev/null"]
            continue
        if line == LINE:
            peaks[big] = peak["mlci run > /dev/null"]
            scenario.targets.append(
                Target(
                    "log-rss",
                    f"runner peak RSS, {count:,} lines of {width} bytes, `> /dev/null`",
                    peaks[big] / (1 << 20),
                    100.0,
                    " MB",
                )
            )
        wall_limit, cpu_limit, moonshot = THROUGHPUT_TARGETS[width]
        for sink in sinks:
            mlci_name, tee_name = f"mlci run {SINKS[sink]}", f"tee {SINKS[sink]}"
            wall = samples[mlci_name].median / samples[tee_name].median
            used = cpu[mlci_name].median / cpu[tee_name].median
            label = f"{count:,} × {width} B, `{SINKS[sink]}`"
            scenario.targets.append(
                Target(
                    f"log-{width}-{sink}-wall",
                    f"mlci / tee, wall, {label}",
                    wall,
                    wall_limit,
                    "×",
                    moonshot=moonshot,
                )
            )
            scenario.targets.append(
                Target(f"log-{width}-{sink}-cpu", f"mlci / tee, CPU, {label}", used, cpu_limit, "×")
            )
    scenario.targets.append(
        Target(
            "log-rss-growth",
            f"runner peak RSS growth from {small:,} to {big:,} lines",
            (peaks[big] - peaks[small]) / (1 << 20),
            10.0,
            " MB",
        )
    )
    unlike = []
    for key, what, config, run_id in checked:
        stored = config.parent / f"stored-{run_id}.out"
        printed = config.parent / "printed.out"
        with open(printed, "rb") as file:
            count = sum(chunk.count(b"\n") for chunk in iter(lambda: file.read(1 << 20), b""))
        lines = _stored(config, "flood", run_id, stored, env)
        scenario.targets.append(
            Target(key, f"lines missing from `mlci logs flood`, {what}", count - lines, 0)
        )
        if not filecmp.cmp(stored, printed, shallow=False):
            unlike.append(f"run {run_id} ({what})")
        stored.unlink()
    scenario.targets.append(
        Target(
            "log-bytes",
            f"runs whose `mlci logs flood` differs from the producer's bytes (of {len(checked)})",
            len(unlike),
            0,
        )
    )
    if unlike:
        scenario.notes.append(
            "`mlci logs flood` differs from what the producer printed: " + ", ".join(unlike) + "."
        )
    return scenario


# 3. Dashboard under flood ----------------------------------------------------------


def _probe(mode: str, config: Path, *argument: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "benchmarks.probe", mode, str(config), *argument],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=0,  # unbuffered: see `_until_line`
    )


def _result(process: subprocess.Popen[bytes]) -> dict[str, Any]:
    """The probe's last line: its JSON result."""
    out, err = process.communicate(timeout=600)
    if process.returncode != 0:
        raise RuntimeError(f"probe failed: {err.decode()[-800:]}")
    return json.loads(out.decode().strip().splitlines()[-1])


def _first_frame(config: Path, env: dict[str, str]) -> float:
    """Seconds from starting a dashboard to its first frame with the store's data
    (the probe says so on a line of its own the moment it is painted)."""
    started = time.perf_counter()
    probe = _probe("frame", config, env=env)
    return _until_first_frame(probe, started)


def _until_line(probe: subprocess.Popen[bytes]) -> None:
    """Wait for the probe's first line (it prints one when it is ready, or has painted
    its first frame)."""
    assert probe.stdout is not None
    # Read from the pipe itself, a byte at a time: a buffered readline could take the
    # probe's last line too, which `communicate` (reading the descriptor) never sees.
    if not probe.stdout.readline():
        _result(probe)  # raises, with the probe's error, if it failed
        raise RuntimeError("the probe ended before its first line")


def _until_first_frame(probe: subprocess.Popen[bytes], started: float) -> float:
    _until_line(probe)
    elapsed = time.perf_counter() - started
    _result(probe)
    return elapsed


def dashboard_flood(work: Path, sizes: Sizes) -> Scenario:
    generator = _metric_generator(work)
    env = bench_env()
    configs = {}
    for name, command in (
        ("fast", _fast_producer(sizes.flood)),
        ("metrics", f"{sys.executable} {generator} {sizes.flood}"),
    ):
        directory = work / f"flood-{name}"
        directory.mkdir()
        configs[name] = directory / "config.toml"
        configs[name].write_text(
            f'[stages.flood]\ncommand = "{command}"\n'
            '[stages.after]\ncommand = "echo done"\nneeds = ["flood"]\n'
        )
        # A run for each dashboard to show when it opens: it is ready for the next
        # run once it shows this one.
        _timed_mlci(configs[name], "run", env=env)
    config = configs["fast"]
    scenario = Scenario(
        "3. Dashboard under flood",
        f"A stage printing {sizes.flood:,} lines as fast as the fast producer writes them:"
        " headless; while a dashboard (the real app on Textual's headless driver, 100x30)"
        " watches it; while a dashboard watches and is sent keys (`f` to toggle follow,"
        " `down` to move the stage selection), one every 100 to 200 ms. Then the Python"
        " producer's flood, every 100th line a metric line (`::metric step=N loss=X`), while"
        " the stage's plot (`g`) is open and `1` hides and shows its line, one key every"
        " 100 ms. Each key is timed from the key to the frame that shows its effect.",
        headers=["run", "median", "min – max"],
        about=[
            f"fast producer: `{_fast_producer(sizes.flood)}` ({version(['yes', '--version'])})",
            f"Python producer: a Python loop writing 10,000 lines per `write`, every 100th a"
            f" metric line (`{generator.name}`)",
            f"{package_version('textual')}, {package_version('textual-plot')}; no peer: no"
            " other tool has this screen",
        ],
    )
    latencies = Samples()
    plotted = Samples()
    peak = [0]
    during = [0]
    cpu = {"watched": Samples(), "keyed": Samples()}

    def headless() -> float:
        return _timed_mlci(config, "run", env=env)

    def observed(mode: str, *argument: str) -> float:
        config = configs["metrics" if mode == "plotkeys" else "fast"]
        probe = _probe(mode, config, *argument, env=env)
        rss = PeakRss(probe.pid)
        _until_line(probe)  # the dashboard shows the last run: the next may start
        before = psutil.Process(probe.pid).cpu_times()
        elapsed = _timed_mlci(config, "run", env=env)
        after = psutil.Process(probe.pid).cpu_times()
        used = after.user + after.system - before.user - before.system
        cpu["keyed" if mode == "keys" else "watched"].values.append(used / elapsed)
        result = _result(probe)
        peak[0] = max(peak[0], rss.stop())
        if mode in ("keys", "plotkeys"):
            keyed = latencies if mode == "keys" else plotted
            keyed.values.extend(result["latencies_s"])
            during[0] += int(result["during_run"])
        return elapsed

    samples = interleave(
        sizes.runs,
        {
            "headless": headless,
            "watched": lambda: observed("watch"),
            "watched, sent keys": lambda: observed("keys", "6"),
            "Python producer, watched with a plot, sent keys": lambda: observed("plotkeys", "6"),
        },
    )
    for name, values in samples.items():
        scenario.table.append([f"mlci run, {name}", *spread(values)])
    scenario.table.append(
        ["key → frame, p50 / p95", ms(latencies.percentile(0.5)), ms(latencies.percentile(0.95))]
    )
    scenario.table.append(
        [
            "key → frame with the plot open, p50 / p95",
            ms(plotted.percentile(0.5)),
            ms(plotted.percentile(0.95)),
        ]
    )
    ratio = samples["watched"].median / samples["headless"].median
    scenario.targets.append(Target("flood-watched", "watched / headless run time", ratio, 1.2, "×"))
    scenario.targets.append(
        Target("flood-rss", "dashboard peak RSS", peak[0] / (1 << 20), 250.0, " MB")
    )
    scenario.targets.append(
        Target(
            "flood-keys",
            f"key → frame p95 under the flood ({len(latencies.values)} keys)",
            latencies.percentile(0.95) * 1000,
            40.0,
            " ms",
            moonshot=16.0,
        )
    )
    scenario.targets.append(
        Target(
            "flood-plot-keys",
            f"key → frame p95 with the plot open ({len(plotted.values)} keys)",
            plotted.percentile(0.95) * 1000,
            100.0,
            " ms",
        )
    )
    scenario.notes.append(
        f"{len(latencies.values) + len(plotted.values)} keys measured, {during[0]} of them"
        " while the flood ran"
        " (the others just after it, while the dashboard caught up)."
    )
    scenario.notes.append(
        f"The dashboard used {cpu['watched'].median * 100:.0f} % of one core while it"
        f" watched, {cpu['keyed'].median * 100:.0f} % while it was also sent keys (medians):"
        " each `f` that turns following off makes it count every line of the flood so far,"
        " which following had skipped; the ratio with keys is "
        f"{samples['watched, sent keys'].median / samples['headless'].median:.2f}×."
    )
    return scenario


# 4. Start-up -------------------------------------------------------------------------


def _hello_frame(env: dict[str, str]) -> float:
    """Seconds from starting `benchmarks.hello` to its first frame."""
    started = time.perf_counter()
    probe = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.hello"],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=0,  # unbuffered: see `_until_line`
    )
    return _until_first_frame(probe, started)


def startup(work: Path, sizes: Sizes) -> Scenario:
    env = bench_env()
    directory = work / "startup"
    directory.mkdir()
    config = directory / "config.toml"
    config.write_text('[stages.a]\ncommand = "true"\n')
    _timed_mlci(config, "run", env=env)
    scenario = Scenario(
        "4. Start-up",
        "Headless commands from process start to exit; the dashboard from process start"
        " to its first frame with the store's data (on Textual's headless driver, 100x30),"
        " beside the same for a Textual app that shows one line of text"
        " (`python -m benchmarks.hello`): the floor any Textual app starts from.",
        headers=["command", "median", "min – max"],
        about=[f"{package_version('textual')}, Python {sys.version.split()[0]}"],
    )
    commands = {
        "mlci --help": lambda: timed(_mlci("--help"), cwd=directory, env=env),
        "mlci versions": lambda: _timed_mlci(config, "versions", env=env),
        "mlci status": lambda: _timed_mlci(config, "status", env=env),
        "dashboard, first frame": lambda: _first_frame(config, env),
        "peer: a Textual app of one line, first frame": lambda: _hello_frame(env),
    }
    samples = interleave(sizes.runs, commands)
    for name, values in samples.items():
        scenario.table.append([name, *spread(values)])
    for name, key in (
        ("mlci --help", "startup-help"),
        ("mlci versions", "startup-versions"),
        ("mlci status", "startup-status"),
    ):
        scenario.targets.append(Target(key, name, samples[name].median, 0.2, " s"))
    frame = samples["dashboard, first frame"].median
    hello = samples["peer: a Textual app of one line, first frame"].median
    scenario.targets.append(
        Target(
            "startup-first-frame",
            "dashboard, first frame / a one-line Textual app's",
            frame / hello,
            1.2,
            "×",
            moonshot=1.0,
        )
    )
    scenario.notes.append(
        f"The dashboard's first frame came {frame / hello:.2f}× as late as the one-line"
        f" app's ({frame * 1000:.0f} ms vs {hello * 1000:.0f} ms; medians of the same"
        " alternating run)."
    )
    return scenario


# 5. Idle ---------------------------------------------------------------------------------


def idle(work: Path, sizes: Sizes) -> Scenario:
    env = bench_env()
    directory = work / "startup"  # a finished run is there
    config = directory / "config.toml"
    samples = Samples()
    for _ in range(max(1, sizes.runs // 3)):
        result = _result(_probe("idle", config, str(sizes.idle_s), env=env))
        samples.values.append(float(result["cpu_s"]) / float(result["seconds"]) * 100)
    scenario = Scenario(
        "5. Idle",
        f"A dashboard open on a finished run for {sizes.idle_s:g} s: CPU time it used"
        " (all threads), as a share of one core.",
        headers=["measure", "median", "min – max"],
    )
    scenario.table.append(
        [
            "CPU, % of one core",
            f"{samples.median:.2f} %",
            f"{samples.low:.2f} – {samples.high:.2f} %",
        ]
    )
    scenario.targets.append(Target("idle-cpu", "idle CPU", samples.median, 0.3, " % of a core"))
    return scenario


# 6. Scale ----------------------------------------------------------------------------------


def scale(work: Path, sizes: Sizes) -> Scenario:
    env = bench_env()
    directory = work / "scale"
    directory.mkdir()
    config = directory / "config.toml"
    config.write_text(
        '[stages.train]\ncommand = "true"\nartifact = "model.txt"\n'
        '[deploy]\ncommand = "true"\n'
        '[registry]\nkey_metrics = ["accuracy", "f1"]\n'
    )
    build_store(directory / ".mlci", versions=sizes.versions, runs=sizes.scale_runs)
    scenario = Scenario(
        "6. Scale",
        f"A store of {sizes.versions:,} versions and {sizes.scale_runs:,} runs"
        " (`python -m benchmarks.store_generator`). `mlci versions` lists the newest 50"
        " by default, as `helm history` lists the newest 256; `--all` lists every one.",
        headers=["measure", "median", "min – max"],
    )

    samples = interleave(
        sizes.runs,
        {
            "mlci versions": lambda: _timed_mlci(config, "versions", env=env),
            "mlci versions --all": lambda: _timed_mlci(config, "versions", "--all", env=env),
            "dashboard opens": lambda: _first_frame(config, env),
        },
    )
    keys = Samples()
    result = _result(_probe("table", config, str(sizes.key_presses), env=env))
    keys.values = list(result["latencies_s"])
    for name, values in samples.items():
        scenario.table.append([name, *spread(values)])
    scenario.table.append(
        ["version table, a key (p50 / p95)", ms(keys.percentile(0.5)), ms(keys.percentile(0.95))]
    )
    scenario.targets.append(
        Target("scale-versions", "mlci versions", samples["mlci versions"].median, 0.5, " s")
    )
    scenario.targets.append(
        Target("scale-open", "dashboard opens", samples["dashboard opens"].median, 1.5, " s")
    )
    scenario.targets.append(
        Target(
            "scale-keys", "version table, p95 per key", keys.percentile(0.95) * 1000, 50.0, " ms"
        )
    )
    return scenario


# 7. Incremental runs ------------------------------------------------------------


def incremental(work: Path, sizes: Sizes, dvc: str | None) -> Scenario:
    """A re-run where nothing changed, against `dvc repro`; and what hashing deps costs."""
    from mlci_tui.config import load_config
    from mlci_tui.pipeline.stage_cache import StageCache, plan
    from mlci_tui.store import Store
    from mlci_tui.store.cache_dir import sha256_file

    scenario = Scenario(
        "7. Incremental runs",
        f"A chain of {CHAIN} stages, each copying the previous stage's out to its own"
        " (`cp oN-1 oN`), with the same deps and outs for both tools, run once; then the"
        " no-op re-run, where every stage is cached: `mlci run` vs `dvc repro`. Then"
        " hashing: the first hash of one large dep, and `mlci why` on a stage with many"
        " dep files once their hashes are remembered.",
        headers=["command", "median", "min – max"],
    )
    env = bench_env()
    chain = work / "cached-chain"
    chain.mkdir()
    (chain / "input.txt").write_text("input\n")
    stages, dvc_stages = [], ["stages:"]
    for i in range(CHAIN):
        source = "input.txt" if i == 0 else f"o{i - 1}"
        stages.append(
            f'[stages.s{i}]\ncommand = "cp {source} o{i}"\ndeps = ["{source}"]\nouts = ["o{i}"]'
            + (f'\nneeds = ["s{i - 1}"]' if i else "")
        )
        dvc_stages.append(
            f"  s{i}:\n    cmd: cp {source} o{i}\n    deps: [{source}]\n    outs: [o{i}]"
        )
    config = chain / "config.toml"
    config.write_text("[pipeline]\nmax_parallel = 1\n\n" + "\n\n".join(stages) + "\n")
    _timed_mlci(config, "run", env=env)
    commands = {"mlci run (all cached)": lambda: _timed_mlci(config, "run", env=env)}
    if dvc:
        dvc_dir = work / "cached-chain-dvc"
        dvc_dir.mkdir()
        (dvc_dir / "input.txt").write_text("input\n")
        (dvc_dir / "dvc.yaml").write_text("\n".join(dvc_stages) + "\n")
        subprocess.run([dvc, "init", "--no-scm", "-q"], cwd=dvc_dir, env=env, check=True)
        subprocess.run([dvc, "repro", "-q"], cwd=dvc_dir, env=env, check=True)
        commands["dvc repro (nothing to do)"] = lambda: timed(
            [dvc, "repro", "-q"], cwd=dvc_dir, env=env
        )
    else:
        scenario.notes.append("dvc is not installed: skipped (`pip install dvc` to include it).")
    samples = interleave(sizes.runs, commands)
    for name, values in samples.items():
        scenario.table.append([name, *spread(values)])
    state = json.loads(
        subprocess.run(
            _mlci("status", "--json", "--config", str(config)),
            cwd=chain,
            env=env,
            capture_output=True,
            check=True,
        ).stdout
    )
    cached = sum(stage["state"] == "cached" for stage in state["stages"])
    scenario.notes.append(f"The last mlci run had {cached} of {CHAIN} stages cached.")
    if dvc:
        ratio = (
            samples["mlci run (all cached)"].median / samples["dvc repro (nothing to do)"].median
        )
        scenario.targets.append(Target("noop-dvc", "no-op re-run, mlci / dvc", ratio, 0.25, "×"))

    # The first hash of one large dep, from the page cache: what sha256 itself costs.
    big = work / "big.bin"
    with open(big, "wb") as file:
        block = bytes(range(256)) * 4096
        for _ in range(sizes.dep_bytes // len(block)):
            file.write(block)
    hashing = Samples()
    for _ in range(3):
        started = time.perf_counter()
        sha256_file(big)
        hashing.values.append(time.perf_counter() - started)
    speed = sizes.dep_bytes / hashing.median / 1e9
    scenario.table.append([f"sha256 of a {sizes.dep_bytes >> 20} MiB dep", *spread(hashing)])
    scenario.targets.append(
        Target("sha256", "first hash of a large dep, GB/s", 1 / speed, 1.0, " s/GB")
    )
    big.unlink()

    # `mlci why` on a stage with many small deps, their hashes remembered.
    many = work / "many-deps"
    data = many / "data"
    data.mkdir(parents=True)
    for i in range(sizes.dep_files):
        (data / f"f{i:05d}.txt").write_text(f"{i}\n")
    old = time.time_ns() - 10_000_000_000
    for path in data.iterdir():
        os.utime(path, ns=(old, old))
    why_config = many / "config.toml"
    why_config.write_text('[stages.train]\ncommand = "true"\ndeps = ["data"]\n')
    loaded = load_config(why_config)
    _timed_mlci(why_config, "why", env=env)  # the first hash, remembered in the store
    in_process = Samples()
    for _ in range(max(3, sizes.runs)):
        with Store.open(loaded.pipeline.state_dir) as store:
            started = time.perf_counter()
            plan(StageCache(loaded, store=store), loaded.stages)
            in_process.values.append(time.perf_counter() - started)
    whole = interleave(sizes.runs, {"why": lambda: _timed_mlci(why_config, "why", env=env)})
    scenario.table.append(
        [f"deciding a stage with {sizes.dep_files:,} dep files (in process)", *spread(in_process)]
    )
    scenario.table.append([f"`mlci why`, {sizes.dep_files:,} dep files", *spread(whole["why"])])
    # The target is the command a user types: start-up and imports included.
    scenario.targets.append(
        Target(
            "why",
            f"`mlci why`, {sizes.dep_files:,} remembered deps",
            whole["why"].median,
            0.1,
            " s",
        )
    )
    scenario.notes.append(
        f"sha256 ran at {speed:.2f} GB/s (OpenSSL with the CPU's SHA extensions). The"
        " in-process row is the deciding alone; the `mlci why` row is the whole command."
    )
    return scenario


# 8. Metric plots ------------------------------------------------------------------


PLOT_WIDGETS = {
    "mlci": "the dashboard's plot: textual-plot, cut to two points a column",
    "textual-plot": "textual-plot given every point",
    "plotext-cut": "textual-plotext, cut the same way",
    "plotext": "textual-plotext given every point",
}


def plots(work: Path, sizes: Sizes) -> Scenario:
    """One plot update with 10 000 points a series (fewer when quick), for the two
    Textual plot widgets."""
    env = bench_env()
    points = sizes.plot_points
    updates = max(5, sizes.runs * 2)
    scenario = Scenario(
        "8. Metric plots",
        f"Two series of {points:,} points each, replaced {updates} times in a 120x40 headless"
        " app (`python -m benchmarks.plots`): from handing the widget new data to the last"
        " frame it paints. The data is made before the clock starts.",
        headers=["widget", "median", "min – max"],
    )
    for widget, label in PLOT_WIDGETS.items():
        process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.plots", widget, str(points), str(updates)],
            cwd=Path(__file__).resolve().parents[1],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        samples = Samples(list(_result(process)["update_s"]))
        scenario.table.append(
            [label, ms(samples.median), f"{ms(samples.low)} – {ms(samples.high)}"]
        )
        if widget == "mlci":
            scenario.targets.append(
                Target(
                    "plot-update",
                    f"plot update, {points:,} points",
                    samples.median * 1000,
                    50.0,
                    " ms",
                )
            )
    scenario.notes.append(
        "textual-plot draws on Textual's own canvas and lays out its axes, ticks and labels;"
        " textual-plotext hands the whole picture to plotext, which builds it as text again"
        " on every render. Given every point both take a quarter of a second; cut to what"
        " the widget can show, textual-plot paints in one frame because the dashboard draws"
        " onto its canvases when the data changes, not while the next frame is painted."
    )
    return scenario


# 9. Many stages --------------------------------------------------------------------


def many_stages(work: Path, sizes: Sizes) -> Scenario:
    """A pipeline of 500 stages in the dashboard: opening it and moving through it."""
    env = bench_env()
    count = sizes.stages
    directory = work / "many-stages"
    directory.mkdir()
    config = directory / "config.toml"
    config.write_text(
        "\n".join(
            f'[stages.shard-{i:03d}]\ncommand = "echo shard {i}"'
            + (f'\nneeds = ["shard-{i - 1:03d}"]' if i % 50 else "")
            for i in range(count)
        )
        + "\n"
    )
    scenario = Scenario(
        "9. Many stages",
        f"A pipeline of {count} stages (ten chains of 50, each stage `echo shard N`), run once"
        " headless; then a dashboard (the real app on Textual's headless driver, 100x30)"
        f" opened on that run, sent `down` {sizes.key_presses} times, one every 50 ms: from"
        " each key to the frame that paints the next stage selected.",
        headers=["measure", "median", "min – max"],
        about=[f"{package_version('textual')}; no peer: no other tool has this screen"],
    )
    samples = interleave(
        max(1, sizes.runs // 2),
        {
            f"mlci run, {count} stages": lambda: _timed_mlci(config, "run", env=env),
            "dashboard, first frame": lambda: _first_frame(config, env),
        },
    )
    for name, values in samples.items():
        scenario.table.append([name, *spread(values)])
    keys = Samples()
    for _ in range(2):
        result = _result(_probe("stages", config, str(sizes.key_presses), env=env))
        keys.values += list(result["latencies_s"])
    scenario.table.append(
        [
            f"`down` in the stage list, p50 / p95 ({len(keys.values)} keys)",
            ms(keys.percentile(0.5)),
            ms(keys.percentile(0.95)),
        ]
    )
    scenario.targets.append(
        Target(
            "stages-keys",
            f"{count} stages: key → frame p95",
            keys.percentile(0.95) * 1000,
            30.0,
            " ms",
            moonshot=16.0,
        )
    )
    return scenario


# 10. Outs into and out of the cache ------------------------------------------------


def _filesystem(path: Path) -> str:
    """The type of the filesystem ``path`` is on (the longest mount point above it)."""
    best, kind = "", "unknown"
    for line in Path("/proc/mounts").read_text().splitlines():
        fields = line.split()
        point = fields[1].replace("\\040", " ")
        if str(path).startswith(point.rstrip("/") + "/") and len(point) > len(best):
            best, kind = point, fields[2]
    return kind


def _loop_mount(image: Path, mount: Path, kind: str, size: int) -> str | None:
    """Make and mount a filesystem of ``kind`` in a sparse file; why not, if it cannot
    be (not root, no mkfs, loop devices refused)."""
    if os.geteuid() != 0:
        return "mounting a filesystem needs root"
    make = {"xfs": ["mkfs.xfs", "-q", "-m", "reflink=1"], "btrfs": ["mkfs.btrfs", "-q"]}[kind]
    if shutil.which(make[0]) is None:
        return f"{make[0]} is not installed (apt-get install xfsprogs btrfs-progs)"
    with open(image, "wb") as file:
        file.truncate(size)
    mount.mkdir()
    for command in ([*make, str(image)], ["mount", "-o", "loop", str(image), str(mount)]):
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            return f"`{' '.join(command[:2])}` failed: {result.stderr.strip()[:200]}"
    return None


def _store_and_restore(
    project: Path, cache_dir: Path, size: int, runs: int
) -> tuple[dict[str, Samples], set[str]]:
    """Put a file of ``size`` bytes into a cache and restore it, ``runs`` times each,
    in process (the hash, scenario 7's business, is taken once beforehand); and how
    each was copied."""
    from mlci_tui.store import Store
    from mlci_tui.store.cache_dir import CacheDir, FileHasher

    out = project / "out.bin"
    with open(out, "wb") as file:
        block = bytes(range(256)) * 4096
        for _ in range(max(1, size // len(block))):
            file.write(block)
        # On disk, as a data set is: else XFS's first clone of it writes it back first.
        os.fsync(file.fileno())
    store = Store.open(project / ".mlci")
    hasher = FileHasher(store.file_hashes)
    cache = CacheDir(cache_dir, hasher)
    sha, identity = hasher.hashes([str(out)])[str(out)]
    methods: set[str] = set()

    def put() -> float:
        cache.object_path(sha).unlink(missing_ok=True)
        store.file_hashes.forget_gone()
        started = time.perf_counter()
        methods.add(cache.put_file(str(out), sha, identity) or "")
        return time.perf_counter() - started

    def restore() -> float:  # where the out was deleted, as `rm out; mlci run` has it
        verified = cache.verified(sha)
        (project / "restored.bin").unlink(missing_ok=True)
        started = time.perf_counter()
        methods.add(cache.restore_file(sha, str(project / "restored.bin"), False, verified))
        return time.perf_counter() - started

    def link() -> float:  # of the restored copy: a link changes the ctime of every name
        (project / "linked.bin").unlink(missing_ok=True)
        started = time.perf_counter()
        os.link(project / "restored.bin", project / "linked.bin")
        return time.perf_counter() - started

    try:
        samples = interleave(runs, {"store": put, "restore": restore, "link": link})
    finally:
        store.close()
    return samples, methods


def cache_copies(work: Path, sizes: Sizes) -> Scenario:
    """Storing a large out in the cache and restoring it, each way this machine offers."""
    size = sizes.out_bytes
    scenario = Scenario(
        "10. Outs into and out of the cache",
        f"One {size >> 20} MiB out stored in the cache and restored from it, with mlci's"
        " own code (`CacheDir.put_file`, `restore_file`; the sha256, measured in"
        " scenario 7, is taken beforehand), on each filesystem this machine offers:"
        " reflinks on a loop-mounted XFS (`mkfs.xfs -m reflink=1`) and btrfs, the"
        " kernel's `copy_file_range` on ext4, and a plain copy when the cache is on"
        " another filesystem (tmpfs). The files are in the page cache, as a stage's"
        " out just written is. A hard link, what mlci once did (the out and the cache"
        " one file), is shown for comparison. Then the whole command: `mlci run` of a"
        " stage that is cached, its out deleted, so that the run restores it.",
        headers=["filesystem", "store", "restore", "hard link", "`mlci run`, restoring"],
        about=[f"Linux {os.uname().release}; mkfs.xfs, mkfs.btrfs from the distribution"],
    )
    env = bench_env()
    places: list[tuple[str, Path, Path]] = []
    here = work / "outs-here"
    here.mkdir()
    kind = _filesystem(here)
    places.append((kind, here, here / "cache"))
    shm = Path("/dev/shm")
    if shm.is_dir() and shutil.disk_usage(shm).free > 2 * size:
        elsewhere = Path(tempfile.mkdtemp(prefix="mlci-bench-cache-", dir=shm))
        places.append((f"{kind}, cache on tmpfs", work / "outs-cross", elsewhere))
        (work / "outs-cross").mkdir()
    else:
        scenario.notes.append("no tmpfs with room at /dev/shm: the plain copy is not measured")
    mounted: list[Path] = []
    for fs in ("xfs", "btrfs"):
        mount = work / f"outs-{fs}"
        why_not = _loop_mount(work / f"{fs}.img", mount, fs, max(4 * size, 512 << 20))
        if why_not is None:
            mounted.append(mount)
            places.append((fs, mount / "project", mount / "project" / "cache"))
            (mount / "project").mkdir()
        else:
            scenario.notes.append(f"{fs}: not measured: {why_not}")
    try:
        for name, project, cache_dir in places:
            samples, methods = _store_and_restore(project, cache_dir, size, sizes.runs)
            whole = _restoring_run(project, cache_dir, size, sizes.runs, env)
            how = "/".join(sorted(m for m in methods if m))
            scenario.table.append(
                [
                    f"{name} ({how})",
                    *[
                        f"{ms(samples[k].median)} ({ms(samples[k].low)} – {ms(samples[k].high)})"
                        for k in ("store", "restore", "link")
                    ],
                    f"{secs(whole.median)} ({secs(whole.low)} – {secs(whole.high)})",
                ]
            )
    finally:
        for mount in mounted:
            subprocess.run(["umount", str(mount)], check=False)
        for _, _, cache_dir in places:
            if str(cache_dir).startswith(str(shm)):
                shutil.rmtree(cache_dir, ignore_errors=True)
    scenario.notes.append(
        "store: a copy into `cache_dir/tmp`, made read-only and renamed into place;"
        " restore: a copy beside the out, renamed over it. Each names the way it copied."
    )
    return scenario


def _restoring_run(
    project: Path, cache_dir: Path, size: int, runs: int, env: dict[str, str]
) -> Samples:
    """`mlci run` of a cached stage whose large out was deleted: the run restores it."""
    directory = project / "pipeline"
    directory.mkdir()
    blocks = max(1, size >> 20)
    config = directory / "config.toml"
    config.write_text(
        f'[pipeline]\ncache_dir = "{cache_dir / "pipeline"}"\n'
        f"[stages.make]\ncommand = \"head -c {blocks}M /dev/zero | tr '\\\\0' x > big.out\"\n"
        'deps = ["in.txt"]\nouts = ["big.out"]\n'
    )
    (directory / "in.txt").write_text("in\n")
    _timed_mlci(config, "run", env=env)
    samples = Samples()
    for _ in range(runs):
        (directory / "big.out").unlink()
        samples.values.append(_timed_mlci(config, "run", env=env))
    return samples


# 11. Reading a log back ----------------------------------------------------------------

SLOW_INFORMATION_S = 3.0
"""A figure given for information only is measured once when one read takes longer."""


def log_reading(work: Path, sizes: Sizes) -> Scenario:
    """`mlci logs` of a flood's log, against `cat` of the bytes the stage printed."""
    env = bench_env()
    count = sizes.lines[-1]
    producer = _fast_producer(count)
    directory = work / "reading"
    directory.mkdir()
    config = directory / "config.toml"
    config.write_text(f'[stages.flood]\ncommand = "{producer}"\n')
    _timed_mlci(config, "run", env=env)
    subprocess.run(["sh", "-c", f"{producer} > printed.out"], cwd=directory, check=True)
    stored = directory / "stored.out"
    lines = _stored(config, "flood", _latest_run(config, env), stored, env)
    same = filecmp.cmp(stored, directory / "printed.out", shallow=False)
    stored.unlink()
    scenario = Scenario(
        "11. Reading a log back",
        f"The log of one stage that printed {count:,} lines of {len(LINE.format(0)) + 1}"
        " bytes (scenario 2's flood, run once), read back into /dev/null: `mlci logs flood`,"
        " what the stage printed, against `cat` of a file holding the same bytes (the"
        " producer's output, written by the producer); and `mlci logs`, the whole run's"
        " log with every line labelled by its stage, for information.",
        headers=["command", "median", "min – max"],
        about=[
            f"producer: `{producer}` ({version(['yes', '--version'])})",
            f"peer: `cat printed.out > /dev/null` ({version(['cat', '--version'])})",
        ],
    )
    commands = {
        "mlci logs flood > /dev/null": lambda: _timed_mlci(config, "logs", "flood", env=env),
        "cat printed.out > /dev/null": lambda: timed(
            ["cat", "printed.out"], cwd=directory, env=env
        ),
    }
    whole_run = "mlci logs > /dev/null (the whole run)"

    def read_whole() -> float:
        return _timed_mlci(config, "logs", env=env)

    # The whole run's log is for information: when it is slow it would take most of the
    # suite's time, and is read once after a warm-up instead of in the alternation.
    slow = read_whole() > SLOW_INFORMATION_S
    if not slow:
        commands[whole_run] = read_whole
    samples = interleave(sizes.runs, commands)
    if slow:
        samples[whole_run] = Samples([read_whole()])
        scenario.notes.append(
            f"The whole run's log took over {SLOW_INFORMATION_S:g} s to read: it was read"
            " once after a warm-up, not alternated with the others."
        )
    for name, values in samples.items():
        scenario.table.append([name, *spread(values)])
    peer = samples["cat printed.out > /dev/null"].median
    stage = samples["mlci logs flood > /dev/null"].median
    whole = samples[whole_run].median
    scenario.targets.append(
        Target("logs-read", f"`mlci logs flood` / `cat`, {count:,} lines", stage / peer, 1.5, "×")
    )
    scenario.targets.append(
        Target("logs-read-missing", "lines missing from `mlci logs flood`", count - lines, 0)
    )
    scenario.notes.append(
        f"`mlci logs flood` took {stage / peer:.1f}× `cat`'s time, `mlci logs` of the whole"
        f" run {whole / peer:.1f}× (for information: no target)."
        + (
            " `mlci logs flood` gave back the producer's bytes exactly."
            if same
            else " **`mlci logs flood` differs from the producer's bytes.**"
        )
    )
    return scenario


# 12. Experiments ----------------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
SEEDS = 8
WORKSPACE_LINE = re.compile(
    r"workspace by (\w+) in (\d+) ms: (.+?) copied(?:, (.+?) shared without copying)?$",
    re.MULTILINE,
)
CACHED_IN = re.compile(r"\[(\w+)\]\s+-- cached in ([\d.]+)s")
NOT_MEASURABLE = "not measurable here"


def _demo_copy(directory: Path, env: dict[str, str]) -> Path:
    """The demo project as `benchmarks/startup_counts.py` makes it, after one `mlci run`
    (which runs `test` and `prepare`: later runs find them cached); its config."""
    shutil.copytree(ROOT / "demo", directory / "demo", ignore=shutil.ignore_patterns("__pycache__"))
    config = directory / "config.toml"
    shutil.copy(ROOT / "config.toml", config)
    _timed_mlci(config, "run", env=env)
    return config


def _with_output(argv: list[str], *, cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    """Wall time and stdout of one command; a failing command is an error."""
    started = time.perf_counter()
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        said = (result.stderr + result.stdout)[-800:]
        raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}): {said}")
    return elapsed, result.stdout


def _probe_workspaces(config: Path, rounds: int, env: dict[str, str], *options: str) -> Any:
    """`benchmarks/workspace_probe.py`'s figures: workspaces made in a child process,
    whose mount namespace is its own."""
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.workspace_probe", str(config), str(rounds), *options],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"the workspace probe failed: {result.stderr[-800:]}")
    return json.loads(result.stdout)


def _big_project(directory: Path, size: int) -> Path:
    """A project whose one stage reads a data dep of ``size`` bytes; its config."""
    (directory / "data").mkdir(parents=True)
    block = bytes(range(256)) * 4096
    with open(directory / "data" / "big.bin", "wb") as file:
        for _ in range(max(1, size // len(block))):
            file.write(block)
        # On disk, as a data set is: else XFS's first clone of it writes it back first.
        os.fsync(file.fileno())
    # A data set that has been there a while, as one usually has: a hash taken just
    # after a write is not trusted by the next reader (`RACY_NS`).
    day_ago = time.time() - 86_400
    os.utime(directory / "data" / "big.bin", (day_ago, day_ago))
    config = directory / "config.toml"
    config.write_text('[stages.count]\ncommand = "wc -c data/big.bin"\ndeps = ["data/big.bin"]\n')
    return config


def _tree_bytes(root: Path) -> int:
    return sum(
        os.lstat(os.path.join(place, name)).st_size
        for place, _, names in os.walk(root)
        for name in names
    )


def _spread_ms(samples: Samples) -> list[str]:
    return [ms(samples.median), f"{ms(samples.low)} – {ms(samples.high)}"]


def experiments(work: Path, sizes: Sizes) -> Scenario:
    """Experiments' workspaces, small and with a large data dep, and a sweep of the demo
    with `-j 2` against the same runs one after another."""
    from mlci_tui.units import format_bytes

    env = bench_env()
    size = sizes.dep_bytes
    rounds = sizes.experiment_rounds
    seeds = ",".join(str(seed) for seed in range(1, SEEDS + 1))
    scenario = Scenario(
        "12. Experiments",
        "An experiment runs in a workspace of its own: the project as it was when the"
        " experiment started. First the workspace of the demo project (config.toml and"
        " demo/, after one `mlci run`), made in process by `service.workspace.make` in a"
        " child that called `private_mounts()` first: the overlay (a snapshot under an"
        " overlay mount in the child's mount namespace), and the fallback"
        " (`make(..., overlay=False)`: reflinks where the filesystem has them, else"
        " copies); and as the workers of the sweep below printed it. Then a project"
        f" whose one stage reads a {format_bytes(size)} data dep (`wc -c data/big.bin`):"
        " the first and second experiment's workspace under the overlay (`mlci exp run`,"
        " as its worker printed it; the first puts the file into the cache, once), the"
        " fallback's workspaces on a loop-mounted XFS made with `-m reflink=1`, and the"
        " time the stage cache takes in a workspace to decide that the stage is cached,"
        " with the bytes it read to decide. Last, the sweep: `mlci exp run --set"
        f" train.seed={seeds} -j 2` (each experiment trains) against {SEEDS} `mlci run"
        " --set train.seed=N` one after another, each side in a fresh copy of the demo"
        " after one `mlci run` (so `test` and `prepare` are cached on both sides); the"
        f" sides alternate, {rounds} round{'s' * (rounds != 1)}, medians. Then `mlci exp"
        f" show` over {SHOWN:,} ended experiments.",
        headers=["measure", "median", "min – max", "copied, read, space or CPU"],
        about=[
            f"Linux {os.uname().release}; overlayfs and loop devices of the kernel;"
            f" {version(['mkfs.xfs', '-V'])}",
            "peer: `mlci run --set` one after another (no other tool here runs experiments"
            " side by side in workspaces of their own)",
        ],
    )
    worker_lines: list[re.Match[str]] = []
    sweep_rows = _sweep(work, scenario, rounds, seeds, env, worker_lines)
    scenario.table += _demo_workspaces(work, scenario, rounds, env, worker_lines)
    scenario.table += _big_dep_overlay(work, scenario, size, env)
    scenario.table += _big_dep_reflink(work, scenario, size, env)
    scenario.table += sweep_rows
    scenario.table += _show(work, scenario, sizes, env)
    return scenario


SHOWN = 1_000


def _show(work: Path, scenario: Scenario, sizes: Sizes, env: dict[str, str]) -> list[list[str]]:
    """`mlci exp show` over a thousand ended experiments of the demo."""
    directory = work / "exp-show"
    shutil.copytree(ROOT / "demo", directory / "demo", ignore=shutil.ignore_patterns("__pycache__"))
    config = directory / "config.toml"
    shutil.copy(ROOT / "config.toml", config)
    started = time.perf_counter()
    build_experiments(directory / ".mlci", config, SHOWN)
    made = time.perf_counter() - started
    show = f"mlci exp show, {SHOWN:,} experiments"
    samples = interleave(
        max(3, sizes.runs),
        {
            show: lambda: _timed_mlci(config, "exp", "show", env=env),
            "mlci exp show --json": lambda: _timed_mlci(config, "exp", "show", "--json", env=env),
            "mlci exp show --filter 'train.seed<0' (reads all, shows none)": lambda: _timed_mlci(
                config, "exp", "show", "--filter", "train.seed<0", env=env
            ),
            "mlci validate (start-up and the config)": lambda: _timed_mlci(
                config, "validate", env=env
            ),
        },
    )
    scenario.targets.append(Target("experiments-show", show, samples[show].median, 0.2, " s"))
    # The dashboard's experiments table over the same store: `e`, then `down` key after
    # key (it scrolls once the cursor passes the rows in view), then `pagedown`.
    probed = _result(_probe("experiments", config, str(sizes.key_presses * 3), env=env))
    keys, pages = Samples(), Samples()
    keys.values, pages.values = list(probed["latencies_s"]), list(probed["pages_s"])
    rows = [
        [
            f"dashboard experiments table, `{key}` → frame ({len(values.values)} keys)",
            ms(values.median),
            f"p95 {ms(values.percentile(0.95))}",
            "",
        ]
        for key, values in (("down", keys), ("pagedown", pages))
        if values.values
    ]
    scenario.targets.append(
        Target(
            "experiments-table-keys",
            f"experiments table of {SHOWN:,}, key → frame p95",
            keys.percentile(0.95) * 1000,
            50.0,
            " ms",
        )
    )
    scenario.about.append(
        f"`mlci exp show`'s store: {SHOWN:,} passed experiments of the demo, each with its"
        " run, four stages and six metrics, written by"
        f" `benchmarks.store_generator.build_experiments` in {secs(made)}"
    )
    shutil.rmtree(directory)
    return [[name, *spread(values), ""] for name, values in samples.items()] + rows


def _demo_workspaces(
    work: Path,
    scenario: Scenario,
    rounds: int,
    env: dict[str, str],
    worker_lines: list[re.Match[str]],
) -> list[list[str]]:
    from mlci_tui.units import format_bytes

    config = _demo_copy(work / "exp-demo", env)
    probed = _probe_workspaces(config, 10 * rounds, env)
    rows = []
    medians = {}
    for method, label in (("overlay", "overlay"), ("copy", "fallback, `overlay=False`")):
        made = probed["made"][method]
        if not made:
            rows.append([f"demo workspace, {label}", NOT_MEASURABLE, "", "no mount namespace"])
            continue
        samples = Samples([m["seconds"] for m in made])
        medians[method] = samples.median
        rows.append(
            [
                f"demo workspace, {label}, in process: by {made[0]['method']} ({len(made)})",
                *_spread_ms(samples),
                f"{format_bytes(made[0]['copied'])} copied",
            ]
        )
    if worker_lines:
        printed = Samples([float(line.group(2)) / 1000 for line in worker_lines])
        methods = "/".join(sorted({line.group(1) for line in worker_lines}))
        rows.append(
            [
                f"demo workspace, as {len(worker_lines)} workers printed it: by {methods}",
                *_spread_ms(printed),
                f"{worker_lines[0].group(3)} copied",
            ]
        )
    shutil.rmtree(config.parent)
    measured = medians.get("overlay", medians.get("copy"))
    if measured is not None:
        how = "overlay" if "overlay" in medians else "fallback"
        scenario.targets.append(
            Target(
                "experiments-workspace",
                f"a workspace for the demo ({how})",
                measured * 1000,
                50.0,
                " ms",
            )
        )
    return rows


MIB = 1 << 20


def _big_dep_overlay(
    work: Path, scenario: Scenario, size: int, env: dict[str, str]
) -> list[list[str]]:
    """Two experiments of a project with a large data dep, as their workers printed
    their workspaces; then two more workspaces in process, with what each read."""
    from mlci_tui.units import format_bytes

    big = work / "exp-big"
    config = _big_project(big, size)
    small = config.stat().st_size  # what is copied by design: files under 1 MiB
    _timed_mlci(config, "run", env=env)  # the file's hash is known, as after any run
    cache = big / ".mlci" / "cache"
    rows = []
    label = format_bytes(size)
    try:
        for name in ("first", "second"):
            before = _tree_bytes(cache)
            _, out = _with_output(
                _mlci("exp", "run", "--name", name, "-j", "1", "--config", str(config)),
                cwd=big,
                env=env,
            )
            line = WORKSPACE_LINE.search(out)
            if line is None:
                raise RuntimeError(f"no workspace line in `mlci exp run`'s output: {out[:500]}")
            into_cache = _tree_bytes(cache) - before
            rows.append(
                [
                    f"{label} dep: {name} experiment's workspace, by {line.group(1)} (worker)",
                    f"{line.group(2)} ms",
                    "",
                    f"{line.group(3)} copied, {line.group(4) or '0 B'} shared;"
                    f" {format_bytes(into_cache)} into the cache",
                ]
            )
            cached = CACHED_IN.search(out)
            if name == "second" and cached is not None:
                rows.append(
                    [
                        f"{label} dep: second experiment's stage, cached (worker)",
                        f"{float(cached.group(2)) * 1000:.0f} ms",
                        "",
                        "",
                    ]
                )
        probed = _probe_workspaces(config, 2, env, "--plan", "--only", "overlay")
        made = probed["made"]["overlay"]
        plan = probed["plan"].get("overlay")
        if plan is None:
            rows.append([f"{label} dep: overlay workspaces in process", NOT_MEASURABLE, "", ""])
            return rows
        for number, one in enumerate(made):
            rows.append(
                [
                    f"{label} dep: {('third', 'fourth')[number]} workspace, by"
                    f" {one['method']} (in process)",
                    ms(one["seconds"]),
                    "",
                    f"{format_bytes(one['copied'])} copied, {format_bytes(one['shared'])}"
                    f" shared; {format_bytes(one['read'])} read to make it",
                ]
            )
        rows.append(
            [
                f"{label} dep: deciding the stage is {plan['decisions']['count']}"
                " in the fourth workspace (in process)",
                ms(plan["seconds"]),
                "",
                f"{format_bytes(plan['hashed_bytes'])} read",
            ]
        )
        scenario.targets.append(
            Target(
                "experiments-overlay-copied",
                f"{label} dep: copied for a later experiment's workspace (overlay)",
                max(0, made[-1]["copied"] - small) / MIB,
                1.0,
                " MiB",
            )
        )
        scenario.targets.append(
            Target(
                "experiments-overlay-reread",
                f"{label} dep: read again to make a later workspace and decide (overlay)",
                (made[-1]["read"] + plan["hashed_bytes"]) / MIB,
                0,
                " MiB",
            )
        )
    finally:
        shutil.rmtree(big, ignore_errors=True)
    return rows


def _big_dep_reflink(
    work: Path, scenario: Scenario, size: int, env: dict[str, str]
) -> list[list[str]]:
    """Workspaces of the project with a large data dep on XFS, by the fallback:
    reflinks; the image is unmounted and deleted whatever happens."""
    from mlci_tui.units import format_bytes

    label = format_bytes(size)
    image, mount = work / "exp-xfs.img", work / "exp-xfs"
    try:
        why_not = _loop_mount(image, mount, "xfs", max(3 * size, 512 << 20))
        if why_not is not None:
            scenario.notes.append(f"reflinks on XFS: {NOT_MEASURABLE}: {why_not}")
            return [[f"{label} dep: workspace by reflinks on XFS", NOT_MEASURABLE, "", why_not]]
        config = _big_project(mount / "project", size)
        _timed_mlci(config, "run", env=env)
        probed = _probe_workspaces(config, 2, env, "--plan", "--only", "copy")
        rows = []
        made = probed["made"]["copy"]
        for number, one in enumerate(made):
            rows.append(
                [
                    f"{label} dep on XFS: {('first', 'second')[number]} workspace,"
                    f" `overlay=False`: by {one['method']} (in process)",
                    ms(one["seconds"]),
                    "",
                    f"{format_bytes(one['copied'])} counted as copied; the filesystem's"
                    f" used space grew {format_bytes(max(0, one['grown']))};"
                    f" {format_bytes(one['read'])} read to make it",
                ]
            )
        rows += _reflink_workers(config, label, env)
        plan = probed["plan"]["copy"]
        rows.append(
            [
                f"{label} dep on XFS: deciding the stage is {plan['decisions']['count']}"
                " in the second workspace (in process)",
                ms(plan["seconds"]),
                "",
                f"{format_bytes(plan['hashed_bytes'])} read",
            ]
        )
        scenario.targets.append(
            Target(
                "experiments-reflink-copied",
                f"{label} dep: space a workspace took on XFS (reflinks)",
                max(0, made[-1]["grown"]) / MIB,
                1.0,
                " MiB",
            )
        )
        scenario.targets.append(
            Target(
                "experiments-reflink-reread",
                f"{label} dep: read again to make a workspace and decide (reflinks)",
                (made[-1]["read"] + plan["hashed_bytes"]) / MIB,
                0,
                " MiB",
            )
        )
        return rows
    finally:
        if os.path.ismount(mount):
            subprocess.run(["umount", str(mount)], check=False)
        image.unlink(missing_ok=True)


def _reflink_workers(config: Path, label: str, env: dict[str, str]) -> list[list[str]]:
    """Two experiments whose workers make their workspaces without an overlay
    (`MLCI_EXP_WORKSPACE=copy`), as their workers printed them."""
    rows = []
    for name in ("first", "second"):
        _, out = _with_output(
            _mlci("exp", "run", "--name", name, "-j", "1", "--config", str(config)),
            cwd=config.parent,
            env={**env, "MLCI_EXP_WORKSPACE": "copy"},
        )
        line = WORKSPACE_LINE.search(out)
        if line is None:
            raise RuntimeError(f"no workspace line in `mlci exp run`'s output: {out[:500]}")
        rows.append(
            [
                f"{label} dep on XFS: {name} experiment's workspace, by {line.group(1)}"
                " (worker, `MLCI_EXP_WORKSPACE=copy`)",
                f"{line.group(2)} ms",
                "",
                f"{line.group(3)} counted as copied",
            ]
        )
        cached = CACHED_IN.search(out)
        if cached is not None:
            rows.append(
                [
                    f"{label} dep on XFS: {name} experiment's stage, cached (worker)",
                    f"{float(cached.group(2)) * 1000:.0f} ms",
                    "",
                    "",
                ]
            )
    return rows


LOOP = "sum(i * i for i in range(10_000_000))"


def _parallel_floor() -> float:
    """Two CPU-bound Python loops at once, over the time of the same two one after
    another: the best ratio a sweep with `-j 2` can reach on this machine, now."""
    argv = [sys.executable, "-c", LOOP]
    started = time.perf_counter()
    for _ in range(2):
        subprocess.run(argv, check=True)
    alone = time.perf_counter() - started
    started = time.perf_counter()
    both = [subprocess.Popen(argv) for _ in range(2)]
    for process in both:
        process.wait()
    return (time.perf_counter() - started) / alone


def _sweep(
    work: Path,
    scenario: Scenario,
    rounds: int,
    seeds: str,
    env: dict[str, str],
    worker_lines: list[re.Match[str]],
) -> list[list[str]]:
    """The sweep with `-j 2` against the same runs one after another, alternating."""
    swept = f"mlci exp run --set train.seed=1,…,{SEEDS} -j 2"
    same = f"{SEEDS} × mlci run --set train.seed=N --stage evaluate (the same stages)"
    plain = f"{SEEDS} × mlci run --set train.seed=N (deploy and monitor too)"
    trained: list[int] = []

    def sweep(config: Path) -> float:
        seconds, out = _with_output(
            _mlci("exp", "run", "--set", f"train.seed={seeds}", "-j", "2", "--config", str(config)),
            cwd=config.parent,
            env=env,
        )
        worker_lines.extend(WORKSPACE_LINE.finditer(out))
        trained.append(len(re.findall(r"\[train\]\s+-- started", out)))
        return seconds

    def one_by_one(config: Path, *extra: str) -> float:
        return sum(
            _timed_mlci(config, "run", "--set", f"train.seed={seed}", *extra, env=env)
            for seed in range(1, SEEDS + 1)
        )

    sides: dict[str, Callable[[Path], float]] = {
        swept: sweep,
        same: lambda config: one_by_one(config, "--stage", "evaluate"),
        plain: one_by_one,
    }
    names = list(sides)
    samples = {name: Samples() for name in names}
    cpu = {name: Samples() for name in names}
    loads = [os.getloadavg()[0]]
    floor = Samples()
    for number in range(rounds):
        floor.values.append(_parallel_floor())
        copies = {
            name: _demo_copy(work / f"exp-sweep-{number}-{i}", env) for i, name in enumerate(names)
        }
        for name in names[number % len(names) :] + names[: number % len(names)]:
            # The CPU of every process it waited for: workers, runners, stages.
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            samples[name].values.append(sides[name](copies[name]))
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu[name].values.append(
                after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
            )
            loads.append(os.getloadavg()[0])
        for config in copies.values():
            shutil.rmtree(config.parent)
    ratio = samples[swept].median / samples[same].median
    scenario.targets.append(
        Target(
            "experiments-sweep",
            f"{SEEDS} experiments `-j 2` / {SEEDS} runs one after another",
            ratio,
            0.65,
            "×",
        )
    )
    scenario.notes.append(
        f"The sweep took {ratio:.2f}× the time of the same stages run one after another,"
        f" {samples[swept].median / samples[plain].median:.2f}× that of plain `mlci run --set`"
        " (which also deploys each new model and monitors it, as experiments never do)."
        f" Experiments that trained, per sweep: {', '.join(map(str, trained))} of {SEEDS}."
    )
    scenario.notes.append(
        "The machine's other work shows in the sweep more than in the runs one after"
        " another (two processes at once need both cores): the load average (1 min) was"
        f" {min(loads):.1f} – {max(loads):.1f} while the sweeps ran; CPU time is given for"
        " each side, which that load does not change much."
    )
    scenario.notes.append(
        f"Two CPU-bound Python loops (`{LOOP}`) at once took {floor.median:.2f}× the time"
        " of the same two one after another (median of one pair per round): what two"
        " processes at once gain on this machine's two cores as they were shared then."
    )
    return [
        *[
            [name, *spread(values), f"CPU {secs(cpu[name].median)}"]
            for name, values in samples.items()
        ],
        [
            "two CPU-bound Python loops: at once / one after another",
            f"{floor.median:.2f}×",
            f"{floor.low:.2f}× – {floor.high:.2f}×",
            "",
        ],
    ]
