"""Stage log files: the bytes a stage printed, and an index beside them.

Three files per stage per run (``train`` here)::

    train.log    what the stage printed, stdout and stderr in the order they were
                 read, secrets masked, and nothing else: ``cat`` shows the output
    train.idx    16 header bytes, then one 16-byte entry per chunk read from a pipe:
                 the offset in train.log where the chunk ends and its stream, packed
                 in a little-endian u64 (``end << 2 | stream``), then its arrival
                 time, a little-endian float64 (Unix seconds)
    train.notes  mlci's own notes about the stage (a retry, a timeout, a failed gate,
                 why it failed), one per line: ``POSITION TIME TEXT``, POSITION the
                 offset in train.log the note stands at (the log's size when it was
                 written), TEXT one line of UTF-8

A chunk's bytes are written before its index entry, and a note's line is whole or
ignored, so a reader never sees an entry for bytes not yet there; after a kill -9,
bytes past the last entry take the last entry's time and stream, and nothing is
lost. Writing a chunk is two ``write`` calls whatever its number of lines; reading
a log back into a file is a copy of train.log between notes.

A stage's chunks are its whole lines, or a piece of a line (a very long line, a
progress bar flushed so viewers see it) that the next chunk of either stream goes
on with. A note always stands on a line of its own: where it stands in the middle
of a line, readers break the line there.

Logs written before this format (one text record per line, see `legacy_log`) have
no ``.idx``: they are read through a converted copy, never rewritten, and mlci's
later notes about them (a recovery) are appended in their own format.
"""

from __future__ import annotations

import atexit
import bisect
import contextlib
import os
import shutil
import struct
import tempfile
import threading
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from mlci_tui.errors import StoreError
from mlci_tui.events import CommandNoted, CommandOutput
from mlci_tui.states import Stream
from mlci_tui.store import legacy_log
from mlci_tui.store.paths import FILE_MODE

HEADER = b"mlci-idx" + struct.pack("<Q", 1)
ENTRY = struct.Struct("<Qd")
ENTRY_SIZE = ENTRY.size
KIND = {Stream.STDOUT: 0, Stream.STDERR: 1}
STREAMS = (Stream.STDOUT, Stream.STDERR)
"""The stream of an entry's kind (``packed & 3``)."""
COPY_CHUNK = 1 << 20


class LogRecord(NamedTuple):
    """A line of a log, as readers show it."""

    time: float
    stream: Stream
    content: bytes
    partial: bool
    """True when ``content`` does not end its line."""
    cut: int = 0
    """When ``content`` is only the start of a line too long to show: the line's size
    in the file, in bytes."""


class Note(NamedTuple):
    position: int
    """The offset in the log the note stands at."""
    time: float
    text: str


def index_path(path: Path) -> Path:
    return path.with_suffix(".idx")


def notes_path(path: Path) -> Path:
    return path.with_suffix(".notes")


def is_legacy(path: Path) -> bool:
    """Whether the log at ``path`` was written in the format before this one."""
    return not index_path(path).exists() and path.exists()


def _open_append(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, FILE_MODE)


class LogWriter:
    """Appends to one stage's log, unbuffered, so other processes see it at once.

    One writer at a time per log: the run's, or after its runner is gone, the
    recovery's (which may find an entry or a note cut short by a kill -9: it
    drops them before appending)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._legacy = legacy_log.LegacyWriter(path) if is_legacy(path) else None
        self._index = self._data = self._notes = -1
        if self._legacy is not None:
            return
        self._index = _open_append(index_path(path))
        size = os.fstat(self._index).st_size
        if size < len(HEADER):
            os.ftruncate(self._index, 0)
            os.write(self._index, HEADER)
        elif (size - len(HEADER)) % ENTRY_SIZE:
            os.ftruncate(self._index, size - (size - len(HEADER)) % ENTRY_SIZE)
        self._data = _open_append(path)
        self._end = os.fstat(self._data).st_size

    def output(self, stream: Stream, data: bytes, time: float, *, partial: bool = False) -> None:
        """Append ``data``, read from ``stream`` at ``time``: whole lines but for the
        last one's newline, or with ``partial`` a piece of a line."""
        if self._legacy is not None:
            self._legacy.output(stream, data, time, partial=partial)
            return
        parts = (data,) if partial else (data, b"\n")
        self._end += _write_all(self._data, parts)
        os.write(self._index, ENTRY.pack(self._end << 2 | KIND[stream], time))

    def note(self, text: str, time: float) -> None:
        """A note of mlci's about the stage. One line: a newline would end it early,
        and a lone surrogate cannot be encoded strictly."""
        if self._legacy is not None:
            self._legacy.note(text, time)
            return
        self._note_at(self._end, text, time)

    def _note_at(self, position: int, text: str, time: float) -> None:
        if self._notes < 0:
            path = notes_path(self.path)
            self._notes = _open_append(path)
            if os.fstat(self._notes).st_size:
                whole = path.read_bytes().rfind(b"\n") + 1
                os.ftruncate(self._notes, whole)  # a note a kill -9 cut short is dropped
        line = f"{position} {time:.6f} {text.replace(chr(10), ' ')}\n"
        _write_all(self._notes, (line.encode("utf-8", "replace"),))

    def record(self, event: CommandOutput | CommandNoted) -> None:
        """A stage's output or a note about it."""
        if isinstance(event, CommandOutput):
            self.output(event.stream, event.data, event.time, partial=event.partial)
        else:
            self.note(event.text, event.time)

    def append_log(self, source: Path) -> None:
        """Everything the log at ``source`` holds, after what this one holds (a cached
        stage's log goes on with the log of the run whose result it reuses)."""
        # Only a run's new log is appended to: never one in the earlier format.
        assert self._legacy is None
        source = readable(source)
        base = self._end
        entries = read_index(source)
        with open(source, "rb") as data:
            while chunk := data.read(COPY_CHUNK):
                self._end += _write_all(self._data, (chunk,))
        block = bytearray()
        for packed, time in zip(entries.packed, entries.times, strict=True):
            block += ENTRY.pack(packed + (base << 2), time)
        if self._end > base + (entries.packed[-1] >> 2 if len(entries) else 0):
            # Bytes a kill -9 left without their entry: the last known stream and time.
            stream, time = stream_at(entries, self._end - base - 1)
            block += ENTRY.pack(self._end << 2 | KIND[stream], time)
        if block:
            _write_all(self._index, (bytes(block),))
        for note in read_notes(source):
            self._note_at(base + note.position, note.text, note.time)

    def close(self) -> None:
        if self._legacy is not None:
            self._legacy.close()
        for fd in (self._data, self._index, self._notes):
            if fd >= 0:
                os.close(fd)
        self._data = self._index = self._notes = -1


def _write_all(fd: int, parts: tuple[bytes, ...]) -> int:
    """Write ``parts`` in order, in one system call where it can; returns the size."""
    total = sum(map(len, parts))
    written = os.writev(fd, parts)
    for part in parts:
        if written >= len(part):
            written -= len(part)
            continue
        # A short write (a signal, a full disk): the rest one part at a time.
        view = memoryview(part)[written:]
        written = 0
        while view:
            view = view[os.write(fd, view) :]
    return total


class Entries(NamedTuple):
    """Entries of a log's index, in order."""

    packed: array[int]
    """``end << 2 | kind`` of each: bisect it with ``offset << 2`` to find a chunk."""
    times: array[float]

    def __len__(self) -> int:
        return len(self.packed)


def read_index(path: Path, first: int = 0) -> Entries:
    """The whole entries of the index of the log at ``path`` from entry ``first``."""
    try:
        with open(index_path(path), "rb") as file:
            file.seek(len(HEADER) + first * ENTRY_SIZE)
            data = file.read()
    except FileNotFoundError:
        data = b""
    data = data[: len(data) - len(data) % ENTRY_SIZE]
    packed, times = array("Q"), array("d")
    if data:
        packed.frombytes(data)
        # One C-level pass each way: the u64 halves, then the float64 halves.
        times.frombytes(data)
        packed = packed[0::2]
        times = times[1::2]
    return Entries(packed, times)


def parse_notes(data: bytes) -> list[Note]:
    """The notes in ``data``, a notes file's whole lines."""
    found = []
    for line in data.split(b"\n"):
        position, _, rest = line.partition(b" ")
        time, _, text = rest.partition(b" ")
        try:
            found.append(Note(int(position), float(time), text.decode("utf-8", "replace")))
        except ValueError:
            continue
    return found


def read_notes(path: Path, offset: int = 0) -> list[Note]:
    """The notes of the log at ``path`` in its notes file's whole lines from byte
    ``offset`` on (see `NotesCursor` to follow them)."""
    try:
        with open(notes_path(path), "rb") as file:
            file.seek(offset)
            data = file.read()
    except FileNotFoundError:
        return []
    return parse_notes(data[: data.rfind(b"\n") + 1])


class NotesCursor:
    """Reads a notes file from where it last stopped; only whole lines."""

    def __init__(self, path: Path) -> None:
        self.path = notes_path(path)
        self.offset = 0

    def read(self) -> list[Note]:
        try:
            with open(self.path, "rb") as file:
                file.seek(self.offset)
                data = file.read()
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n") + 1
        self.offset += end
        return parse_notes(data[:end])


def stream_at(entries: Entries, offset: int) -> tuple[Stream, float]:
    """The stream and time of the byte at ``offset``: those of the chunk it is in, or
    past the last entry (bytes whose entry a kill -9 prevented), the last chunk's."""
    if not len(entries):
        return Stream.STDOUT, 0.0
    at = min(bisect.bisect_right(entries.packed, offset << 2 | 3), len(entries) - 1)
    return STREAMS[entries.packed[at] & 3], entries.times[at]


class LogCursor:
    """Follows one stage's log: the stretches of its file and its notes in order.

    `read` yields ``(start, end)`` byte ranges of the log file, to copy as they are,
    and `Note`s where they stand. Ranges end where the index says data is whole
    (a reader never races the writer), or with ``to_end`` at the file's end: the
    stage is over, and bytes a kill -9 left without an entry are shown too.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self._entries = 0
        self._indexed = 0
        self._notes = NotesCursor(self.path)
        self._pending: list[Note] = []
        self._legacy: bool | None = None
        self._legacy_read = 0

    @property
    def legacy(self) -> bool:
        """Whether the log is of an earlier version's format: `records` then reads its
        records as they come (no copy), and `read` has no ranges to give."""
        if self._legacy is None and self.path.exists():
            self._legacy = is_legacy(self.path)
        return bool(self._legacy)

    def read(self, *, to_end: bool = False) -> Iterator[tuple[int, int] | Note]:
        entries = read_index(self.path, self._entries)
        if len(entries):
            self._entries += len(entries)
            self._indexed = entries.packed[-1] >> 2
        limit = self._indexed
        if to_end:
            with contextlib.suppress(FileNotFoundError):
                limit = max(limit, os.stat(self.path).st_size)
        self._pending += self._notes.read()
        while self._pending and self._pending[0].position <= limit:
            note = self._pending.pop(0)
            if note.position > self.offset:
                yield self.offset, note.position
                self.offset = note.position
            yield note
        if limit > self.offset:
            yield self.offset, limit
            self.offset = limit

    def records(self, *, to_end: bool = True) -> Iterator[bytes | Note]:
        """As `read`, with the bytes of each range read (in chunks of at most
        `COPY_CHUNK`)."""
        if self.legacy:
            yield from self._legacy_records()
            return
        try:
            file = open(self.path, "rb")  # noqa: SIM115 (closed by the `with` below)
        except FileNotFoundError:
            return
        with file:
            for item in self.read(to_end=to_end):
                if isinstance(item, Note):
                    yield item
                    continue
                start, end = item
                file.seek(start)
                while start < end:
                    chunk = file.read(min(COPY_CHUNK, end - start))
                    if not chunk:
                        break
                    start += len(chunk)
                    yield chunk

    def _legacy_records(self) -> Iterator[bytes | Note]:
        try:
            with open(self.path, "rb") as file:
                file.seek(self._legacy_read)
                data = file.read()
        except FileNotFoundError:
            return
        whole = data.rfind(b"\n") + 1
        self._legacy_read += whole
        for record in legacy_log.parse(data[:whole]):
            if record.stream is Stream.MESSAGE:
                yield Note(self.offset, record.time, record.content.decode("utf-8", "replace"))
                continue
            content = record.content if record.partial else record.content + b"\n"
            self.offset += len(content)
            yield content


def output_bytes(path: Path) -> Iterator[bytes]:
    """What the stage printed: stdout and stderr, nothing added."""
    for item in LogCursor(path).records():
        if not isinstance(item, Note):
            yield item


def tail_records(path: Path, count: int = 1, *, max_bytes: int = 16384) -> list[LogRecord]:
    """The last ``count`` lines a stage printed (notes left out), reading only the
    ends of its files."""
    path = readable(path)
    try:
        with open(path, "rb") as file:
            size = file.seek(0, os.SEEK_END)
            start = max(0, size - max_bytes)
            file.seek(start)
            data = file.read(max_bytes)
    except FileNotFoundError:
        return []
    first = 0 if start == 0 else data.find(b"\n") + 1
    if (start and not first) or first == len(data):
        return []
    # Only the last ``count`` lines are split off and made records: the pane polls this.
    ended = data.endswith(b"\n")
    body = data[first : len(data) - ended]
    lines = body.rsplit(b"\n", count)[-count:]
    entries = _tail_entries(path)
    found: list[LogRecord] = []
    at = start + len(data) - ended
    for number, line in enumerate(reversed(lines)):
        at -= len(line)
        stream, time = stream_at(entries, at)
        found.append(LogRecord(time, stream, line, number == 0 and not ended))
        at -= 1
    return found[::-1]


def _tail_entries(path: Path, most: int = 4096) -> Entries:
    """The last ``most`` entries of the index of the log at ``path``."""
    try:
        size = os.stat(index_path(path)).st_size
    except FileNotFoundError:
        return read_index(path)
    whole = max(0, (size - len(HEADER)) // ENTRY_SIZE)
    return read_index(path, max(0, whole - most))


class _Copy:
    """A log of the format before this one, converted so far into a copy in this one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.read = 0
        """How much of the old log is converted: whole records only."""
        self.end = 0
        """The copy's size."""
        for name in (path, index_path(path), notes_path(path)):
            name.write_bytes(HEADER if name.suffix == ".idx" else b"")

    def catch_up(self, source: Path) -> None:
        """Convert the whole records the old log gained: appended to the copy, one
        entry for each run of records of one stream and one time."""
        with open(source, "rb") as old:
            old.seek(self.read)
            gained = old.read()
        whole = gained.rfind(b"\n") + 1
        if not whole:
            return
        data, entries, notes = bytearray(), bytearray(), bytearray()
        pending: tuple[int, float] | None = None
        for record in legacy_log.parse(gained[:whole]):
            if record.stream is Stream.MESSAGE:
                if pending is not None:
                    entries += ENTRY.pack(self.end + len(data) << 2 | pending[0], pending[1])
                pending = None
                notes += b"%d %.6f %s\n" % (self.end + len(data), record.time, record.content)
                continue
            key = (KIND[record.stream], record.time)
            if pending is not None and pending != key:
                entries += ENTRY.pack(self.end + len(data) << 2 | pending[0], pending[1])
            pending = key
            data += record.content if record.partial else record.content + b"\n"
        if pending is not None:
            entries += ENTRY.pack(self.end + len(data) << 2 | pending[0], pending[1])
        # Data before its entries, as a writer writes: a reader never sees an entry early.
        for name, block in ((self.path, data), (index_path(self.path), entries)):
            with open(name, "ab") as file:
                file.write(block)
        with open(notes_path(self.path), "ab") as file:
            file.write(notes)
        self.end += len(data)
        self.read += whole


_copies: dict[Path, _Copy] = {}
_copying = threading.Lock()
_scratch: Path | None = None
SCRATCH_PREFIX = "mlci-logs-"


def readable(path: Path) -> Path:
    """``path`` itself, or for a log in the format before this one, a copy of it in
    this format, kept up with it as it grows: the old log is never rewritten. The
    copies are in a scratch directory of this process's, removed at its exit (or by
    the next process that makes one, when a signal ended this one)."""
    if not is_legacy(path):
        return path
    global _scratch
    with _copying:
        try:
            if _scratch is None:
                _sweep_scratch()
                _scratch = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-"))
                atexit.register(shutil.rmtree, _scratch, True)
            copy = _copies.get(path)
            if copy is None:
                copy = _copies[path] = _Copy(_scratch / f"{len(_copies)}.log")
            copy.catch_up(path)
        except FileNotFoundError:
            raise
        except OSError as error:
            where = _scratch or tempfile.gettempdir()
            raise StoreError(
                f"cannot read {path}, a log of an earlier version's format: its copy"
                f" in {where} could not be written: {error.strerror or error}"
            ) from error
        return copy.path


def _sweep_scratch() -> None:
    """Remove the scratch directories of processes that are gone."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(tempfile.gettempdir()):
            pid = entry.name[len(SCRATCH_PREFIX) :].partition("-")[0]
            if not entry.name.startswith(SCRATCH_PREFIX) or not pid.isdigit():
                continue
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                shutil.rmtree(entry.path, ignore_errors=True)
            except OSError:
                continue
