"""From raw pipe bytes to masked lines, metrics and events.

Every executor feeds what it reads into an `OutputSink`, in chunks of any
size. The sink splits lines without a length limit, masks secrets before
anything else sees the bytes, picks out ``::metric [step=N] name=value …``
lines (points of series) and reports batches of lines as `StageOutput` events —
one event per chunk, not per line, so that a flood of output costs a few C-level
joins.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlci_tui.checks import METRIC_NAME
from mlci_tui.events import Event, StageMetrics, StageNoted, StageOutput
from mlci_tui.masking import SecretMasker
from mlci_tui.states import Stream

PIECE_LIMIT = 1 << 20
"""A line longer than this is passed on in pieces, so memory stays bounded."""
STALE_AFTER_S = 0.25
"""An unfinished line older than this is passed on, so viewers see progress bars."""
MAX_METRIC_NOTES = 10
SERIES_POINTS = 100_000
"""A series keeps this many points at full density; past each further this many,
it keeps ten times fewer (every 10th, then every 100th, …), so a stage printing
millions of metric lines costs the store little."""

METRIC_PREFIX = b"::metric "
_METRIC_PAIR = re.compile(rf"({METRIC_NAME})=(\S+)")
_HEAD_KEEP = 4096


class OutputSink:
    """Turns one stage attempt's stdout and stderr bytes into events."""

    def __init__(
        self,
        stage: str,
        masker: SecretMasker,
        emit: Callable[[Event], None],
        clock: Callable[[], float] = time.time,
        *,
        seen: dict[str, int] | None = None,
    ) -> None:
        """``seen`` counts each metric's points: sinks that share it number their
        points as one series (the samples of a monitor, one sink each)."""
        self.stage = stage
        self.masker = masker
        self.emit = emit
        self.clock = clock
        self.metrics: dict[str, float] = {}
        self._seen = {} if seen is None else seen
        self._kept: dict[str, int] = {}
        self._pending = {Stream.STDOUT: b"", Stream.STDERR: b""}
        self._pending_since = {Stream.STDOUT: 0.0, Stream.STDERR: 0.0}
        # The start of a line already passed on in pieces, to spot a metric line.
        self._head = {Stream.STDOUT: b"", Stream.STDERR: b""}
        self._notes = 0

    def feed(self, stream: Stream, data: bytes) -> None:
        pending = self._pending[stream]
        # What is pending never holds a newline: only the new bytes need searching.
        end = data.rfind(b"\n")
        if end < 0:
            if data and not pending:
                self._pending_since[stream] = self.clock()
            self._pending[stream] = pending + data
            if len(pending) + len(data) > PIECE_LIMIT:
                self._release_piece(stream)
            return
        now = self.clock()
        rest = data[end + 1 :]
        self._pending[stream] = rest
        self._pending_since[stream] = now
        # One copy of the chunk, the least a slice costs: a flood is all chunks.
        complete = self.masker.mask(b"".join((pending, memoryview(data)[:end])))
        head = self._head[stream]
        start = 0
        if head:
            # The first line of the block ends a line already passed on in pieces:
            # it is a metric line only if that line's start is, however short.
            self._head[stream] = b""
            first = complete.find(b"\n")
            start = len(complete) if first < 0 else first + 1
            if (head + complete[: len(METRIC_PREFIX)]).startswith(METRIC_PREFIX):
                self._parse_metrics([head + complete[: start - (first >= 0)]])
        # rfind: the forward search switches to two-way on large chunks, twice as slow.
        if complete.rfind(METRIC_PREFIX, start) >= 0:
            self._parse_metrics(_metric_lines(complete, start))
        self.emit(StageOutput(self.stage, stream, complete, now))
        if len(rest) > PIECE_LIMIT:
            self._release_piece(stream)

    def flush_stale(self) -> None:
        """Pass on unfinished lines that have waited longer than `STALE_AFTER_S`."""
        now = self.clock()
        for stream, pending in self._pending.items():
            if pending and now - self._pending_since[stream] >= STALE_AFTER_S:
                self._release_piece(stream)

    def close(self) -> None:
        """End of output: pass on whatever is left, even without a final newline."""
        for stream, pending in self._pending.items():
            if pending:
                self._release_piece(stream, final=True)
            # The last line never ended: it may still be a metric line.
            head, self._head[stream] = self._head[stream], b""
            if head.startswith(METRIC_PREFIX):
                self._parse_metrics([head])

    def _release_piece(self, stream: Stream, *, final: bool = False) -> None:
        data = self.masker.mask(self._pending[stream])
        cut = len(data) if final else self.masker.safe_split(data)
        if cut == 0:
            self._pending[stream] = data
            return
        piece, self._pending[stream] = data[:cut], data[cut:]
        now = self.clock()
        self._pending_since[stream] = now
        head = self._head[stream]
        if len(head) < _HEAD_KEEP:
            self._head[stream] = head + piece[: _HEAD_KEEP - len(head)]
        self.emit(StageOutput(self.stage, stream, piece, now, partial=True))

    def _parse_metrics(self, lines: list[bytes]) -> None:
        found: list[tuple[str, int | None, float]] = []
        for line in lines:
            if not line.startswith(METRIC_PREFIX):
                continue
            text = line[len(METRIC_PREFIX) :].decode("utf-8", "replace").strip()
            pairs = text.split()
            matches = [_METRIC_PAIR.fullmatch(pair) for pair in pairs]
            step: int | None = None
            values: list[tuple[str, float]] = []
            for match in matches:
                if match is None:
                    values = []
                    break
                name, raw = match.groups()
                if name == "step":
                    if step is not None:  # two steps: which one is meant?
                        values = []
                        break
                    step = _step(raw)
                    if step is None:
                        values = []
                        break
                    continue
                value = _number(raw)
                if value is None:
                    values = []
                    break
                values.append((name, value))
            if not values:
                self._note_malformed(f"ignored a malformed metric line: {text[:200]!r}")
                continue
            found.extend((name, step, value) for name, value in values)
        self._add_points(found)

    def add_metrics(self, metrics: dict[str, float], *, series: bool = True) -> None:
        """Single values (a metrics file's): each is a point of its series, unless
        ``series`` is off (a cached stage's values, whose series is its source run's)."""
        if not series:
            if metrics:
                metrics = self.masker.mask_names(metrics)
                self.metrics.update(metrics)
                self.emit(StageMetrics(self.stage, metrics, self.clock()))
            return
        self._add_points([(name, None, value) for name, value in metrics.items()])

    def _add_points(self, found: list[tuple[str, int | None, float]]) -> None:
        if not found:
            return
        if self.masker.forms:
            found = [(self.masker.mask_text(name), step, value) for name, step, value in found]
        last: dict[str, float] = {}
        points: list[tuple[str, int, float]] = []
        for name, step, value in found:
            seen = self._seen.get(name, 0)
            self._seen[name] = seen + 1
            last[name] = value
            kept = self._kept.get(name, 0)
            stride = 10 ** (kept // SERIES_POINTS)
            if seen % stride:
                continue
            self._kept[name] = kept + 1
            points.append((name, seen if step is None else step, value))
            if (kept + 1) % SERIES_POINTS == 0:
                self.note(
                    f"metric {name}: {kept + 1} points kept; from here on every"
                    f" {stride * 10}th is kept"
                )
        self.metrics.update(last)
        self.emit(StageMetrics(self.stage, last, self.clock(), tuple(points)))

    def note(self, text: str) -> None:
        """A note of mlci's own about the stage, masked like its output."""
        self.emit(StageNoted(self.stage, self.masker.mask_text(text), self.clock()))

    def _note_malformed(self, text: str) -> None:
        # A stage printing malformed metric lines in a loop must not flood its log.
        self._notes += 1
        if self._notes < MAX_METRIC_NOTES:
            self.note(text)
        elif self._notes == MAX_METRIC_NOTES:
            self.note(f"{text}; further malformed metric lines are ignored without a note")


def _metric_lines(block: bytes, start: int = 0) -> list[bytes]:
    """The lines of ``block`` from ``start`` (a line start) that start with
    `METRIC_PREFIX`, found without splitting the block: under a flood, most lines
    are not metric lines."""
    if not block.startswith(METRIC_PREFIX, start):
        start = block.find(_METRIC_LINE, start) + 1
        if not start:
            return []
    found = []
    while True:
        end = block.find(b"\n", start)
        if end < 0:
            found.append(block[start:])
            return found
        found.append(block[start:end])
        start = block.find(_METRIC_LINE, end) + 1
        if not start:
            return found


_METRIC_LINE = b"\n" + METRIC_PREFIX


def _step(text: str) -> int | None:
    # ASCII digits only: str.isdigit() also takes "²", which int() refuses.
    return int(text) if _STEP.fullmatch(text) else None


def _number(text: str) -> float | None:
    # As written in ASCII: float() would also take full-width digits and "1_000".
    if not _NUMBER.fullmatch(text):
        return None
    value = float(text)
    return value if math.isfinite(value) else None


_STEP = re.compile(r"[0-9]{1,18}")
_NUMBER = re.compile(
    r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?(?:inf|nan)", re.I
)


def read_metrics_file(path: Path) -> tuple[dict[str, float], list[str]]:
    """Metrics a stage wrote to ``$MLCI_METRICS_FILE``, and what was wrong with the file.

    Nested objects are flattened with dots: ``{"eval": {"f1": 0.9}}`` → ``eval.f1``.
    A missing file is no metrics, not an error.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}, []
    except OSError as error:
        return {}, [f"cannot read the metrics file: {error.strerror}"]
    if not raw.strip():
        return {}, []
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return {}, ['the metrics file is not valid JSON; expected an object like {"accuracy": 0.9}']
    if not isinstance(data, dict):
        return {}, ['the metrics file must hold a JSON object like {"accuracy": 0.9}']
    metrics: dict[str, float] = {}
    problems: list[str] = []
    _flatten(data, "", metrics, problems)
    return metrics, problems


def _flatten(data: dict[str, Any], prefix: str, out: dict[str, float], problems: list[str]) -> None:
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            _flatten(value, f"{name}.", out, problems)
        elif (
            isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        ):
            if re.fullmatch(METRIC_NAME, name):
                out[name] = float(value)
            else:
                problems.append(f"ignored metric {name[:80]!r}: not a valid metric name")
        else:
            problems.append(f"ignored metric {name[:80]!r}: expected a finite number")
