"""Making untrusted output safe to show on a terminal.

A stage can print anything: escape sequences that set the window title, write
the clipboard (OSC 52), move the cursor, clear the screen or switch to the
alternate screen; NUL and other control bytes; invalid UTF-8. Before such
text reaches a terminal, colour sequences (SGR) may be kept, every other
escape sequence is dropped, and control characters become visible symbols.
"""

from __future__ import annotations

import re

# CSI (ESC [ ... final), OSC (ESC ] ... BEL or ST), DCS/SOS/PM/APC strings
# (ESC P/X/^/_ ... ST), and two- or three-byte escapes (ESC ( B, ESC 7, ...).
_ESCAPE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]?"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"
    r"|\x1b[ -/]*[0-~]?"
    r"|\x9b[0-?]*[ -/]*[@-~]?"
    r"|\x9d[^\x07\x1b\x9c]*(?:\x07|\x9c)?"
)
_SGR = re.compile(r"\x1b\[[0-9;:]*m")
_CONTROL = r"[\x00-\x08\x0a-\x1f\x7f\x80-\x9f]"
_UNSAFE = re.compile(f"{_ESCAPE.pattern}|{_CONTROL}")
# Every escape sequence starts with a control character (ESC, or C1's CSI and OSC).
_NEEDS_WORK = re.compile(_CONTROL)
_CONTROL_PICTURES = {code: chr(0x2400 + code) for code in range(0x20)} | {0x7F: "\u2421"}


def terminal_line(text: str, *, keep_color: bool) -> str:
    """One line of output, safe to write to a terminal.

    A carriage return redraws the line (progress bars), so only what follows the
    last one is kept, as a terminal would show it.
    """
    if not _NEEDS_WORK.search(text):
        return text  # the usual case, and the fast one
    text = text.rstrip("\r")
    if "\r" in text:
        text = text.rsplit("\r", 1)[1]
    return _UNSAFE.sub(lambda match: _replace(match.group(), keep_color), text)


def _replace(found: str, keep_color: bool) -> str:
    if len(found) == 1 and found != "\x1b":
        # A lone control character: show it, so nothing is silently hidden.
        return _CONTROL_PICTURES.get(ord(found), "\ufffd")
    return found if keep_color and _SGR.fullmatch(found) else ""


def decode(data: bytes) -> str:
    """Bytes as text; invalid UTF-8 becomes U+FFFD rather than an error."""
    return data.decode("utf-8", "replace")
