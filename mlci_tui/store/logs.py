"""Append-only stage log files.

One file per stage per run. Each record is one line::

    1764147418.123 o epoch 3/40  loss=0.3121
    1764147418.123 e+ 45%|████▌     |
    1764147419.002 m retrying in 1s (exit code 1)

the arrival time (Unix seconds), a stream tag (``o`` stdout, ``e`` stderr,
``m`` a note from mlci), a ``+`` when the piece does not end a line (a very
long line, or a partial line flushed so viewers see it), a space, then the
bytes exactly as the stage printed them (after secret masking). Content never
contains a newline, so the format needs no escaping and stays readable with
``less``; binary bytes and invalid UTF-8 pass through untouched.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

from mlci_tui.events import CommandNoted, CommandOutput
from mlci_tui.states import Stream
from mlci_tui.store.paths import FILE_MODE

_TAGS = {stream: stream.value.encode() for stream in Stream}
_STREAMS = {tag: stream for stream, tag in _TAGS.items()}


class LogRecord(NamedTuple):
    time: float
    stream: Stream
    content: bytes
    partial: bool
    """True when ``content`` does not end its line."""
    cut: int = 0
    """When ``content`` is only the start of a line too long to show: the line's size
    in the file, in bytes (about: record headers included)."""


def encode(
    stream: Stream, block: bytes, time: float, *, partial: bool = False
) -> tuple[bytes, ...]:
    """The records for ``block`` (lines joined by newlines, the last without its
    own) arriving at ``time``; the last line is a piece when ``partial``. In parts,
    to write as they are (`LogWriter.write`): under a flood, joining them would
    copy every chunk once more."""
    tag = _TAGS[stream]
    prefix = b"%.3f %s " % (time, tag)
    if not partial:
        # One C-level replace for a whole chunk: the hot path under floods of output.
        return prefix, block.replace(b"\n", b"\n" + prefix), b"\n"
    last = block.rfind(b"\n") + 1
    piece = b"%.3f %s+ %s\n" % (time, tag, block[last:])
    if not last:
        return (piece,)
    return prefix, block[: last - 1].replace(b"\n", b"\n" + prefix), b"\n", piece


def note(text: str, time: float) -> tuple[bytes, ...]:
    """The record of a note of mlci's about a stage, in parts. It is one record: a
    newline would end it early, and a lone surrogate cannot be encoded strictly."""
    return encode(Stream.MESSAGE, text.replace("\n", " ").encode("utf-8", "replace"), time)


class LogWriter:
    """Appends records to one log file, unbuffered, so other processes see them at once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, FILE_MODE)

    def write(self, *parts: bytes) -> None:
        """Append ``parts``, in order, in one system call where it can."""
        written = os.writev(self._fd, parts)
        for part in parts:
            if written >= len(part):
                written -= len(part)
                continue
            # A short write (a signal, a full disk): the rest one part at a time.
            view = memoryview(part)[written:]
            written = 0
            while view:
                view = view[os.write(self._fd, view) :]

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def log_record(event: CommandOutput | CommandNoted) -> tuple[bytes, ...]:
    """The log file records of a stage's output or of a note about it, in parts."""
    if isinstance(event, CommandOutput):
        return encode(event.stream, event.data, event.time, partial=event.partial)
    return note(event.text, event.time)


def parse(block: bytes) -> Iterator[LogRecord]:
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
        yield LogRecord(time, stream, content, tag.endswith(b"+"))


class LogCursor:
    """Reads a log file from where it last stopped; only whole records are returned."""

    def __init__(self, path: Path, offset: int = 0, chunk_size: int = 1 << 20) -> None:
        self.path = path
        self.offset = offset
        self.chunk_size = chunk_size

    def read(self) -> Iterator[LogRecord]:
        """Every whole record written since the last call."""
        try:
            file = open(self.path, "rb")  # noqa: SIM115 (closed by the `with` below)
        except FileNotFoundError:
            return
        with file:
            file.seek(self.offset)
            pending = b""
            while True:
                chunk = file.read(self.chunk_size)
                if not chunk:
                    return
                data = pending + chunk
                end = data.rfind(b"\n") + 1
                if end:
                    self.offset += end
                    yield from parse(data[:end])
                pending = data[end:]


def join(records: Sequence[LogRecord]) -> LogRecord:
    """One line from the records it was written as: their contents in order, the
    time and stream of the first, and still partial if the last is."""
    if len(records) == 1:
        return records[0]
    first = records[0]
    content = b"".join(record.content for record in records)
    return LogRecord(first.time, first.stream, content, records[-1].partial)


def lines(records: Iterable[LogRecord]) -> list[LogRecord]:
    """``records`` as lines: a record that does not end its line is joined with
    the records after it (a long line in pieces, a progress bar flushed early),
    but for a note of mlci's, which starts a line of its own."""
    found: list[LogRecord] = []
    pieces: list[LogRecord] = []
    for record in records:
        if pieces and record.stream is Stream.MESSAGE:
            found.append(join(pieces))
            pieces = []
        pieces.append(record)
        if not record.partial:
            found.append(join(pieces))
            pieces = []
    if pieces:
        found.append(join(pieces))
    return found


def output_bytes(records: Iterator[LogRecord]) -> Iterator[bytes]:
    """What the stage printed, record by record: stdout and stderr, nothing added."""
    for record in records:
        if record.stream is Stream.MESSAGE:
            continue
        yield record.content if record.partial else record.content + b"\n"


def tail_records(path: Path, count: int = 1, *, max_bytes: int = 16384) -> list[LogRecord]:
    """The last ``count`` stdout/stderr lines of a log (records joined into lines,
    see `lines`), reading only its end."""
    try:
        with open(path, "rb") as file:
            size = file.seek(0, os.SEEK_END)
            file.seek(max(0, size - max_bytes))
            data = file.read(max_bytes)
    except FileNotFoundError:
        return []
    end = data.rfind(b"\n") + 1
    start = 0 if size <= max_bytes else data.find(b"\n") + 1
    records = [r for r in parse(data[start:end]) if r.stream is not Stream.MESSAGE]
    return lines(records)[-count:]
