"""From raw pipe bytes to masked lines, metrics and events.

Every executor feeds what it reads into an `OutputSink`, in chunks of any
size. The sink splits lines without a length limit, masks secrets before
anything else sees the bytes, picks out ``::metric name=value`` lines and
reports batches of lines as `StageOutput` events — one event per chunk, not
per line, so that a flood of output costs a few C-level joins.
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
    ) -> None:
        self.stage = stage
        self.masker = masker
        self.emit = emit
        self.clock = clock
        self.metrics: dict[str, float] = {}
        self._pending = {Stream.STDOUT: b"", Stream.STDERR: b""}
        self._pending_since = {Stream.STDOUT: 0.0, Stream.STDERR: 0.0}
        # The start of a line already passed on in pieces, to spot a metric line.
        self._head = {Stream.STDOUT: b"", Stream.STDERR: b""}
        self._notes = 0

    def feed(self, stream: Stream, data: bytes) -> None:
        pending = self._pending[stream]
        if pending:
            data = pending + data
        # What is pending never holds a newline: only the new bytes need searching.
        end = data.rfind(b"\n", len(pending))
        if end < 0:
            if data and not pending:
                self._pending_since[stream] = self.clock()
            self._pending[stream] = data
            if len(data) > PIECE_LIMIT:
                self._release_piece(stream)
            return
        now = self.clock()
        rest = data[end + 1 :]
        self._pending[stream] = rest
        self._pending_since[stream] = now
        complete = self.masker.mask(data[:end])
        lines = complete.split(b"\n")
        head = self._head[stream]
        if head:
            self._head[stream] = b""
            if head.startswith(METRIC_PREFIX):
                self._parse_metrics([head + lines[0]])
        if METRIC_PREFIX in complete:
            self._parse_metrics(lines)
        self.emit(StageOutput(self.stage, stream, lines, now))
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
        self.emit(StageOutput(self.stage, stream, [piece], now, partial=True))

    def _parse_metrics(self, lines: list[bytes]) -> None:
        found: dict[str, float] = {}
        for line in lines:
            if not line.startswith(METRIC_PREFIX):
                continue
            text = line[len(METRIC_PREFIX) :].decode("utf-8", "replace").strip()
            pairs = text.split()
            matches = [_METRIC_PAIR.fullmatch(pair) for pair in pairs]
            values = [_number(m.group(2)) if m else None for m in matches]
            if not pairs or any(v is None for v in values):
                self._note_malformed(f"ignored a malformed metric line: {text[:200]!r}")
                continue
            for match, value in zip(matches, values, strict=True):
                assert match is not None and value is not None
                found[match.group(1)] = value
        self.add_metrics(found)

    def add_metrics(self, metrics: dict[str, float]) -> None:
        if metrics:
            metrics = self.masker.mask_names(metrics)
            self.metrics.update(metrics)
            self.emit(StageMetrics(self.stage, metrics, self.clock()))

    def note(self, text: str) -> None:
        """A note of mlci's own about the stage, masked like its output."""
        self.emit(StageNoted(self.stage, self.masker.mask_text(text), self.clock()))

    def _note_malformed(self, text: str) -> None:
        # A stage printing malformed metric lines in a loop must not flood its log.
        self._notes += 1
        if self._notes <= MAX_METRIC_NOTES:
            self.note(text)


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


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
