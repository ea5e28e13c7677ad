"""What CI systems read in a job's log as instructions, and how a stage's output
is kept from giving any.

GitHub Actions reads a line that starts with ``::name`` (after blanks), or holds
``##[name``, as a workflow command: groups, annotations, masks, outputs. Between
``::stop-commands::TOKEN`` and ``::TOKEN::`` it reads none but that resume line
(GitHub's documented way to print untrusted text), so mlci prints each stage's
output there, with a token drawn afresh each time that the stage cannot guess.
The runner splits lines at CR as well as LF, so mlci's own lines always start
on a line of their own.

GitLab CI reads ``section_start:TIME:NAME`` or ``section_end:TIME:NAME``, where
``CR ESC[0K`` follows, as a collapsible section's edge, wherever in a line it
stands. In a stage's output mlci writes that erase-line as ``ESC[K`` (the same
sequence, its default argument left out), which every terminal and GitLab's
viewer show alike but which marks no section.
"""

from __future__ import annotations

import os

SECTION_SUFFIX = b"\r\x1b[0K"
"""What makes GitLab read a ``section_start:`` or ``section_end:`` before it as one."""
_SECTION_SUFFIX_PLAIN = b"\r\x1b[K"


def github_escape(text: str) -> str:
    """Escape a workflow command's value (its message) as GitHub Actions expects."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def github_property(text: str) -> str:
    """Escape a workflow command's property (``title=``) as GitHub Actions expects."""
    return github_escape(text).replace(":", "%3A").replace(",", "%2C")


def stop_token() -> str:
    """A fresh token for ``::stop-commands::``: 128 random bits, as hex (GitHub
    compares tokens without regard to case, and reads up to a blank or ``::``)."""
    return os.urandom(16).hex()  # what `secrets.token_hex` does, without its imports


def stop_commands(token: str) -> bytes:
    return f"::stop-commands::{token}\n".encode()


def resume_commands(token: str) -> bytes:
    return f"::{token}::\n".encode()


def github_quoted(text: bytes) -> bytes:
    """Lines of mlci's that hold text from elsewhere (a message, a server's reply),
    wrapped in stop-commands when GitHub could read anything in them as a command."""
    if b"::" not in text and b"##[" not in text:
        return text
    token = stop_token()
    end = b"" if text.endswith(b"\n") else b"\n"
    return stop_commands(token) + text + end + resume_commands(token)


class GitLabSectionFilter:
    """Text on its way to a GitLab job log, with every section marker in it made
    plain text: fed in pieces, it holds back the end of a piece that may be the
    start of a split ``CR ESC[0K``."""

    def __init__(self) -> None:
        self._held = b""

    def __call__(self, data: bytes, *, last: bool = False) -> bytes:
        """``data`` as it may be written; with ``last``, everything still held too."""
        data = (self._held + data).replace(SECTION_SUFFIX, _SECTION_SUFFIX_PLAIN)
        self._held = b""
        if not last:
            for size in range(len(SECTION_SUFFIX) - 1, 0, -1):
                if data.endswith(SECTION_SUFFIX[:size]):
                    data, self._held = data[:-size], data[-size:]
                    break
        return data


def gitlab_plain(text: bytes) -> bytes:
    """``text``, whole, with no GitLab section marker left in it."""
    return GitLabSectionFilter()(text, last=True)
