"""`mlci serve` over plain HTTP and websockets: a real server process on loopback,
real dashboard processes behind it, and every refusal the README promises.

The browser's side (the page renders, keys act) is tests/web/, in Chromium."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import http.client
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import termios
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path

import psutil
import pytest

from tests.helpers import (
    PYTHON,
    Output,
    Project,
    mlci_env,
    pid_alive,
    require_extra,
    wait_dead,
    wait_for,
)

require_extra("textual-serve", "pip install -e '.[serve]'")

import aiohttp  # noqa: E402 (textual-serve's dependency: only once it is known to be there)

TOKEN = "a-test-token-of-32-characters-xx"

QUICK = """
[pipeline]
name = "served"

[stages.train]
command = "{python} -c \\"print('trained')\\""
"""


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    stdout: Output
    stderr: Output
    base: str
    port: int
    children: set[int] = field(default_factory=set)

    @property
    def cookie_name(self) -> str:
        return f"mlci-serve-{self.port}"

    def get(self, path: str, headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        response.body = response.read()  # type: ignore[attr-defined]
        connection.close()
        return response

    def cookie(self) -> str:
        """The cookie a right token is exchanged for."""
        response = self.get(f"/?token={TOKEN}")
        assert response.status == 303
        jar = SimpleCookie(response.headers["Set-Cookie"])
        return f"{self.cookie_name}={jar[self.cookie_name].value}"

    def dashboards(self) -> set[int]:
        """The dashboard processes it runs now (each `mlci tui`, its own group)."""
        found = set()
        for child in psutil.Process(self.process.pid).children():
            try:
                if "tui" in child.cmdline() and child.status() != psutil.STATUS_ZOMBIE:
                    found.add(child.pid)
            except psutil.Error:  # ended meanwhile, or a zombie the server reaps soon
                continue
        self.children |= found
        return found

    def log(self) -> str:
        return self.stderr.data.decode()


def start_server(project: Project, *options: str, token_file: bool = True) -> Server:
    args = [PYTHON, "-m", "mlci_tui", "serve", "--port", "0", *options]
    if token_file:
        path = project.path / "token"
        path.write_text(TOKEN + "\n")
        path.chmod(0o600)
        args += ["--token-file", str(path)]
    process = subprocess.Popen(
        [*args, "--config", str(project.config_path)],
        cwd=project.path,
        env=mlci_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    assert process.stdout is not None and process.stderr is not None
    stdout, stderr = Output(process.stdout.fileno()), Output(process.stderr.fileno())
    wait_for(lambda: b"Ctrl-C stops" in stderr.data or process.poll() is not None, what="serving")
    found = re.search(rb" on [0-9.]+:(\d+) \(", stderr.data)
    assert found, stderr.data
    port = int(found.group(1))
    return Server(process, stdout, stderr, f"http://127.0.0.1:{port}", port)


def stop_server(server: Server) -> None:
    """SIGTERM: it ends every dashboard it started, then itself, with 0."""
    if server.process.poll() is None:
        server.dashboards()
        server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(30) == 0, server.log()
    wait_dead(server.children)


@contextlib.contextmanager
def serving(project: Project, *options: str, token_file: bool = True) -> Iterator[Server]:
    """A server for the test's body, stopped after it as `stop_server` stops one."""
    server = start_server(project, *options, token_file=token_file)
    try:
        yield server
    finally:
        stop_server(server)


@pytest.fixture
def served(project: Project) -> Iterator[Server]:
    project.write(QUICK)
    with serving(project) as server:
        yield server


class Tab:
    """A browser tab, as textual-serve's page drives its websocket."""

    def __init__(self, server: Server, cookie: str, origin: str | None = None) -> None:
        self.server, self.cookie = server, cookie
        self.origin = server.base if origin is None else origin
        self.received = bytearray()

    async def open(self) -> aiohttp.ClientWebSocketResponse:
        self.client = aiohttp.ClientSession()
        headers = {"Cookie": self.cookie}
        if self.origin:
            headers["Origin"] = self.origin
        url = f"ws://127.0.0.1:{self.server.port}/ws?width=100&height=30"
        self.socket = await self.client.ws_connect(url, headers=headers)
        self.reader = asyncio.create_task(self._read())
        return self.socket

    async def _read(self) -> None:
        async for message in self.socket:
            if message.type == aiohttp.WSMsgType.BINARY:
                self.received += message.data

    async def shows(self, text: bytes, timeout: float = 30.0) -> None:
        async def seen() -> None:
            while text not in self.received:
                if self.reader.done():
                    raise AssertionError(f"closed before {text!r}: {bytes(self.received)[-300:]!r}")
                await asyncio.sleep(0.05)

        await asyncio.wait_for(seen(), timeout)

    async def close(self) -> None:
        await self.socket.close()
        await self.client.close()


async def drawn(server: Server, cookie: str) -> Tab:
    """A tab whose dashboard has drawn its first frame (the quick pipeline's stage)."""
    tab = Tab(server, cookie)
    await tab.open()
    await tab.shows(b"train")
    return tab


async def wait_until(
    condition: Callable[[], object], timeout: float = 30.0, what: str = ""
) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.05)

    try:
        await asyncio.wait_for(poll(), timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


# The token and the cookie ----------------------------------------------------------


def test_without_the_token_every_path_is_refused(served: Server) -> None:
    for path in ("/", "/ws", "/static/js/textual.js", "/download/anything", "/elsewhere"):
        response = served.get(path)
        assert response.status == 401, path
        assert b"textual" not in response.body.lower(), path  # type: ignore[attr-defined]
    # Without credentials nothing was attempted: nothing counted, nothing logged.
    assert "refused" not in served.log()


def test_the_token_is_exchanged_for_a_strict_cookie_and_an_address_without_it(
    served: Server,
) -> None:
    response = served.get(f"/?token={TOKEN}&fontsize=20")
    assert response.status == 303
    assert response.headers["Location"] == "/?fontsize=20"
    assert response.body == b""  # type: ignore[attr-defined]
    header = response.headers["Set-Cookie"]
    jar = SimpleCookie(header)
    morsel = jar[served.cookie_name]
    assert TOKEN not in header
    assert morsel["httponly"] and morsel["samesite"] == "Strict" and morsel["path"] == "/"
    page = served.get("/", {"Cookie": f"{served.cookie_name}={morsel.value}"})
    assert page.status == 200
    body = page.body.decode()  # type: ignore[attr-defined]
    assert f'data-session-websocket-url="ws://127.0.0.1:{served.port}/ws"' in body
    assert TOKEN not in body
    policy = page.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy
    # Chromium drops a source it cannot parse (an IPv6 address) with a console error.
    port = served.port
    assert f"connect-src 'self' ws://127.0.0.1:{port} ws://localhost:{port};" in policy
    assert page.headers["Referrer-Policy"] == "no-referrer"


def test_wrong_tokens_and_cookies_are_refused_even_beside_a_valid_cookie(served: Server) -> None:
    cookie = served.cookie()
    refused = {
        "a wrong token": served.get("/?token=" + "x" * len(TOKEN)),
        "a token's prefix": served.get("/?token=" + TOKEN[:-1]),
        "a wrong cookie": served.get("/", {"Cookie": f"{served.cookie_name}=00{cookie[-10:]}"}),
        "the token as the cookie": served.get("/", {"Cookie": f"{served.cookie_name}={TOKEN}"}),
        "another port's cookie": served.get("/", {"Cookie": "mlci-serve-1" + cookie[-65:]}),
        # A token in the address after the cookie is set: never served, even right.
        "a wrong token beside the cookie": served.get("/?token=nope", {"Cookie": cookie}),
        "the token on the websocket's path": served.get(f"/ws?token={TOKEN}", {"Cookie": cookie}),
        "the token on a file's path": served.get(f"/static/js/textual.js?token={TOKEN}"),
    }
    for what, response in refused.items():
        assert response.status == 401, what
    again = served.get(f"/?token={TOKEN}", {"Cookie": cookie})
    assert again.status == 303 and again.body == b""  # type: ignore[attr-defined]
    assert served.get("/", {"Cookie": cookie}).status == 200
    log = served.log()
    assert "refused 127.0.0.1: a wrong token (GET /)" in log
    # A wrong cookie is a stale one (the server restarted), not an attempt: not logged.
    assert log.count("refused") == 5  # the three wrong tokens, the two in addresses
    assert TOKEN not in log


def test_a_cookie_that_is_not_utf_8_is_a_stale_one(served: Server) -> None:
    response = served.get("/", {"Cookie": f"{served.cookie_name}=\xed\xa0\x80"})  # latin-1 bytes
    assert response.status == 401
    assert b"not this server's" in response.body  # type: ignore[attr-defined]
    assert "Error" not in served.log()


def test_failed_attempts_are_limited_per_address_but_a_cookie_still_works(served: Server) -> None:
    cookie = served.cookie()
    statuses = [served.get(f"/?token=wrong-{n}").status for n in range(10)]
    assert statuses == [401] * 10
    # Past ten failures within a minute even the right token waits; a cookie does not.
    blocked = served.get(f"/?token={TOKEN}")
    assert blocked.status == 429
    assert 1 <= int(blocked.headers["Retry-After"]) <= 61
    assert served.get("/", {"Cookie": cookie}).status == 200
    stale = served.get("/", {"Cookie": f"{served.cookie_name}=guess"})
    assert stale.status == 401 and b"not this server's" in stale.body  # type: ignore[attr-defined]
    log = served.log()
    # Each failure up to the limit is one line; then one line says the rest are not.
    assert log.count("refused 127.0.0.1") == 10
    assert "10 failures within 60s" in log


def test_a_browser_sending_the_token_for_another_page_spends_no_attempt(served: Server) -> None:
    # A page on another port of this host (an <img>, a frame, a window it opens) could
    # otherwise spend the ten attempts and keep the user's right token out for a minute.
    from_elsewhere = [
        {"Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image"},
        {"Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "iframe"},
        {
            "Sec-Fetch-Site": "cross-site",
            "Sec-Fetch-Mode": "navigate",
            "Sec-Fetch-Dest": "document",
        },
    ]
    for n in range(30):
        response = served.get(f"/?token=guess-{n}", from_elsewhere[n % 3])
        assert response.status == 401
    typed = {"Sec-Fetch-Site": "none", "Sec-Fetch-Mode": "navigate"}
    assert served.get(f"/?token={TOKEN}", typed).status == 303
    # The server logs a refusal once it has answered it: waited for, not raced.
    wait_for(lambda: "from another page: not counted" in served.log(), what="the log line")
    # Typed (or sent by a script) it counts.
    for n in range(10):
        served.get(f"/?token=typo-{n}", typed)
    assert served.get(f"/?token={TOKEN}", typed).status == 429


def test_a_script_claiming_to_be_another_page_is_limited_too(served: Server) -> None:
    # `Sec-Fetch-Site` is a header: a script may send it. Its guesses are counted
    # apart, so that another page still cannot keep a typed token out, but they are
    # counted: past 100 within a minute they wait, as typed ones past 10 do.
    claimed = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}
    statuses = [served.get(f"/?token=guess-{n}", claimed).status for n in range(100)]
    assert statuses == [401] * 100
    blocked = served.get(f"/?token={TOKEN}", claimed)
    assert blocked.status == 429
    assert 1 <= int(blocked.headers["Retry-After"]) <= 61
    typed = {"Sec-Fetch-Site": "none", "Sec-Fetch-Mode": "navigate"}
    assert served.get(f"/?token={TOKEN}", typed).status == 303
    wait_for(lambda: "100 failures from other pages within 60s" in served.log(), what="the log")


def test_a_malformed_request_with_the_token_logs_one_line_without_it(served: Server) -> None:
    import socket

    with socket.create_connection(("127.0.0.1", served.port), timeout=30) as sock:
        sock.sendall(f"GET /?token={TOKEN}\u2026 HTTP/1.1\r\n".encode() + b"Host: x\r\n\r\n")
        assert b" 400 Bad Request" in sock.recv(1024).split(b"\r\n")[0]
    # Whatever aiohttp logs of it is one line, the token taken out.
    wait_for(lambda: served.get("/").status == 401)
    assert TOKEN not in served.log()
    assert "Traceback" not in served.log()


# The websocket ----------------------------------------------------------------------


def test_a_websocket_from_another_origin_or_none_is_refused(served: Server) -> None:
    cookie = served.cookie()

    async def attempt(origin: str | None) -> int:
        tab = Tab(served, cookie, origin=origin or "")
        try:
            await tab.open()
        except aiohttp.WSServerHandshakeError as error:
            return error.status
        finally:
            await tab.client.close()
        await tab.close()
        return 101

    for origin in ("http://evil.example", f"http://127.0.0.1:{served.port + 1}", None):
        assert asyncio.run(attempt(origin)) == 403, origin
    # Logged once answered: waited for, not raced.
    wait_for(lambda: "a websocket from http://evil.example" in served.log(), what="the log")
    wait_for(lambda: "no origin" in served.log(), what="the last refusal's log line")
    assert not served.dashboards()


def test_websockets_from_another_origin_are_logged_within_the_cap(served: Server) -> None:
    # With the cookie, a page on another port of this host (same-site: the browser
    # sends it) may open websockets in a loop: each is refused, but the log keeps to
    # its 100 lines a minute, as for every other refusal.
    headers = {
        "Cookie": served.cookie(),
        "Origin": "http://127.0.0.1:1",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    }
    for _ in range(150):
        assert served.get("/ws", headers).status == 403
    wait_for(lambda: "this minute: the rest are counted" in served.log(), what="the cap")
    assert served.log().count("a websocket from http://127.0.0.1:1") == 100


def test_a_tab_gets_its_own_dashboard_which_ends_with_it(served: Server) -> None:
    cookie = served.cookie()

    async def session() -> None:
        tab = await drawn(served, cookie)
        (dashboard,) = served.dashboards()
        environ = psutil.Process(dashboard).environ()
        assert re.fullmatch(r"web:[0-9a-f]{8}", environ["MLCI_ACTOR"])
        assert not any(TOKEN in value for value in environ.values())
        assert os.getpgid(dashboard) == dashboard  # a process group of its own
        await tab.close()
        await wait_until(lambda: not psutil.pid_exists(dashboard), what="the dashboard's end")

    asyncio.run(session())
    wait_for(lambda: "ended (tab closed" in served.log())
    assert re.search(r"session [0-9a-f]{8} started \(127\.0\.0\.1; 1 of 8\)", served.log())


def test_hostile_messages_are_dropped_and_the_session_goes_on(served: Server) -> None:
    cookie = served.cookie()

    async def session() -> None:
        tab = await drawn(served, cookie)
        socket = tab.socket
        for text in (
            "[" * 100_000 + "]" * 100_000,  # nested past the parser's recursion
            json.dumps(["resize", {"width": 1e309, "height": -5}]).replace("Infinity", "1e309"),
            json.dumps(["resize", {"width": "wide", "height": None}]),
            json.dumps(["stdin", 42]),
            json.dumps({"stdin": "x"}),
            "not json",
            json.dumps([]),
        ):
            await socket.send_str(text)
        await socket.send_bytes(b"\x00" * 1000)
        await socket.send_str(json.dumps(["stdin", "?"]))  # the help: it still answers
        await tab.shows(b"Keys")
        await tab.close()

    asyncio.run(session())
    wait_for(lambda: "ended (tab closed" in served.log())
    assert "Traceback" not in served.log()


def test_a_dashboard_that_fails_is_named_in_the_session_s_end(
    served: Server, project: Project
) -> None:
    cookie = served.cookie()
    project.config_path.write_text("[pipeline\n")  # broken after the server started

    told: list[bool] = []

    async def session() -> None:
        tab = Tab(served, cookie)
        await tab.open()
        await wait_until(tab.reader.done, what="the failed dashboard's tab closing")
        told.append(f"mlci tui failed: {project.config_path}".encode() in tab.received)
        await tab.close()

    asyncio.run(session())
    wait_for(lambda: "ended (" in served.log())
    assert told, "the tab was not told why"
    ended = served.log().split("ended (", 1)[1]
    assert ended.startswith(str(project.config_path)), ended
    assert not served.dashboards()


def test_a_dashboard_that_does_not_quit_is_ended_with_its_tab(served: Server) -> None:
    cookie = served.cookie()

    async def session() -> None:
        tab = await drawn(served, cookie)
        (dashboard,) = served.dashboards()
        os.kill(dashboard, signal.SIGSTOP)  # hung: it will never read the request to quit
        await tab.close()
        await wait_until(lambda: not pid_alive(dashboard), what="the hung dashboard's end")

    asyncio.run(session())
    wait_for(lambda: "ended (tab closed; its dashboard did not quit and was killed" in served.log())


def test_a_dashboard_that_stops_reading_never_holds_the_server(project: Project) -> None:
    project.write(QUICK)
    with serving(project) as server:
        cookie = server.cookie()

        async def session() -> None:
            tab = await drawn(server, cookie)
            (dashboard,) = server.dashboards()
            os.kill(dashboard, signal.SIGSTOP)
            for _ in range(64):  # 256 kB of keys: more than its input pipe holds
                if tab.reader.done():
                    break
                await tab.socket.send_str(json.dumps(["stdin", "j" * 4096]))
            await wait_until(tab.reader.done, what="the session's end")
            await tab.close()
            await wait_until(lambda: not pid_alive(dashboard), what="the stopped dashboard's end")

        asyncio.run(session())
        wait_for(lambda: "its dashboard read nothing for 10s" in server.log())


def frame(text: str) -> bytes:
    """A websocket text frame as a browser sends it (masked)."""
    data, mask = text.encode(), os.urandom(4)
    length = len(data)
    header = bytes([0x81]) + (
        bytes([0x80 | length]) if length < 126 else bytes([0x80 | 126]) + length.to_bytes(2, "big")
    )
    return header + mask + bytes(byte ^ mask[i % 4] for i, byte in enumerate(data))


def stalled_tab(server: Server, cookie: str) -> tuple[socket.socket, int]:
    """A tab that reads nothing of what its dashboard draws (a screen of 1000 x 1000),
    once the server's writes to it have stalled; and its dashboard's pid."""
    browser = socket.socket()
    browser.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    browser.connect(("127.0.0.1", server.port))
    browser.sendall(
        (
            "GET /ws?width=1000&height=1000 HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{server.port}\r\nOrigin: {server.base}\r\nCookie: {cookie}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        ).encode()
    )
    assert browser.recv(12) == b"HTTP/1.1 101"  # then never read again
    wait_for(lambda: server.dashboards(), what="the dashboard")
    (dashboard,) = server.dashboards()

    def waiting(stream: object) -> int:
        """The bytes written to ``stream`` (a pipe, a socket) and not yet read."""
        return int.from_bytes(fcntl.ioctl(stream, termios.FIONREAD, b"\0\0\0\0"), sys.byteorder)

    def stalled() -> bool:
        # The server is sending it a screen it does not read, and reads no more of
        # the dashboard's output: that pipe is full.
        with open(f"/proc/{dashboard}/fd/1", "rb") as pipe:
            full = waiting(pipe) >= fcntl.fcntl(pipe, fcntl.F_GETPIPE_SZ)
        return full and waiting(browser) >= 2048

    wait_for(stalled, what="the server's writes to the tab stalled")
    return browser, dashboard


def test_a_tab_that_stops_reading_then_drops_ends_its_dashboard(served: Server) -> None:
    # A laptop that sleeps while its dashboard draws: the server's writes to it stall,
    # then the connection is reset. The session must end, its dashboard with it.
    browser, dashboard = stalled_tab(served, served.cookie())
    browser.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    browser.close()  # a reset
    wait_for(lambda: "ended (" in served.log(), what="the session's end")
    assert "ended (tab closed;" in served.log(), served.log()
    wait_dead([dashboard])
    assert "Error" not in served.log()


def test_a_dashboard_whose_tab_drops_while_written_to_quits_when_asked(
    project: Project,
) -> None:
    # Its output no longer goes to the tab, but it is still read (into nothing): the
    # dashboard, blocked on a full pipe, could otherwise not take the request to quit,
    # and was killed 3 s later, holding its --max-sessions slot meanwhile.
    project.write(QUICK)
    with serving(project, "--idle-timeout", "5s") as server:
        for ends in ("tab closed", "idle for 5.00s"):  # a reset; a tab left unread
            browser, dashboard = stalled_tab(server, server.cookie())
            if ends == "tab closed":
                browser.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                browser.close()
            line = f"ended ({ends};"
            wait_for(lambda: line in server.log(), what="the session's end")  # noqa: B023
            wait_dead([dashboard])
            browser.close()
        assert "ended (tab closed; after" in server.log(), server.log()
        assert "ended (idle for 5.00s; after" in server.log(), server.log()
        assert "did not quit" not in server.log(), server.log()


def test_a_tab_that_reads_nothing_is_ended_when_idle(project: Project) -> None:
    # Its connection open but never read: closing it cannot wait for the tab. The
    # idle time leaves a loaded machine room to stall the writes first.
    project.write(QUICK)
    with serving(project, "--idle-timeout", "6s") as server:
        browser, dashboard = stalled_tab(server, server.cookie())
        wait_for(lambda: "ended (idle for 6.00s" in server.log(), what="the idle session's end")
        wait_dead([dashboard])
        browser.close()


def test_sigterm_ends_a_tab_that_reads_nothing(project: Project) -> None:
    project.write(QUICK)
    server = start_server(project)
    browser, dashboard = stalled_tab(server, server.cookie())
    server.process.send_signal(signal.SIGTERM)
    try:
        assert server.process.wait(20) == 0
    finally:
        browser.close()
    wait_dead([dashboard])
    assert "ended (server stopped;" in server.log()


def test_one_more_tab_than_allowed_is_refused_with_a_page_saying_so(project: Project) -> None:
    project.write(QUICK)
    with serving(project, "--max-sessions", "2") as server:
        cookie = server.cookie()

        async def sessions() -> None:
            tabs = [await drawn(server, cookie) for _ in range(2)]
            page = server.get("/", {"Cookie": cookie})
            assert page.status == 503
            assert b"All 2 dashboards of this server are in use" in page.body  # type: ignore[attr-defined]
            late = Tab(server, cookie)
            await late.open()  # a page loaded before the others took the places
            await wait_until(late.reader.done, what="the refused websocket's close")
            assert b"in use (--max-sessions)" in late.received
            assert late.socket.close_code == 1013
            await late.close()
            assert len(server.dashboards()) == 2
            await tabs[0].close()
            await wait_until(lambda: len(server.dashboards()) == 1, what="one dashboard left")
            assert server.get("/", {"Cookie": cookie}).status == 200
            await tabs[1].close()

        asyncio.run(sessions())


def test_an_idle_dashboard_ends_and_input_keeps_one_alive(project: Project) -> None:
    project.write(QUICK)
    with serving(project, "--idle-timeout", "4s") as server:
        cookie = server.cookie()

        async def sessions() -> None:
            busy, idle = Tab(server, cookie), Tab(server, cookie)
            await busy.open()

            async def typing() -> None:
                while True:  # a key twice a second, as someone reading and scrolling
                    await busy.socket.send_str(json.dumps(["stdin", "j"]))
                    # The page's pings, a resize, focus: none of them is someone there.
                    if not idle.socket.closed:
                        for message in (["ping", "1"], ["resize", {"width": 90, "height": 30}]):
                            await idle.socket.send_str(json.dumps(message))
                        await idle.socket.send_str(json.dumps(["focus"]))
                    await asyncio.sleep(0.5)

            await idle.open()
            keys = asyncio.create_task(typing())
            await idle.shows(b"versions")
            await wait_until(idle.reader.done, timeout=30, what="the idle tab's end")
            keys.cancel()
            assert not busy.reader.done()
            await wait_until(lambda: len(server.dashboards()) == 1, what="the idle one's end")
            await idle.close()
            await busy.close()

        asyncio.run(sessions())
        wait_for(lambda: "ended (idle for 4.00s" in server.log())


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_sigterm_or_ctrl_c_ends_every_dashboard_and_the_server(
    project: Project, signum: signal.Signals
) -> None:
    project.write(QUICK)
    server = start_server(project)
    cookie = server.cookie()
    stopped: list[int] = []

    async def sessions() -> None:
        tabs = [await drawn(server, cookie) for _ in range(3)]
        stopped.extend(server.dashboards())
        server.process.send_signal(signum)
        for tab in tabs:
            await wait_until(tab.reader.done, what="the server closing the tab")
            await tab.close()

    asyncio.run(sessions())
    assert len(stopped) == 3
    assert server.process.wait(30) == 0
    wait_dead(stopped)
    assert server.log().count("(server stopped;") == 3


def test_a_killed_server_leaves_no_dashboard_behind(project: Project) -> None:
    project.write(QUICK)
    server = start_server(project)
    cookie = server.cookie()
    left: list[int] = []

    async def session() -> None:
        tab = await drawn(server, cookie)
        left.extend(server.dashboards())
        server.process.kill()
        await wait_until(tab.reader.done, what="the tab's end")
        await tab.close()

    asyncio.run(session())
    assert server.process.wait(30) == -signal.SIGKILL
    assert len(left) == 1
    wait_dead(left)


# What a user gets wrong --------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--token-file", "missing"], "--token-file missing: cannot read it"),
        (["--public-url", "ftp://x"], "--public-url 'ftp://x': expected an address like"),
        (["--public-url", "https://x/?a=1"], "an address without ?query or #fragment"),
        (["--idle-timeout", "soon"], "--idle-timeout 'soon': expected a duration"),
        (["--max-sessions", "0"], "argument --max-sessions: expected a positive number"),
        (["--port", "70000"], "argument --port: expected a port number"),
        (["--host", "no.such.host.invalid"], "--host no.such.host.invalid:"),
        (["--token-file", ""], "--token-file .: not a file"),
        (["--public-url", "https://x:99999"], "port out of range 0-65535"),
    ],
)
def test_bad_options_get_one_line_and_exit_2(
    project: Project, options: list[str], expected: str
) -> None:
    project.write(QUICK)
    result = project.mlci("serve", "--port", "0", *options, timeout=60)
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr.decode()
    assert len(result.stderr.decode().strip().splitlines()) == 1
    assert result.stdout == b""


@pytest.mark.parametrize(
    ("mode", "text", "expected"),
    [
        (0o644, TOKEN, "others may read it (mode 0644); make it yours alone: chmod 600"),
        (0o600, "short", "the token must have at least 16 characters"),
        (0o600, "two words " * 4, "one line of letters, digits and - . _ ~"),
        (0o600, "a+token/from=base64&more#", "like `openssl rand -hex 32` makes"),
    ],
)
def test_a_token_file_that_cannot_be_trusted_is_refused(
    project: Project, mode: int, text: str, expected: str
) -> None:
    project.write(QUICK)
    path = project.path / "token"
    path.write_text(text)
    path.chmod(mode)
    result = project.mlci("serve", "--port", "0", "--token-file", str(path))
    assert result.returncode == 2
    stderr = result.stderr.decode()
    assert expected in stderr and TOKEN not in stderr and len(stderr.splitlines()) == 1


def test_a_busy_port_is_one_line(served: Server, project: Project) -> None:
    result = project.mlci("serve", "--port", str(served.port), "--token-file", "token")
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{served.port}: Address already in use" in (
        result.stderr.decode()
    )


def test_a_made_token_is_printed_once_and_written_nowhere(project: Project) -> None:
    project.write(QUICK)
    project.mlci("run")
    with serving(project, token_file=False) as server:
        (token,) = re.findall(rb"\?token=([A-Za-z0-9_-]{43})\n", server.stdout.data)
        assert len(token) == 43  # 32 random bytes
        response = server.get(f"/?token={token.decode()}")
        assert response.status == 303
        cookie = response.headers["Set-Cookie"].split(";")[0]

        async def session() -> None:
            tab = await drawn(server, cookie)
            await tab.close()

        asyncio.run(session())
        wait_for(lambda: "ended" in server.log())
    assert token not in server.stderr.data
    for path in project.path.rglob("*"):
        if path.is_file():
            assert token not in path.read_bytes(), path


def test_beyond_loopback_without_a_public_url_the_page_is_where_the_browser_is(
    project: Project,
) -> None:
    import socket

    project.write(QUICK)
    with serving(project, "--host", "0.0.0.0", "--idle-timeout", "0") as server:
        assert f"Dashboard at http://{socket.gethostname()}:{server.port}/".encode() in (
            server.stdout.data
        )
        assert "never ended when idle" in server.log()
        cookie = server.cookie()
        there = f"gpu-box.example:{server.port}"
        page = server.get("/", {"Cookie": cookie, "Host": there})
        assert f'data-session-websocket-url="ws://{there}/ws"' in page.body.decode()  # type: ignore[attr-defined]

        async def attempt(origin: str) -> int:
            async with aiohttp.ClientSession() as client:
                try:
                    socket_ = await client.ws_connect(
                        f"ws://127.0.0.1:{server.port}/ws",
                        headers={"Cookie": cookie, "Host": there, "Origin": origin},
                    )
                except aiohttp.WSServerHandshakeError as error:
                    return error.status
                await socket_.close()
                return 101

        assert asyncio.run(attempt(f"http://{there}")) == 101
        assert asyncio.run(attempt(f"http://evil.example:{server.port}")) == 403
        assert asyncio.run(attempt(f"http://gpu-box.example:{server.port + 1}")) == 403


def test_another_host_than_loopback_is_served_with_a_warning(project: Project) -> None:
    project.write(QUICK)
    with serving(project, "--host", "0.0.0.0", "--public-url", "https://ml.example.com/") as server:
        assert b"Dashboard at https://ml.example.com/?token=" in server.stdout.data
        server.stderr.wait_for(b"TLS in a reverse proxy")
        response = server.get(f"/?token={TOKEN}")
        # Behind the proxy: the address it serves, and a cookie only sent over TLS.
        assert response.headers["Location"] == "https://ml.example.com/"
        assert "Secure" in response.headers["Set-Cookie"]


def test_without_the_extra_mlci_serve_says_how_to_get_it(project: Project, tmp_path: Path) -> None:
    project.write(QUICK)
    # A path entry that hides the extra: an importable module raising ModuleNotFoundError.
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "textual_serve").mkdir()
    (hide / "textual_serve" / "__init__.py").write_text(
        "raise ModuleNotFoundError('No module named textual_serve', name='textual_serve')\n"
    )
    env = mlci_env(PYTHONPATH=f"{hide}{os.pathsep}{mlci_env()['PYTHONPATH']}")
    result = project.mlci("serve", "--port", "0", env=env)
    assert result.returncode == 2
    assert "mlci serve needs the serve extra (textual_serve is missing): pip install" in (
        result.stderr.decode()
    )
