"""Stage logs in the format before `logs`': read, and appended to, never rewritten.

One file per stage per run; each record is one line::

    1764147418.123 o epoch 3/40  loss=0.3121
    1764147418.123 e+ 45%|████▌     |
    1764147419.002 m retrying in 1s (exit code 1)

the arrival time (Unix seconds), a stream tag (``o`` stdout, ``e`` stderr, ``m`` a
note from mlci), a ``+`` when the piece does not end a line, a space, then the bytes
as the stage printed them (after secret masking).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from mlci_tui.states import Stream
from mlci_tui.store.paths import FILE_MODE

_TAGS = {stream: stream.value.encode() for stream in Stream}
_STREAMS = {tag: stream for stream, tag in _TAGS.items()}


class Record(NamedTuple):
    time: float
    stream: Stream
    content: bytes
    partial: bool
    """True when ``content`` does not end its line."""


def encode(stream: Stream, block: bytes, time: float, *, partial: bool = False) -> bytes:
    """The records for ``block`` (lines joined by newlines, the last without its own)
    arriving at ``time``; the last line is a piece when ``partial``."""
    tag = _TAGS[stream]
    prefix = b"%.3f %s " % (time, tag)
    if not partial:
        return prefix + block.replace(b"\n", b"\n" + prefix) + b"\n"
    last = block.rfind(b"\n") + 1
    piece = b"%.3f %s+ %s\n" % (time, tag, block[last:])
    if not last:
        return piece
    return prefix + block[: last - 1].replace(b"\n", b"\n" + prefix) + b"\n" + piece


class LegacyWriter:
    """Appends records to a log of this format (a note about a run an earlier
    version recorded)."""

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC, FILE_MODE)

    def output(self, stream: Stream, data: bytes, time: float, *, partial: bool = False) -> None:
        os.write(self._fd, encode(stream, data, time, partial=partial))

    def note(self, text: str, time: float) -> None:
        line = text.replace("\n", " ").encode("utf-8", "replace")
        os.write(self._fd, encode(Stream.MESSAGE, line, time))

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def parse(block: bytes) -> Iterator[Record]:
    """Records in ``block``, which holds whole records only."""
    for raw in block.split(b"\n"):
        if not raw:
            continue
        head, _, rest = raw.partition(b" ")
        tag, _, content = rest.partition(b" ")
        stream = _STREAMS.get(tag[:1])
        if stream is None:
            continue
        try:
            time = float(head)
        except ValueError:
            continue
        yield Record(time, stream, content, tag.endswith(b"+"))


def records(path: Path, chunk_size: int = 1 << 20) -> Iterator[Record]:
    """Every whole record of the log at ``path``."""
    try:
        file = open(path, "rb")  # noqa: SIM115 (closed by the `with` below)
    except FileNotFoundError:
        return
    with file:
        pending = b""
        while chunk := file.read(chunk_size):
            data = pending + chunk
            end = data.rfind(b"\n") + 1
            yield from parse(data[:end])
            pending = data[end:]
