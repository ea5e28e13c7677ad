"""Random access to a growing log file, without holding the log in memory.

A viewer needs line 1 234 567 of a log that is still being written. The
index is sparse: one entry per block of about `BLOCK` bytes, holding the
byte offset where the block's first record starts and that record's number.
Building it costs two C-level calls a block (`find` the next record start,
`count` the newlines), so following a flood of 100 000 lines a second costs
the dashboard almost nothing; a record is found by bisecting the blocks and
splitting the one block it is in, read with ``pread`` when it is shown.

A viewer shows lines, not records: a record that does not end its line (a
``+`` record: a very long line in pieces, or a progress bar flushed early)
is joined with the records after it into one line. The index keeps the
numbers of those records (few, usually none), so it maps a line to its
records and back with bisections.
"""

from __future__ import annotations

import bisect
import os
import re
import threading
from array import array
from collections.abc import Callable
from pathlib import Path

from mlci_tui.store.logs import LogRecord, join, parse

BLOCK = 64 << 10
READ_CHUNK = 1 << 20
"""Indexing reads this much at a time: each C-level scan of it holds the GIL for
well under a frame, so the dashboard's own thread keeps answering keys."""
SKIP_AFTER = 16 << 20
"""A viewer that only follows the end skips a backlog larger than this (see `update`)."""
KEEP_TAIL = 2 << 20
MAX_RECORD_READ = 256 << 10
"""A record longer than this is shown cut (the file keeps it whole)."""
MAX_LINE_RECORDS = 64
"""A line of more records than this is shown from its last ones (a progress bar
redrawn for hours): a carriage return makes only its end show anyway."""
# The start of a record that does not end its line: "TIME o+ ", after a newline.
_PARTIAL = re.compile(rb"(?:^|\n)[0-9.]+ [oem]\+ ")
_PARTIAL_TAG = re.compile(rb" [oem]\+ ")
# A record of mlci's own (a note): it starts a line of its own, so a piece before it
# ends its line there (a stage's last line without a newline, then why it failed).
_NOTE = re.compile(rb"[0-9.]+ m\+? ")


class LogIndex:
    """Where the records of one log file are; `update()` catches up as it grows.

    `update()` may run in a worker thread while `record()` serves the screen:
    the index only grows, under a lock.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offsets = array("q")
        """Byte offset of the first record of each block."""
        self._numbers = array("q")
        """Number of that record."""
        self._count = 0
        self._end = 0
        """Where the last whole record ends: the next one starts here."""
        self._lock = threading.Lock()
        self._io_lock = threading.Lock()
        """Held around each read, so that `close` never pulls the file from under one."""
        self._fd: int | None = None
        self._closed = False
        self._block: tuple[int, list[bytes]] | None = None
        """The last block read: its number and its raw records."""
        self._gap: tuple[int, int, int] | None = None
        """Bytes skipped by a follower: (start, end, the first block after them)."""
        self._partials = array("q")
        """Numbers of the records that do not end their line, in order."""

    def __len__(self) -> int:
        """How many lines: the records, less those that continue a line."""
        with self._lock:
            return self._lines()

    def _lines(self) -> int:
        return self._count - bisect.bisect_left(self._partials, self._count - 1)

    @property
    def records(self) -> int:
        return self._count

    @property
    def complete(self) -> bool:
        """False while a skipped stretch (see `update`) has not been indexed."""
        return self._gap is None

    def update(self, *, follow: bool = False) -> int:
        """Index what was appended since the last call; returns how many records.

        With ``follow`` (a viewer showing only the end) a backlog of more than
        `SKIP_AFTER` bytes is skipped but for its last `KEEP_TAIL`: the records
        after it are numbered as if it were empty, until `fill_gap` counts it.
        Following a flood then costs nothing for the lines nobody looks at.
        """
        try:
            size = os.stat(self.path).st_size
        except FileNotFoundError:
            return 0
        if follow and self._gap is None and size - self._end > SKIP_AFTER:
            resume = self._record_start_after(size - KEEP_TAIL, size)
            if resume > self._end:
                with self._lock:
                    self._gap = (self._end, resume, len(self._offsets))
                    self._end = resume
        before = self._count
        while self._end < size:
            chunk = self._pread(min(READ_CHUNK, size - self._end), self._end)
            if chunk is None:
                break
            last = chunk.rfind(b"\n")
            if last < 0:
                if len(chunk) < READ_CHUNK:
                    break  # a record still being written
                ends = self._find_newline(self._end + len(chunk), size)
                if ends < 0:
                    break
                # One record longer than a chunk: its start says whether it is a piece.
                self._add_blocks([(0, 1)], self._end, ends + 1 - self._end, chunk[:64])
                continue
            self._add_blocks(_blocks(chunk, last + 1), self._end, last + 1, chunk)
        return self._count - before

    def fill_gap(self) -> int:
        """Index the stretch `update` skipped; returns how many lines it added (a line
        that began in it and ended after it was counted already). Records after it
        are renumbered."""
        gap = self._gap
        if gap is None:
            return 0
        start, end, at = gap
        blocks: list[tuple[int, int]] = []
        partials: list[int] = []
        position = start
        while position < end:
            chunk = self._pread(min(READ_CHUNK, end - position), position)
            if chunk is None:
                return 0
            before = sum(count for _, count in blocks)
            last = chunk.rfind(b"\n") + 1
            if not last:
                # One record longer than a chunk: a block of its own.
                ends = self._find_newline(position + len(chunk), end)
                last = (end if ends < 0 else ends + 1) - position
                partials += [before + n for n in _partials(chunk[:64], last)]
                blocks.append((position, 1))
                position += last
                continue
            partials += [before + n for n in _partials(chunk, last)]
            blocks += [(position + offset, count) for offset, count in _blocks(chunk, last)]
            position += last
        added = sum(count for _, count in blocks)
        with self._lock:
            lines_before = self._lines()
            first = self._numbers[at] if at < len(self._numbers) else self._count
            numbers = []
            running = first
            for _, count in blocks:
                numbers.append(running)
                running += count
            self._offsets[at:at] = array("q", (offset for offset, _ in blocks))
            tail = array("q", (n + added for n in self._numbers[at:]))
            self._numbers[at:] = array("q", numbers) + tail
            cut = bisect.bisect_left(self._partials, first)
            later = array("q", (n + added for n in self._partials[cut:]))
            self._partials[cut:] = array("q", (first + n for n in partials)) + later
            self._count += added
            self._gap = None
            self._block = None
            return self._lines() - lines_before

    def _record_start_after(self, position: int, size: int) -> int:
        """The first record that starts at or after ``position``."""
        found = self._find_newline(max(0, position - 1), size)
        return size if found < 0 else found + 1

    def _add_blocks(
        self, blocks: list[tuple[int, int]], base: int, length: int, chunk: bytes
    ) -> None:
        """``blocks``: (offset in the chunk, records in the block) of ``chunk``, read at
        ``base``; ``chunk[:length]`` holds whole records."""
        partials = _partials(chunk, length)
        with self._lock:
            first = self._count
            if self._partials and self._partials[-1] == first - 1 and _NOTE.match(chunk):
                self._partials.pop()
            for offset, records in blocks:
                self._offsets.append(base + offset)
                self._numbers.append(self._count)
                self._count += records
            self._partials.extend(first + n for n in partials)
            self._end = base + length

    def line(self, index: int) -> LogRecord | None:
        """Line ``index`` (0-based): its records joined (see `logs.join`)."""
        with self._lock:
            if not 0 <= index < self._lines():
                return None
            first, last = self._records_of(index)
        if last - first < MAX_LINE_RECORDS:
            found = [r for r in (self.record(n) for n in range(first, last + 1)) if r is not None]
            return join(found) if found else None
        # A line in more pieces than are read for one line. A progress bar redrawn
        # with \r shows its latest state, at the end; any other line its start.
        tail = [self.record(n) for n in range(last - MAX_LINE_RECORDS + 1, last + 1)]
        found = [r for r in tail if r is not None]
        if found and any(b"\r" in r.content for r in found):
            return join(found)
        head = [r for r in (self.record(n) for n in range(first, first + 4)) if r is not None]
        if not head:
            return None
        start = join(head)
        return start._replace(content=start.content[:MAX_RECORD_READ], cut=self._span(first, last))

    def _span(self, first: int, last: int) -> int:
        """About how many bytes records ``first`` to ``last`` take in the file (whole
        blocks: what else shares their first and last block is small beside them)."""
        start_block, after = self._block_of(first), self._block_of(last) + 1
        with self._lock:
            start = self._offsets[start_block]
            end = self._offsets[after] if after < len(self._offsets) else self._end
        return end - start

    def _records_of(self, line: int) -> tuple[int, int]:
        """The first and last record of ``line``; called under the lock."""
        partials = self._partials
        first = line
        while True:
            continued = bisect.bisect_right(partials, first - 1)
            if line + continued == first:
                break
            first = line + continued
        last = first
        position = bisect.bisect_left(partials, first)
        while last + 1 < self._count and position < len(partials) and partials[position] == last:
            last += 1
            position += 1
        return first, last

    def line_of(self, record: int) -> int:
        """The line that record ``record`` is part of."""
        with self._lock:
            return record - bisect.bisect_right(self._partials, record - 1)

    def record(self, index: int) -> LogRecord | None:
        """Record ``index`` (0-based), its content cut at `MAX_RECORD_READ` bytes."""
        raw = self._raw(index)
        return None if raw is None else next(parse(raw[:MAX_RECORD_READ] + b"\n"), None)

    def _raw(self, index: int) -> bytes | None:
        with self._lock:
            if not 0 <= index < self._count:
                return None
            block = bisect.bisect_right(self._numbers, index) - 1
            first = self._numbers[block]
            start = self._offsets[block]
            end = self._offsets[block + 1] if block + 1 < len(self._offsets) else self._end
        cached = self._block
        if cached is None or cached[0] != block:
            data = self._pread(end - start, start)
            if data is None:
                return None
            cached = self._block = (block, data.split(b"\n")[:-1])
        return cached[1][index - first]

    def search(self, needle: str, start: int, *, forward: bool = True) -> int | None:
        """The first line after (or before) line ``start`` whose content contains
        ``needle``, ignoring case; None if there is none. ``start`` may be -1, or
        the number of lines, to search from the very start or end.

        The file is read in chunks of whole blocks and tested with C-level
        ``find``; only a hit is mapped back to its record and line.
        """
        target = needle.lower().encode("utf-8", "replace")
        if self._gap is not None:
            self.fill_gap()  # a search means every line, skipped ones too
        with self._lock:
            count = self._count
            blocks = len(self._offsets)
            if start < 0:
                after = -1
            elif start >= self._lines():
                after = count
            else:
                first, last = self._records_of(start)
                after = last if forward else first
        if not target or count == 0:
            return None
        position = self._block_of(min(max(after, 0), count - 1))
        step = max(1, READ_CHUNK // BLOCK)
        found: int | None = None
        if forward:
            for first_block in range(position, blocks, step):
                stop = min(blocks, first_block + step)
                found = self._find_in(first_block, stop, target, after, True)
                if found is not None:
                    break
        else:
            for last_block in range(position + 1, 0, -step):
                found = self._find_in(max(0, last_block - step), last_block, target, after, False)
                if found is not None:
                    break
        return None if found is None else self.line_of(found)

    def matches(self, needle: str, cancelled: Callable[[], bool] = lambda: False) -> array | None:
        """The lines that contain ``needle`` (ignoring case), in order; None if
        ``cancelled()`` said to stop. For "match 3 of 40": run it in a worker."""
        target = needle.lower().encode("utf-8", "replace")
        if self._gap is not None:
            self.fill_gap()
        with self._lock:
            blocks = len(self._offsets)
        found = array("q")
        if not target:
            return found
        step = max(1, READ_CHUNK // BLOCK)
        for first in range(0, blocks, step):
            if cancelled():
                return None
            for record in self._hits_in(first, min(blocks, first + step), target):
                line = self.line_of(record)
                if not found or found[-1] != line:
                    found.append(line)
        return found

    def _hits_in(self, first: int, stop: int, target: bytes) -> list[int]:
        """Every record in blocks ``first`` up to ``stop`` whose content holds ``target``."""
        read = self._read_blocks(first, stop)
        if read is None:
            return []
        data, number = read
        hits: list[int] = []
        counted, records = 0, number
        position = data.find(target)
        while position >= 0:
            record_start = data.rfind(b"\n", 0, position) + 1
            content_start = data.find(b" ", data.find(b" ", record_start) + 1) + 1
            if position < content_start:  # in the time or the stream tag: no hit
                position = data.find(target, position + 1)
                continue
            records += data.count(b"\n", counted, record_start)
            counted = record_start
            hits.append(records)
            record_end = data.find(b"\n", position)
            position = -1 if record_end < 0 else data.find(target, record_end + 1)
        return hits

    def _block_of(self, index: int) -> int:
        with self._lock:
            return bisect.bisect_right(self._numbers, index) - 1

    def _find_in(
        self, first: int, stop: int, target: bytes, start: int, forward: bool
    ) -> int | None:
        """A hit in blocks ``first`` up to ``stop``, beyond ``start`` in the direction."""
        read = self._read_blocks(first, stop)
        if read is None:
            return None
        data, number = read
        position = data.find(target) if forward else data.rfind(target)
        while position >= 0:
            record_start = data.rfind(b"\n", 0, position) + 1
            index = number + data.count(b"\n", 0, record_start)
            # A hit in the time or the stream tag is no hit.
            content_start = data.find(b" ", data.find(b" ", record_start) + 1) + 1
            beyond = index > start if forward else index < start
            if beyond and position >= content_start:
                return index
            position = (
                data.find(target, position + 1) if forward else data.rfind(target, 0, position)
            )
        return None

    def _read_blocks(self, first: int, stop: int) -> tuple[bytes, int] | None:
        """Blocks ``first`` up to ``stop``, lower-cased for searching, and the number of
        their first record; None once the index is closed."""
        with self._lock:
            base = self._offsets[first]
            end = self._offsets[stop] if stop < len(self._offsets) else self._end
            number = self._numbers[first]
        raw = self._pread(end - base, base)
        return None if raw is None else (raw.lower(), number)

    def _find_newline(self, position: int, size: int) -> int:
        while position < size:
            chunk = self._pread(min(READ_CHUNK, size - position), position)
            if chunk is None:
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
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            return os.pread(self._fd, size, offset)

    def close(self) -> None:
        with self._io_lock:
            self._closed = True
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def _blocks(chunk: bytes, length: int) -> list[tuple[int, int]]:
    """Split ``chunk[:length]`` (whole records) into blocks of about `BLOCK` bytes,
    each starting at a record: their offsets and how many records each holds."""
    blocks: list[tuple[int, int]] = []
    start = 0
    while start < length:
        boundary = chunk.find(b"\n", min(start + BLOCK, length - 1)) + 1
        if boundary <= 0 or boundary > length:
            boundary = length
        blocks.append((start, chunk.count(b"\n", start, boundary)))
        start = boundary
    return blocks


def _partials(chunk: bytes, length: int) -> list[int]:
    """The numbers, within ``chunk[:length]`` (whole records), of the records that
    do not end their line. Usually none: one C-level scan finds that out."""
    found: list[int] = []
    # `_PARTIAL` tries every record start: 25 ms a MiB, holding the GIL. Most chunks
    # hold no "+" at all (a memchr), or no tag anywhere (1 ms a MiB).
    if chunk.find(b"+", 0, length) < 0 or _PARTIAL_TAG.search(chunk, 0, length) is None:
        return found
    counted, records = 0, 0
    for match in _PARTIAL.finditer(chunk, 0, length):
        start = match.start() + (chunk[match.start()] == 0x0A)
        records += chunk.count(b"\n", counted, start)
        counted = start
        after = chunk.find(b"\n", start, length) + 1
        if not (0 < after < length and _NOTE.match(chunk, after)):
            found.append(records)
    return found
