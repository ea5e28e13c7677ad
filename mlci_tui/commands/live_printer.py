"""Live ``[stage] line`` output of `mlci run`, and the writer behind it.

On a terminal, stage output is made safe (`textsafe`) and stage names are
coloured unless ``NO_COLOR`` is set; into a file or pipe the bytes go through
exactly as the stage printed them. Under GitHub Actions each stage becomes a
collapsible log group and the first failures become annotations; under GitLab CI
each stage's output is a collapsible section, printed when the stage ends so that
it can be collapsed when it passed (GitLab decides that when the section starts).
In both, nothing a stage prints is read as the CI system's markup (`ci_markup`).
"""

from __future__ import annotations

import collections
import fcntl
import os
import re
import stat
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

from mlci_tui.commands.ci_markup import (
    GitLabSectionFilter,
    github_escape,
    github_property,
    github_quoted,
    gitlab_plain,
    resume_commands,
    stop_commands,
    stop_token,
)
from mlci_tui.commands.console import STATE_COLORS, paint
from mlci_tui.events import (
    CommandNoted,
    CommandOutput,
    Event,
    RunNoted,
    StageFinished,
    StageStarted,
)
from mlci_tui.states import StageState, Stream
from mlci_tui.store.logs import LogCursor, Note
from mlci_tui.store.records import StageRecord
from mlci_tui.store.run_log import stage_labels
from mlci_tui.textsafe import decode, terminal_line, visible_text
from mlci_tui.units import format_bytes, format_duration

OPEN_LINE_KEEP = 1 << 16
"""How much of an unfinished line is kept to draw it again after a carriage return."""
_OPEN_LOCK = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
MAX_ANNOTATIONS = 10
"""GitHub shows at most this many error annotations of a step; the rest are lost."""


class BackgroundWriter:
    """Writes to a stream from its own thread, so that a terminal that stops reading
    (Ctrl-S, a pager, a dead SSH session) never stalls the run.

    Up to `limit` bytes wait in memory; a writer waits at most a second for room,
    and once output had to be dropped, it stops waiting until the backlog clears.
    What is dropped here is only the live view: the log files hold everything,
    and a note says, in its place, how much was not shown. Lines written with
    `line` (what a CI system reads as a command) are never dropped.
    """

    def __init__(
        self, stream: BinaryIO, limit: int = 16 << 20, *, shared: Path | None = None
    ) -> None:
        self.stream = stream
        self._shared = None if shared is None else os.open(shared, _OPEN_LOCK, 0o600)
        """A lock file several processes writing whole lines into one stream take
        turns on (`mlci exp run`'s workers): a write is never cut by another's."""
        self.limit = limit
        self.broken = False
        self._chunks: collections.deque[bytes] = collections.deque()
        self._size = 0
        self._dropped = 0
        self._stalled = False
        self._writing = False
        """Whether the thread is writing a batch (the reader may be stalled on it)."""
        self._closing = False
        self._line_ended = True
        """Whether what was queued last ends a line."""
        self._lock = threading.Condition()
        self._direct = _never_blocks(stream)
        """Into a file or /dev/null, which take what they are given at once: written
        here, without a thread in between."""
        self._thread = threading.Thread(target=self._drain, name="mlci-output", daemon=True)
        if not self._direct:
            self._thread.start()

    def write(self, *parts: bytes) -> None:
        """Queue ``parts`` to be written in order (parts, not one joined chunk: under
        a flood, joining would copy every chunk once more)."""
        self._queue(parts, keep=False)

    def line(self, text: bytes) -> None:
        """Queue ``text``, which ends with a newline, on a line of its own, however
        full the queue is."""
        self._queue((text,), keep=True)

    def _queue(self, parts: Sequence[bytes], *, keep: bool) -> None:
        size = sum(map(len, parts))
        if self._direct:
            self._write_now(parts, size, keep=keep)
            return
        with self._lock:
            if self.broken or not size:
                return
            if not keep:
                clear = not self._chunks and not self._writing
                if self._stalled and clear and size <= self.limit:
                    self._stalled = False  # the backlog is written: show output again
                if not self._stalled:
                    self._lock.wait_for(lambda: self._size + size <= self.limit, timeout=1.0)
                if self._stalled or self._size + size > self.limit:
                    # Dropped until the backlog clears, however small: one gap, one note.
                    self._dropped += size
                    self._stalled = True
                    return
            # The drainer waits only on an empty queue: whoever filled it woke it.
            idle = not self._chunks
            self._note_dropped()
            if keep and not self._line_ended:
                self._add(b"\n")
            for part in parts:
                self._add(part)
            if idle:
                self._lock.notify_all()

    def _write_now(self, parts: Sequence[bytes], size: int, *, keep: bool) -> None:
        with self._lock:
            if self.broken or not size:
                return
            if keep and not self._line_ended:
                parts = (b"\n", *parts)
            self._line_ended = next((p for p in reversed(parts) if p), b"\n").endswith(b"\n")
            try:
                self._write_out(parts)
            except (OSError, ValueError):
                self.broken = True

    def _write_out(self, parts: Sequence[bytes]) -> None:
        if self._shared is None:
            self.stream.writelines(parts)
            self.stream.flush()
            return
        fcntl.flock(self._shared, fcntl.LOCK_EX)
        try:
            self.stream.writelines(parts)
            self.stream.flush()
        finally:
            fcntl.flock(self._shared, fcntl.LOCK_UN)

    def _add(self, part: bytes) -> None:
        if part:
            self._chunks.append(part)
            self._size += len(part)
            self._line_ended = part.endswith(b"\n")

    def _note_dropped(self) -> None:
        """Where output was dropped, a line that says so (with the lock held)."""
        if self._dropped:
            dropped, self._dropped = self._dropped, 0
            self._add(
                f"\nmlci: {format_bytes(dropped)} of output were not shown here because"
                " the terminal was not reading; the logs have all of it\n".encode()
            )

    def close(self, timeout: float | None = None) -> None:
        """Write out what is queued (waiting up to ``timeout``) and stop the thread."""
        if not self._direct:
            with self._lock:
                self._note_dropped()
                self._closing = True
                self._lock.notify_all()
            self._thread.join(timeout)
        if self._shared is not None and not self._thread.is_alive():
            os.close(self._shared)
            self._shared = None

    def _drain(self) -> None:
        while True:
            with self._lock:
                self._lock.wait_for(lambda: self._chunks or self._closing)
                if not self._chunks and self._closing:
                    return
                batch = list(self._chunks)
                self._chunks.clear()
                self._size = 0
                self._writing = True
                self._lock.notify_all()
            try:
                self._write_out(batch)
            except (OSError, ValueError):
                with self._lock:
                    self.broken = True
                    self._chunks.clear()
                    self._lock.notify_all()
                return
            finally:
                with self._lock:
                    self._writing = False


def _never_blocks(stream: BinaryIO) -> bool:
    """Whether writes to ``stream`` complete at once: a regular file, or /dev/null."""
    try:
        mode = os.fstat(stream.fileno())
    except (OSError, ValueError):
        return False
    if stat.S_ISREG(mode.st_mode):
        return True
    try:
        null = os.stat(os.devnull)
    except OSError:
        return False
    return stat.S_ISCHR(mode.st_mode) and mode.st_rdev == null.st_rdev


class LivePrinter:
    """An engine subscriber that prints a run as it happens."""

    def __init__(
        self,
        out: BackgroundWriter,
        stages: Sequence[str],
        *,
        terminal: bool,
        color: bool,
        github: bool = False,
        gitlab: bool = False,
        log_path: Callable[[str], Path] | None = None,
        label: str = "",
    ) -> None:
        """``label`` starts every line (an experiment's, of several printing at once):
        then no line is left open for the next output to continue, since another
        process's line may come in between."""
        self.out = out
        self.whole_lines = bool(label)
        self.terminal = terminal
        self.color = color
        self.github = github
        self.gitlab = gitlab and not github
        self.log_path = log_path
        self._annotations = 0
        head = paint(visible_text(label), "1", color) + " " if label else ""
        self.head = head.encode()
        self.prefix = {
            name: (head + paint(stage.text, stage.color, color) + stage.pad).encode()
            for name, stage in stage_labels(stages).items()
        }
        self._broken = False
        # The (stage, stream) whose last line on screen has not ended yet.
        self._open_line: tuple[str, Stream] | None = None
        self._open_raw = b""
        """What the open line shows so far, as printed (on a terminal)."""
        self._last_note: dict[str, str] = {}
        # GitHub Actions: the stage whose group is open and streams live.
        self._live: str | None = None
        self._running: set[str] = set()
        self._waiting: list[StageFinished] = []
        self._token = ""
        """The open group's stop-commands token."""

    def close(self) -> None:
        """Finish writing: the writer drains its queue."""
        self.out.close()

    @property
    def broken(self) -> bool:
        """Whether the output went away (a closed pipe, a lost terminal)."""
        return self._broken or self.out.broken

    def __call__(self, event: Event) -> None:
        if self.broken:
            return
        try:
            if self.github:
                self._github(event)
            elif self.gitlab:
                self._gitlab(event)
            else:
                self._plain(event)
        except OSError:
            # A stage's log could not be replayed (GitHub Actions): the run goes on, recorded.
            self._broken = True

    # Plain and terminal output ---------------------------------------------

    def _plain(self, event: Event) -> None:
        if isinstance(event, CommandOutput):
            self._output(event, self.prefix[event.stage])
        elif isinstance(event, StageStarted):
            retry = (
                f" (attempt {event.attempt} of {event.max_attempts})" if event.attempt > 1 else ""
            )
            self._note(event.stage, f"started{retry}")
        elif isinstance(event, CommandNoted):
            self._last_note[event.stage] = event.text
            self._note(event.stage, event.text)
        elif isinstance(event, StageFinished):
            # A reason just printed as a note (a failed gate) is not printed again.
            said = self._last_note.pop(event.stage, None) == event.message
            finish = describe_finish(event._replace(message=None) if said else event)
            self._note(event.stage, finish, STATE_COLORS.get(event.state))
        elif isinstance(event, RunNoted):
            self._end_open_line()
            self.out.write(self.head + f"mlci: {visible_text(event.text)}\n".encode())

    def _output(self, event: CommandOutput, prefix: bytes) -> None:
        if self.whole_lines and event.partial:
            event = event._replace(partial=False)
        key = (event.stage, event.stream)
        continuing = self._open_line == key
        if not continuing:
            self._end_open_line()
        if self.terminal:
            self._on_terminal(event, prefix, continuing)
        else:
            # Into a file or a pipe: the bytes exactly as the stage printed them.
            head = b"" if continuing else prefix
            tail = b"" if event.partial else b"\n"
            self.out.write(head, event.data.replace(b"\n", b"\n" + prefix), tail)
        self._open_line = key if event.partial else None

    def _on_terminal(self, event: CommandOutput, prefix: bytes, continuing: bool) -> None:
        """Lines made safe; a line redrawn with carriage returns (a progress bar) is
        redrawn in place, showing its latest state, as the stage's own terminal would."""
        lines = event.data.split(b"\n")
        opened = self._open_raw if continuing else b""
        chunks: list[bytes] = []
        for number, raw in enumerate(lines):
            if number == 0 and continuing and b"\r" in raw:
                # Drawn again from the start of the line, as it shows now.
                chunks.append(b"\r\x1b[2K" + prefix + self._safe(opened + raw))
            elif number == 0 and continuing:
                chunks.append(self._safe(raw))
            else:
                chunks.append(prefix + self._safe(raw))
            if number < len(lines) - 1 or not event.partial:
                chunks.append(b"\n")
        last = (opened + lines[0]) if len(lines) == 1 else lines[-1]
        # Only what follows the last carriage return can still show: keep that, or
        # its end for a line that long (no progress bar is), so a huge line streamed
        # in pieces is not copied over and over.
        self._open_raw = last[last.rfind(b"\r") + 1 :][-OPEN_LINE_KEEP:] if event.partial else b""
        self.out.write(b"".join(chunks))

    def _safe(self, raw: bytes) -> bytes:
        return terminal_line(decode(raw), keep_color=self.color).encode()

    def _note(self, stage: str, text: str, code: str | None = "2") -> None:
        self._end_open_line()
        line = paint("-- " + visible_text(text), code, self.color)
        self.out.write(self.prefix[stage] + line.encode() + b"\n")

    def _end_open_line(self) -> None:
        self._open_raw = b""
        if self._open_line is not None:
            self.out.write(b"\n")
            self._open_line = None

    # GitHub Actions ----------------------------------------------------------

    def _github(self, event: Event) -> None:
        """One group per stage. Groups cannot interleave, so only a stage running
        alone streams live; the others are replayed from their log when they end.
        A group holds the stage's output between stop-commands and its resume."""
        if isinstance(event, StageStarted):
            if event.stage in self._running:
                return
            self._running.add(event.stage)
            if self._live is None and len(self._running) == 1:
                self._live = event.stage
                self._open_group(event.stage)
        elif isinstance(event, CommandOutput) and event.stage == self._live:
            tail = b"" if event.partial else b"\n"
            self.out.write(event.data, tail)
        elif isinstance(event, CommandNoted) and event.stage == self._live:
            # A line of its own, even after a line the stage left open.
            self.out.line(f"-- {event.text}\n".encode())
        elif isinstance(event, StageFinished):
            self._running.discard(event.stage)
            if event.stage == self._live:
                self._close_group(event)
                self._live = None
            else:
                self._waiting.append(event)
            if self._live is None:
                for finished in self._waiting:
                    self._replay(finished)
                self._waiting.clear()
        elif isinstance(event, RunNoted):
            self.out.write(github_quoted(f"mlci: {event.text}\n".encode()))

    def _open_group(self, stage: str) -> None:
        self.out.line(f"::group::{stage}\n".encode())
        self._token = stop_token()
        self.out.line(stop_commands(self._token))

    def _close_group(self, event: StageFinished) -> None:
        self.out.line(f"-- {describe_finish(event)}\n".encode())
        self.out.line(resume_commands(self._token))
        self.out.line(b"::endgroup::\n")
        self._annotate(event)

    def _replay(self, event: StageFinished) -> None:
        if event.started_at is None or self.log_path is None:
            self.out.write(github_quoted(f"-- {event.stage}: {describe_finish(event)}\n".encode()))
            self._annotate(event)
            return
        self._open_group(event.stage)
        self._write_log(event.stage)
        self._close_group(event)

    def _write_log(self, stage: str, clean: Callable[[bytes], bytes] = bytes) -> bool:
        """The stage's log as it printed it, through ``clean``; whether it ended a line."""
        assert self.log_path is not None
        ended = True
        for item in LogCursor(self.log_path(stage)).records():
            if isinstance(item, Note):
                start = b"" if ended else b"\n"
                self.out.write(clean(start + b"-- " + item.text.encode() + b"\n"))
                ended = True
            elif item:
                self.out.write(clean(item))
                ended = item.endswith(b"\n")
        return ended

    def _annotate(self, event: StageFinished) -> None:
        if event.state is StageState.FAILED and self._annotations < MAX_ANNOTATIONS:
            self._annotations += 1
            title = github_property(f"stage {event.stage} failed")
            message = github_escape(event.message or "failed")
            self.out.line(f"::error title={title}::{message}\n".encode())

    # GitLab CI ---------------------------------------------------------------

    def _gitlab(self, event: Event) -> None:
        if isinstance(event, StageFinished):
            finish = gitlab_plain(f"{event.stage}: {describe_finish(event)}".encode())
            if event.started_at is None or self.log_path is None:
                self.out.write(b"-- " + finish + b"\n")
                return
            section = "mlci_" + _SECTION_UNSAFE.sub("_", event.stage)
            collapsed = "[collapsed=true]" if event.state.passed else ""
            start, end = int(event.started_at), int(event.ended_at)
            self.out.line(
                f"\x1b[0Ksection_start:{start}:{section}{collapsed}\r\x1b[0K".encode()
                + finish
                + b"\n"
            )
            plain = GitLabSectionFilter()
            ended = self._write_log(event.stage, plain)
            self.out.write(plain(b"" if ended else b"\n", last=True))
            self.out.line(f"\x1b[0Ksection_end:{end}:{section}\r\x1b[0K\n".encode())
        elif isinstance(event, StageStarted) and event.attempt == 1:
            self.out.write(f"-- {event.stage}: started\n".encode())
        elif isinstance(event, RunNoted):
            self.out.write(gitlab_plain(f"mlci: {event.text}\n".encode()))


_SECTION_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def describe_finish(event: StageFinished | StageRecord) -> str:
    """``passed in 2.71s``, ``failed in 0.4s: exit code 1``, ``skipped: test did not pass``."""
    state = event.state.text
    duration = event.duration_s if isinstance(event, StageFinished) else event.duration_s()
    text = state if duration is None else f"{state} in {format_duration(duration)}"
    if event.message and event.state is not StageState.PASSED:
        text += f": {event.message}"
    return text
