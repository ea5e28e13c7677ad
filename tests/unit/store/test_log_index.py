"""LogIndex: random access and search into a growing stage log, checked against a
plain reading of its files (the log's bytes split on newlines, notes put in where
they stand)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlci_tui.states import Stream
from mlci_tui.store import legacy_log, log_index, logs
from mlci_tui.store.log_index import LogIndex
from mlci_tui.store.logs import LogRecord, LogWriter


def reference(path: Path) -> list[tuple[LogRecord, bytes]]:
    """Every line of the log at ``path``, as shown, with its whole content: the file's
    bytes split on newlines, each note a line where it stands (breaking the line it
    stands in), a line's time and stream those of the first chunk that ends after its
    first byte (or the last chunk's)."""
    data = path.read_bytes() if path.exists() else b""
    limit = log_index.MAX_LINE_READ
    entries = logs.read_index(path)
    notes = [note for note in logs.read_notes(path) if note.position <= len(data)]
    notes.sort(key=lambda note: note.position)

    chunk = 0

    def attributes(offset: int) -> tuple[Stream, float]:
        # Lines come in order: the chunk of each is at or after the last one's.
        nonlocal chunk
        while chunk < len(entries) - 1 and entries.packed[chunk] >> 2 <= offset:
            chunk += 1
        if not len(entries):
            return Stream.STDOUT, 0.0
        return logs.STREAMS[entries.packed[chunk] & 3], entries.times[chunk]

    found: list[tuple[LogRecord, bytes]] = []

    def stretch(start: int, end: int, partial: bool) -> None:
        whole = data[start:end]
        stream, time = attributes(start)
        shown, cut = whole, 0
        if len(whole) > limit:
            tail = whole[-limit:]
            if b"\r" in tail:
                shown = tail[tail.find(b"\r") :]
            else:
                shown, cut = whole[:limit], len(whole)
        found.append((LogRecord(time, stream, shown, partial, cut), whole))

    pieces = data.split(b"\n")
    position, next_note = 0, 0
    for number, piece in enumerate(pieces):
        start, end = position, position + len(piece)
        ended = number < len(pieces) - 1
        at = start
        while next_note < len(notes) and notes[next_note].position <= end:
            note = notes[next_note]
            if note.position > at:
                stretch(at, note.position, True)
                at = note.position
            content = note.text.encode("utf-8", "replace")
            found.append((LogRecord(note.time, Stream.MESSAGE, content, False), content))
            next_note += 1
        if at < end or ended:
            stretch(at, end, not ended)
        position = end + 1
    return found


def shown(index: LogIndex) -> list[LogRecord]:
    found = []
    for number in range(len(index)):
        line = index.line(number)
        assert line is not None
        assert index.time_of(number) == line.time
        found.append(line)
    return found


def check_search(index: LogIndex, expected: list[tuple[LogRecord, bytes]], needle: str) -> None:
    target = needle.lower().encode()
    hits = [n for n, (_, whole) in enumerate(expected) if target in whole.lower()]
    found = index.matches(needle)
    assert found is not None and list(found) == hits
    for start in range(-1, len(expected) + 1):
        assert index.search(needle, start) == next((n for n in hits if n > start), None)
        before = next((n for n in reversed(hits) if n < start), None)
        assert index.search(needle, start, forward=False) == before


# What a stage prints, and mlci's notes: pieces with newlines, carriage returns,
# empty lines, long lines, and bytes that look like the earlier format's headers.
pieces = st.lists(
    st.sampled_from(
        [b"a", b"B", b"\n", b"\r", b"ab", b"x" * 40, b"1764147418.123 o+ ", b" e ", b"\xff"]
    ),
    max_size=8,
).map(b"".join)
operations = st.lists(
    st.one_of(
        st.tuples(
            st.just("output"),
            st.sampled_from([Stream.STDOUT, Stream.STDERR]),
            pieces,
            st.booleans(),
        ),
        st.tuples(st.just("note"), st.text("ab x\nÉ", max_size=5)),
        st.tuples(st.just("update"), st.booleans()),
    ),
    max_size=30,
)


def small(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks, reads and lines shown of a few bytes, to cross every boundary."""
    monkeypatch.setattr(log_index, "BLOCK", 16)
    monkeypatch.setattr(log_index, "READ_CHUNK", 23)
    monkeypatch.setattr(log_index, "MAX_LINE_READ", 60)
    monkeypatch.setattr(log_index, "SKIP_AFTER", 50)
    monkeypatch.setattr(log_index, "KEEP_TAIL", 20)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    steps=operations,
    killed=st.sampled_from([0, 1, 7, 15]),
    orphan=pieces,
    recovered=st.booleans(),
    needle=st.sampled_from(["a", "ab", "x a", "B\r", "o+", "é"]),
)
def test_the_lines_are_the_files_bytes_split_on_newlines_with_the_notes_between(
    tmp_path_factory, monkeypatch: pytest.MonkeyPatch, steps, killed, orphan, recovered, needle
) -> None:
    """Read whole, or by a reader catching up between writes (following, which skips
    and later counts a backlog), and after a kill -9 left bytes without their entry
    or an entry cut short, with or without a recovery's note after them."""
    small(monkeypatch)
    path = tmp_path_factory.mktemp("run") / "train.log"
    writer = LogWriter(path)
    follower = LogIndex(path)
    time = 1000.0
    for step in steps:
        time += 0.5
        if step[0] == "output":
            writer.output(step[1], step[2], time, partial=step[3])
        elif step[0] == "note":
            writer.note(step[1], time)
        else:
            follower.update(follow=step[1])
            if not step[1]:
                follower.fill_gap()
    writer.close()
    if orphan or killed:
        # A kill -9 between a chunk's bytes and its entry, or in the middle of the entry.
        with path.open("ab") as file:
            file.write(orphan)
        cut = logs.ENTRY.pack((path.stat().st_size) << 2, time + 1)[:killed]
        with logs.index_path(path).open("ab") as file:
            file.write(cut)
        if recovered:
            LogWriter(path).note("the runner stopped unexpectedly", time + 2)
    expected = reference(path)
    follower.update()
    follower.fill_gap()
    whole = LogIndex(path)
    whole.update()
    for index in (follower, whole):
        assert index.complete
        assert shown(index) == [line for line, _ in expected]
        assert index.line(len(expected)) is None
        check_search(index, expected, needle)
    follower.close()
    whole.close()


def old_lines(records: list[legacy_log.Record]) -> list[LogRecord]:
    """How the earlier log view showed records: a record that does not end its line
    joined with the ones after it (its first one's time and stream), but for a note,
    which starts a line of its own."""
    found: list[LogRecord] = []
    pieces: list[legacy_log.Record] = []

    def join() -> None:
        first = pieces[0]
        content = b"".join(piece.content for piece in pieces)
        found.append(LogRecord(first.time, first.stream, content, pieces[-1].partial))
        pieces.clear()

    for record in records:
        if pieces and record.stream is Stream.MESSAGE:
            join()
        pieces.append(record)
        if not record.partial:
            join()
    if pieces:
        join()
    return found


@settings(max_examples=150, deadline=None)
@given(steps=operations)
def test_an_old_format_log_shows_the_lines_it_showed_before(tmp_path_factory, steps) -> None:
    """A log of the earlier format (one record a line, no index beside it) is read
    through its converted copy, and shows the lines the earlier view showed; so does
    the copy of it after a note was appended (a recovery's)."""
    old = tmp_path_factory.mktemp("run") / "old.log"
    old.touch()
    legacy = legacy_log.LegacyWriter(old)
    time = 1000.0
    for step in steps:
        time += 0.5
        if step[0] == "output" and (step[2] or not step[3]):
            # (An empty piece was a line of its own there; the runner wrote none.)
            legacy.output(step[1], step[2].replace(b"\n", b" "), time, partial=step[3])
        elif step[0] == "note":
            legacy.note(step[1], time)
    index = LogIndex(old)
    index.update()
    assert shown(index) == old_lines(list(legacy_log.records(old)))
    legacy.note("the runner stopped unexpectedly", time + 1)
    legacy.close()
    index.update()
    assert not logs.index_path(old).exists()
    assert shown(index) == old_lines(list(legacy_log.records(old)))
    index.close()


def write_random_log(writer: LogWriter, rng: random.Random, chunks: int, start: float) -> None:
    for i in range(chunks):
        size = rng.choice([0, 5, 40, 200, 3000, 70_000])
        content = f"rec {i} ".encode() + bytes(rng.choices(b"abcdefXYZ \x00\xff", k=size))
        content = content.replace(b"Z", b"\n", rng.randrange(3))
        if rng.random() < 0.05:
            writer.note(f"note {i}", start + i)
        else:
            stream = rng.choice([Stream.STDOUT, Stream.STDERR])
            writer.output(stream, content, start + i, partial=rng.random() < 0.1)


def test_every_line_is_found_as_the_file_grows(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(log_index, "READ_CHUNK", 100_000)  # many chunks, many blocks
    path = tmp_path / "stage.log"
    rng = random.Random(7)
    index = LogIndex(path)
    writer = LogWriter(path)
    for round_ in range(3):
        write_random_log(writer, rng, 400, 1000.0 * round_)
        writer.output(Stream.STDOUT, b"an unfinished line", 1.0, partial=True)
        index.update()
        expected = [line for line, _ in reference(path)]
        assert len(index) == len(expected)
        for i in [*rng.sample(range(len(expected)), 150), 0, len(expected) - 1]:
            assert index.line(i) == expected[i]
        assert expected[-1].partial and expected[-1].content.endswith(b"an unfinished line")
        writer.output(Stream.STDOUT, b" now ended", 2.0)
    writer.close()
    index.update()
    expected = [line for line, _ in reference(path)]
    assert index.line(len(index) - 1) == expected[-1]
    assert expected[-1].content.endswith(b"an unfinished line now ended")
    assert not expected[-1].partial
    assert index.line(len(index)) is None


def test_search_forward_and_backward_matches_a_plain_scan(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(log_index, "READ_CHUNK", 50_000)
    path = tmp_path / "stage.log"
    writer = LogWriter(path)
    lines = [f"line {i:05d} {'needle' if i % 97 == 0 else 'hay'}".encode() for i in range(3000)]
    writer.output(Stream.STDOUT, b"\n".join(lines), 1.0)
    writer.output(Stream.STDOUT, b"o needle-in-the-tag-only? no: NEEDLE", 2.0)
    writer.close()
    index = LogIndex(path)
    index.update()
    hits = [i for i in range(len(index)) if b"needle" in index.line(i).content.lower()]
    found, position = [], -1
    while (position := index.search("Needle", position)) is not None:
        found.append(position)
    assert found == hits
    backwards, position = [], len(index)
    while (position := index.search("needle", position, forward=False)) is not None:
        backwards.append(position)
    assert backwards == hits[::-1]
    assert index.search("absent", -1) is None


def test_a_follower_skips_a_backlog_and_counts_it_later(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(log_index, "SKIP_AFTER", 200_000)
    monkeypatch.setattr(log_index, "KEEP_TAIL", 20_000)
    monkeypatch.setattr(log_index, "READ_CHUNK", 64_000)
    path = tmp_path / "stage.log"
    writer = LogWriter(path)
    writer.output(Stream.STDOUT, b"\n".join(f"early {i}".encode() for i in range(100)), 1.0)
    index = LogIndex(path)
    index.update(follow=True)
    assert len(index) == 100 and index.complete
    writer.output(Stream.STDOUT, b"\n".join(f"flood {i:06d}".encode() for i in range(50_000)), 2.0)
    writer.close()
    index.update(follow=True)
    assert not index.complete
    assert 0 < len(index) - 100 < 50_000  # most of the flood was skipped
    assert index.line(len(index) - 1).content == b"flood 049999"
    assert index.line(99).content == b"early 99"
    before = len(index)
    skipped = index.fill_gap()
    assert index.complete and len(index) == 50_100
    assert skipped == 50_100 - before
    expected = [line for line, _ in reference(path)]
    for i in [0, 99, 100, 101, 12_345, 40_000, 50_099]:
        assert index.line(i) == expected[i]
    assert index.search("flood 000007", 0) == 107


def test_pieces_of_a_line_are_one_line_found_by_search_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "stage.log"
    writer = LogWriter(path)
    writer.output(Stream.STDOUT, b"before", 1.0)
    for step, piece in enumerate([b"10%\r", b"2", b"0%\r30%\r"]):
        writer.output(Stream.STDERR, piece, 2.0 + step, partial=True)
    writer.output(Stream.STDERR, b"100% done", 5.0)
    writer.output(Stream.STDOUT, b"after 30%", 6.0)
    writer.close()
    index = LogIndex(path)
    index.update()
    assert len(index) == 3
    assert [index.line(i).content for i in range(3)] == [
        b"before",
        b"10%\r20%\r30%\r100% done",
        b"after 30%",
    ]
    assert index.line(1).stream is Stream.STDERR and not index.line(1).partial
    assert index.line(1).time == 2.0  # its first piece's
    assert index.search("30%", -1) == 1
    assert index.search("30%", 1) == 2
    assert index.search("before", 3, forward=False) == 0
    # A match may now span the pieces a line was written in ("20%" is "2" then "0%").
    assert list(index.matches("20%")) == [1]
    assert list(index.matches("30%")) == [1, 2]
    assert list(index.matches("absent")) == []


def test_a_note_of_mlcis_starts_its_own_line_after_a_piece_however_it_is_indexed(
    tmp_path: Path,
) -> None:
    """A stage's last line without a newline, then why it failed: two lines, whether
    the index read the piece and the note at once or the note came later."""
    path = tmp_path / "stage.log"
    writer = LogWriter(path)
    writer.output(Stream.STDOUT, b"no end", 1.0, partial=True)
    later = LogIndex(path)
    later.update()  # the piece alone: its line may still go on
    assert len(later) == 1 and later.line(0).partial
    writer.note("exit code 3", 2.0)
    writer.output(Stream.STDOUT, b"more ", 3.0, partial=True)
    writer.output(Stream.STDOUT, b"of one line", 4.0)
    writer.close()
    later.update()
    at_once = LogIndex(path)
    at_once.update()
    expected = [b"no end", b"exit code 3", b"more of one line"]
    for index in (later, at_once):
        assert len(index) == 3
        found = [index.line(i) for i in range(3)]
        assert [r.content for r in found if r is not None] == expected
        assert [r.stream for r in found if r is not None] == [
            Stream.STDOUT,
            Stream.MESSAGE,
            Stream.STDOUT,
        ]
        assert index.line(0).partial and not index.line(2).partial
        assert index.line_of(0) == 0 and index.line_of(6) == 2
        assert index.search("exit", -1) == 1  # a note's text is searched too
        assert list(index.matches("e")) == [0, 1, 2]


def test_bytes_a_kill_9_left_without_their_entry_are_lines_of_the_last_chunks_stream(
    tmp_path: Path,
) -> None:
    path = tmp_path / "stage.log"
    writer = LogWriter(path)
    writer.output(Stream.STDERR, b"whole", 5.0)
    writer.close()
    with path.open("ab") as file:
        file.write(b"no entry\nnor this")
    index = LogIndex(path)
    index.update()
    assert [index.line(i) for i in range(len(index))] == [
        LogRecord(5.0, Stream.STDERR, b"whole", False),
        LogRecord(5.0, Stream.STDERR, b"no entry", False),
        LogRecord(5.0, Stream.STDERR, b"nor this", True),
    ]
    # Their time may still change (their entry not written yet): not settled, until
    # a note (the recovery's) stands after them.
    assert index.settled == 1
    LogWriter(path).note("the runner stopped unexpectedly", 9.0)
    index.update()
    assert index.settled == len(index) == 4


def test_a_huge_line_is_cut_and_a_redrawn_one_shows_its_end(tmp_path: Path) -> None:
    path = tmp_path / "stage.log"
    writer = LogWriter(path)
    piece = b"a" * (1 << 20)
    for _ in range(3):
        writer.output(Stream.STDOUT, piece, 1.0, partial=True)
    writer.output(Stream.STDOUT, b"", 1.0)
    for step in range(3):
        writer.output(Stream.STDERR, b"\rstep %06d" % step, 2.0, partial=True)
    writer.output(Stream.STDERR, b"".join(b"\rstep %06d" % s for s in range(300_000)), 2.0)
    writer.close()
    index = LogIndex(path)
    index.update()
    huge, bar = index.line(0), index.line(1)
    assert huge.cut == 3 << 20 and huge.content == b"a" * log_index.MAX_LINE_READ
    assert bar.cut == 0 and bar.content.endswith(b"\rstep 299999")
    assert bar.content.startswith(b"\rstep ") and len(bar.content) <= log_index.MAX_LINE_READ
