"""Random access to a growing stage log, without holding the log in memory.

A viewer needs line 1 234 567 of a log that is still being written. The log file
holds only what the stage printed (see `logs`), so its lines are its newlines: the
index is sparse, one entry per block of about `BLOCK` bytes, holding the offset of
the block's first line and that line's number. Building it costs a few C-level
calls a block (``count`` the newlines, ``find`` the next block's start) over 1 MiB
reads, so following a flood of 100 000 lines a second costs the dashboard almost
nothing; a line is found by bisecting the blocks and splitting the one block it is
in, read with ``pread`` when it is shown.

A line's time and stream are those of the chunk its first byte came in (the
``.idx`` entries, kept whole in memory: 16 bytes a chunk). mlci's notes are lines
of their own, where they stand: a note in the middle of a line breaks it there.
Notes are few, so the index keeps them, and the breaks they make, in small lists,
and maps a line to a note or to a stretch of the file and back with bisections.
"""

from __future__ import annotations

import bisect
import operator
import os
import threading
from array import array
from collections.abc import Callable, Iterator
from functools import partial
from itertools import accumulate
from pathlib import Path
from typing import NamedTuple

from mlci_tui.errors import StoreError
from mlci_tui.states import Stream
from mlci_tui.store import logs
from mlci_tui.store.logs import LogRecord, Note

BLOCK = 64 << 10
READ_CHUNK = 1 << 20
"""Indexing reads this much at a time: each C-level scan of it holds the GIL for
well under a frame, so the dashboard's own thread keeps answering keys."""
SKIP_AFTER = 16 << 20
"""A viewer that only follows the end skips a backlog larger than this (see `update`)."""
KEEP_TAIL = 2 << 20
MAX_LINE_READ = 256 << 10
"""A line longer than this is shown cut (the file keeps it whole); one redrawn with
``\\r`` (a progress bar) shows its end instead, where its latest state is."""


class _Stretch(NamedTuple):
    """A line that is bytes of the file: ``start`` up to ``end``."""

    start: int
    end: int
    partial: bool
    """No newline ends it (yet), or a note breaks it at ``end``."""


class Piece(NamedTuple):
    """Lines that are bytes ``start`` up to ``end`` of the file (the last one's newline
    not included)."""

    start: int
    end: int
    partial: bool
    """Whether the last of them does not end (yet), or a note breaks it at ``end``."""
    lines: int


class LogIndex:
    """Where the lines of one stage's log are; `update()` catches up as it grows.

    `update()` may run in a worker thread while `line()` serves the screen: the
    index only grows, under a lock.
    """

    def __init__(self, path: Path) -> None:
        self.source = path
        """The log asked for; `path` is what is read (a converted copy of an old log)."""
        self.path = path
        self.problem: str | None = None
        """Why the log cannot be read (an old-format log whose copy could not be made)."""
        self._legacy: bool | None = None
        """Whether the log is of the earlier format: known at the first `update`, where
        converting it does not hold up the caller's thread."""
        self._offsets = array("q", [0])
        """Byte offset of the first line of each block."""
        self._numbers = array("q", [0])
        """Number of that line among the file's lines (notes left out)."""
        self._newlines = 0
        """Newlines in the bytes indexed (less those in a skipped stretch)."""
        self._end = 0
        """Where the bytes indexed end."""
        self._last_start = 0
        """Where the last line starts: after the last newline indexed."""
        self._packed = array("Q")
        self._times = array("d")
        """The index's entries (see `logs.Entries`)."""
        self._notes_cursor: logs.NotesCursor | None = None
        self._pending: list[Note] = []
        """Notes read that stand past the bytes indexed (or in a skipped stretch)."""
        self._notes: list[Note] = []
        """Notes placed, by position."""
        self._note_starts: list[int] = []
        """How many of the file's lines start before each note."""
        self._note_breaks: list[bool] = []
        """Whether each note stands in the middle of a line (and breaks it)."""
        self._note_segments = array("q")
        """How many stretches come before each note."""
        self._note_lines = array("q")
        """Each note's line."""
        self._breaks = array("q")
        """Where notes break lines: distinct positions, in order."""
        self._break_segments = array("q")
        """The number of the stretch each break starts."""
        self._covered = 0
        """Bytes before this have their entry, or a note after them."""
        self._lock = threading.Lock()
        self._io_lock = threading.Lock()
        """Held around each read, so that `close` never pulls the file from under one."""
        self._fd: int | None = None
        self._fd_path: Path | None = None
        self._closed = False
        self._block: tuple[int, int, bytes, list[int]] | None = None
        """The last block read: where it starts and ends, its bytes (at most
        `_BLOCK_READ`) and its lines' offsets."""
        self._gap: tuple[int, int, int] | None = None
        """Bytes skipped by a follower: (start, end, the block that starts at end)."""

    # Counting -----------------------------------------------------------------------

    def __len__(self) -> int:
        with self._lock:
            return self._count()

    def _count(self) -> int:
        """Lines: the notes, and the stretches of the file between newlines and breaks."""
        tail = self._last_start
        if self._breaks and self._breaks[-1] > tail:
            tail = self._breaks[-1]
        return len(self._notes) + self._newlines + len(self._breaks) + (self._end > tail)

    @property
    def indexed(self) -> int:
        """How much of the log is indexed, bytes and notes: it grows with either."""
        with self._lock:
            return self._end + len(self._notes)

    @property
    def complete(self) -> bool:
        """False while a skipped stretch (see `update`) has not been indexed."""
        return self._gap is None

    @property
    def settled(self) -> int:
        """How many lines, from the first, keep their time: those that start where the
        index has an entry (or before a note). Past it are bytes whose entry is still
        to be written, or that a kill -9 left without one."""
        with self._lock:
            if self._covered >= self._end:
                return self._count()
            covered = self._covered
        return min(len(self), self._segments_before(covered) + len(self._notes))

    # Catching up --------------------------------------------------------------------

    def update(self, *, follow: bool = False) -> int:
        """Index what was appended since the last call; returns how many lines it added.

        With ``follow`` (a viewer showing only the end) a backlog of more than
        `SKIP_AFTER` bytes is skipped but for its last `KEEP_TAIL`: the lines after
        it are numbered as if it were empty, until `fill_gap` counts it. Following a
        flood then costs nothing for the lines nobody looks at.
        """
        self._resolve()
        if self.problem is not None:
            return 0
        try:
            # The size before the index: a chunk's bytes are written before its entry.
            size = os.stat(self.path).st_size
        except FileNotFoundError:
            return 0
        entries = logs.read_index(self.path, len(self._packed))
        if self._notes_cursor is None:
            self._notes_cursor = logs.NotesCursor(self.path)
        notes = self._notes_cursor.read()
        with self._lock:
            before = self._count()
            self._packed.extend(entries.packed)
            self._times.extend(entries.times)
        if follow and self._gap is None and size - self._end > SKIP_AFTER:
            self._skip(size)
        position = self._end
        while position < size:
            chunk = self._pread(min(READ_CHUNK, size - position), position)
            if not chunk:
                break
            self._add(chunk, position)
            position += len(chunk)
        self._pending += notes
        self._place_notes()
        with self._lock:
            covered = (self._packed[-1] >> 2) if self._packed else 0
            if self._notes:
                covered = max(covered, self._notes[-1].position)
            self._covered = max(self._covered, covered)
            return self._count() - before

    def _resolve(self) -> None:
        """Read an old-format log through its converted copy, the newest one."""
        if self._legacy is None:
            self._legacy = logs.is_legacy(self.source)
        if not self._legacy:
            return
        try:
            copy = logs.readable(self.source)
        except FileNotFoundError:
            return
        except StoreError as error:
            self.problem = str(error)
            return
        if copy != self.path:
            # A later copy (a note appended to the old log) holds the earlier one's
            # bytes, entries and notes, and more after them.
            self.path = copy
            if self._notes_cursor is not None:
                offset = self._notes_cursor.offset
                self._notes_cursor = logs.NotesCursor(copy)
                self._notes_cursor.offset = offset

    def _skip(self, size: int) -> None:
        resume = self._line_start_after(size - KEEP_TAIL, size)
        if resume < 0 or resume <= self._last_start:
            return
        with self._lock:
            start = self._last_start
            if self._offsets[-1] >= start:
                # A block that has no whole line yet: it starts after the gap instead.
                self._offsets.pop()
                self._numbers.pop()
            self._gap = (start, resume, len(self._offsets))
            self._offsets.append(resume)
            self._numbers.append(self._newlines)
            self._end = self._last_start = resume

    def _add(self, chunk: bytes, base: int) -> None:
        """Index ``chunk``, read at ``base`` (the end of what is indexed)."""
        blocks, newlines = _blocks(chunk, base, self._offsets[-1] + BLOCK, self._newlines)
        last = chunk.rfind(b"\n")
        with self._lock:
            for offset, number in blocks:
                self._offsets.append(offset)
                self._numbers.append(number)
            self._newlines = newlines
            if last >= 0:
                self._last_start = base + last + 1
            self._end = base + len(chunk)

    def fill_gap(self) -> int:
        """Index the stretch `update` skipped; returns how many lines it added. Lines
        after it are renumbered."""
        gap = self._gap
        if gap is None:
            return 0
        start, end, at = gap
        offsets, numbers = array("q", [start]), array("q", [0])
        newlines = 0
        position = start
        while position < end:
            chunk = self._pread(min(READ_CHUNK, end - position), position)
            if not chunk:
                return 0
            blocks, newlines = _blocks(chunk, position, offsets[-1] + BLOCK, newlines)
            for offset, number in blocks:
                if offset < end:
                    offsets.append(offset)
                    numbers.append(number)
            position += len(chunk)
        with self._lock:
            before = self._count()
            first = self._numbers[at]
            self._offsets[at:at] = offsets
            self._numbers[at:] = array("q", (first + n for n in numbers)) + array(
                "q", (n + newlines for n in self._numbers[at:])
            )
            self._newlines += newlines
            self._note_starts = [
                n + newlines if note.position >= end else n
                for note, n in zip(self._notes, self._note_starts, strict=True)
            ]
            self._derive()
            self._gap = None
        self._place_notes()
        with self._lock:
            return self._count() - before

    def _line_start_after(self, position: int, size: int) -> int:
        """The first line that starts at or after ``position``; -1 if none does yet."""
        found = self._find_newline(max(0, position - 1), size)
        return -1 if found < 0 else found + 1

    # Notes ------------------------------------------------------------------------------

    def _place_notes(self) -> None:
        """Place the notes read that stand in the bytes indexed."""
        gap = self._gap
        ready = [
            note
            for note in self._pending
            if note.position <= self._end and (gap is None or not gap[0] < note.position < gap[1])
        ]
        if not ready:
            return
        self._pending = [note for note in self._pending if note not in ready]
        placed = [(note, *self._place(note.position)) for note in ready]
        with self._lock:
            merged = sorted(
                [*zip(self._notes, self._note_starts, self._note_breaks, strict=True), *placed],
                key=lambda placed: placed[0].position,
            )
            self._notes = [note for note, _, _ in merged]
            self._note_starts = [starts for _, starts, _ in merged]
            self._note_breaks = [breaks for _, _, breaks in merged]
            self._derive()

    def _place(self, position: int) -> tuple[int, bool]:
        """How many of the file's lines start before byte ``position``, and whether
        it is in the middle of a line."""
        if position <= 0:
            return 0, False
        newlines = self._newlines_before(position)
        inside = self._pread(1, position - 1) != b"\n"
        return newlines + inside, inside

    def _derive(self) -> None:
        """The breaks and the notes' lines, from the notes; under the lock."""
        breaks: list[int] = []
        break_lines: list[int] = []
        for note, starts, inside in zip(
            self._notes, self._note_starts, self._note_breaks, strict=True
        ):
            if inside and (not breaks or breaks[-1] != note.position):
                breaks.append(note.position)
                break_lines.append(starts - 1)
        self._breaks = array("q", breaks)
        self._break_segments = array("q", (line + 1 + j for j, line in enumerate(break_lines)))
        self._note_segments = array(
            "q",
            (
                starts + bisect.bisect_left(self._breaks, note.position)
                for note, starts in zip(self._notes, self._note_starts, strict=True)
            ),
        )
        self._note_lines = array("q", (n + k for k, n in enumerate(self._note_segments)))

    # Lines --------------------------------------------------------------------------

    def line(self, index: int) -> LogRecord | None:
        """Line ``index`` (0-based), its content cut at `MAX_LINE_READ` bytes."""
        found = self._find(index)
        if found is None:
            return None
        if isinstance(found, Note):
            return LogRecord(found.time, Stream.MESSAGE, _content(found), False)
        stream, time = self._attributes(found.start)
        content, cut = self._content(found)
        return LogRecord(time, stream, content, found.partial, cut)

    def pieces(self, first: int, stop: int) -> Iterator[Note | Piece]:
        """Lines ``first`` up to ``stop`` in as few pieces as they allow: each note, and
        each run of the file's lines between notes as one `Piece` (a byte range), for
        a reader that prints them whole rather than line by line."""
        line = first
        while line < stop:
            with self._lock:
                k = bisect.bisect_left(self._note_lines, line)
                notes = len(self._note_lines)
                note = self._notes[k] if k < notes and self._note_lines[k] == line else None
                after = k + (note is not None)
                upto = self._note_lines[after] if after < notes else stop
            if note is not None:
                yield note
                line += 1
                continue
            last = min(stop, upto) - 1
            start = self._segment(line - k, ends=False).start
            end = self._segment(last - k)
            yield Piece(start, end.end, end.partial, last + 1 - line)
            line = last + 1

    def time_of(self, index: int) -> float:
        """The time of line ``index`` (its first byte's chunk's, or its note's), without
        reading the line itself."""
        found = self._find(index, ends=False)
        if found is None:
            return 0.0
        if isinstance(found, Note):
            return found.time
        return self._attributes(found.start)[1]

    def _find(self, index: int, *, ends: bool = True) -> Note | _Stretch | None:
        with self._lock:
            if not 0 <= index < self._count():
                return None
            k = bisect.bisect_left(self._note_lines, index)
            if k < len(self._note_lines) and self._note_lines[k] == index:
                return self._notes[k]
        return self._segment(index - k, ends=ends)

    def _segment(self, segment: int, *, ends: bool = True) -> _Stretch:
        """Stretch ``segment`` of the file (0-based); without ``ends`` its end is not
        looked for (the stretch is given as empty)."""
        with self._lock:
            j = bisect.bisect_right(self._break_segments, segment)
            line = segment - j
            starts_at_break = j > 0 and self._break_segments[j - 1] == segment
            start = self._breaks[j - 1] if starts_at_break else -1
            broken = j < len(self._break_segments) and self._break_segments[j] == segment + 1
            end = self._breaks[j] if broken else -1
        if start < 0:
            start = self._line_bounds(line, ends=ends)[0]
        if end >= 0:
            return _Stretch(start, end, True)
        if not ends:
            return _Stretch(start, start, False)
        _, line_end, partial = self._line_bounds(line)
        return _Stretch(start, line_end, partial)

    def _line_bounds(self, line: int, *, ends: bool = True) -> tuple[int, int, bool]:
        """Where the file's line ``line`` starts and ends (before its newline), and
        whether no newline ends it."""
        with self._lock:
            block = bisect.bisect_right(self._numbers, line) - 1
            first = self._numbers[block]
            base = self._offsets[block]
            block_end = self._block_end(block)
            last_block = block == len(self._offsets) - 1
            end, last_start = self._end, self._last_start
        if line == first and not ends:
            return base, base, False  # a block's first line: no need to read it
        starts = self._block_lines(base, block_end)
        start = starts[min(line - first, len(starts) - 1)]
        if line - first + 1 < len(starts):
            return start, starts[line - first + 1] - 1, False
        if last_block and start >= last_start:
            return start, end, True
        return start, block_end - 1, False

    def _block_end(self, block: int) -> int:
        """Where ``block`` ends; called under the lock."""
        gap = self._gap
        if gap is not None and block + 1 == gap[2]:
            return gap[0]
        return self._offsets[block + 1] if block + 1 < len(self._offsets) else self._end

    def _block_lines(self, start: int, end: int) -> list[int]:
        """The offsets of the lines that start in the block from ``start`` to ``end``,
        read once while shown."""
        cached = self._block
        if cached is not None and cached[:2] == (start, end):
            return cached[3]
        data = self._pread(min(end - start, _BLOCK_READ), start) or b""
        # Every line of a block starts in its first `BLOCK` bytes, so in what was read.
        lengths = map(_PLUS_NEWLINE, map(len, data.split(b"\n")[:-1]))
        starts = list(accumulate(lengths, initial=start))
        while len(starts) > 1 and starts[-1] >= end:
            starts.pop()
        self._block = (start, end, data, starts)
        return starts

    def _content(self, stretch: _Stretch) -> tuple[bytes, int]:
        """The bytes of ``stretch`` to show, and its size when they are only its start."""
        start, end = stretch.start, stretch.end
        size = end - start
        if size <= MAX_LINE_READ:
            cached = self._block
            # The file only grows: bytes read once stay true.
            if cached is not None and cached[0] <= start and end <= cached[0] + len(cached[2]):
                return cached[2][start - cached[0] : end - cached[0]], 0
            return self._pread(size, start) or b"", 0
        tail = self._pread(MAX_LINE_READ, end - MAX_LINE_READ) or b""
        redrawn = tail.find(b"\r")
        if redrawn >= 0:
            # A progress bar redrawn for hours: its latest state is at its end.
            return tail[redrawn:], 0
        return self._pread(MAX_LINE_READ, start) or b"", size

    def _attributes(self, offset: int) -> tuple[Stream, float]:
        with self._lock:
            return logs.stream_at(logs.Entries(self._packed, self._times), offset)

    def line_of(self, offset: int) -> int:
        """The line byte ``offset`` of the file is in (not one of a skipped stretch)."""
        segment = self._newlines_before(offset)
        with self._lock:
            segment += bisect.bisect_right(self._breaks, offset)
            return segment + bisect.bisect_right(self._note_segments, segment)

    def _segments_before(self, position: int) -> int:
        """How many stretches of the file start before byte ``position``."""
        starts = self._place(position)[0]
        with self._lock:
            return starts + bisect.bisect_left(self._breaks, position)

    def _newlines_before(self, position: int) -> int:
        """Newlines before byte ``position`` (one not in a skipped stretch)."""
        with self._lock:
            block = bisect.bisect_right(self._offsets, position) - 1
            start, number = self._offsets[block], self._numbers[block]
        while start < position:
            chunk = self._pread(min(READ_CHUNK, position - start), start)
            if not chunk:
                break
            number += chunk.count(b"\n")
            start += len(chunk)
        return number

    # Search -------------------------------------------------------------------------

    def search(self, needle: str, start: int, *, forward: bool = True) -> int | None:
        """The first line after (or before) line ``start`` whose content contains
        ``needle``, ignoring case; None if there is none. ``start`` may be -1, or
        the number of lines, to search from the very start or end.

        The file is read in chunks and tested with C-level ``find``; only a hit is
        mapped back to its line.
        """
        target = needle.lower().encode("utf-8", "replace")
        if self._gap is not None:
            self.fill_gap()  # a search means every line, skipped ones too
        if not target:
            return None
        with self._lock:
            count = self._count()
            start = max(-1, min(start, count))
            lines = self._note_lines
            if forward:
                first = start + 1
                notes = [
                    line
                    for line, note in zip(lines, self._notes, strict=True)
                    if line >= first and target in _content(note).lower()
                ][:1]
            else:
                last = start - 1
                notes = [
                    line
                    for line, note in zip(lines, self._notes, strict=True)
                    if line <= last and target in _content(note).lower()
                ][-1:]
        hit = None
        if b"\n" not in target:
            hit = self._search_file(target, start, count, forward)
        found = [*notes, *([] if hit is None else [hit])]
        if not found:
            return None
        return min(found) if forward else max(found)

    def _search_file(self, target: bytes, start: int, count: int, forward: bool) -> int | None:
        if forward:
            first = self._first_stretch_from(start + 1, count)
            if first is None:
                return None
            with self._lock:
                end = self._end
            for position in self._hits(target, first, end):
                return self.line_of(position)
            return None
        if start - 1 < 0:
            return None
        stop = self._stretch_end_through(start - 1)
        for position in self._hits_backward(target, 0, stop):
            return self.line_of(position)
        return None

    def _first_stretch_from(self, index: int, count: int) -> int | None:
        """Where the first stretch of the file at or after line ``index`` starts."""
        with self._lock:
            segment = index - bisect.bisect_left(self._note_lines, index)
            segments = count - len(self._notes)
        if segment >= segments:
            return None
        return self._segment(segment, ends=False).start

    def _stretch_end_through(self, index: int) -> int:
        """Where the stretches of the file up to line ``index`` end."""
        with self._lock:
            segments = index + 1 - bisect.bisect_right(self._note_lines, index)
        return self._segment(segments - 1).end if segments > 0 else 0

    def _hits(self, target: bytes, start: int, end: int) -> Iterator[int]:
        """Where ``target`` is in the file (lower-cased) from ``start`` to ``end``, in
        order; a hit a note's break cuts in two is none."""
        overlap = len(target) - 1
        position = start
        while position < end:
            chunk = self._pread(min(READ_CHUNK, end - position), position)
            if not chunk:
                return
            data = chunk.lower()
            at = data.find(target)
            while at >= 0:
                if at + len(target) > len(data):
                    break
                if not self._broken(position + at, len(target)):
                    yield position + at
                at = data.find(target, at + 1)
            if position + len(chunk) >= end:
                return
            position += max(1, len(chunk) - overlap)

    def _hits_backward(self, target: bytes, start: int, end: int) -> Iterator[int]:
        overlap = len(target) - 1
        stop = end
        while stop > start:
            base = max(start, stop - READ_CHUNK)
            chunk = self._pread(stop - base, base)
            if not chunk:
                return
            data = chunk.lower()
            at = data.rfind(target)
            while at >= 0:
                if not self._broken(base + at, len(target)):
                    yield base + at
                at = data.rfind(target, 0, at + len(target) - 1)
            if base <= start:
                return
            stop = min(stop - 1, base + overlap)

    def _broken(self, position: int, size: int) -> bool:
        with self._lock:
            at = bisect.bisect_right(self._breaks, position)
            return at < len(self._breaks) and self._breaks[at] < position + size

    def matches(self, needle: str, cancelled: Callable[[], bool] = lambda: False) -> array | None:
        """The lines that contain ``needle`` (ignoring case), in order; None if
        ``cancelled()`` said to stop. For "match 3 of 40": run it in a worker."""
        target = needle.lower().encode("utf-8", "replace")
        if self._gap is not None:
            self.fill_gap()
        found = array("q")
        if not target:
            return found
        with self._lock:
            end = self._end
            lines = {
                line
                for line, note in zip(self._note_lines, self._notes, strict=True)
                if target in _content(note).lower()
            }
        if b"\n" not in target:
            overlap = len(target) - 1
            position, newlines = 0, 0
            while position < end:
                if cancelled():
                    return None
                chunk = self._pread(min(READ_CHUNK, end - position), position)
                if not chunk:
                    break
                data = chunk.lower()
                counted = 0
                at = data.find(target)
                while at >= 0 and at + len(target) <= len(data):
                    newlines += data.count(b"\n", counted, at)
                    counted = at
                    if not self._broken(position + at, len(target)):
                        lines.add(self._line_in(newlines, position + at))
                    at = data.find(target, at + 1)
                if position + len(chunk) >= end:
                    break
                step = max(1, len(chunk) - overlap)
                newlines += data.count(b"\n", counted, step)
                position += step
        found.extend(sorted(lines))
        return found

    def _line_in(self, newlines: int, position: int) -> int:
        """The line of byte ``position``, after ``newlines`` newlines of the file."""
        with self._lock:
            segment = newlines + bisect.bisect_right(self._breaks, position)
            return segment + bisect.bisect_right(self._note_segments, segment)

    # Files ----------------------------------------------------------------------------

    def _find_newline(self, position: int, size: int) -> int:
        while position < size:
            chunk = self._pread(min(READ_CHUNK, size - position), position)
            if not chunk:
                return -1
            found = chunk.find(b"\n")
            if found >= 0:
                return position + found
            position += len(chunk)
        return -1

    def _pread(self, size: int, offset: int) -> bytes | None:
        """``size`` bytes at ``offset``; None once the index is closed."""
        with self._io_lock:
            if self._closed:
                return None
            if self._fd is not None and self._fd_path != self.path:
                os.close(self._fd)
                self._fd = None
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
                self._fd_path = self.path
            return os.pread(self._fd, size, offset)

    def close(self) -> None:
        with self._io_lock:
            self._closed = True
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


_PLUS_NEWLINE = partial(operator.add, 1)
"""A line's length with its newline (a C-level callable, for `map`)."""


def _content(note: Note) -> bytes:
    """The bytes of a note's line."""
    return note.text.encode("utf-8", "replace")


_BLOCK_READ = BLOCK + MAX_LINE_READ
"""What is read of a block to find its lines: every one starts in its first `BLOCK`
bytes, and most lines shown fit in the rest."""


def _blocks(
    chunk: bytes, base: int, target: int, newlines: int
) -> tuple[list[tuple[int, int]], int]:
    """The blocks that start in ``chunk``, read at ``base`` after ``newlines`` newlines:
    (offset, number of its first line), each at the first line start at or after
    ``target``, then `BLOCK` bytes on; and the newlines after ``chunk``. One C-level
    pass over it."""
    found: list[tuple[int, int]] = []
    counted = 0
    while target < base + len(chunk):
        at = chunk.find(b"\n", max(0, target - base))
        if at < 0:
            break
        newlines += chunk.count(b"\n", counted, at + 1)
        counted = at + 1
        found.append((base + at + 1, newlines))
        target = base + at + 1 + BLOCK
    return found, newlines + chunk.count(b"\n", counted)
