"""The web server of `mlci serve`: textual-serve's, with a guard in front.

textual-serve (an aiohttp server) gives each websocket a process of its own and
relays the terminal protocol between the two; it checks nobody. Here every
request passes `guard` first, the websocket's ``Origin`` is checked, sessions are
counted and ended when idle, and each dashboard runs in its own process group so
that ending a session ends everything it started but the runs it detached.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlencode

import aiohttp_jinja2
import jinja2
from aiohttp import WSCloseCode, WSMsgType, web
from textual_serve.app_service import AppService
from textual_serve.server import Server

from mlci_tui.errors import UsageError
from mlci_tui.textsafe import visible_text
from mlci_tui.units import format_duration
from mlci_tui.web import guard
from mlci_tui.web.guard import Failures, Guard

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

QUIT_GRACE_S = 3.0
"""How long a dashboard asked to quit may take before its process group is ended."""

KILL_GRACE_S = 2.0

HEARTBEAT_S = 15.0
"""Websocket pings: a tab that vanished (a laptop closed) is noticed within this."""

MAX_LINES = 100
"""Lines of refusals and of the libraries' complaints logged a minute at most: a flood
of bad requests is a count, not a flood of the log."""

STALL_S = 10.0
"""How long a dashboard may take to read what the browser sent before its session
ends: one that stopped reading (hung, stopped) must not hold the server."""

CLOSE_S = 3.0
"""How long a tab may take to take its websocket's close before its connection is
cut: one that reads nothing (a stalled client, a laptop asleep mid-frame) must hold
neither its dashboard nor the server's stop."""

LARGEST_MESSAGE = 1 << 20
"""The largest websocket message read from a browser (a paste, say)."""


@dataclass(frozen=True)
class Settings:
    """What `mlci serve` was asked for, checked."""

    config_path: Path
    root: Path
    title: str
    host: str
    port: int
    public_url: str | None
    read_only: bool
    max_sessions: int
    idle_timeout: float
    """Seconds without a key or a click before a session ends; 0 never."""
    token: str = field(repr=False)
    token_file: Path | None


@dataclass
class Session:
    """One browser tab and the dashboard process serving it."""

    id: str
    address: str
    websocket: web.WebSocketResponse
    started: float = field(default_factory=time.monotonic)
    last_input: float = field(default_factory=time.monotonic)
    ending: str | None = None
    """Why the server ends it (idle, stopping); None while the tab decides."""
    service: DashboardService | None = None
    transport: asyncio.Transport | None = None
    """The tab's connection, cut if it does not take a close (`close_tab`)."""


def say(text: str) -> None:
    """One line of the server's log, on stderr (stdout holds only the address)."""
    print(f"mlci serve: {time.strftime('%H:%M:%S')} {text}", file=sys.stderr, flush=True)


def shown(text: str, limit: int = 80) -> str:
    """Text a client sent (a path, an Origin), safe and short enough for the log."""
    text = visible_text(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class DashboardService(AppService):
    """One served dashboard: `mlci tui` in a process group of its own, its
    environment without the token, its stderr kept for the log."""

    def __init__(
        self, argv: list[str], settings: Settings, session: Session, **kwargs: Any
    ) -> None:
        super().__init__(" ".join(argv), **kwargs)
        self.argv = argv
        self.settings = settings
        self.session = session
        self.errors: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 (closed by the session)
        self.killed = False
        """Whether it did not quit when asked, and its process group was ended."""

    async def _open_app_process(self, width: int = 80, height: int = 24) -> Any:
        environment = guard.secret_free(
            self._build_environment(width=width, height=height), self.settings.token
        )
        # Who acts, for the audit trail: what this dashboard starts names the session.
        environment["MLCI_ACTOR"] = f"web:{self.session.id}"
        self._process = process = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=self.errors,
            env=environment,
            cwd=self.settings.root,
            start_new_session=True,
            preexec_fn=end_with_parent,
        )
        # textual-serve reads the process's stderr and prints it on stdout, which
        # holds only the address here: it reads an empty stream instead, and the
        # last line of the file is logged if the dashboard fails.
        empty = asyncio.StreamReader()
        empty.feed_eof()
        process.stderr = empty
        assert process.stdin is not None
        self._stdin = process.stdin
        return process

    async def stop(self) -> None:
        """Ask the dashboard to quit; end its process group if it does not."""
        task, self._task = self._task, None
        process = self._process
        drain = None
        if task is not None and process is not None and process.stdout is not None:
            # Once the relay has ended (the tab's connection lost while written to),
            # what the dashboard still writes is read into nothing: blocked on a full
            # pipe, it could not take the request to quit.
            drain = asyncio.create_task(discard(process.stdout, after=task))
        try:
            await self._stop(task, process)
        finally:
            if drain is not None:
                drain.cancel()

    async def _stop(self, task: asyncio.Task[None] | None, process: Any) -> None:
        if task is not None:
            await self._download_manager.cancel_app_downloads(app_service_id=self.app_service_id)
            # A timeout: it may not read the request at all. Any other error is the
            # relay's, which failed first (the tab's connection lost while written
            # to): the dashboard is ended all the same, below.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.send_meta({"type": "quit"}), QUIT_GRACE_S)
                await asyncio.wait_for(asyncio.shield(task), QUIT_GRACE_S)
        if process is not None:
            # Its output ended: it is ending, if not reaped yet.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(
                    process.wait(), 0 if task and not task.done() else QUIT_GRACE_S
                )
        if process is not None and process.returncode is None:
            self.killed = True
            for signum in (signal.SIGTERM, signal.SIGKILL):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signum)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(process.wait(), KILL_GRACE_S)
                if process.returncode is not None:
                    break
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def on_meta(self, data: bytes) -> None:
        if json.loads(data).get("type") == "exit":
            self.session.ending = "dashboard quit"
        await super().on_meta(data)

    def failure(self) -> str | None:
        """Why the dashboard failed, from its stderr's last line; None if it did not."""
        process = self._process
        if self.killed or process is None or process.returncode in (0, None) or self.errors.closed:
            return None
        self.errors.seek(0)
        lines = self.errors.read()[-4096:].decode("utf-8", "replace").strip().splitlines()
        return shown(lines[-1], 200) if lines else f"exit code {process.returncode}"


class DashboardServer(Server):
    """textual-serve's server, guarded, bounded, and serving `mlci tui`."""

    def __init__(self, settings: Settings, port: int) -> None:
        self.settings = settings
        public = guard.public_url(settings.host, port, settings.public_url)
        super().__init__(
            "mlci tui",
            host=settings.host,
            port=port,
            title=settings.title,
            public_url=public,
        )
        self.guard = Guard(settings.token)
        self.cookie = guard.cookie_name(port)
        self.origins = guard.origins(
            public, settings.host, port, given=settings.public_url is not None
        )
        self.secure = public.startswith("https:")
        # Without --public-url beyond loopback, the page's own address is not known
        # in advance (a name, an address): a websocket from it is.
        self.strict = settings.public_url is not None or guard.is_loopback(settings.host)
        self.failures = Failures()
        self.foreign = Failures(limit=guard.MAX_FOREIGN_FAILURES)
        """The failures of tokens sent for another page (`counts`), counted apart."""
        self.capped = Capped()
        self.sessions: dict[str, Session] = {}
        self.handlers: set[asyncio.Task[Any]] = set()
        self.argv = [sys.executable, "-m", "mlci_tui", "tui", "--config", str(settings.config_path)]
        if settings.read_only:
            self.argv.append("--read-only")

    async def _make_app(self) -> web.Application:
        app = web.Application(middlewares=[self.check], client_max_size=LARGEST_MESSAGE)
        aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(self.templates_path))
        app.add_routes(
            [
                web.get("/", self.handle_index, name="index"),
                web.get("/ws", self.handle_websocket, name="websocket"),
                web.get("/download/{key}", self.handle_download, name="download"),
                web.static("/static", self.statics_path, name="static"),
            ]
        )
        app.on_response_prepare.append(self.add_headers)
        return app

    # Every request ------------------------------------------------------------------

    @web.middleware
    async def check(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """The token, once, for a cookie; the cookie on every request after."""
        address = request.remote or "unknown"
        offered = request.query.get("token")
        cookie = request.cookies.get(self.cookie)
        if offered is not None:
            counted = counts(request)
            if wait := (self.failures if counted else self.foreign).blocked(address):
                return self.too_many(wait)
            if request.path != "/":
                # Only the page exchanges a token: elsewhere it would stay in an address.
                return self.refuse(request, address, "a token in the address", counted)
            if not self.guard.token_matches(offered):
                return self.refuse(request, address, "a wrong token", counted)
            return self.exchange(request)
        if cookie is not None and self.guard.cookie_matches(cookie):
            return await handler(request)
        if cookie is not None:
            # Another server's (it restarted, or one on another port of this host set
            # one of this name): the browser's, not a guess at a 256-bit value.
            return unauthorized("this address's cookie is not this server's (it restarted?)")
        # No credentials at all (a bookmark, a favicon): refused, not an attempt.
        return unauthorized()

    def exchange(self, request: web.Request) -> web.Response:
        """The token for a cookie, and an address without the token."""
        query = {name: value for name, value in request.query.items() if name != "token"}
        base = self.public_url + "/" if self.settings.public_url else "/"
        location = f"{base}?{urlencode(query)}" if query else base
        response = web.Response(status=303, headers={"Location": location})
        response.set_cookie(
            self.cookie,
            self.guard.cookie_value,
            path="/",
            httponly=True,
            samesite="Strict",
            secure=self.secure,
        )
        return response

    def refuse(self, request: web.Request, address: str, why: str, counted: bool) -> web.Response:
        where = f"({request.method} {shown(request.path)})"
        window = f"{self.failures.window:.0f}s"
        if not counted:
            count = self.foreign.add(address)
            if count < self.foreign.limit:
                self.capped.say(
                    f"refused {address}: {why} {where}, from another page: not counted"
                    " against typed tokens"
                )
            elif count == self.foreign.limit:
                self.capped.say(
                    f"refused {address}: {why}; {count} failures from other pages within"
                    f" {window}: its tokens from other pages are refused for {window}, unlogged"
                )
            return unauthorized()
        count = self.failures.add(address)
        if count < self.failures.limit:
            self.capped.say(f"refused {address}: {why} {where}")
        elif count == self.failures.limit:
            self.capped.say(
                f"refused {address}: {why}; {count} failures within {window}:"
                f" its attempts are refused for {window}, unlogged"
            )
        return unauthorized()

    def too_many(self, wait: float) -> web.Response:
        return web.Response(
            status=429,
            text="429: too many failed attempts from this address; try again later\n",
            headers={"Retry-After": str(int(wait) + 1)},
        )

    async def add_headers(self, request: web.Request, response: web.StreamResponse) -> None:
        headers = response.headers
        headers["Cache-Control"] = "no-store"
        headers["Referrer-Policy"] = "no-referrer"
        headers["X-Content-Type-Options"] = "nosniff"
        headers["X-Frame-Options"] = "DENY"
        # Only this server's own files and websocket: textual-serve's page also asks
        # Google for a font, which stays unasked (the terminal falls back to its own).
        headers["Content-Security-Policy"] = (
            "default-src 'self'; script-src 'self' 'unsafe-inline';"
            " style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:;"
            f" connect-src 'self' {' '.join(self.socket_origins())};"
            " frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
        )

    def socket_origins(self) -> list[str]:
        # CSP has no syntax for an IPv6 address: a page at [::1] relies on 'self'.
        return [
            origin.replace("http", "ws", 1) for origin in sorted(self.origins) if "[" not in origin
        ]

    # The page ----------------------------------------------------------------------

    async def handle_index(self, request: web.Request) -> web.Response:  # type: ignore[override]
        if len(self.sessions) >= self.settings.max_sessions:
            return self.full_page()
        address = self.address_of(request)

        def url(route: str, **parts: str) -> str:
            return f"{address}{request.app.router[route].url_for(**parts)}"

        context = {
            "font_size": guard_int(request.query.get("fontsize"), 16, 6, 64),
            "app_websocket_url": "ws" + url("websocket")[len("http") :],
            "config": {"static": {"url": url("static", filename="/").rstrip("/") + "/"}},
            "application": {"name": self.title},
        }
        return aiohttp_jinja2.render_template("app_index.html", request, context)

    def address_of(self, request: web.Request) -> str:
        """Where the browser is: without ``--public-url``, the address it used (its
        cookie belongs to that one; on loopback, one of loopback's spellings);
        else the public address."""
        asked = f"http://{request.host}".lower()
        if self.settings.public_url is None and (asked in self.origins or not self.strict):
            return asked
        return self.public_url

    def full_page(self) -> web.Response:
        most = self.settings.max_sessions
        text = (
            "<!DOCTYPE html><html><head><meta charset='utf-8'>"
            "<title>mlci: every dashboard in use</title></head>"
            "<body style='font-family: monospace; margin: 3em'>"
            f"<h1>All {most} dashboards of this server are in use</h1>"
            f"<p>mlci serve runs at most {most} at once (--max-sessions)."
            " Close another tab of this dashboard, then reload this page.</p></body></html>"
        )
        return web.Response(
            status=503, text=text, content_type="text/html", headers={"Retry-After": "30"}
        )

    # The websocket -----------------------------------------------------------------

    async def handle_websocket(self, request: web.Request) -> web.StreamResponse:  # type: ignore[override]
        address = request.remote or "unknown"
        origin = request.headers.get("Origin", "")
        if not guard.origin_allowed(origin, self.origins, request.host, strict=self.strict):
            self.capped.say(f"refused {address}: a websocket from {shown(origin) or 'no origin'}")
            return web.Response(status=403, text="403: not from this dashboard's page\n")
        websocket = web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=LARGEST_MESSAGE)
        if len(self.sessions) >= self.settings.max_sessions:
            await websocket.prepare(request)
            most = self.settings.max_sessions
            await websocket.send_bytes(
                f"\r\n All {most} dashboards of this server are in use (--max-sessions):"
                " close another tab, then reload.\r\n".encode()
            )
            await websocket.close(code=WSCloseCode.TRY_AGAIN_LATER)
            return websocket
        session = Session(guard.session_id(), address, websocket, transport=request.transport)
        self.sessions[session.id] = session
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        try:
            await self.run_session(request, session)
        finally:
            self.handlers.discard(task)
            del self.sessions[session.id]
        return websocket

    async def run_session(self, request: web.Request, session: Session) -> None:
        websocket = session.websocket
        await websocket.prepare(request)
        width, height = terminal_size(request.query.get("width"), request.query.get("height"))
        service = session.service = DashboardService(
            self.argv,
            self.settings,
            session,
            write_bytes=websocket.send_bytes,
            write_str=websocket.send_str,
            close=websocket.close,
            download_manager=self.download_manager,
        )
        say(
            f"session {session.id} started ({session.address};"
            f" {len(self.sessions)} of {self.settings.max_sessions})"
        )
        idle = asyncio.create_task(self.end_when_idle(session))
        try:
            await service.start(width, height)
            assert service._task is not None
            # A dashboard that ends by itself (it failed to start, say) takes its tab
            # with it; one that quits also says so (`on_meta`).
            service._task.add_done_callback(
                lambda _: asyncio.ensure_future(self.dashboard_ended(session))
            )
            await self.relay(websocket, service, session)
        finally:
            idle.cancel()
            why = session.ending or "tab closed"
            try:
                await service.stop()
                await self.close_tab(session, code=WSCloseCode.OK)
                why = session.ending or service.failure() or "tab closed"
                if service.killed:
                    why += "; its dashboard did not quit and was killed"
            finally:
                service.errors.close()
                lasted = format_duration(time.monotonic() - session.started)
                say(f"session {session.id} ended ({why}; after {lasted})")

    async def dashboard_ended(self, session: Session) -> None:
        """Its dashboard's output ended: the tab is told why if it failed, then closed."""
        service, websocket = session.service, session.websocket
        assert service is not None
        process = service._process
        if process is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(process.wait(), QUIT_GRACE_S)
        why = service.failure()
        if why and not websocket.closed:
            with contextlib.suppress(Exception):
                told = websocket.send_bytes(f"\r\n mlci tui failed: {why}\r\n".encode())
                await asyncio.wait_for(told, CLOSE_S)
        await self.close_tab(session)

    async def close_tab(
        self, session: Session, message: bytes = b"", code: int = WSCloseCode.GOING_AWAY
    ) -> None:
        """Close a tab's websocket; cut its connection if the close is not taken in
        `CLOSE_S` (aiohttp's own close waits for the tab to read what was sent)."""
        try:
            await asyncio.wait_for(session.websocket.close(code=code, message=message), CLOSE_S)
        except Exception:
            if session.transport is not None:
                session.transport.abort()

    async def relay(
        self, websocket: web.WebSocketResponse, service: DashboardService, session: Session
    ) -> None:
        """The browser's keys, clicks and sizes to the dashboard; anything else, or
        anything malformed, is dropped."""
        async for message in websocket:
            if message.type != WSMsgType.TEXT:
                continue
            try:
                envelope = json.loads(message.data)
            except (ValueError, RecursionError):  # RecursionError: nested a million deep
                continue
            if not isinstance(envelope, list) or not envelope:
                continue
            kind, data = envelope[0], envelope[1] if len(envelope) > 1 else None
            delivery: Awaitable[object] | None = None
            if kind == "stdin" and isinstance(data, str):
                session.last_input = time.monotonic()
                delivery = service.send_bytes(data.encode("utf-8", "replace"))
            elif kind == "resize" and isinstance(data, dict):
                delivery = service.set_terminal_size(
                    *terminal_size(data.get("width"), data.get("height"))
                )
            elif kind == "ping" and isinstance(data, str):
                await websocket.send_json(["pong", data[:64]])
            elif kind == "blur":
                delivery = service.blur()
            elif kind == "focus":
                delivery = service.focus()
            if delivery is not None:
                try:
                    await asyncio.wait_for(delivery, STALL_S)
                except asyncio.TimeoutError:
                    session.ending = f"its dashboard read nothing for {STALL_S:.0f}s"
                    return

    async def end_when_idle(self, session: Session) -> None:
        timeout = self.settings.idle_timeout
        if not timeout:
            return
        while True:
            left = session.last_input + timeout - time.monotonic()
            if left <= 0:
                break
            await asyncio.sleep(left)
        session.ending = f"idle for {format_duration(timeout)}"
        await self.close_tab(session, b"idle")

    async def end_all(self) -> None:
        """Every session ended, its process group with it."""
        sessions = list(self.sessions.values())
        for session in sessions:
            session.ending = "server stopped"
        await asyncio.gather(*(self.close_tab(session, b"stopped") for session in sessions))
        if self.handlers:
            await asyncio.wait(self.handlers, timeout=2 * QUIT_GRACE_S + 3 * KILL_GRACE_S)
        for task in list(self.handlers):  # one still stuck: its dashboard is killed here
            task.cancel()
        for session in self.sessions.values():
            process = session.service._process if session.service else None
            if process is not None and process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)


async def discard(stream: asyncio.StreamReader, after: asyncio.Task[None]) -> None:
    await asyncio.wait([after])
    while await stream.read(1 << 16):
        pass


def end_with_parent() -> None:
    """In a served dashboard, before it starts: it ends when `mlci serve` does, even
    killed with kill -9 (Textual's web driver keeps running when its input ends)."""
    if sys.platform == "linux":
        import ctypes

        PR_SET_PDEATHSIG = 1
        # SIGKILL: a dashboard that is stopped or hung must end too.
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def terminal_size(width: object, height: object) -> tuple[int, int]:
    """The size a browser asked for, within what a terminal can be."""
    return guard_int(width, 80, 10, 1000), guard_int(height, 24, 5, 1000)


def guard_int(value: object, default: int, low: int, high: int) -> int:
    """A number a browser sent, or the default; kept within bounds."""
    try:
        number = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):  # OverflowError: 1e309 is infinite
        return default
    return max(low, min(high, number))


def unauthorized(why: str = "") -> web.Response:
    reason = f"{why}: " if why else ""
    return web.Response(status=401, text=f"401: {reason}open the address mlci serve printed\n")


def counts(request: web.Request) -> bool:
    """Whether a failed token counts against its address: sent by a script (no
    ``Sec-Fetch-Site``) or by someone who typed or pasted the address (``none``).
    A browser sending it for another page — an image, a frame, a window another
    site or another port of this host opened — could otherwise spend the attempts
    and keep the user out; a 256-bit token is not guessed that way either."""
    return request.headers.get("Sec-Fetch-Site", "none") == "none"


class Capped:
    """The log's lines of things that may come in floods: at most `MAX_LINES` a
    minute, then counted, the count said when the minute is over."""

    def __init__(self) -> None:
        self.since = time.monotonic()
        self.logged = self.unlogged = 0

    def say(self, line: str) -> None:
        now = time.monotonic()
        if now - self.since >= 60:
            if self.unlogged:
                say(f"{self.unlogged} more lines in the last minute, unlogged")
            self.since, self.logged, self.unlogged = now, 0, 0
        if self.logged < MAX_LINES:
            self.logged += 1
            say(line)
            if self.logged == MAX_LINES:
                say(f"{MAX_LINES} lines of refusals and errors this minute: the rest are counted")
        else:
            self.unlogged += 1


def listening_socket(host: str, port: int) -> socket.socket:
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as error:
        raise UsageError(f"--host {host}: {error.strerror or error}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as error:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    sock.setblocking(False)
    return sock


class OneLine(logging.Handler):
    """aiohttp's and textual-serve's own log records, each as one line of the
    server's log, without the traceback: aiohttp's for a malformed request holds
    the request line, which may hold the token."""

    def __init__(self, secrets: tuple[str, ...], capped: Capped) -> None:
        super().__init__(logging.WARNING)
        self.secrets = secrets
        self.capped = capped

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage().splitlines()[0] if record.getMessage() else ""
        if record.exc_info and record.exc_info[1] is not None:
            text += f": {type(record.exc_info[1]).__name__}"
        for secret in self.secrets:
            text = text.replace(secret, "…")
        self.capped.say(f"{record.name}: {shown(text, 200)}")


LIBRARIES = ("aiohttp", "textual-serve")
"""The loggers whose records `OneLine` writes."""


def quiet_libraries(capped: Capped, *secrets: str) -> None:
    handler = OneLine(secrets, capped)
    for name in LIBRARIES:
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.propagate = False
    # Every logger below them too: a `logging.config` call of a library imported in
    # this process (`disable_existing_loggers`) must not silence them.
    for name, found in list(logging.root.manager.loggerDict.items()):
        if isinstance(found, logging.Logger) and name.split(".")[0] in LIBRARIES:
            found.disabled = False


def serve(settings: Settings) -> int:
    """Serve until SIGTERM or Ctrl-C; then every dashboard ends, and so does this."""
    sock = listening_socket(settings.host, settings.port)
    if not guard.is_loopback(settings.host):
        say(
            f"warning: listening on {settings.host}, beyond this machine: anyone who reaches"
            " the port with the token gets the dashboard. Plain HTTP carries the token and"
            " its cookie in clear: put TLS in a reverse proxy in front, and pass its address"
            " as --public-url (README: In a browser)."
        )
    return asyncio.run(_serve(settings, sock))


async def _serve(settings: Settings, sock: socket.socket) -> int:
    host, port = sock.getsockname()[:2]
    server = DashboardServer(settings, port)
    quiet_libraries(server.capped, settings.token, server.guard.cookie_value)
    runner = web.AppRunner(
        await server._make_app(), access_log=None, handle_signals=False, shutdown_timeout=1.0
    )
    await runner.setup()
    await web.SockSite(runner, sock).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    if settings.token_file is None:
        # Printed once, here alone: the token is in no log line, file or store.
        print(f"Dashboard at {server.public_url}/?token={settings.token}", flush=True)
    else:
        print(
            f"Dashboard at {server.public_url}/?token=… (the token in {settings.token_file})",
            flush=True,
        )
    mode = "read-only" if settings.read_only else "acting as web:SESSION"
    idle = settings.idle_timeout
    ends = f"each ended after {format_duration(idle)} idle" if idle else "never ended when idle"
    say(
        f"serving {settings.config_path} on {host}:{port} ({mode};"
        f" at most {settings.max_sessions} sessions, {ends}); Ctrl-C stops"
    )
    try:
        await stop.wait()
    finally:
        say(f"stopping: {len(server.sessions)} sessions to end")
        await server.end_all()
        await runner.cleanup()
    return 0
