"""LogIndex: random access and search into a growing log file, checked against
reading the whole file."""

from __future__ import annotations

import random
from pathlib import Path

from mlci_tui.states import Stream
from mlci_tui.store import log_index
from mlci_tui.store.log_index import LogIndex
from mlci_tui.store.logs import LogWriter, lines, parse
from tests.helpers import log_records


def write_random_log(path: Path, rng: random.Random, records: int) -> None:
    writer = LogWriter(path)
    for i in range(records):
        size = rng.choice([0, 5, 40, 200, 3000, 70_000])
        content = f"rec {i} ".encode() + bytes(
            rng.choice(b"abcdefXYZ \x00\xff") for _ in range(size)
        )
        content = content.replace(b"\n", b"")
        stream = rng.choice([Stream.STDOUT, Stream.STDERR, Stream.MESSAGE])
        writer.write(log_records(stream, content, float(i), partial=rng.random() < 0.1))
    writer.close()


def test_every_record_is_found_as_the_file_grows(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(log_index, "READ_CHUNK", 100_000)  # many chunks, many blocks
    path = tmp_path / "stage.log"
    rng = random.Random(7)
    index = LogIndex(path)
    for _ in range(3):
        write_random_log(path, rng, 400)
        with path.open("ab") as file:
            file.write(b"123.000 o an unfinished rec")  # not indexed until whole
        index.update()
        expected = list(parse(path.read_bytes().rsplit(b"\n", 1)[0] + b"\n"))
        assert index.records == len(expected)
        assert len(index) == len(lines(expected))
        for i in [*rng.sample(range(len(expected)), 150), 0, len(expected) - 1]:
            assert index.record(i) == expected[i]
        with path.open("ab") as file:
            file.write(b" now ended\n")
    index.update()
    assert index.record(index.records - 1).content == b"an unfinished rec now ended"
    assert index.record(index.records) is None
    joined = lines(parse(path.read_bytes()))
    assert len(index) == len(joined)
    for i in [*rng.sample(range(len(joined)), 150), 0, len(joined) - 1]:
        assert index.line(i) == joined[i]


def test_search_forward_and_backward_matches_a_plain_scan(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(log_index, "READ_CHUNK", 50_000)
    path = tmp_path / "stage.log"
    writer = LogWriter(path)
    lines = [f"line {i:05d} {'needle' if i % 97 == 0 else 'hay'}".encode() for i in range(3000)]
    writer.write(log_records(Stream.STDOUT, b"\n".join(lines), 1.0))
    writer.write(log_records(Stream.STDOUT, b"o needle-in-the-tag-only? no: NEEDLE", 2.0))
    writer.close()
    index = LogIndex(path)
    index.update()
    hits = [i for i in range(len(index)) if b"needle" in index.record(i).content.lower()]
    found, position = [], -1
    while (position := index.search("Needle", position)) is not None:
        found.append(position)
    assert found == hits
    backwards, position = [], len(index)
    while (position := index.search("needle", position, forward=False)) is not None:
        backwards.append(position)
    assert backwards == hits[::-1]
    assert index.search(" o ", -1) is None  # the stream tag is not content
    assert index.search("absent", -1) is None


def test_a_follower_skips_a_backlog_and_counts_it_later(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(log_index, "SKIP_AFTER", 200_000)
    monkeypatch.setattr(log_index, "KEEP_TAIL", 20_000)
    monkeypatch.setattr(log_index, "READ_CHUNK", 64_000)
    path = tmp_path / "stage.log"
    writer = LogWriter(path)
    writer.write(
        log_records(Stream.STDOUT, b"\n".join(f"early {i}".encode() for i in range(100)), 1.0)
    )
    index = LogIndex(path)
    index.update(follow=True)
    assert len(index) == 100 and index.complete
    writer.write(
        log_records(
            Stream.STDOUT, b"\n".join(f"flood {i:06d}".encode() for i in range(50_000)), 2.0
        )
    )
    writer.close()
    index.update(follow=True)
    assert not index.complete
    assert 0 < len(index) - 100 < 50_000  # most of the flood was skipped
    assert index.record(len(index) - 1).content == b"flood 049999"
    assert index.record(99).content == b"early 99"
    before = len(index)
    skipped = index.fill_gap()
    assert index.complete and len(index) == 50_100
    assert skipped == 50_100 - before
    expected = list(parse(path.read_bytes()))
    for i in [0, 99, 100, 101, 12_345, 40_000, 50_099]:
        assert index.record(i) == expected[i]
    assert index.search("flood 000007", 0) == 107


def test_pieces_of_a_line_are_one_line_found_by_search_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "stage.log"
    writer = LogWriter(path)
    writer.write(log_records(Stream.STDOUT, b"before", 1.0))
    for step, piece in enumerate([b"10%\r", b"2", b"0%\r30%\r"]):
        writer.write(log_records(Stream.STDERR, piece, 2.0 + step, partial=True))
    writer.write(log_records(Stream.STDERR, b"100% done", 5.0))
    writer.write(log_records(Stream.STDOUT, b"after 30%", 6.0))
    writer.close()
    index = LogIndex(path)
    index.update()
    assert (index.records, len(index)) == (6, 3)
    assert [index.line(i).content for i in range(3)] == [
        b"before",
        b"10%\r20%\r30%\r100% done",
        b"after 30%",
    ]
    assert index.line(1).stream is Stream.STDERR and not index.line(1).partial
    assert index.search("30%", -1) == 1
    assert index.search("30%", 1) == 2
    assert index.search("before", 3, forward=False) == 0
    assert list(index.matches("30%")) == [1, 2]
    assert list(index.matches("absent")) == []


def test_a_note_of_mlcis_starts_its_own_line_after_a_piece_however_it_is_indexed(
    tmp_path: Path,
) -> None:
    """A stage's last line without a newline, then why it failed: two lines, whether
    the index read the piece and the note at once or the note came later."""
    path = tmp_path / "stage.log"
    writer = LogWriter(path)
    writer.write(log_records(Stream.STDOUT, b"no end", 1.0, partial=True))
    later = LogIndex(path)
    later.update()  # the piece alone: its line may still go on
    assert len(later) == 1
    writer.write(log_records(Stream.MESSAGE, b"exit code 3", 2.0))
    writer.write(log_records(Stream.STDOUT, b"more ", 3.0, partial=True))
    writer.write(log_records(Stream.STDOUT, b"of one line", 4.0))
    writer.close()
    later.update()
    at_once = LogIndex(path)
    at_once.update()
    expected = [b"no end", b"exit code 3", b"more of one line"]
    assert [r.content for r in lines(parse(path.read_bytes()))] == expected
    for index in (later, at_once):
        assert len(index) == 3
        found = [index.line(i) for i in range(3)]
        assert [r.content for r in found if r is not None] == expected
        assert index.line_of(1) == 1 and index.line_of(3) == 2
