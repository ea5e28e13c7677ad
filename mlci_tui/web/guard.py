"""Who may reach the served dashboards: the token, the cookie it is exchanged for,
the origins a websocket may come from, and the limit on failed attempts.

Plain Python, without the web server, so that each rule is tested on its own.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
import socket
import stat
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from mlci_tui.errors import UsageError

TOKEN_BYTES = 32
"""A made token's randomness: 256 bits, as Jupyter's."""

SHORTEST_TOKEN = 16
"""The fewest characters a token from ``--token-file`` may have."""

MAX_FAILURES = 10
"""Failed attempts one address may make within ``FAILURE_WINDOW_S``; past them,
every attempt of that address without a valid cookie is refused outright."""

FAILURE_WINDOW_S = 60.0

MAX_FOREIGN_FAILURES = 100
"""Failed attempts one address may make within ``FAILURE_WINDOW_S`` with a token the
browser says it sends for another page (`Sec-Fetch-Site`): counted apart from the
typed ones, so that another page cannot keep a typed token out, and counted, since a
script may send that header too; past them, such attempts of that address are
refused outright."""

MAX_ADDRESSES = 10_000
"""Addresses whose failures are remembered at once (`Failures._key`)."""


URL_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
"""What a token may hold: the characters an address carries unescaped, so that the
printed address works as typed."""


def make_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def read_token(path: Path) -> str:
    """The token in ``path``: one line, kept from other users as an SSH key is."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):  # a FIFO would be read forever
            raise UsageError(f"--token-file {path}: not a file")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or "not UTF-8 text"
        raise UsageError(f"--token-file {path}: cannot read it: {reason}") from None
    if info.st_mode & 0o077:
        raise UsageError(
            f"--token-file {path}: others may read it (mode {stat.S_IMODE(info.st_mode):04o});"
            f" make it yours alone: chmod 600 {path}"
        )
    token = text.strip()
    if len(token) < SHORTEST_TOKEN:
        raise UsageError(
            f"--token-file {path}: the token must have at least {SHORTEST_TOKEN} characters"
        )
    if not all(char in URL_SAFE for char in token):
        raise UsageError(
            f"--token-file {path}: the token must be one line of letters, digits and - . _ ~"
            " (what an address carries as it is), like `openssl rand -hex 32` makes"
        )
    return token


def cookie_name(port: int) -> str:
    """Named after the port: browsers share cookies between the ports of one host, so
    two servers on one machine would otherwise overwrite each other's."""
    return f"mlci-serve-{port}"


@dataclass(frozen=True)
class Guard:
    """The checks every request passes."""

    token: str = field(repr=False)
    cookie_value: str = field(default_factory=lambda: secrets.token_hex(32), repr=False)
    """What the cookie holds: not the token, which so crosses the network once, and
    made anew by each server, so that a cookie that leaked (browsers send it to
    every server of the host, whatever its port) dies with the server."""

    def token_matches(self, offered: str) -> bool:
        # Constant time: how long a refusal takes says nothing of the token.
        return hmac.compare_digest(as_bytes(offered), self.token.encode())

    def cookie_matches(self, offered: str) -> bool:
        return hmac.compare_digest(as_bytes(offered), self.cookie_value.encode())


def as_bytes(offered: str) -> bytes:
    """What a client sent, as bytes to compare: aiohttp decodes bytes that are not
    UTF-8 as lone surrogates, which match nothing and must not raise."""
    return offered.encode("utf-8", "surrogatepass")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_wildcard(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False


def public_url(host: str, port: int, given: str | None) -> str:
    """The address browsers use, without a trailing slash: ``--public-url`` (behind a
    reverse proxy), else the one served."""
    if given is not None:
        return checked_url(given)
    if is_wildcard(host):
        # Every address of this machine: its name is the likeliest one to reach it by.
        host = socket.gethostname()
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


DEFAULT_PORTS = {"http": 80, "https": 443}


def checked_url(text: str) -> str:
    expected = f"--public-url {text!r}: expected an address like https://ml.example.com"
    try:
        parts = urlsplit(text.strip())
    except ValueError:  # an unclosed [ of an IPv6 address
        raise UsageError(expected) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(expected)
    if parts.query or parts.fragment:
        raise UsageError(f"--public-url {text!r}: an address without ?query or #fragment")
    if "@" in parts.netloc:
        # No browser sends it in Origin, so every websocket would be refused.
        raise UsageError(f"--public-url {text!r}: an address without user:password@")
    try:
        port = parts.port
    except ValueError as error:
        raise UsageError(f"--public-url {text!r}: {str(error).lower()}") from None
    host = browsers_host(parts.hostname)
    if host is None:
        raise UsageError(expected)
    # As browsers write it (and send it as a websocket's Origin): without the
    # scheme's default port, nor an empty one.
    shown = host if port in (None, DEFAULT_PORTS[parts.scheme]) else f"{host}:{port}"
    return f"{parts.scheme}://{shown}{parts.path.rstrip('/')}"


HOST_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-._")


def browsers_host(hostname: str) -> str | None:
    """A host as browsers write it in an address and an ``Origin``: an IPv6 address
    in brackets and its shortest form, a name in lowercase ASCII (an IDN as its
    punycode, ``xn--``); None for what no browser reaches (a space, an empty label)."""
    try:
        address = ipaddress.ip_address(hostname)
    except ValueError:
        pass
    else:
        return f"[{address.compressed}]" if address.version == 6 else address.compressed
    try:
        name = hostname.encode("idna").decode("ascii").lower()
    except UnicodeError:  # an empty or too long label
        return None
    return name if name and set(name) <= HOST_LETTERS else None


def origins(url: str, host: str, port: int, *, given: bool) -> frozenset[str]:
    """The ``Origin`` a websocket may come from, whatever the request's ``Host``:
    the public address's; on loopback without ``--public-url``, each spelling of
    loopback at the served port too. (Elsewhere without ``--public-url``, also the
    page's own address, `origin_allowed`.)"""
    parts = urlsplit(url)
    allowed = {f"{parts.scheme}://{parts.netloc}".lower()}
    if not given and is_loopback(host):
        allowed |= {f"http://{name}:{port}" for name in ("127.0.0.1", "localhost", "[::1]")}
    return frozenset(allowed)


def origin_allowed(origin: str, allowed: frozenset[str], host: str, *, strict: bool) -> bool:
    """Whether a websocket's ``Origin`` is a served page's: one of ``allowed``, or,
    unless ``strict``, the address the request itself was sent to (``Host``) — a
    page from anywhere else is another site's, and the cookie is this host's alone."""
    origin = origin.lower()
    return origin in allowed or (not strict and bool(host) and origin == f"http://{host}".lower())


@dataclass
class Failures:
    """Failed attempts by address, over a sliding window."""

    limit: int = MAX_FAILURES
    window: float = FAILURE_WINDOW_S
    clock: Callable[[], float] = time.monotonic
    _seen: dict[str, deque[float]] = field(default_factory=dict)
    _pruned: float = float("-inf")

    def add(self, address: str) -> int:
        """Count one failure of ``address``; how many it made within the window."""
        key = self._key(address)
        if key is None:
            return 0
        times = self._recent(key)
        if times is None:
            times = self._seen[key] = deque(maxlen=self.limit + 1)
        times.append(self.clock())
        return len(times)

    def blocked(self, address: str) -> float:
        """Seconds until ``address`` may try again; 0 when it may now."""
        key = self._key(address)
        times = None if key is None else self._recent(key)
        if times is None or len(times) < self.limit:
            return 0.0
        return max(0.0, times[-self.limit] + self.window - self.clock())

    def _key(self, address: str) -> str | None:
        """Whose failures an address's are: this machine's all one (any 127.x.y.z
        reaches a server on loopback), an IPv6 /64 one (a host is given a whole
        one), an IPv4 address seen through an IPv6 socket its own. Past
        ``MAX_ADDRESSES`` at once, a new one is not counted (None): a flood from
        many addresses neither grows the memory, nor frees a blocked one, nor
        locks out the newcomers; the 256-bit token is not guessed that way."""
        try:
            ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(address)
        except ValueError:
            key = address
        else:
            if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
                ip = ip.ipv4_mapped
            if ip.is_loopback:
                key = "loopback"
            elif ip.version == 6:
                key = str(ipaddress.ip_network(f"{ip}/64", strict=False))
            else:
                key = str(ip)
        if key in self._seen or len(self._seen) < MAX_ADDRESSES:
            return key
        now = self.clock()
        if now - self._pruned >= 1.0:  # full: what has expired makes room, once a second
            self._pruned = now
            for old in list(self._seen):
                self._recent(old)
        return key if len(self._seen) < MAX_ADDRESSES else None

    def _recent(self, address: str) -> deque[float] | None:
        times = self._seen.get(address)
        if times is None:
            return None
        horizon = self.clock() - self.window
        while times and times[0] <= horizon:
            times.popleft()
        if not times:
            del self._seen[address]
            return None
        return times


def secret_free(environ: dict[str, str], token: str) -> dict[str, str]:
    """The environment of a served dashboard: none of its values holds the token."""
    return {name: value for name, value in environ.items() if token not in value}


def session_id() -> str:
    return os.urandom(4).hex()
