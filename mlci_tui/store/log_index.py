"""Random access to a growing log file, without holding the log in memory.

A viewer needs line 1 234 567 of a log that is still being written. The index
keeps only the byte offset where each record starts (8 bytes a record, built
with C-level splitting and summing, so a flood of 100 000 lines a second costs
a few milliseconds a second to follow) and reads records from the file with
``pread`` when they are shown.
"""

from __future__ import annotations

import bisect
import os
import threading
from array import array
from itertools import accumulate
from pathlib import Path

from mlci_tui.states import Stream
from mlci_tui.store.logs import LogRecord, parse

READ_CHUNK = 8 << 20
MAX_RECORD_READ = 256 << 10
"""A record longer than this is shown cut (the file keeps it whole)."""


class LogIndex:
    """Offsets of the records of one log file; `update()` catches up as it grows.

    `update()` may run in a worker thread while `record()` serves the screen:
    offsets are only appended, under a lock.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._starts = array("q")
        self._end = 0
        """Where the last whole record ends: the next one starts here."""
        self._lock = threading.Lock()
        self._fd: int | None = None

    def __len__(self) -> int:
        return len(self._starts)

    @property
    def size(self) -> int:
        """Bytes of whole records indexed so far."""
        return self._end

    def update(self) -> int:
        """Index what was appended since the last call; returns how many records."""
        try:
            size = os.stat(self.path).st_size
        except FileNotFoundError:
            return 0
        added = 0
        while self._end < size:
            fd = self._open()
            chunk = os.pread(fd, min(READ_CHUNK, size - self._end), self._end)
            last = chunk.rfind(b"\n")
            if last < 0:
                if len(chunk) < READ_CHUNK:
                    break  # a record still being written
                # A single record longer than a chunk: skip to its end.
                next_newline = self._find_newline(self._end + len(chunk), size)
                if next_newline < 0:
                    break
                with self._lock:
                    self._starts.append(self._end)
                    self._end = next_newline + 1
                added += 1
                continue
            records = chunk[: last + 1].split(b"\n")[:-1]
            # Each record starts where the previous one ended, plus its newline.
            starts = accumulate(map((1).__add__, map(len, records)), initial=self._end)
            with self._lock:
                self._starts.extend(starts)
                self._end = self._starts.pop()
            added += len(records)
        return added

    def record(self, index: int) -> LogRecord | None:
        """Record ``index`` (0-based), its content cut at `MAX_RECORD_READ` bytes."""
        with self._lock:
            if not 0 <= index < len(self._starts):
                return None
            start = self._starts[index]
            end = self._starts[index + 1] if index + 1 < len(self._starts) else self._end
        data = os.pread(self._open(), min(end - start, MAX_RECORD_READ), start)
        return next(parse(data.split(b"\n", 1)[0] + b"\n"), None)

    def tail(self, count: int, *, output_only: bool = True) -> list[LogRecord]:
        """The last ``count`` records (of stdout and stderr only, by default)."""
        found: list[LogRecord] = []
        index = len(self) - 1
        while index >= 0 and len(found) < count:
            record = self.record(index)
            if record is not None and not (output_only and record.stream is Stream.MESSAGE):
                found.append(record)
            index -= 1
        return found[::-1]

    def search(self, needle: str, start: int, *, forward: bool = True) -> int | None:
        """The first record after (or before) ``start`` whose content contains
        ``needle``, ignoring case; None if there is none.

        The file is read in chunks of whole records and tested with C-level
        ``find``; only a hit is mapped back to its record.
        """
        target = needle.lower().encode("utf-8", "replace")
        with self._lock:
            count = len(self._starts)
        if not target or count == 0:
            return None
        if forward:
            low, high = start + 1, count
            while low < high:
                upto = self._chunk_end(low, high)
                found = self._find_in(low, upto, target, forward=True)
                if found is not None:
                    return found
                low = upto
        else:
            low, high = 0, min(start, count)
            while low < high:
                since = self._chunk_start(low, high)
                found = self._find_in(since, high, target, forward=False)
                if found is not None:
                    return found
                high = since
        return None

    def _offset(self, index: int) -> int:
        return self._starts[index] if index < len(self._starts) else self._end

    def _chunk_end(self, low: int, high: int) -> int:
        """The end of a run of records from ``low`` that spans about `READ_CHUNK` bytes."""
        with self._lock:
            limit = self._starts[low] + READ_CHUNK
            end = bisect.bisect_right(self._starts, limit, low + 1, high)
        return max(end, low + 1)

    def _chunk_start(self, low: int, high: int) -> int:
        with self._lock:
            limit = self._offset(high) - READ_CHUNK
            begin = bisect.bisect_left(self._starts, limit, low, high - 1)
        return min(begin, high - 1)

    def _find_in(self, first: int, stop: int, target: bytes, *, forward: bool) -> int | None:
        """Search records ``first`` up to (not including) ``stop``."""
        with self._lock:
            base = self._starts[first]
            end = self._offset(stop)
        data = os.pread(self._open(), end - base, base).lower()
        position = data.find(target) if forward else data.rfind(target)
        while position >= 0:
            with self._lock:
                index = bisect.bisect_right(self._starts, base + position, first, stop) - 1
                record_start = self._starts[index] - base
            # A hit in the time or the stream tag is no hit.
            content_start = data.find(b" ", data.find(b" ", record_start) + 1) + 1
            if position >= content_start:
                return index
            position = (
                data.find(target, position + 1) if forward else data.rfind(target, 0, position)
            )
        return None

    def _find_newline(self, position: int, size: int) -> int:
        fd = self._open()
        while position < size:
            chunk = os.pread(fd, min(READ_CHUNK, size - position), position)
            found = chunk.find(b"\n")
            if found >= 0:
                return position + found
            position += len(chunk)
        return -1

    def _open(self) -> int:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        return self._fd

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
