"""Making untrusted output safe to show on a terminal.

A stage can print anything: escape sequences that set the window title, write
the clipboard (OSC 52), move the cursor, clear the screen or switch to the
alternate screen; NUL and other control bytes; invalid UTF-8. Before such
text reaches a terminal, colour sequences (SGR) may be kept, every other
escape sequence is dropped, and control characters become visible symbols.
So do the Unicode format characters that reorder text on screen (bidirectional
marks, overrides, embeddings and isolates: CVE-2021-42574's "trojan source")
or hide text (tags, interlinear annotations), and colour sequences lose
"conceal" (SGR 8), which would hide text in plain sight.
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
# Format characters that reorder text on screen (the bidirectional marks, embeddings,
# overrides and isolates), change how it is drawn (the deprecated shaping and digit
# controls) or carry text nobody sees (interlinear annotations; tags, which spell
# ASCII invisibly). Other format characters stay: joiners, which emoji and scripts
# need, and invisible spaces and hyphens, which hide nothing but themselves.
_FORMAT_CONTROLS = (
    "\u061c\u200e\u200f\u202a-\u202e\u2066-\u206f\ufff9-\ufffb\U000e0001\U000e0020-\U000e007f"
)
_CONTROL = f"[\\x00-\\x08\\x0a-\\x1f\\x7f\\x80-\\x9f{_FORMAT_CONTROLS}]"
_UNSAFE = re.compile(f"{_ESCAPE.pattern}|{_CONTROL}")
# Every escape sequence starts with a control character (ESC, or C1's CSI and OSC).
_NEEDS_WORK = re.compile(_CONTROL)
_CONTROL_PICTURES = {code: chr(0x2400 + code) for code in range(0x20)} | {0x7F: "\u2421"}
FIELD_TEXT = f"[^\\x00-\\x1f\\x7f-\\x9f{_FORMAT_CONTROLS}]*"
"""What a field that edits one value may hold (`field_text`): no control character, a
tab neither (an input field draws each character as it is)."""


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


def visible_text(text: str) -> str:
    """A value (a name, a param, a message), not a line of output: escapes dropped and
    every control character shown, a carriage return too, so nothing is hidden."""
    if not _NEEDS_WORK.search(text):
        return text
    return _UNSAFE.sub(lambda match: _replace(match.group(), False), text)


def field_text(text: str) -> str:
    """A value to edit in a field: `visible_text`, a tab shown too (it matches
    `FIELD_TEXT`)."""
    return visible_text(text).replace("\t", _CONTROL_PICTURES[9])


def _replace(found: str, keep_color: bool) -> str:
    if len(found) == 1 and found != "\x1b":
        # A lone control character: show it, so nothing is silently hidden.
        code = ord(found)
        if code >= 0x600:
            return f"<U+{code:04X}>"  # a format control, named
        return _CONTROL_PICTURES.get(code, "\ufffd")
    return _visible_colors(found) if keep_color and _SGR.fullmatch(found) else ""


def _visible_colors(sgr: str) -> str:
    """A colour sequence without "conceal" (8, written with leading zeros or not); the 8
    of a colour index stays."""
    params = sgr[2:-1].split(";")
    # Each parameter's number as a terminal reads it ("08" is 8), compared as text: the
    # digits may be too many for an int.
    numbers = [(param.lstrip("0") or "0") if param.isdigit() else param for param in params]
    if "8" not in numbers:
        return sgr
    kept: list[str] = []
    index = 0
    while index < len(params):
        # 38/48/58 take arguments: ;5;N (a palette index) or ;2;R;G;B.
        width = 1
        if numbers[index] in ("38", "48", "58") and index + 1 < len(params):
            width = {"5": 3, "2": 5}.get(numbers[index + 1], 1)
        if numbers[index] != "8":
            kept.extend(params[index : index + width])
        index += width
    return f"\x1b[{';'.join(kept)}m" if kept else ""


def decode(data: bytes) -> str:
    """Bytes as text; invalid UTF-8 becomes U+FFFD rather than an error."""
    return data.decode("utf-8", "replace")
