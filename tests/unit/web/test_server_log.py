"""The server's own log: what aiohttp and textual-serve log reaches it as one line,
never holding the token or the cookie, whatever the record says."""

from __future__ import annotations

import logging
import logging.config
from collections.abc import Iterator

import pytest

from tests.helpers import require_extra

require_extra("textual-serve", "pip install -e '.[serve]'")

from mlci_tui.web.server import MAX_LINES, Capped, quiet_libraries  # noqa: E402 (after the extra is known)


@pytest.fixture(autouse=True)
def _restored() -> Iterator[None]:
    """The libraries' loggers as they were: this process runs other tests after."""
    names = ("aiohttp", "aiohttp.server", "aiohttp.web", "textual-serve")
    loggers = [logging.getLogger(name) for name in names]
    kept = [(logger.handlers[:], logger.propagate, logger.disabled) for logger in loggers]
    # As another library's `logging.config` call in this process leaves them (MLflow's).
    logging.config.dictConfig({"version": 1, "disable_existing_loggers": True})
    yield
    for logger, (handlers, propagate, disabled) in zip(loggers, kept, strict=True):
        logger.handlers[:], logger.propagate, logger.disabled = handlers, propagate, disabled


@pytest.mark.parametrize("name", ["aiohttp.server", "aiohttp.web", "textual-serve"])
def test_library_records_are_one_line_without_the_secrets(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    quiet_libraries(Capped(), "the-token-value", "the-cookie-value")
    try:
        raise ValueError("GET /?token=the-token-value HTTP/1.1")
    except ValueError:
        logging.getLogger(name).exception(
            "Error handling request: Cookie: mlci-serve-1=the-cookie-value\nsecond line \x1b[2J"
        )
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "the-token-value" not in err and "the-cookie-value" not in err
    assert "\x1b" not in err and "Traceback" not in err
    assert f"{name}: Error handling request: Cookie: mlci-serve-1=…: ValueError" in err


def test_a_flood_of_complaints_is_a_count_not_a_flood_of_lines(
    capsys: pytest.CaptureFixture[str],
) -> None:
    capped = Capped()
    quiet_libraries(capped)
    for n in range(3 * MAX_LINES):
        logging.getLogger("aiohttp.server").error("Error handling request %d", n)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == MAX_LINES + 1
    assert lines[-1].endswith("lines of refusals and errors this minute: the rest are counted")
    assert capped.unlogged == 2 * MAX_LINES
