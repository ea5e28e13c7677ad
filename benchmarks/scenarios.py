"""The scenarios, each comparing mlci with what a user would use instead."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

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
from benchmarks.store_generator import build_store

CHAIN = 20
LINE = "{:08d} " + "x" * 51  # 61 bytes with the newline


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
)
QUICK = Sizes(
    runs=2,
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
)


def _generator(work: Path, *, metrics: bool = False) -> Path:
    """A script printing N numbered lines in chunks of 10 000; with ``metrics``, every
    100th line is a metric line instead (a training loop's loss)."""
    script = work / ("metric_lines.py" if metrics else "lines.py")
    line = (
        f"(f'::metric step={{i}} loss={{1 / (i + 1):.6f}}' if i % 100 == 0 else {LINE!r}.format(i))"
    )
    script.write_text(
        "import sys\n"
        "count = int(sys.argv[1])\n"
        "out = sys.stdout\n"
        "for start in range(0, count, 10_000):\n"
        f"    out.write(''.join({line if metrics else f'{LINE!r}.format(i)'} + '\\n'"
        " for i in range(start, min(count, start + 10_000))))\n"
    )
    return script


def _mlci(*args: str) -> list[str]:
    return [*mlci_command(), *args]


def _timed_mlci(config: Path, *args: str, env: dict[str, str]) -> float:
    """Wall time of `mlci ARGS --config CONFIG`, run in the config's directory."""
    return timed(_mlci(*args, "--config", str(config)), cwd=config.parent, env=env)


# 1. Engine overhead ------------------------------------------------------------


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
    single = work / "single"
    single.mkdir()
    (single / "config.toml").write_text('[stages.s0]\ncommand = "echo 0 > o0"\n')
    (single / "Makefile").write_text("s0:\n\t@echo 0 > o0\n.PHONY: s0\n")
    true = work / "true"
    true.mkdir()
    (true / "config.toml").write_text('[stages.t]\ncommand = "true"\n')
    env = bench_env()
    python = [sys.executable, "-c"]
    commands = {
        "mlci run": lambda: _timed_mlci(directory / "config.toml", "run", env=env),
        "make": lambda: timed(["make", "-s", "-B", f"s{CHAIN - 1}"], cwd=directory, env=env),
        # Where mlci's time goes: the same run with one stage, and the floor any
        # Python program with asyncio and sqlite3 starts from.
        "mlci run, 1 stage": lambda: _timed_mlci(single / "config.toml", "run", env=env),
        "make, 1 stage": lambda: timed(["make", "-s", "-B", "s0"], cwd=single, env=env),
        "mlci run, 1 `true` stage": lambda: _timed_mlci(true / "config.toml", "run", env=env),
        "python -c pass": lambda: timed([*python, "pass"], cwd=directory, env=env),
        "python -c 'import asyncio, sqlite3, subprocess'": lambda: timed(
            [*python, "import asyncio, sqlite3, subprocess"], cwd=directory, env=env
        ),
    }
    scenario = Scenario(
        "1. Engine overhead",
        f"A chain of {CHAIN} stages, each `echo N > oN`, the same dependencies for each"
        " tool: `mlci run` vs `make -B` vs `dvc repro -f`; the same with one stage; and"
        " one stage running `true`, what mlci costs around a command that costs nothing.",
        headers=["command", "median", "min – max"],
        about=[
            f"peers: make ({version(['make', '--version'])}),"
            + (f" dvc ({version([dvc, '--version'])})" if dvc else " dvc not installed"),
            f"stages run through `/bin/sh` ({version_of_sh()}) for every tool",
        ],
    )
    if dvc:
        dvc_dir = work / "chain-dvc"
        dvc_dir.mkdir()
        (dvc_dir / "dvc.yaml").write_text("\n".join(dvc_stages) + "\n")
        subprocess.run([dvc, "init", "--no-scm", "-q"], cwd=dvc_dir, env=env, check=True)
        commands["dvc repro -f"] = lambda: timed([dvc, "repro", "-f", "-q"], cwd=dvc_dir, env=env)
    else:
        scenario.notes.append("dvc is not installed: skipped (`pip install dvc` to include it).")
    samples = interleave(sizes.runs, commands)
    for name, values in samples.items():
        scenario.table.append([name, *spread(values)])
    marginal = (samples["mlci run"].median - samples["mlci run, 1 stage"].median) / (CHAIN - 1)
    make_marginal = (samples["make"].median - samples["make, 1 stage"].median) / (CHAIN - 1)
    one = samples["mlci run, 1 `true` stage"].median
    scenario.targets.append(Target("`mlci run`, 1 `true` stage", one, 0.12, " s"))
    scenario.targets.append(
        Target("each further stage (20 stages vs 1)", marginal * 1000, 2.0, " ms")
    )
    floor = samples["python -c 'import asyncio, sqlite3, subprocess'"].median
    scenario.notes.append(
        f"Each further stage costs mlci {marginal * 1000:.2f} ms and make"
        f" {make_marginal * 1000:.2f} ms (20 stages vs 1). Of the {one * 1000:.0f} ms of a"
        f" one-stage run, {floor * 1000:.0f} ms is the interpreter and the standard-library"
        " modules any asyncio and sqlite3 program loads."
    )
    if dvc:
        ratio = samples["mlci run"].median / samples["dvc repro -f"].median
        scenario.targets.append(Target("mlci / dvc", ratio, 0.25, "×"))
    return scenario


# 2. Log throughput ---------------------------------------------------------------


def _fast_producer(count: int) -> str:
    """`yes | head`: C programs that write a pipe faster than anything reads it."""
    return f"yes {LINE.format(0)} | head -n {count}"


def _measured(
    argv: list[str], cwd: Path, env: dict[str, str], peak: list[int]
) -> tuple[float, float]:
    """Wall and CPU seconds of one run, the CPU of every process it started included
    (each reaps its children, so their times add up in ours)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    rss = PeakRss(process.pid)
    _, err = process.communicate()
    elapsed = time.perf_counter() - started
    peak[0] = max(peak[0], rss.stop())
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {err.decode()[-300:]}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return elapsed, cpu


def log_throughput(work: Path, sizes: Sizes) -> Scenario:
    env = bench_env()
    python_producer = _generator(work)
    scenario = Scenario(
        "2. Log throughput",
        f"One stage printing lines of {len(LINE.format(0)) + 1} bytes, its stdout and stderr"
        " read, masked, written to its log with a time on every line, and printed with the"
        " stage's name: `mlci run > /dev/null` vs `sh -c 'PRODUCER | tee out.log >"
        " /dev/null'`, which writes the same bytes to a file and nothing more. CPU is that"
        " of every process of the run (the producer's too), as `time` counts it.",
        headers=["producer", "lines", "command", "wall", "min – max", "CPU", "runner peak RSS"],
        about=[
            f"fast producer: `yes LINE | head -n N`, LINE the {len(LINE.format(0))} bytes"
            f" `{LINE.format(0)}`"
            f" ({version(['yes', '--version'])}): C programs, never the bottleneck (the"
            " `producer alone` rows: into /dev/null, nothing read)",
            "Python producer: a Python loop writing 10,000 lines per `write`"
            f" (`{python_producer.name}`), as a chatty training script would: slow enough"
            " that both sides wait on it",
            f"peer: `tee` ({version(['tee', '--version'])}), `sh` is {version_of_sh()}",
        ],
    )
    peaks: dict[int, int] = {}
    runs: list[tuple[str, int, str]] = [
        ("fast", count, _fast_producer(count)) for count in sizes.lines
    ]
    runs.append(
        ("Python", sizes.lines[-1], f"{sys.executable} {python_producer} {sizes.lines[-1]}")
    )
    for producer, count, command in runs:
        directory = work / f"throughput-{producer}-{count}"
        directory.mkdir()
        (directory / "config.toml").write_text(f'[stages.flood]\ncommand = "{command}"\n')
        peak = [0]
        cpu: dict[str, Samples] = {
            "mlci run": Samples(),
            "tee": Samples(),
            "producer alone": Samples(),
        }

        def run_mlci(
            directory: Path = directory, peak: list[int] = peak, cpu: dict[str, Samples] = cpu
        ) -> float:
            argv = _mlci("run", "--config", str(directory / "config.toml"))
            wall, used = _measured(argv, directory, env, peak)
            cpu["mlci run"].values.append(used)
            return wall

        def run_tee(
            directory: Path = directory, command: str = command, cpu: dict[str, Samples] = cpu
        ) -> float:
            argv = ["sh", "-c", f"{command} | tee out.log > /dev/null"]
            wall, used = _measured(argv, directory, env, [0])
            cpu["tee"].values.append(used)
            return wall

        def run_alone(
            directory: Path = directory, command: str = command, cpu: dict[str, Samples] = cpu
        ) -> float:
            wall, used = _measured(["sh", "-c", f"{command} > /dev/null"], directory, env, [0])
            cpu["producer alone"].values.append(used)
            return wall

        samples = interleave(
            sizes.runs, {"mlci run": run_mlci, "tee": run_tee, "producer alone": run_alone}
        )
        for name in cpu:
            del cpu[name].values[0]  # the warm-up run's
        for name, values in samples.items():
            rss = f"{peak[0] / (1 << 20):.1f} MB" if name == "mlci run" else ""
            scenario.table.append(
                [producer, f"{count:,}", name, *spread(values), secs(cpu[name].median), rss]
            )
        wall = samples["mlci run"].median / samples["tee"].median
        used = cpu["mlci run"].median / cpu["tee"].median
        label = f"{count:,} lines, {producer} producer"
        if producer == "fast" and count == sizes.lines[-1]:
            scenario.targets.append(Target(f"mlci / tee, wall, {label}", wall, 1.5, "×"))
            scenario.targets.append(Target(f"mlci / tee, CPU, {label}", used, 2.0, "×"))
        elif producer == "fast":
            scenario.notes.append(
                f"At {count:,} lines mlci / tee is {wall:.2f}× in wall time and {used:.2f}× in"
                " CPU: tee's whole run is shorter than mlci's start-up (scenario 1), which"
                " these ratios are mostly made of."
            )
        else:
            scenario.targets.append(Target(f"mlci / tee, wall, {label}", wall, 2.0, "×"))
            scenario.notes.append(
                f"With the Python producer, CPU mlci / tee is {used:.2f}×: the producer's"
                " own CPU is most of both."
            )
        latest = max((directory / ".mlci" / "runs").iterdir(), key=lambda p: int(p.name))
        with open(latest / "flood.log", "rb") as log:
            stored = sum(chunk.count(b"\n") for chunk in iter(lambda: log.read(1 << 20), b""))
        scenario.targets.append(
            Target(f"lines missing from the store, {label}", count - stored, 0, "")
        )
        if producer == "fast":
            peaks[count] = peak[0]
            scenario.targets.append(
                Target(f"runner peak RSS, {label}", peak[0] / (1 << 20), 100.0, " MB")
            )
    small, big = sizes.lines
    growth = (peaks[big] - peaks[small]) / (1 << 20)
    scenario.targets.append(
        Target(f"peak RSS growth from {small:,} to {big:,} lines", growth, 10.0, " MB")
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
        bufsize=0,  # unbuffered: see `_until_first_frame`
    )


def _result(process: subprocess.Popen[bytes]) -> dict[str, object]:
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


def _until_first_frame(probe: subprocess.Popen[bytes], started: float) -> float:
    assert probe.stdout is not None
    # Read from the pipe itself, a byte at a time: a buffered readline could take the
    # probe's last line too, which `communicate` (reading the descriptor) never sees.
    probe.stdout.readline()
    elapsed = time.perf_counter() - started
    _result(probe)
    return elapsed


def dashboard_flood(work: Path, sizes: Sizes) -> Scenario:
    generator = _generator(work, metrics=True)
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
            "Python producer: the Python loop of scenario 2, with metric lines",
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
        time.sleep(2.0)  # the dashboard is up before the run starts
        before = psutil.Process(probe.pid).cpu_times()
        elapsed = _timed_mlci(config, "run", env=env)
        after = psutil.Process(probe.pid).cpu_times()
        used = after.user + after.system - before.user - before.system
        cpu["keyed" if mode == "keys" else "watched"].values.append(used / elapsed)
        result = _result(probe)
        peak[0] = max(peak[0], rss.stop())
        if mode in ("keys", "plotkeys"):
            keyed = latencies if mode == "keys" else plotted
            keyed.values.extend(result["latencies_s"])  # type: ignore[arg-type]
            during[0] += int(result["during_run"])  # type: ignore[call-overload]
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
    scenario.targets.append(Target("watched / headless run time", ratio, 1.2, "×"))
    scenario.targets.append(Target("dashboard peak RSS", peak[0] / (1 << 20), 250.0, " MB"))
    scenario.targets.append(
        Target(
            f"key → frame p95 ({len(latencies.values)} keys)",
            latencies.percentile(0.95) * 1000,
            50.0,
            " ms",
        )
    )
    scenario.targets.append(
        Target(
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
        bufsize=0,  # unbuffered: see `_until_first_frame`
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
        if name.startswith("peer"):
            continue
        limit = 0.5 if name.startswith("dashboard") else 0.2
        scenario.targets.append(Target(name, values.median, limit, " s"))
    return scenario


# 5. Idle ---------------------------------------------------------------------------------


def idle(work: Path, sizes: Sizes) -> Scenario:
    env = bench_env()
    directory = work / "startup"  # a finished run is there
    config = directory / "config.toml"
    samples = Samples()
    for _ in range(max(1, sizes.runs // 3)):
        result = _result(_probe("idle", config, str(sizes.idle_s), env=env))
        samples.values.append(float(result["cpu_s"]) / float(result["seconds"]) * 100)  # type: ignore[arg-type]
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
    scenario.targets.append(Target("idle CPU", samples.median, 0.3, " % of a core"))
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
    keys.values = list(result["latencies_s"])  # type: ignore[arg-type]
    for name, values in samples.items():
        scenario.table.append([name, *spread(values)])
    scenario.table.append(
        ["version table, a key (p50 / p95)", ms(keys.percentile(0.5)), ms(keys.percentile(0.95))]
    )
    scenario.targets.append(Target("mlci versions", samples["mlci versions"].median, 0.5, " s"))
    scenario.targets.append(Target("dashboard opens", samples["dashboard opens"].median, 1.5, " s"))
    scenario.targets.append(
        Target("version table, p95 per key", keys.percentile(0.95) * 1000, 50.0, " ms")
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
        scenario.targets.append(Target("no-op re-run, mlci / dvc", ratio, 0.25, "×"))

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
    scenario.targets.append(Target("first hash of a large dep, GB/s", 1 / speed, 1.0, " s/GB"))
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
        Target(f"`mlci why`, {sizes.dep_files:,} remembered deps", whole["why"].median, 0.1, " s")
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
    """One plot update with 10 000 points a series, for the two Textual plot widgets."""
    env = bench_env()
    points = 10_000
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
        samples = Samples(list(_result(process)["update_s"]))  # type: ignore[arg-type]
        scenario.table.append(
            [label, ms(samples.median), f"{ms(samples.low)} – {ms(samples.high)}"]
        )
        if widget == "mlci":
            scenario.targets.append(
                Target(f"plot update, {points:,} points", samples.median * 1000, 50.0, " ms")
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
        max(3, sizes.runs // 2),
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
        keys.values += list(result["latencies_s"])  # type: ignore[arg-type]
    scenario.table.append(
        [
            f"`down` in the stage list, p50 / p95 ({len(keys.values)} keys)",
            ms(keys.percentile(0.5)),
            ms(keys.percentile(0.95)),
        ]
    )
    scenario.targets.append(
        Target(f"{count} stages: key → frame p95", keys.percentile(0.95) * 1000, 50.0, " ms")
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
