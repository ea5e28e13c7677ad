"""Scenario 13: the dashboard in a browser — `mlci serve` as a real process on
loopback, driven over HTTP and websockets as textual-serve's page drives it."""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from benchmarks.harness import (
    Samples,
    Scenario,
    Target,
    bench_env,
    interleave,
    ms,
    package_version,
    timed,
)
from benchmarks.scenarios import Sizes, _first_frame, _mlci, _probe, _result, _timed_mlci

TOKEN = "benchmark-token-of-32-characters"
STAGE = b"train"
"""A stage of the demo: a frame holding it shows the store's data."""
LISTENING = re.compile(rb" on [0-9.]+:(\d+) \(.*Ctrl-C stops")
QUIET_S = 0.3
"""No bytes for this long after a key: the screen has settled."""
SESSIONS = 8
"""`mlci serve`'s default --max-sessions: every place taken."""
REFUSING_S = 2.0
SERVE = [sys.executable, "-m", "mlci_tui", "serve", "--port", "0"]


@dataclass
class Server:
    """A running `mlci serve` and what it wrote on stderr."""

    process: subprocess.Popen[bytes]
    port: int
    listening_s: float
    log: bytearray = field(default_factory=bytearray)
    dashboards_seen: set[int] = field(default_factory=set)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def dashboards(self) -> list[psutil.Process]:
        """The dashboard processes it runs now (each `mlci tui`; one that ended but
        is not yet reaped is not running)."""
        found = []
        for child in psutil.Process(self.process.pid).children():
            try:
                if "tui" in child.cmdline():
                    found.append(child)
            except psutil.Error:
                continue
        self.dashboards_seen |= {child.pid for child in found}
        return found

    def get(self, path: str, headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        response.read()
        connection.close()
        return response

    def cookie(self) -> str:
        response = self.get(f"/?token={TOKEN}")
        if response.status != 303:
            raise RuntimeError(f"the token was refused ({response.status})")
        return response.headers["Set-Cookie"].split(";")[0]


def start(config: Path, token_file: Path, env: dict[str, str]) -> Server:
    """`mlci serve --port 0` on ``config``; returns once it says it listens, with the
    seconds from exec to that line."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [*SERVE, "--token-file", str(token_file), "--config", str(config)],
        cwd=config.parent,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    assert process.stderr is not None
    log = bytearray()
    while (found := LISTENING.search(log)) is None:
        line = process.stderr.readline()
        if not line:
            process.wait(30)
            raise RuntimeError(f"mlci serve ended ({process.returncode}): {log.decode()[-800:]}")
        log += line
    listening = time.perf_counter() - started
    server = Server(process, int(found.group(1)), listening, log)
    # Drained to the end, so that its log never fills the pipe.
    stderr = process.stderr
    threading.Thread(target=lambda: _drain(stderr, server.log), daemon=True).start()
    return server


def _drain(stream: Any, into: bytearray) -> None:
    for line in stream:
        into.extend(line)


def stop(server: Server) -> None:
    """SIGTERM: every dashboard ends, then the server, with 0."""
    server.dashboards()
    server.process.send_signal(signal.SIGTERM)
    try:
        code = server.process.wait(60)
    except subprocess.TimeoutExpired:
        server.process.kill()
        raise
    if code != 0:
        raise RuntimeError(f"mlci serve exited {code}: {server.log.decode()[-800:]}")
    _until(lambda: not any(_alive(pid) for pid in server.dashboards_seen), "the dashboards' end")


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _until(condition: Callable[[], object], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.005)


class Tab:
    """A browser tab's websocket, as textual-serve's page opens it (100x30)."""

    def __init__(self, server: Server, cookie: str) -> None:
        self.server, self.cookie = server, cookie
        self.received = bytearray()
        self.arrivals: list[float] = []
        """When each binary message arrived (perf_counter)."""
        self.opened_s = 0.0
        """Seconds from asking for the websocket to its first bytes (the dashboard's
        terminal set up: its imports done)."""

    async def open(self) -> float:
        """Seconds from asking for the websocket to the first frame holding a stage."""
        import aiohttp

        self.client = aiohttp.ClientSession()
        headers = {"Cookie": self.cookie, "Origin": self.server.origin}
        url = f"ws://127.0.0.1:{self.server.port}/ws?width=100&height=30"
        started = time.perf_counter()
        self.socket = await self.client.ws_connect(url, headers=headers)
        self.reader = asyncio.create_task(self._read())
        await self.until(lambda: STAGE in self.received, "the first frame")
        self.opened_s = self.arrivals[0] - started
        return time.perf_counter() - started

    async def _read(self) -> None:
        import aiohttp

        async for message in self.socket:
            if message.type == aiohttp.WSMsgType.BINARY:
                self.arrivals.append(time.perf_counter())
                self.received += message.data

    async def until(self, condition: Callable[[], object], what: str, timeout: float = 30) -> None:
        deadline = time.perf_counter() + timeout
        while not condition():
            if self.reader.done():
                raise RuntimeError(
                    f"the websocket closed before {what}: {self.server.log[-500:]!r}"
                )
            if time.perf_counter() > deadline:
                raise RuntimeError(f"timed out waiting for {what}")
            await asyncio.sleep(0.001)

    async def quiet(self, seconds: float = QUIET_S) -> float:
        """Wait until no bytes came for ``seconds``; when the last ones came."""
        while True:
            last = self.arrivals[-1] if self.arrivals else 0.0
            left = last + seconds - time.perf_counter()
            if left <= 0:
                return last
            await asyncio.sleep(left)

    async def key(self, key: str, timeout: float = 5.0) -> tuple[float, float] | None:
        """Send ``key`` on a quiet screen: seconds to the answer's first bytes and to
        its last (the screen settled); None when nothing answered within ``timeout``."""
        await self.quiet()
        mark = len(self.arrivals)
        sent = time.perf_counter()
        await self.socket.send_str(json.dumps(["stdin", key]))
        try:
            await self.until(lambda: len(self.arrivals) > mark, f"an answer to {key!r}", timeout)
        except RuntimeError:
            if self.reader.done():
                raise
            return None
        first = self.arrivals[mark] - sent
        return first, await self.quiet() - sent

    async def close(self) -> None:
        await self.socket.close()
        await self.client.close()


def _serving(server: Server, count: int) -> list[psutil.Process]:
    """Once ``count`` dashboards run: them."""
    _until(lambda: len(server.dashboards()) == count, f"{count} dashboards")
    return server.dashboards()


def _one_tab(server: Server, cookie: str, closing: Samples, opened: Samples, cpu: Samples) -> float:
    """A tab opened to its first frame, then closed; returns once its dashboard's
    process is gone (the seconds that took go to ``closing``)."""

    async def session() -> float:
        tab = Tab(server, cookie)
        seconds = await tab.open()
        opened.values.append(tab.opened_s)
        (dashboard,) = _serving(server, 1)
        times = dashboard.cpu_times()
        cpu.values.append(times.user + times.system)
        closed = time.perf_counter()
        await tab.close()
        await tab.reader
        while _alive(dashboard.pid):
            await asyncio.sleep(0.002)
        closing.values.append(time.perf_counter() - closed)
        return seconds

    return asyncio.run(session())


def _keys(server: Server, cookie: str, presses: int) -> tuple[Samples, Samples, list[str]]:
    """`j` and `k` in turn in one open tab: the stage selection moves down and up."""

    async def session() -> tuple[Samples, Samples, list[str]]:
        tab = Tab(server, cookie)
        await tab.open()
        await tab.quiet(1.0)
        first, settled = Samples(), Samples()
        order = ["j", "k"]
        answer = await tab.key("j", timeout=2.0)
        if answer is None:  # the selection is on the last stage: up first
            order.reverse()
        unanswered = []
        for index in range(presses):
            key = order[index % 2]
            answer = await tab.key(key)
            if answer is None:
                unanswered.append(key)
                continue
            first.values.append(answer[0])
            settled.values.append(answer[1])
        await tab.close()
        return first, settled, unanswered

    return asyncio.run(session())


IMPORTED = ("aiohttp", "jinja2", "asyncio", "textual_serve.server", "rich.console")
"""What `mlci_tui.web.server` brings that costs most, each where it is first imported."""


def _import_costs(env: dict[str, str], cwd: Path, runs: int) -> dict[str, float]:
    """`python -X importtime -c 'import mlci_tui.web.server'`: the cumulative import
    time of the module and of the largest packages it brings, medians of ``runs``."""
    seen: dict[str, Samples] = {}
    for _ in range(runs):
        result = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "import mlci_tui.web.server"],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        for line in result.stderr.splitlines():
            found = re.match(r"import time:\s+\d+ \|\s+(\d+) \| *(\S+)$", line)
            if found and found.group(2) in ("mlci_tui.web.server", *IMPORTED):
                seen.setdefault(found.group(2), Samples()).values.append(int(found.group(1)) / 1e6)
    return {name: samples.median for name, samples in seen.items()}


def browser(work: Path, sizes: Sizes) -> Scenario:
    """`mlci serve` on the demo project: start-up, a tab's first frame, a key's round
    trip, memory and CPU with every place taken, and what refusals cost it."""
    title = "13. In a browser"
    try:
        import aiohttp  # noqa: F401 (textual-serve's; the client here is aiohttp's)
        import textual_serve  # noqa: F401
    except ModuleNotFoundError as error:
        return Scenario(
            title,
            "`mlci serve`.",
            skipped=f"{error.name} is not installed (pip install -e '.[serve]').",
        )
    env = bench_env()
    directory = work / "served"
    subprocess.run(_mlci("init", str(directory)), env=env, check=True, capture_output=True)
    config = directory / "config.toml"
    _timed_mlci(config, "run", env=env)
    token_file = work / "served-token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    root = Path(__file__).resolve().parents[1]
    scenario = Scenario(
        title,
        "`mlci serve` on the demo project (`mlci init`, then one `mlci run`), a real"
        " process on loopback (`python -m mlci_tui serve --port 0 --token-file F`), driven"
        " over HTTP and websockets as textual-serve's page drives them, with aiohttp's"
        " client in the benchmark's process: the cookie the token is exchanged for, the"
        " served Origin, 100x30. Start-up: from exec to the line saying it listens, beside"
        " `mlci --help` and the import of `mlci_tui.web.server` alone. A tab: from asking"
        " for the websocket to the first frame holding a stage's name (each tab closed,"
        " and its dashboard's process gone, before the next), beside the dashboard's"
        " first frame in process (scenario 4's probe). A key: in one open tab, `j` and"
        f" `k` in turn ({sizes.key_presses} keys, each on a quiet screen), moving the"
        " stage selection: to the first bytes of the answer, and to its last (no bytes"
        f" for {QUIET_S * 1000:.0f} ms after), beside the same keys in process (scenario"
        f" 9's probe, key to the pane's paint). Then {SESSIONS} tabs open at once (every"
        f" place): memory, and CPU over {sizes.idle_s:g} s idle. Last, refusals: one"
        f" client's requests one after another for {REFUSING_S:g} s without a cookie,"
        " then with a wrong token until the limit on failed attempts answers 429.",
        headers=["measure", "median", "min – max, or p95"],
        about=[
            f"{package_version('textual-serve')}, {package_version('aiohttp')},"
            f" {package_version('textual')}; no peer: the browser's terminal is"
            " textual-serve's own",
        ],
    )
    runs = max(3, sizes.runs)

    def started() -> float:
        server = start(config, token_file, env)
        stop(server)
        return server.listening_s

    python = [sys.executable, "-c"]
    startup = interleave(
        runs,
        {
            "mlci serve, exec → listening": started,
            "mlci --help": lambda: timed(_mlci("--help"), cwd=directory, env=env),
            "python -c 'import mlci_tui.web.server'": lambda: timed(
                [*python, "import mlci_tui.web.server"], cwd=root, env=env
            ),
            "python -c pass": lambda: timed([*python, "pass"], cwd=root, env=env),
        },
    )
    for name, values in startup.items():
        scenario.table.append([name, ms(values.median), f"{ms(values.low)} – {ms(values.high)}"])
    costs = _import_costs(env, root, runs)
    scenario.notes.append(
        f"`python -X importtime -c 'import mlci_tui.web.server'` (medians of {runs}):"
        f" {costs.pop('mlci_tui.web.server', 0) * 1000:.0f} ms in all; of it, each where"
        " first imported (nested: aiohttp is part of aiohttp_jinja2's, rich.console of"
        " textual_serve.server's), "
        + ", ".join(f"{name} {seconds * 1000:.0f} ms" for name, seconds in costs.items())
        + "."
    )

    server = start(config, token_file, env)
    try:
        cookie = server.cookie()
        time.sleep(1.0)
        idle_rss = psutil.Process(server.process.pid).memory_info().rss
        closing, opened, cpu = Samples(), Samples(), Samples()
        frames = interleave(
            sizes.served_tabs,
            {
                "a tab, websocket → first frame with a stage": lambda: _one_tab(
                    server, cookie, closing, opened, cpu
                ),
                "in process (scenario 4's probe), start → first frame": lambda: _first_frame(
                    config, env
                ),
            },
        )
        served = frames["a tab, websocket → first frame with a stage"]
        # The first tab warmed up, as each side's first run does.
        for samples in (closing, opened, cpu):
            samples.values = samples.values[1:]
        scenario.table.append(
            [
                f"a tab, websocket → its first bytes (the dashboard's terminal set up)"
                f" ({len(opened.values)})",
                ms(opened.median),
                f"p95 {ms(opened.percentile(0.95))}",
            ]
        )
        for name, values in frames.items():
            scenario.table.append(
                [
                    f"{name} ({len(values.values)})",
                    ms(values.median),
                    f"p95 {ms(values.percentile(0.95))}",
                ]
            )
        scenario.table.append(
            [
                "a tab's dashboard: its CPU time to the first frame",
                ms(cpu.median),
                f"p95 {ms(cpu.percentile(0.95))}",
            ]
        )
        scenario.table.append(
            [
                f"a tab closed → its dashboard's process gone ({len(closing.values)})",
                ms(closing.median),
                f"p95 {ms(closing.percentile(0.95))}",
            ]
        )
        scenario.targets.append(
            Target(
                "browser-first-frame",
                f"a tab's first frame, median of {len(served.values)}",
                served.median,
                1.0,
                " s",
            )
        )

        first, settled, unanswered = _keys(server, cookie, sizes.key_presses)
        probed = _result(_probe("stages", config, str(sizes.key_presses), env=env))
        local = Samples(list(probed["latencies_s"]))
        for name, values in (
            (f"`j`/`k` → the answer's first bytes ({len(first.values)} keys)", first),
            ("`j`/`k` → the answer's last bytes (settled)", settled),
            (
                f"in process (scenario 9's probe): `down` → the pane painted ({len(local.values)})",
                local,
            ),
        ):
            scenario.table.append([name, ms(values.median), f"p95 {ms(values.percentile(0.95))}"])
        if unanswered:
            scenario.notes.append(f"Keys that changed nothing within 5 s: {len(unanswered)}.")
        scenario.targets.append(
            Target(
                "browser-keys",
                f"key → the answer's first bytes, p95 of {len(first.values)}",
                first.percentile(0.95) * 1000,
                100.0,
                " ms",
            )
        )
        _full(server, cookie, sizes, scenario, idle_rss)
        _refusals(server, scenario)
    finally:
        if server.process.poll() is None:
            stop(server)
    return scenario


def _full(server: Server, cookie: str, sizes: Sizes, scenario: Scenario, idle_rss: int) -> None:
    """Every place taken: memory, and CPU while nobody types."""
    mb = 1 << 20

    async def sessions() -> None:
        tabs = [Tab(server, cookie) for _ in range(SESSIONS)]
        for tab in tabs:
            await tab.open()
        for tab in tabs:
            await tab.quiet(1.0)
        serving = psutil.Process(server.process.pid)
        dashboards = _serving(server, SESSIONS)
        rss = serving.memory_info().rss
        each = Samples([d.memory_info().rss / mb for d in dashboards])
        unique = sum(d.memory_full_info().uss for d in dashboards)
        before = [p.cpu_times() for p in (serving, *dashboards)]
        started = time.perf_counter()
        await asyncio.sleep(sizes.idle_s)
        seconds = time.perf_counter() - started
        after = [p.cpu_times() for p in (serving, *dashboards)]
        used = [
            # Clock ticks (10 ms) differenced as floats: rounded, never below 0.
            max(0.0, round(a.user + a.system - b.user - b.system, 3))
            for a, b in zip(after, before, strict=True)
        ]
        for tab in tabs:
            await tab.close()
        _until(lambda: not server.dashboards(), "every dashboard's end")
        await asyncio.sleep(1.0)
        rss_after = serving.memory_info().rss
        scenario.table += [
            ["server RSS, no session", f"{idle_rss / mb:.1f} MB", ""],
            [f"server RSS, {SESSIONS} sessions", f"{rss / mb:.1f} MB", ""],
            ["server RSS, after they ended", f"{rss_after / mb:.1f} MB", ""],
            [
                f"a dashboard's RSS ({SESSIONS})",
                f"{each.median:.1f} MB",
                f"{each.low:.1f} – {each.high:.1f} MB",
            ],
            [f"{SESSIONS} dashboards' unique memory (USS), together", f"{unique / mb:.0f} MB", ""],
            [
                f"server CPU, {SESSIONS} idle sessions, {seconds:.0f} s",
                f"{used[0] / seconds * 100:.2f} % of a core",
                "",
            ],
            [
                f"{SESSIONS} dashboards' CPU, together, the same {seconds:.0f} s",
                f"{sum(used[1:]) / seconds * 100:.2f} % of a core",
                f"each {min(used[1:]) / seconds * 100:.2f} – {max(used[1:]) / seconds * 100:.2f} %",
            ],
        ]
        scenario.targets.append(
            Target(
                "browser-idle-cpu",
                f"server CPU with {SESSIONS} idle sessions",
                used[0] / seconds * 100,
                0.3,
                " % of a core",
            )
        )

    asyncio.run(sessions())


def _flood(server: Server, path: str, seconds: float) -> tuple[dict[int, int], float, float]:
    """One client's GETs of ``path``, one after another on one connection, for ``seconds``:
    the count of each status, the wall time, and the server's CPU time."""
    serving = psutil.Process(server.process.pid)
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    statuses: dict[int, int] = {}
    before = serving.cpu_times()
    started = time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        statuses[response.status] = statuses.get(response.status, 0) + 1
    after = serving.cpu_times()
    connection.close()
    return statuses, elapsed, after.user + after.system - before.user - before.system


def _refusals(server: Server, scenario: Scenario) -> None:
    """Requests without a cookie (refused, not counted as attempts); then with a wrong
    token: refused, counted, until the limit answers 429."""
    wrong = "/?token=" + "0" * 43
    statuses, elapsed, cpu = _flood(server, "/", REFUSING_S)
    count = statuses.get(401, 0)
    others = ", ".join(f"{code} ×{n}" for code, n in statuses.items() if code != 401) or "none"
    scenario.table.append(
        [
            "requests without a cookie: answered 401, per second",
            f"{count / elapsed:,.0f}",
            f"server CPU {cpu / max(1, count) * 1e6:.0f} µs each; other answers: {others}",
        ]
    )
    before = len(server.log)
    answered: list[int] = []
    while not answered or answered[-1] != 429:
        answered.append(server.get(wrong).status)
        if len(answered) > 100:
            raise RuntimeError(f"no 429 after 100 wrong tokens: {set(answered)}")
    statuses, elapsed, cpu = _flood(server, wrong, REFUSING_S)
    count = statuses.get(429, 0)
    time.sleep(0.2)
    lines = server.log[before:].decode().count("refused")
    scenario.table.append(
        [
            f"wrong tokens: {answered.count(401)} answered 401, then 429, per second",
            f"{count / elapsed:,.0f}",
            f"server CPU {cpu / max(1, count) * 1e6:.0f} µs each; {lines} log lines for"
            f" {len(answered) + sum(statuses.values())} attempts",
        ]
    )
