"""One log of a whole run: its stages' logs interleaved, as `mlci run` printed them.

Nothing is copied: the run's log is a list of *segments*, each a stretch of one
stage's lines (``train`` lines 0-41), in the order their lines arrived (the time
of the chunk each line's first byte came in). A stage running alone is one segment; stages side by
side alternate by chunk. Each stage's file is read through its own `LogIndex`,
so only the lines on screen are read, and `update` merges what the files gained
since: the time of a line is read only near the edges of a segment, found by
galloping then bisecting (the times in one file never go down). Two stages of
500 000 lines each: 0.03 s one after the other, 1.5 s alternating every 100
lines (10 000 segments).

The stage labels (``[train]`` in its colour, padded so that lines start in one
column) are declared here, below both the CLI's live printer and the dashboard,
which print the same interleaved log.
"""

from __future__ import annotations

import bisect
import threading
from array import array
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

from mlci_tui.store.log_index import LogIndex
from mlci_tui.store.logs import LogRecord

STAGE_COLORS = ("36", "35", "33", "32", "34", "96", "95", "93")
"""ANSI colours of the stage labels, in turn."""


class StageLabel(NamedTuple):
    text: str
    """``[train]``"""
    color: str
    """Its ANSI colour code."""
    pad: str
    """The spaces after it, so that every stage's lines start in the same column."""


def stage_labels(stages: Sequence[str]) -> dict[str, StageLabel]:
    """Each stage's label in an interleaved log, as `mlci run` prints it."""
    width = max((len(name) for name in stages), default=0)
    return {
        name: StageLabel(
            f"[{name}]", STAGE_COLORS[i % len(STAGE_COLORS)], " " * (width - len(name) + 1)
        )
        for i, name in enumerate(stages)
    }


class RunLog:
    """The lines of a run's stage logs, interleaved; read as a `LogIndex` is.

    `update()` may run in a worker thread while `line()` serves the screen: the
    list of segments only grows, under a lock.
    """

    def __init__(self, logs: Sequence[tuple[str, Path]]) -> None:
        self.names = [name for name, _ in logs]
        self.indexes = [LogIndex(path) for _, path in logs]
        self._merged = [0] * len(logs)
        """How many lines of each stage are placed in the run's log."""
        self._starts = array("q")
        """Where each segment starts in the run's log."""
        self._stages = array("q")
        """Which stage each segment is of."""
        self._firsts = array("q")
        """Each segment's first line in its stage's log."""
        self._own: list[tuple[array[int], array[int]]] = [(array("q"), array("q")) for _ in logs]
        """Per stage, its segments: (first line in the stage's log, start in the run's)."""
        self._count = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return self._count

    @property
    def indexed(self) -> int:
        return sum(index.indexed for index in self.indexes)

    complete = True
    """Nothing is skipped: interleaving needs every line's place."""

    @property
    def problem(self) -> str | None:
        """Why a stage's log cannot be read, if one cannot."""
        return next((i.problem for i in self.indexes if i.problem is not None), None)

    @property
    def settled(self) -> int:
        """Every line placed has its time (see `update`)."""
        return len(self)

    def fill_gap(self) -> int:
        return 0

    def update(self, *, follow: bool = False) -> int:
        """Merge the lines the stages' logs gained; returns how many. (``follow`` is
        a `LogIndex`'s: nothing is skipped here.)"""
        for index in self.indexes:
            index.update()
        # Only lines whose time is known: a line whose chunk's entry is still to be
        # written would be placed by the time of the chunk before.
        sizes = [index.settled for index in self.indexes]
        added = 0
        while True:
            heads = [
                (self._time(stage, self._merged[stage]), stage)
                for stage in range(len(sizes))
                if self._merged[stage] < sizes[stage]
            ]
            if not heads:
                return added
            stage = min(heads)[1]
            others = [head for head in heads if head[1] != stage]
            # Its lines up to the next other stage's line (on a tie, the stage
            # listed first goes first, as `min` chose).
            end = self._last_before(stage, sizes[stage], min(others)) if others else sizes[stage]
            first = self._merged[stage]
            with self._lock:
                self._starts.append(self._count)
                self._stages.append(stage)
                self._firsts.append(first)
                own_firsts, own_starts = self._own[stage]
                own_firsts.append(first)
                own_starts.append(self._count)
                self._count += end - first
                self._merged[stage] = end
            added += end - first

    def stretches(self, start: int) -> Iterator[tuple[int, int, int]]:
        """From line ``start`` of the run's log on, its segments as they stand: (the
        stage's position, the segment's first line in the stage's log, how many)."""
        with self._lock:
            segment = max(0, self._segment(start))
            found = []
            for at in range(segment, len(self._starts)):
                begin = self._starts[at]
                end = self._starts[at + 1] if at + 1 < len(self._starts) else self._count
                skip = max(0, start - begin)
                if end - begin > skip:
                    found.append((self._stages[at], self._firsts[at] + skip, end - begin - skip))
        return iter(found)

    def _time(self, stage: int, line: int) -> float:
        return self.indexes[stage].time_of(line)

    def _last_before(self, stage: int, size: int, head: tuple[float, int]) -> int:
        """The end of ``stage``'s lines that come before ``head`` (a time and a stage).

        Galloping from the start, then bisecting: stretches are short where stages
        alternate, and the lines probed then stay in the block already read."""
        low, step = self._merged[stage] + 1, 1
        while low + step <= size and (self._time(stage, low + step - 1), stage) < head:
            low += step
            step *= 2
        high = min(size, low + step - 1)
        while low < high:
            middle = (low + high) // 2
            if (self._time(stage, middle), stage) < head:
                low = middle + 1
            else:
                high = middle
        return low

    def _segment(self, line: int) -> int:
        return bisect.bisect_right(self._starts, line) - 1

    def place(self, line: int) -> tuple[int, int] | None:
        """Line ``line`` of the run's log: (its stage's position, its line there)."""
        with self._lock:
            if not 0 <= line < self._count:
                return None
            segment = self._segment(line)
            return self._stages[segment], self._firsts[segment] + line - self._starts[segment]

    def line(self, index: int) -> LogRecord | None:
        placed = self.place(index)
        return None if placed is None else self.indexes[placed[0]].line(placed[1])

    def stage_at(self, line: int) -> str | None:
        placed = self.place(line)
        return None if placed is None else self.names[placed[0]]

    def _in_run(self, stage: int, own: int) -> int:
        """Where line ``own`` of ``stage``'s log is in the run's (it must be placed)."""
        firsts, starts = self._own[stage]
        segment = bisect.bisect_right(firsts, own) - 1
        return starts[segment] + own - firsts[segment]

    def _placed_before(self, stage: int, line: int) -> int:
        """How many of ``stage``'s lines are placed before line ``line`` of the run's."""
        firsts, starts = self._own[stage]
        segment = bisect.bisect_right(starts, line - 1) - 1
        if segment < 0:
            return 0
        own_end = self._firsts_end(stage, segment)
        return min(own_end, firsts[segment] + line - starts[segment])

    def _firsts_end(self, stage: int, segment: int) -> int:
        firsts, _ = self._own[stage]
        return firsts[segment + 1] if segment + 1 < len(firsts) else self._merged[stage]

    def search(self, needle: str, start: int, *, forward: bool = True) -> int | None:
        """The first line after (or before) line ``start`` of the run's log whose
        content holds ``needle``, ignoring case; each stage's log is searched as
        `LogIndex.search` searches it."""
        with self._lock:
            count = self._count
        start = max(-1, min(start, count))
        found: list[int] = []
        for stage, index in enumerate(self.indexes):
            with self._lock:
                placed = self._merged[stage]
                before = self._placed_before(stage, start + 1 if forward else start)
            own_start = before - 1 if forward else before
            hit = index.search(needle, own_start, forward=forward)
            if hit is not None and hit < placed:
                with self._lock:
                    found.append(self._in_run(stage, hit))
        if not found:
            return None
        return min(found) if forward else max(found)

    def matches(self, needle: str, cancelled: Callable[[], bool] = lambda: False) -> array | None:
        """The lines of the run's log that hold ``needle`` (ignoring case), in order."""
        lines: list[int] = []
        for stage, index in enumerate(self.indexes):
            found = index.matches(needle, cancelled)
            if found is None:
                return None
            with self._lock:
                placed = self._merged[stage]
                lines += [self._in_run(stage, own) for own in found if own < placed]
        return array("q", sorted(lines))

    def close(self) -> None:
        for index in self.indexes:
            index.close()
