"""Plain terminal output: live ``[stage] line`` streaming, summaries and tables.

Used by the headless commands. On a terminal, stage output is made safe
(`textsafe`) and stage names are coloured unless ``NO_COLOR`` is set; into a
file or pipe the bytes go through exactly as the stage printed them. Under
GitHub Actions each stage becomes a collapsible log group.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

from mlci_tui.pipeline.events import (
    Event,
    RunNoted,
    StageFinished,
    StageNoted,
    StageOutput,
    StageStarted,
)
from mlci_tui.states import RunState, StageState, Stream
from mlci_tui.store.logs import LogCursor
from mlci_tui.store.records import RunRecord, StageRecord
from mlci_tui.textsafe import decode, terminal_line
from mlci_tui.units import format_bytes, format_duration

_STAGE_COLORS = ("36", "35", "33", "32", "34", "96", "95", "93")
_STATE_COLORS = {
    StageState.PASSED: "32",
    StageState.FAILED: "31",
    StageState.RUNNING: "33",
    StageState.CANCELLED: "35",
    StageState.SKIPPED: "2",
    StageState.PENDING: "2",
    RunState.PASSED: "32",
    RunState.FAILED: "31",
    RunState.RUNNING: "33",
    RunState.CANCELLED: "35",
    RunState.INTERRUPTED: "35",
}


def use_color(stream: BinaryIO, environ: dict[str, str] | os._Environ[str]) -> bool:
    """Colour only on a terminal, and never when ``NO_COLOR`` is set (no-color.org)."""
    return _isatty(stream) and not environ.get("NO_COLOR") and environ.get("TERM") != "dumb"


def _isatty(stream: BinaryIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def paint(text: str, code: str | None, color: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if color and code else text


def github_escape(text: str) -> str:
    """Escape a workflow-command value as GitHub Actions expects."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


class LivePrinter:
    """An engine subscriber that prints a run as it happens."""

    def __init__(
        self,
        out: BinaryIO,
        stages: Sequence[str],
        *,
        terminal: bool,
        color: bool,
        github: bool = False,
        log_path: Callable[[str], Path] | None = None,
    ) -> None:
        self.out = out
        self.terminal = terminal
        self.color = color
        self.github = github
        self.log_path = log_path
        width = max((len(name) for name in stages), default=0)
        self.prefix = {
            name: (
                paint(f"[{name}]", _STAGE_COLORS[i % len(_STAGE_COLORS)], color)
                + " " * (width - len(name) + 1)
            ).encode()
            for i, name in enumerate(stages)
        }
        self.broken = False
        # The (stage, stream) whose last line on screen has not ended yet.
        self._open_line: tuple[str, Stream] | None = None
        # GitHub Actions: the stage whose group is open and streams live.
        self._live: str | None = None
        self._running: set[str] = set()
        self._waiting: list[StageFinished] = []

    def __call__(self, event: Event) -> None:
        if self.broken:
            return
        try:
            if self.github:
                self._github(event)
            else:
                self._plain(event)
            self.out.flush()
        except OSError:
            # The terminal went away (SIGHUP, a closed pipe): the run goes on, recorded.
            self.broken = True

    # Plain and terminal output ---------------------------------------------

    def _plain(self, event: Event) -> None:
        if isinstance(event, StageOutput):
            self._output(event, self.prefix[event.stage])
        elif isinstance(event, StageStarted):
            retry = (
                f" (attempt {event.attempt} of {event.max_attempts})" if event.attempt > 1 else ""
            )
            self._note(event.stage, f"started{retry}")
        elif isinstance(event, StageNoted):
            self._note(event.stage, event.text)
        elif isinstance(event, StageFinished):
            self._note(event.stage, describe_finish(event), self._state_code(event.state))
        elif isinstance(event, RunNoted):
            self._end_open_line()
            self.out.write(f"mlci: {event.text}\n".encode())

    def _output(self, event: StageOutput, prefix: bytes) -> None:
        lines = event.lines
        if self.terminal:
            lines = [terminal_line(decode(line), keep_color=self.color).encode() for line in lines]
        key = (event.stage, event.stream)
        if self._open_line == key:
            head = b""
        else:
            self._end_open_line()
            head = prefix
        tail = b"" if event.partial else b"\n"
        self.out.write(head + (b"\n" + prefix).join(lines) + tail)
        self._open_line = key if event.partial else None

    def _note(self, stage: str, text: str, code: str | None = "2") -> None:
        self._end_open_line()
        line = paint("-- " + terminal_line(text, keep_color=False), code, self.color)
        self.out.write(self.prefix[stage] + line.encode() + b"\n")

    def _end_open_line(self) -> None:
        if self._open_line is not None:
            self.out.write(b"\n")
            self._open_line = None

    def _state_code(self, state: StageState) -> str | None:
        return _STATE_COLORS.get(state)

    # GitHub Actions ----------------------------------------------------------

    def _github(self, event: Event) -> None:
        """One group per stage. Groups cannot interleave, so only a stage running
        alone streams live; the others are replayed from their log when they end."""
        if isinstance(event, StageStarted):
            if event.stage in self._running:
                return
            self._running.add(event.stage)
            if self._live is None and len(self._running) == 1:
                self._live = event.stage
                self.out.write(f"::group::{event.stage}\n".encode())
        elif isinstance(event, StageOutput) and event.stage == self._live:
            tail = b"" if event.partial else b"\n"
            self.out.write(b"\n".join(event.lines) + tail)
        elif isinstance(event, StageNoted) and event.stage == self._live:
            self.out.write(f"-- {event.text}\n".encode())
        elif isinstance(event, StageFinished):
            self._running.discard(event.stage)
            if event.stage == self._live:
                self.out.write(f"-- {describe_finish(event)}\n::endgroup::\n".encode())
                self._live = None
                self._annotate(event)
            else:
                self._waiting.append(event)
            if self._live is None:
                for finished in self._waiting:
                    self._replay(finished)
                self._waiting.clear()
        elif isinstance(event, RunNoted):
            self.out.write(f"mlci: {event.text}\n".encode())

    def _replay(self, event: StageFinished) -> None:
        if event.started_at is None or self.log_path is None:
            self.out.write(f"-- {event.stage}: {describe_finish(event)}\n".encode())
            self._annotate(event)
            return
        self.out.write(f"::group::{event.stage}\n".encode())
        for record in LogCursor(self.log_path(event.stage)).read():
            if record.stream is Stream.MESSAGE:
                self.out.write(b"-- " + record.content + b"\n")
            else:
                self.out.write(record.content + (b"" if record.partial else b"\n"))
        self.out.write(f"-- {describe_finish(event)}\n::endgroup::\n".encode())
        self._annotate(event)

    def _annotate(self, event: StageFinished) -> None:
        if event.state is StageState.FAILED:
            title = github_escape(f"stage {event.stage} failed").replace(",", "%2C")
            message = github_escape(event.message or "failed")
            self.out.write(f"::error title={title}::{message}\n".encode())


def describe_finish(event: StageFinished | StageRecord) -> str:
    """``passed in 2.71s``, ``failed in 0.4s: exit code 1``, ``skipped: test did not pass``."""
    state = event.state.value
    duration = event.duration_s if isinstance(event, StageFinished) else event.duration_s()
    text = state if duration is None else f"{state} in {format_duration(duration)}"
    if event.message and event.state is not StageState.PASSED:
        text += f": {event.message}"
    return text


# Tables --------------------------------------------------------------------


def render_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]
) -> list[str]:
    """Columns padded to their widest cell; ``right`` holds right-aligned column indexes."""
    cells = [list(headers), *[list(row) for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        parts = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append("  ".join(parts).rstrip())
    return lines


def stage_table(
    stages: Sequence[StageRecord], *, color: bool, now: float | None = None
) -> list[str]:
    """The summary table: stage, state, duration, CPU, peak RSS, exit code, note."""
    rows = []
    for stage in stages:
        attempts = f" ({stage.attempt}/{stage.max_attempts})" if stage.attempt > 1 else ""
        note = (stage.failed_gate and f"gate {stage.failed_gate}") or stage.message or ""
        if stage.state is StageState.PASSED:
            note = ""
        if stage.state is StageState.RUNNING and stage.cpu_percent is not None:
            note = f"cpu {stage.cpu_percent:.0f}%  rss {format_bytes(stage.rss_bytes)}"
        rows.append(
            [
                stage.name,
                stage.state.value + attempts,
                format_duration(stage.duration_s(now)),
                "-" if stage.cpu_seconds is None else f"{stage.cpu_seconds:.2f}s",
                format_bytes(stage.peak_rss_bytes),
                "-" if stage.exit_code is None else str(stage.exit_code),
                terminal_line(note, keep_color=False),
            ]
        )
    headers = ["STAGE", "STATE", "DURATION", "CPU", "PEAK RSS", "EXIT", "NOTE"]
    lines = render_table(headers, rows, right={2, 3, 4, 5})
    if not color:
        return lines
    painted = [paint(lines[0], "1", color)]
    for line, stage in zip(lines[1:], stages, strict=True):
        word = stage.state.value
        start = line.index(word, len(stage.name))
        code = _STATE_COLORS.get(stage.state)
        painted.append(line[:start] + paint(word, code, color) + line[start + len(word) :])
    return painted


def run_summary(run: RunRecord, *, color: bool, now: float | None = None) -> list[str]:
    """A header line and the stage table, as `mlci run` ends and `mlci status` shows."""
    now = time.time() if now is None else now
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run.started_at))
    state = paint(run.state.value, _STATE_COLORS.get(run.state), color)
    duration = format_duration(run.duration_s(now))
    header = f"{run.pipeline} · run {run.id} · {state} · started {started} · {duration}"
    lines = [terminal_line(header, keep_color=color), ""]
    lines += stage_table(run.stages, color=color, now=now)
    if run.message and run.state is not RunState.PASSED:
        lines += ["", terminal_line(run.message, keep_color=False)]
    return lines
