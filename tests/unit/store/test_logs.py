"""The stage log format: the log file holds exactly what the stage printed, the
index and the notes beside it say when, from which stream, and what mlci said.
Held against an oracle (what was written, kept in memory), for random writes, a
reader following the writer, a kill -9 at any point, and logs of the format before."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlci_tui.errors import StoreError
from mlci_tui.execution.output import OutputSink
from mlci_tui.masking import SecretMasker
from mlci_tui.states import Stream
from mlci_tui.store import legacy_log, logs
from mlci_tui.store.logs import (
    ENTRY_SIZE,
    HEADER,
    SCRATCH_PREFIX,
    LogCursor,
    LogWriter,
    Note,
    index_path,
    notes_path,
    output_bytes,
    read_index,
    read_notes,
    readable,
    stream_at,
    tail_records,
)
from tests.helpers import wait_for

# One write of the runner's: a chunk of output (stream, bytes, partial) or a note.
_BYTES = st.binary(max_size=40) | st.sampled_from(
    [b"", b"\n", b"a\rb", b"1.5 o+ x", b"\x00\xff", b"\x1b[31mred", b"x" * 300]
)
_OUTPUT = st.tuples(st.sampled_from([Stream.STDOUT, Stream.STDERR]), _BYTES, st.booleans())
_NOTE = st.text(max_size=30).map(lambda text: (Stream.MESSAGE, text, False))
_WRITES = st.lists(_OUTPUT | _NOTE, max_size=30)


class Oracle:
    """What a log must hold, kept beside the writer: its bytes, each byte's stream
    and time, and the notes with where they stand."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.streams: list[tuple[Stream, float]] = []
        self.notes: list[tuple[int, str]] = []

    def write(self, log: LogWriter, item: tuple[Stream, bytes | str, bool], time: float) -> None:
        stream, content, partial = item
        if isinstance(content, str):
            log.note(content, time)
            self.notes.append((len(self.data), content.replace("\n", " ")))
            return
        assert isinstance(content, bytes)
        log.output(stream, content, time, partial=partial)
        chunk = content if partial else content + b"\n"
        self.data += chunk
        self.streams += [(stream, time)] * len(chunk)


def write_all(path: Path, writes: list[tuple[Stream, bytes | str, bool]]) -> Oracle:
    oracle = Oracle()
    log = LogWriter(path)
    for number, item in enumerate(writes):
        oracle.write(log, item, 1000.0 + number)
    log.close()
    return oracle


def read_back(cursor: LogCursor, *, to_end: bool = True) -> list[bytes | Note]:
    return list(cursor.records(to_end=to_end))


@settings(max_examples=150, deadline=None)
@given(writes=_WRITES)
def test_the_log_holds_exactly_what_was_printed_and_says_when_and_where(
    tmp_path_factory: object, writes: list[tuple[Stream, bytes | str, bool]]
) -> None:
    path = Path(tmp_path_factory.mktemp("log")) / "train.log"  # type: ignore[attr-defined]
    oracle = write_all(path, writes)
    assert path.read_bytes() == bytes(oracle.data)  # nothing added, nothing lost
    assert b"".join(output_bytes(path)) == bytes(oracle.data)
    entries = read_index(path)
    for offset, expected in enumerate(oracle.streams):
        assert stream_at(entries, offset) == expected
    assert [(note.position, note.text) for note in read_notes(path)] == [
        (position, text) for position, text in oracle.notes
    ]
    # The cursor gives the bytes and the notes in the order they were written.
    items = read_back(LogCursor(path))
    data = b"".join(item for item in items if isinstance(item, bytes))
    assert data == bytes(oracle.data)
    position = 0
    for item in items:
        if isinstance(item, Note):
            assert item.position == position
        else:
            position += len(item)


@settings(max_examples=60, deadline=None)
@given(writes=_WRITES, reads=st.lists(st.integers(0, 30), max_size=6))
def test_a_reader_following_the_writer_sees_what_a_reader_after_it_sees(
    tmp_path_factory: object, writes: list[tuple[Stream, bytes | str, bool]], reads: list[int]
) -> None:
    """A reader reading between any of the writes, only what the index says is whole,
    ends with exactly the bytes and notes of a reader that came after the writer."""
    path = Path(tmp_path_factory.mktemp("log")) / "train.log"  # type: ignore[attr-defined]
    oracle = Oracle()
    log = LogWriter(path)
    following = LogCursor(path)
    seen: list[bytes | Note] = []
    for number, item in enumerate(writes):
        oracle.write(log, item, float(number))
        if number in reads:
            seen += read_back(following, to_end=False)
    log.close()
    seen += read_back(following, to_end=False)
    after = read_back(LogCursor(path))
    assert b"".join(i for i in seen if isinstance(i, bytes)) == bytes(oracle.data)
    assert [i for i in seen if isinstance(i, Note)] == [i for i in after if isinstance(i, Note)]


def test_the_last_lines_keep_their_stream_and_time(tmp_path: Path) -> None:
    path = tmp_path / "train.log"
    log = LogWriter(path)
    log.output(Stream.STDOUT, b"one\ntwo", 1.0)
    log.note("retrying in 1s", 1.5)
    log.output(Stream.STDERR, b"three", 2.0)
    log.output(Stream.STDOUT, b"half", 3.0, partial=True)
    log.close()
    lines = tail_records(path, 3)
    assert [(r.content, r.stream, r.time, r.partial) for r in lines] == [
        (b"two", Stream.STDOUT, 1.0, False),
        (b"three", Stream.STDERR, 2.0, False),
        (b"half", Stream.STDOUT, 3.0, True),
    ]
    assert tail_records(tmp_path / "none.log") == []


@settings(max_examples=40, deadline=None)
@given(
    text=st.binary(max_size=60),
    cuts=st.lists(st.integers(1, 80), max_size=8),
    secret=st.sampled_from(["hunter2-secret", "s3cr3t!value"]),
)
def test_a_secret_split_across_reads_never_reaches_the_log(
    tmp_path_factory: object, text: bytes, cuts: list[int], secret: str
) -> None:
    path = Path(tmp_path_factory.mktemp("log")) / "train.log"  # type: ignore[attr-defined]
    printed = text + secret.encode() + text + b"\n" + secret.encode()
    log = LogWriter(path)
    sink = OutputSink("train", SecretMasker([secret]), log.record)  # type: ignore[arg-type]
    at = 0
    for cut in [*cuts, len(printed)]:
        sink.feed(Stream.STDOUT, printed[at : at + cut])
        sink.flush_stale()
        at += cut
    sink.feed(Stream.STDOUT, printed[at:])
    sink.close()
    log.close()
    stored = path.read_bytes()
    assert secret.encode() not in stored
    # Compared with the secret masked, not with the masks removed: the stage may print
    # asterisks of its own.
    assert stored == printed.replace(secret.encode(), b"***")


def test_what_a_kill_9_cuts_short_is_read_and_written_after(tmp_path: Path) -> None:
    """An entry cut mid-write, bytes without their entry, a note's line cut short:
    readers lose none of the bytes, and the next writer (a recovery) appends notes
    that line up."""
    path = tmp_path / "train.log"
    log = LogWriter(path)
    log.output(Stream.STDERR, b"first", 5.0)
    log.note("about to", 5.5)
    log.close()
    with open(path, "ab") as data:
        data.write(b"second line without its entry\n")
    with open(index_path(path), "ab") as index:
        index.write(b"\x01\x02\x03")  # an entry cut short
    with open(notes_path(path), "ab") as notes:
        notes.write(b"6 7.0 a note cut sh")
    assert b"".join(output_bytes(path)) == b"first\nsecond line without its entry\n"
    assert tail_records(path, 1)[0][:3] == (5.0, Stream.STDERR, b"second line without its entry")
    assert [n.text for n in read_notes(path)] == ["about to"]
    recovery = LogWriter(path)
    recovery.note("the runner stopped unexpectedly", 9.0)
    recovery.output(Stream.STDOUT, b"after", 10.0)
    recovery.close()
    assert (os.path.getsize(index_path(path)) - len(HEADER)) % ENTRY_SIZE == 0
    assert [n.text for n in read_notes(path)] == ["about to", "the runner stopped unexpectedly"]
    items = read_back(LogCursor(path))
    assert items[-2] == Note(path.stat().st_size - 6, 9.0, "the runner stopped unexpectedly")
    assert stream_at(read_index(path), path.stat().st_size - 1) == (Stream.STDOUT, 10.0)


_WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from mlci_tui.states import Stream
    from mlci_tui.store.logs import LogWriter

    log = LogWriter(Path(sys.argv[1]))
    n = 0
    while True:
        if n % 7 == 0:
            log.note(f"note {n}", float(n))
        stream = Stream.STDERR if n % 3 else Stream.STDOUT
        log.output(stream, b"line %d\\n%d" % (n, n) + b"x" * (n % 50), float(n), partial=n % 5 == 0)
        n += 1
        if n == 200:
            print("ready", flush=True)
    """
)


def test_a_writer_killed_at_any_point_leaves_a_log_every_reader_reads_whole(
    tmp_path: Path,
) -> None:
    for attempt in range(5):
        path = tmp_path / f"train{attempt}.log"
        writer = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE
        )
        assert writer.stdout is not None and writer.stdout.readline() == b"ready\n"
        size = 20_000 * (attempt + 1)
        wait_for(lambda p=path, s=size: p.stat().st_size > s, what="output")  # type: ignore[misc]
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        data = path.read_bytes()
        entries = read_index(path)
        ends = [packed >> 2 for packed in entries.packed]
        assert ends == sorted(ends) and ends[-1] <= len(data)
        assert len(data) - ends[-1] < 200  # at most the one write the kill cut off
        assert b"".join(output_bytes(path)) == data
        notes = read_notes(path)
        assert all(n.text == f"note {int(n.time)}" for n in notes)
        LogWriter(path).close()  # a recovery opening it drops a cut entry
        assert (os.path.getsize(index_path(path)) - len(HEADER)) % ENTRY_SIZE == 0


def test_a_reader_in_another_process_follows_a_flood_to_the_last_byte(tmp_path: Path) -> None:
    path = tmp_path / "train.log"
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                """
                import sys, time
                from pathlib import Path
                from mlci_tui.store.logs import LogCursor, Note
                cursor = LogCursor(Path(sys.argv[1]))
                out = sys.stdout.buffer
                while True:
                    for item in cursor.records(to_end=False):
                        if not isinstance(item, Note):
                            out.write(item)
                    if Path(sys.argv[1] + ".done").exists():
                        for item in cursor.records(to_end=False):
                            if not isinstance(item, Note):
                                out.write(item)
                        break
                    time.sleep(0.001)
                """
            ),
            str(path),
        ],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])},
    )
    oracle = Oracle()
    log = LogWriter(path)
    for n in range(20_000):
        stream = Stream.STDERR if n % 3 else Stream.STDOUT
        oracle.write(log, (stream, b"%d %s" % (n, b"y" * (n % 90)), n % 11 == 0), float(n))
    log.close()
    Path(f"{path}.done").touch()
    out, _ = reader.communicate(timeout=60)
    assert out == bytes(oracle.data)


def _legacy_log(path: Path) -> None:
    with open(path, "wb") as file:
        file.write(legacy_log.encode(Stream.STDOUT, b"one\ntwo", 1.0))
        file.write(legacy_log.encode(Stream.STDERR, b"45%", 1.5, partial=True))
        file.write(legacy_log.encode(Stream.MESSAGE, b"retrying in 1s", 2.0))
        file.write(legacy_log.encode(Stream.STDOUT, b"three \x1b[31m 1.0 o+ x", 3.0))


def test_a_log_of_the_format_before_is_read_and_never_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "train.log"
    _legacy_log(path)
    before = path.read_bytes()
    assert b"".join(output_bytes(path)) == b"one\ntwo\n45%three \x1b[31m 1.0 o+ x\n"
    items = read_back(LogCursor(path))
    notes = [item for item in items if isinstance(item, Note)]
    assert notes == [Note(len(b"one\ntwo\n45%"), 2.0, "retrying in 1s")]
    assert [(r.content, r.stream) for r in tail_records(path, 2)] == [
        (b"two", Stream.STDOUT),
        (b"45%three \x1b[31m 1.0 o+ x", Stream.STDERR),
    ]
    assert readable(path) != path
    # A recovery's note is added in the log's own format.
    recovery = LogWriter(path)
    recovery.note("the runner stopped unexpectedly", 4.0)
    recovery.close()
    assert not index_path(path).exists()
    assert path.read_bytes().startswith(before)
    records = list(legacy_log.records(path))
    assert records[-1] == legacy_log.Record(
        4.0, Stream.MESSAGE, b"the runner stopped unexpectedly", False
    )


@settings(max_examples=40, deadline=None)
@given(source=_WRITES, own=_WRITES, legacy=st.booleans())
def test_a_cached_stage_log_goes_on_with_its_source_s_whole(
    tmp_path_factory: object,
    source: list[tuple[Stream, bytes | str, bool]],
    own: list[tuple[Stream, bytes | str, bool]],
    legacy: bool,
) -> None:
    folder = Path(tmp_path_factory.mktemp("log"))  # type: ignore[attr-defined]
    first = folder / "first.log"
    oracle = write_all(first, source)
    if legacy:  # the source recorded by the version before: its converted copy
        first = readable(_as_legacy(first, folder / "old.log"))
    second = folder / "second.log"
    mine = write_all(second, own)
    log = LogWriter(second)
    log.append_log(first)
    log.close()
    assert second.read_bytes() == bytes(mine.data + oracle.data)
    entries = read_index(second)
    for offset, expected in enumerate(mine.streams + oracle.streams):
        if not legacy:  # a converted copy keeps times to the millisecond
            assert stream_at(entries, offset) == expected
    base = len(mine.data)
    expected_notes = mine.notes + [(base + p, t) for p, t in oracle.notes]
    assert [(n.position, n.text) for n in read_notes(second)] == [(p, t) for p, t in expected_notes]


def _as_legacy(path: Path, old: Path) -> Path:
    """The log at ``path`` written as the version before wrote it."""
    with open(old, "wb") as file:
        for item in LogCursor(path).records():
            if isinstance(item, Note):
                file.write(legacy_log.encode(Stream.MESSAGE, item.text.encode(), item.time))
                continue
            stream, time = stream_at(read_index(path), 0)
            body, newline, rest = item.rpartition(b"\n")
            if newline:
                file.write(legacy_log.encode(stream, body, time))
            if rest:
                file.write(legacy_log.encode(stream, rest, time, partial=True))
    return old


def test_an_old_format_log_still_being_written_is_followed_to_its_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A runner of the version before still writing: a follower reads its records as
    they come, and the copy a viewer reads grows with it, one copy, never made again."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "scratch"))
    monkeypatch.setattr(logs, "_scratch", None)
    monkeypatch.setattr(logs, "_copies", {})
    (tmp_path / "scratch").mkdir()
    path = tmp_path / "train.log"
    path.write_bytes(legacy_log.encode(Stream.STDOUT, b"one", 1.0))
    cursor = LogCursor(path)
    assert read_back(cursor) == [b"one\n"]
    copy = readable(path)
    with open(path, "ab") as old:
        old.write(legacy_log.encode(Stream.MESSAGE, b"retrying", 2.0))
        old.write(legacy_log.encode(Stream.STDERR, b"two", 3.0))
    assert read_back(cursor) == [Note(4, 2.0, "retrying"), b"two\n"]
    assert readable(path) == copy and copy.read_bytes() == b"one\ntwo\n"
    assert [(n.position, n.text) for n in read_notes(copy)] == [(4, "retrying")]
    assert stream_at(read_index(copy), 5) == (Stream.STDERR, 3.0)
    assert len(list(copy.parent.glob("*.log"))) == 1


def test_copies_left_by_a_process_a_signal_ended_are_removed_and_no_room_is_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.setattr(logs, "_scratch", None)
    monkeypatch.setattr(logs, "_copies", {})
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    left = scratch / f"{SCRATCH_PREFIX}{gone.pid}-abc"
    left.mkdir()
    (left / "0.log").write_bytes(b"x" * 1000)
    mine = scratch / f"{SCRATCH_PREFIX}{os.getpid()}-def"
    mine.mkdir()
    path = tmp_path / "train.log"
    path.write_bytes(legacy_log.encode(Stream.STDOUT, b"one", 1.0))
    assert readable(path).read_bytes() == b"one\n"
    assert not left.exists() and mine.exists()  # a live process's copies stay
    # No room for a copy (here: no directory to make it in): one line that says so.
    monkeypatch.setattr(tempfile, "tempdir", str(path))
    monkeypatch.setattr(logs, "_scratch", None)
    other = tmp_path / "other.log"
    other.write_bytes(legacy_log.encode(Stream.STDOUT, b"two", 1.0))
    with pytest.raises(StoreError, match="a log of an earlier version's format: its copy"):
        readable(other)
