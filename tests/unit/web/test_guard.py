"""The rules of `mlci serve`'s guard, each against an oracle: the limit on failed
attempts against a plain list of times, the token's comparison against ``==``,
the origins against the addresses a browser would send."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from mlci_tui.errors import UsageError
from mlci_tui.web import guard
from mlci_tui.web.guard import Failures, Guard


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FailuresAgainstAList(RuleBasedStateMachine):
    """`Failures` says what a list of every failure's time would say."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = Clock()
        self.failures = Failures(limit=3, window=10.0, clock=self.clock)
        self.times: dict[str, list[float]] = {}

    def recent(self, address: str) -> list[float]:
        return [t for t in self.times.get(address, []) if t > self.clock.now - 10.0]

    @rule(address=st.sampled_from(["a", "b", "c"]))
    def fail(self, address: str) -> None:
        counted = self.failures.add(address)
        self.times.setdefault(address, []).append(self.clock.now)
        assert counted == min(len(self.recent(address)), 4)

    @rule(seconds=st.floats(min_value=0, max_value=15))
    def wait(self, seconds: float) -> None:
        self.clock.now += seconds

    @invariant()
    def blocked_exactly_while_the_limit_is_reached(self) -> None:
        for address in ("a", "b", "c"):
            recent = self.recent(address)
            wait = self.failures.blocked(address)
            if len(recent) >= 3:
                assert wait == pytest.approx(recent[-3] + 10.0 - self.clock.now)
                assert wait > 0
            else:
                assert wait == 0


TestFailuresAgainstAList = FailuresAgainstAList.TestCase


def test_failures_remember_a_bounded_number_of_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(guard, "MAX_ADDRESSES", 5)
    clock = Clock()
    failures = Failures(limit=2, window=10.0, clock=clock)
    for _ in range(4):
        failures.add("10.0.0.1")  # blocked, and never forgotten for the newcomers below
    for n in range(20):
        failures.add(f"10.0.1.{n}")
    assert len(failures._seen) == 5
    assert failures.blocked("10.0.0.1")
    # Past the bound, newcomers are not counted: a flood neither frees nor locks out.
    assert failures.add("10.9.9.9") == 0 and not failures.blocked("10.9.9.9")
    clock.now += 11
    failures.add("10.0.2.1")  # everything expired: room again
    assert not failures.blocked("10.0.0.1") and "10.0.2.1" in failures._seen


def test_an_address_s_failures_are_its_machine_s_or_its_network_s() -> None:
    failures = Failures(limit=3, clock=Clock())
    for address in ("127.0.0.1", "127.8.9.10", "::1"):
        failures.add(address)
    assert failures.blocked("127.0.0.2")  # every loopback address is this machine
    for address in ("2001:db8::1", "2001:db8::2", "2001:db8::ffff:1"):
        failures.add(address)
    assert failures.blocked("2001:db8::9") and not failures.blocked("2001:db8:0:1::9")
    failures.add("10.0.0.1")
    failures.add("10.0.0.2")
    failures.add("10.0.0.3")
    assert not failures.blocked("10.0.0.4")
    # IPv4 through an IPv6 socket (`--host ::`): each address its own, loopback one.
    for _ in range(3):
        failures.add("::ffff:10.0.0.5")
    assert failures.blocked("10.0.0.5") and not failures.blocked("::ffff:10.0.0.6")
    assert failures.blocked("::ffff:127.0.0.1")


def test_a_websocket_origin_is_a_served_page_s() -> None:
    allowed = frozenset({"http://127.0.0.1:8765"})
    assert guard.origin_allowed("HTTP://127.0.0.1:8765", allowed, "evil:1", strict=True)
    assert not guard.origin_allowed("http://evil:1", allowed, "evil:1", strict=True)
    # Without --public-url beyond loopback: the page's own address, and nothing else.
    assert guard.origin_allowed("http://gpu-box:8765", allowed, "gpu-box:8765", strict=False)
    assert not guard.origin_allowed("http://gpu-box:9000", allowed, "gpu-box:8765", strict=False)
    assert not guard.origin_allowed("https://gpu-box:8765", allowed, "gpu-box:8765", strict=False)
    assert not guard.origin_allowed("", allowed, "", strict=False)


@given(token=st.text(min_size=16), offered=st.text())
def test_the_token_and_the_cookie_match_only_themselves(token: str, offered: str) -> None:
    checked = Guard(token)
    assert checked.token_matches(offered) == (offered == token)
    assert checked.token_matches(token)
    assert checked.cookie_matches(checked.cookie_value)
    assert not checked.cookie_matches(token)
    assert token not in checked.cookie_value and token not in repr(checked)
    # Each server makes its own: a cookie that leaked dies with its server.
    assert Guard(token).cookie_value != checked.cookie_value


def test_a_value_that_was_not_utf_8_matches_nothing_and_raises_nothing() -> None:
    # aiohttp decodes a header's bytes that are not UTF-8 as lone surrogates, which
    # `str.encode` refuses (and st.text() never draws).
    checked = Guard("a-token-long-enough-for-this")
    for offered in ("\udced\udca0\udc80", "\ud800", "x\udcff"):
        assert not checked.token_matches(offered)
        assert not checked.cookie_matches(offered)


def test_made_tokens_are_long_and_differ() -> None:
    tokens = {guard.make_token() for _ in range(100)}
    assert len(tokens) == 100
    assert all(len(token) == 43 for token in tokens)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.1", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.1.2.3", False),
        ("example.com", False),
        ("localhost.example.com", False),
    ],
)
def test_loopback_is_only_this_machine(host: str, loopback: bool) -> None:
    assert guard.is_loopback(host) is loopback


def test_a_wildcard_host_is_served_under_the_machine_s_name() -> None:
    import socket

    assert guard.public_url("0.0.0.0", 80, None) == f"http://{socket.gethostname()}:80"
    assert guard.public_url("::", 80, None) == f"http://{socket.gethostname()}:80"


def test_the_origins_a_websocket_may_come_from() -> None:
    served = guard.public_url("127.0.0.1", 8765, None)
    assert served == "http://127.0.0.1:8765"
    assert guard.origins(served, "127.0.0.1", 8765, given=False) == {
        "http://127.0.0.1:8765",
        "http://localhost:8765",
        "http://[::1]:8765",
    }
    proxied = guard.public_url("127.0.0.1", 8765, "https://ML.example.com/mlci/")
    assert proxied == "https://ml.example.com/mlci"  # as browsers write a host
    # Behind a proxy, only the proxy's address: never the port it forwards to.
    assert guard.origins(proxied, "127.0.0.1", 8765, given=True) == {"https://ml.example.com"}
    assert guard.public_url("::1", 9, None) == "http://[::1]:9"


@pytest.mark.parametrize(
    ("given", "origin"),
    [
        ("https://ml.example.com:443/mlci", "https://ml.example.com"),
        ("http://ml.example.com:80", "http://ml.example.com"),
        ("https://[2001:db8::1]:443", "https://[2001:db8::1]"),
        ("https://ml.example.com:8443", "https://ml.example.com:8443"),
        ("http://ml.example.com:443", "http://ml.example.com:443"),
        # As browsers write a host: an IDN in ASCII (punycode), an IPv6 address in
        # its shortest form, no empty port.
        ("https://bücher.example", "https://xn--bcher-kva.example"),
        ("https://BÜCHER.example:8443/mlci", "https://xn--bcher-kva.example:8443"),
        ("https://例え.jp:443", "https://xn--r8jz45g.jp"),
        ("https://[2001:DB8:0::1]:443", "https://[2001:db8::1]"),
        ("http://ml.example.com:", "http://ml.example.com"),
    ],
)
def test_a_public_url_s_origin_is_the_one_browsers_send(given: str, origin: str) -> None:
    # A browser's Origin never names its scheme's default port: a public URL that
    # does must not refuse every websocket of its own pages.
    url = guard.public_url("127.0.0.1", 8765, given)
    assert guard.origins(url, "127.0.0.1", 8765, given=True) == {origin}
    # The page's websocket and the redirect after the token go to that address too.
    assert url.startswith(origin)


@pytest.mark.parametrize(
    "url",
    [
        "ml.example.com",
        "ftp://x",
        "https://",
        "https://x/?a=1",
        "https://x/#top",
        "http://x:y",
        "http://[::1",  # not an address urlsplit parses
        "https://user:secret@x",  # no browser's Origin holds it: every websocket refused
        "https://ml example.com",  # no host a browser reaches
        "https://ml..example.com",
    ],
)
def test_a_public_url_that_is_no_address_is_refused(url: str) -> None:
    with pytest.raises(UsageError, match="--public-url"):
        guard.checked_url(url)


def test_a_token_file_is_read_as_an_ssh_key_is(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("  a-token-long-enough-for-this \n")
    path.chmod(0o600)
    assert guard.read_token(path) == "a-token-long-enough-for-this"
    path.chmod(0o640)
    with pytest.raises(UsageError, match=r"others may read it \(mode 0640\)"):
        guard.read_token(path)
    with pytest.raises(UsageError, match="not a file"):
        guard.read_token(tmp_path)
    path.write_text("a+token/from=base64&more#")  # as `openssl rand -base64` makes
    path.chmod(0o600)
    with pytest.raises(UsageError, match=r"letters, digits and - \. _ ~"):
        guard.read_token(path)
    for made in (guard.make_token() for _ in range(50)):
        assert set(made) <= guard.URL_SAFE


def test_a_served_dashboard_environment_holds_no_token() -> None:
    environ = {"HOME": "/root", "LEAK": "x-secret-token-value-x", "PATH": "/bin"}
    assert guard.secret_free(environ, "secret-token-value") == {"HOME": "/root", "PATH": "/bin"}
