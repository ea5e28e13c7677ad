"""From raw pipe bytes to masked lines, metrics and events.

Every executor feeds what it reads into an `OutputSink`, in chunks of any
size. The sink splits lines without a length limit, masks secrets before
anything else sees the bytes, picks out ``::metric [step=N] name=value …``
lines (points of series) and reports batches of lines as `CommandOutput` events —
one event per chunk, not per line, so that a flood of output costs a few C-level
joins.
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from mlci_tui.checks import METRIC_NAME
from mlci_tui.events import CommandMetrics, CommandNoted, CommandOutput, Event
from mlci_tui.masking import SecretMasker
from mlci_tui.states import Stream
from mlci_tui.store.paths import open_unless_database

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
        self.cpu_seconds: float | None = None
        """The CPU time the attempt's command spent, once it has been reaped: kept here
        because a command stopped by a cancellation or a timeout returns no result."""
        self._seen = {} if seen is None else seen
        self._kept: dict[str, int] = {}
        self._pending = {Stream.STDOUT: b"", Stream.STDERR: b""}
        self._pending_since = {Stream.STDOUT: 0.0, Stream.STDERR: 0.0}
        # The start of a line already passed on in pieces, to spot a metric line.
        self._head = {Stream.STDOUT: b"", Stream.STDERR: b""}
        self._notes = 0
        self._ignored: set[str] = set()

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
        self.emit(CommandOutput(self.stage, stream, complete, now))
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
        self.emit(CommandOutput(self.stage, stream, piece, now, partial=True))

    def _parse_metrics(self, lines: list[bytes]) -> None:
        found: list[tuple[str, int | None, float]] = []
        for line in lines:
            if not line.startswith(METRIC_PREFIX):
                continue
            text = line[len(METRIC_PREFIX) :].decode("utf-8", "replace").strip()
            pairs = _line_pairs(text)
            if pairs is None:
                self._note_malformed(f"ignored a malformed metric line: {text[:200]!r}")
                continue
            step, values = pairs
            for name, raw in values:
                value = number_value(raw)
                if isinstance(value, float):
                    found.append((name, step, value))
                else:
                    self.ignore(name, value, raw)
        self._add_points(found)

    def add_metrics(self, metrics: dict[str, float], *, series: bool = True) -> None:
        """Single values: each is a point of its series, unless ``series`` is off (a
        cached stage's values, whose series is its source run's)."""
        if not series:
            if metrics:
                metrics = self.masker.mask_names(metrics)
                self.metrics.update(metrics)
                self.emit(CommandMetrics(self.stage, metrics, self.clock()))
            return
        self._add_points([(name, None, value) for name, value in metrics.items()])

    def add_file(self, found: MetricsFile) -> None:
        """What a metrics file held: its values, and a note for each thing ignored."""
        if found.problem is not None:
            self.note(found.problem)
        for name, why in found.ignored:
            self.ignore(name, why)
        self.add_metrics(found.metrics)

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
        self.emit(CommandMetrics(self.stage, last, self.clock(), tuple(points)))

    def note(self, text: str) -> None:
        """A note of mlci's own about the stage, masked like its output."""
        self.emit(CommandNoted(self.stage, self.masker.mask_text(text), self.clock()))

    def ignore(self, name: str, why: str, value: str | None = None) -> None:
        """A value of metric ``name`` was not kept: noted once per metric, and for at
        most `MAX_METRIC_NOTES` metrics, however many values a stage prints."""
        if name in self._ignored or len(self._ignored) >= MAX_METRIC_NOTES:
            return
        self._ignored.add(name)
        shown = f"ignored metric {_cut(name)!r}"
        shown += f": {why}" if value is None else f" = {_cut(value)!r}: {why}"
        if len(self._ignored) < MAX_METRIC_NOTES:
            self.note(shown)
        else:
            self.note(f"{shown}; further metrics with values ignored are not noted")

    def _note_malformed(self, text: str) -> None:
        # A stage printing malformed metric lines in a loop must not flood its log.
        self._notes += 1
        if self._notes < MAX_METRIC_NOTES:
            self.note(text)
        elif self._notes == MAX_METRIC_NOTES:
            self.note(f"{text}; further malformed metric lines are ignored without a note")


def _metric_lines(block: bytes, start: int) -> list[bytes]:
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


def _line_pairs(text: str) -> tuple[int | None, list[tuple[str, str]]] | None:
    """The step and the ``(name, value text)`` pairs of a metric line after its prefix;
    None when it is not ``[step=N] name=value …`` with at least one pair."""
    step: int | None = None
    pairs: list[tuple[str, str]] = []
    for token in text.split():
        match = _METRIC_PAIR.fullmatch(token)
        if match is None:
            return None
        name, raw = match.groups()
        if name != "step":
            pairs.append((name, raw))
        elif step is not None or not _STEP.fullmatch(raw):  # two steps: which one is meant?
            return None
        else:
            step = int(raw)
    return (step, pairs) if pairs else None


def number_value(text: str) -> float | str:
    """A metric value as written in ASCII decimal (``0.91``, ``-3e-5``), as a finite
    float64; else why it is not one. ``float()`` alone would also take full-width
    digits and ``1_000``."""
    if not _NUMBER.fullmatch(text):
        return "not a number"
    value = float(text)
    if math.isinf(value) and "n" not in text.lower():  # digits, not "inf"
        return OUT_OF_RANGE
    return finite(value)


def finite(value: object) -> float | str:
    """``value`` as a finite float64, or why it is not one: what a metric may hold."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"expected a number, got {_kind(value)}"
    try:
        value = float(value)
    except OverflowError:  # an int past the largest float
        return OUT_OF_RANGE
    return value if math.isfinite(value) else "not a finite number"


OUT_OF_RANGE = "beyond the float64 range (±1.8e308)"


def _kind(value: object) -> str:
    names = {str: "a string", list: "an array", type(None): "null", bool: "true or false"}
    return names.get(type(value), type(value).__name__)


def _cut(text: str, limit: int = 80) -> str:
    """At most ``limit`` characters of untrusted text, for a note."""
    return text if len(text) <= limit else f"{text[: limit - 1]}…"


_STEP = re.compile(r"[0-9]{1,18}")
# ASCII only: \d and float() also take other scripts' digits.
_NUMBER = re.compile(
    r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?(?:inf(?:inity)?|nan)", re.I
)

MAX_NESTING = 5
"""How deep a metrics file's objects may nest (``{"eval": {"f1": 0.9}}`` is 2);
what lies deeper is ignored, so no file can exhaust the JSON parser's stack."""
MAX_METRICS_FILE = 16 << 20
"""A larger metrics file is not read: it is removed, with a note."""


class MetricsFile(NamedTuple):
    """What a stage's ``$MLCI_METRICS_FILE`` held."""

    metrics: dict[str, float]
    ignored: list[tuple[str, str]]
    """Each metric not kept, and why."""
    problem: str | None = None
    """What was wrong with the file as a whole, if anything."""


def read_metrics_file(path: Path) -> MetricsFile:
    """Metrics a stage wrote to ``$MLCI_METRICS_FILE``.

    Nested objects are flattened with dots: ``{"eval": {"f1": 0.9}}`` → ``eval.f1``.
    Values that are not finite float64 numbers are ignored, and so is anything
    nested deeper than `MAX_NESTING`. A missing file is no metrics, not an error.
    """
    try:
        # Without blocking: a FIFO with no writer would hold the runner forever.
        # Never the store's database, which a link may lead to (`open_unless_database`).
        with open(open_unless_database(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as file:
            kind = _not_a_file(os.fstat(file.fileno()).st_mode)
            raw = b"" if kind else file.read(MAX_METRICS_FILE + 1)
    except FileNotFoundError:
        return MetricsFile({}, [])
    except OSError as error:
        return MetricsFile({}, [], f"cannot read the metrics file: {error.strerror}")
    if kind:  # a FIFO, a device or a link to one: its name goes, as nothing reads it
        path.unlink(missing_ok=True)
        return MetricsFile({}, [], f"the metrics file is {kind}, not a file: removed unread")
    if len(raw) > MAX_METRICS_FILE:
        path.unlink(missing_ok=True)
        limit = MAX_METRICS_FILE >> 20
        return MetricsFile({}, [], f"the metrics file is over {limit} MiB: removed unread")
    if not raw.strip():
        return MetricsFile({}, [])
    mark = f"mlci: cut {secrets.token_hex(16)}"
    try:
        text = _cut_deep(raw.decode(json.detect_encoding(raw), "surrogatepass"), mark)
        # Numbers as float64 from their text: an int's text is never made an int,
        # which past 4300 digits is refused and past 1.8e308 cannot be a float.
        data = json.loads(
            text, parse_int=_json_number, parse_float=_json_number, parse_constant=_json_constant
        )
    except ValueError:
        problem = 'the metrics file is not valid JSON; expected an object like {"accuracy": 0.9}'
        return MetricsFile({}, [], problem)
    if not isinstance(data, dict):
        return MetricsFile(
            {}, [], 'the metrics file must hold a JSON object like {"accuracy": 0.9}'
        )
    found = MetricsFile({}, [])
    _flatten(data, "", found, mark)
    return found


def _not_a_file(mode: int) -> str | None:
    """What a file of ``mode`` is when it is not a regular file (a directory cannot
    be opened as a file at all)."""
    if stat.S_ISREG(mode):
        return None
    return "a FIFO" if stat.S_ISFIFO(mode) else "a device or socket"


class _NotFinite(NamedTuple):
    """A number of the file that is no float64, and why: one past the float64 range,
    or ``NaN``, ``Infinity`` and ``-Infinity`` (which Python's JSON reads, JSON has none)."""

    why: str


def _json_number(text: str) -> float | _NotFinite:
    value = float(text)  # digits never make inf but past the float64 range
    return value if math.isfinite(value) else _NotFinite(OUT_OF_RANGE)


def _json_constant(text: str) -> _NotFinite:
    return _NotFinite("not a finite number")


def _flatten(data: dict[str, Any], prefix: str, found: MetricsFile, mark: str) -> None:
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            _flatten(value, f"{name}.", found, mark)
            continue
        if value == mark:
            found.ignored.append((name, f"nested deeper than {MAX_NESTING} levels"))
        elif isinstance(value, _NotFinite):
            found.ignored.append((name, value.why))
        elif not isinstance(number := finite(value), float):
            found.ignored.append((name, number))
        elif re.fullmatch(METRIC_NAME, name):
            found.metrics[name] = number
        else:
            found.ignored.append((name, "not a valid metric name"))


# A JSON string (its escapes whole), or a run of opening or of closing brackets.
_JSON_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[{]+|[\]}]+')


def _cut_deep(text: str, mark: str) -> str:
    """``text`` with each object or array nested deeper than `MAX_NESTING` replaced by
    the string ``mark``: found by a scan, never by recursion. ``ValueError`` for
    brackets that cannot be JSON's (a closing one too many, an opening one unclosed)."""
    if text.count("{") + text.count("[") <= MAX_NESTING:
        return text
    kept: list[str] = []
    depth = copied = cut = 0
    for token in _JSON_TOKEN.finditer(text):
        run, start = token.group(), token.start()
        if run[0] == '"':
            continue
        if run[0] in "{[":
            if depth <= MAX_NESTING < depth + len(run):
                cut = start + MAX_NESTING - depth  # the bracket one level too deep
            depth += len(run)
            continue
        if depth - len(run) <= MAX_NESTING < depth:
            kept += [text[copied:cut], json.dumps(mark)]
            copied = start + depth - MAX_NESTING  # after the bracket that closes it
        depth -= len(run)
        if depth < 0:
            raise ValueError("a closing bracket too many")
    if depth > MAX_NESTING:
        raise ValueError("an unclosed bracket")
    return "".join([*kept, text[copied:]])
