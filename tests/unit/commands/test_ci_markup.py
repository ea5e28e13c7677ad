"""Nothing a stage prints is read as a CI system's markup: stage output fuzzed by
Hypothesis goes through the real output sink, log files and live printer, and what
mlci prints is read back by ports of GitHub Actions' and GitLab's own parsers
(`tests.helpers.github_commands`, `gitlab_sections`)."""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from mlci_tui.commands.ci_markup import SECTION_SUFFIX, GitLabSectionFilter
from mlci_tui.commands.live_printer import BackgroundWriter, LivePrinter
from mlci_tui.events import (
    CommandNoted,
    CommandOutput,
    Event,
    RunNoted,
    StageFinished,
    StageStarted,
)
from mlci_tui.execution.output import OutputSink
from mlci_tui.masking import SecretMasker
from mlci_tui.states import StageState, Stream
from mlci_tui.store.logs import LogWriter
from tests.helpers import check_github_markup, github_commands, gitlab_sections, wait_for

# What the two parsers look for, and what sits around it, in pieces Hypothesis joins.
PIECES = [
    *(b"::", b"##[", b"]", b" ", b"\t", "\xa0".encode(), "\u2028".encode(), b"\x85"),
    *(b"\r", b"\n", b"\r\n", b"%0A", b"title=x,line=1", b"x"),
    *(b"group", b"endgroup", b"error", b"warning", b"stop-commands", b"add-mask", b"ERROR"),
    *(b"section_start:", b"section_end:", b"17", b":", b"mlci_a", b"mlci_b", b"MLCI.A"),
    *(b"[collapsed=true]", b"\r\x1b[0K", b"\x1b[0K", b"\x1b", b"[0K", b"\x1b[31m"),
    # Whole ones, as a hostile stage would print them.
    *(b"::endgroup::\n", b"::error title=stage a failed::x\n", b"::stop-commands::t\n"),
    *(b"##[group]a", b"section_end:17:mlci_a\r\x1b[0K", b"section_start:1:mlci_b[collapsed=true]"),
]
text = st.lists(st.sampled_from(PIECES) | st.binary(max_size=6), max_size=30).map(b"".join)
reads = st.lists(text, max_size=5)
"""A stage's output, as the reads of its pipe."""
STAGES = ("a", "b", "c")


class Run:
    """A run of stages ``a`` (alone, so it streams live), then ``b`` and ``c`` side
    by side (printed from their logs as each ends), then ``d``, which never started:
    events from real output sinks, logged as the recorder logs them."""

    def __init__(self, tmp: Path, *, github: bool) -> None:
        self.tmp = tmp
        self.stream = io.BytesIO()
        names = [*STAGES, "d"]
        self.printer = LivePrinter(
            BackgroundWriter(self.stream),
            names,
            terminal=False,
            color=False,
            github=github,
            gitlab=not github,
            log_path=lambda stage: tmp / f"{stage}.log",
        )
        self.logs = {stage: LogWriter(tmp / f"{stage}.log") for stage in names}
        self.time = 1000.0

    def emit(self, event: Event) -> None:
        if isinstance(event, (CommandOutput, CommandNoted)):
            self.logs[event.stage].record(event)
        self.printer(event)

    def clock(self) -> float:
        self.time += 0.5
        return self.time

    def sink(self, stage: str) -> OutputSink:
        self.emit(StageStarted(stage, 1, 1, None, None, None, self.clock()))
        return OutputSink(stage, SecretMasker(()), self.emit, self.clock)

    def finish(self, stage: str, sink: OutputSink, failed: bool, message: bytes) -> None:
        sink.close()
        state = StageState.FAILED if failed else StageState.PASSED
        why = message.decode("utf-8", "replace") if failed else None
        self.emit(StageFinished(stage, state, 1, int(failed), 1000.0, self.clock(), message=why))

    def printed(self) -> bytes:
        self.printer.close()
        for log in self.logs.values():
            log.close()
        return self.stream.getvalue()


@st.composite
def runs(draw: st.DrawFn) -> tuple[dict[str, list[bytes]], dict[str, bool], list[bytes]]:
    outputs = {stage: draw(reads) for stage in STAGES}
    failed = {stage: draw(st.booleans()) for stage in STAGES}
    words = draw(st.lists(text, min_size=5, max_size=5))
    return outputs, failed, words


def play(tmp: Path, github: bool, drawn: tuple) -> bytes:
    outputs, failed, words = drawn
    run = Run(tmp, github=github)
    a = run.sink("a")
    for data in outputs["a"]:
        a.feed(Stream.STDOUT, data)
    run.emit(CommandNoted("a", words[0].decode("utf-8", "replace"), run.clock()))
    run.finish("a", a, failed["a"], words[1])
    b, c = run.sink("b"), run.sink("c")
    for index in range(max(len(outputs["b"]), len(outputs["c"]))):
        for stage, sink in (("b", b), ("c", c)):
            if index < len(outputs[stage]):
                sink.feed(Stream.STDERR if index % 2 else Stream.STDOUT, outputs[stage][index])
    run.finish("b", b, failed["b"], words[2])
    run.emit(RunNoted(words[3].decode("utf-8", "replace"), run.clock()))
    run.finish("c", c, failed["c"], words[4])
    why = words[4].decode("utf-8", "replace")
    run.emit(StageFinished("d", StageState.SKIPPED, 0, None, None, run.clock(), message=why))
    return run.printed()


@settings(max_examples=300, deadline=None)
@given(drawn=runs())
def test_no_stage_output_gives_a_github_workflow_command(tmp_path_factory, drawn) -> None:
    printed = play(tmp_path_factory.mktemp("run"), True, drawn)
    _, failed, _ = drawn
    groups = check_github_markup(printed, {**failed, "d": False})
    assert groups == list(STAGES)
    # Each stage's output is all there, between its stop-commands and their resume.
    for stage in STAGES:
        assert f"::group::{stage}\n::stop-commands::".encode() in printed


@settings(max_examples=300, deadline=None)
@given(drawn=runs())
def test_no_stage_output_gives_a_gitlab_section_edge(tmp_path_factory, drawn) -> None:
    printed = play(tmp_path_factory.mktemp("run"), False, drawn)
    expected = [(edge, f"mlci_{stage}") for stage in STAGES for edge in ("start", "end")]
    assert gitlab_sections(printed) == expected


@given(data=st.lists(text, max_size=8))
def test_the_gitlab_filter_leaves_no_marker_end_in_any_split_and_changes_nothing_else(
    data: list[bytes],
) -> None:
    plain = GitLabSectionFilter()
    out = b"".join(plain(piece) for piece in data) + plain(b"", last=True)
    whole = b"".join(data)
    assert SECTION_SUFFIX not in out
    assert out == whole.replace(SECTION_SUFFIX, b"\r\x1b[K")


def test_the_parsers_find_what_github_and_gitlab_find() -> None:
    """The oracles themselves, on the examples of GitHub's and GitLab's documentation."""
    assert [c.name for c in github_commands(b"::warning file=a.py::x\n  ::error::y\n")] == [
        "warning",
        "error",
    ]
    assert [c.name for c in github_commands(b"text ##[group]title\r::endgroup::")] == [
        "group",
        "endgroup",
    ]
    stopped = b"::stop-commands::t0k\n::error::no\n::T0K::\n::error::yes\n"
    assert [(c.name, c.data) for c in github_commands(stopped)] == [
        ("stop-commands", "t0k"),
        ("resume", "t0k"),
        ("error", "yes"),
    ]
    marked = b"\x1b[0Ksection_start:1560896352:my_first[collapsed=true]\r\x1b[0KHeader\n"
    marked += b"x section_end:1560896353:my_first\r\x1b[0K\n"
    assert gitlab_sections(marked) == [("start", "my_first"), ("end", "my_first")]


def test_lines_a_ci_system_reads_are_never_dropped_and_start_a_line() -> None:
    """A terminal (or CI runner) that stops reading loses output, never mlci's own
    lines, and each of those starts a line of its own."""
    read_end, write_end = os.pipe()
    stream = os.fdopen(write_end, "wb")
    writer = BackgroundWriter(stream, limit=1 << 16)
    writer.write(b"first line\n")
    for _ in range(200):  # 20 MB at a reader that has not read yet: most are dropped
        writer.write(b"::error::" + b"x" * 100_000)
    writer.line(b"::token::\n")
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(os.fdopen(read_end, "rb").read()))
    reader.start()
    # Output shows again once the backlog is written (until then it is dropped too).
    wait_for(lambda: not writer._chunks and not writer._writing, what="the backlog written")
    writer.write(b"half a line")
    writer.line(b"::endgroup::\n")
    writer.close()
    stream.close()
    reader.join(30)
    lines = got[0].split(b"\n")
    assert lines[0] == b"first line"
    assert b"::token::" in lines and lines[-3:] == [b"half a line", b"::endgroup::", b""]
    assert any(line.startswith(b"mlci: ") and b"not shown" in line for line in lines)
    assert sum(len(line) for line in lines) < 20_000_000


def test_a_stalled_reader_gets_one_gap_in_the_output_and_one_note() -> None:
    """Once output is dropped, everything is dropped, small writes too, until what was
    queued is written: the view has one gap, said once, not shreds of lines."""
    read_end, write_end = os.pipe()
    stream = os.fdopen(write_end, "wb")
    writer = BackgroundWriter(stream, limit=1 << 16)
    for number in range(4):  # beyond the pipe's room and the queue's: the rest waits
        writer.write(b"%d" % number + b"y" * 59_999 + b"\n")
    for _ in range(20):
        writer.write(b"x" * 70_000 + b"\n")
        writer.write(b"small\n")
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(os.fdopen(read_end, "rb").read()))
    reader.start()
    wait_for(lambda: not writer._chunks and not writer._writing, what="the backlog written")
    writer.write(b"after\n")
    writer.close()
    stream.close()
    reader.join(30)
    lines = got[0].split(b"\n")
    notes = [line for line in lines if line.startswith(b"mlci: ") and b"not shown" in line]
    assert len(notes) == 1 and b"small" not in lines
    assert lines[-2:] == [b"after", b""]


def test_a_note_after_a_line_the_stage_left_open_starts_a_line_of_its_own(tmp_path) -> None:
    """A stage whose output ends without a newline, then fails: mlci's note ("exit
    code 3") is a line of its own, live (GitHub, a stage alone) as replayed from the
    log (GitLab), never glued to the end of what the stage printed."""
    for github in (True, False):
        (tmp_path / str(github)).mkdir()
        run = Run(tmp_path / str(github), github=github)
        a = run.sink("a")
        a.feed(Stream.STDOUT, b"::warning::no newline at the end")
        a.close()  # the stage exited: its open line is flushed, then its exit is noted
        run.emit(CommandNoted("a", "exit code 3", run.clock()))
        why = "exit code 3"
        run.emit(StageFinished("a", StageState.FAILED, 1, 3, 1000.0, run.clock(), message=why))
        printed = run.printed()
        assert b"::warning::no newline at the end\n-- exit code 3\n" in printed, printed
