"""Output handling: line splitting, masking, metrics and the log file format."""

from __future__ import annotations

import base64
import random
import urllib.parse
from pathlib import Path

from mlci_tui.events import StageMetrics, StageNoted, StageOutput
from mlci_tui.masking import SecretMasker
from mlci_tui.pipeline.output import PIECE_LIMIT, OutputSink, read_metrics_file
from mlci_tui.states import Stream
from mlci_tui.store.logs import LogCursor, LogWriter, encode, output_bytes, parse
from mlci_tui.textsafe import terminal_line
from tests.helpers import log_records


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_sink(secrets: tuple[str, ...] = ()) -> tuple[OutputSink, list, Clock]:
    events: list = []
    clock = Clock()
    return OutputSink("train", SecretMasker(secrets), events.append, clock), events, clock


def printed(events: list, stream: Stream = Stream.STDOUT) -> bytes:
    """Reassemble what the stage printed from its output events."""
    out = b""
    for event in events:
        if isinstance(event, StageOutput) and event.stream is stream:
            out += event.data + (b"" if event.partial else b"\n")
    return out


def test_lines_split_across_chunks_are_joined() -> None:
    sink, events, _ = make_sink()
    for chunk in (b"hel", b"lo\nwor", b"ld\n", b"", b"tail"):
        sink.feed(Stream.STDOUT, chunk)
    sink.close()
    outputs = [e for e in events if isinstance(e, StageOutput)]
    assert [e.data for e in outputs] == [b"hello", b"world", b"tail"]
    assert [e.partial for e in outputs] == [False, False, True]


def test_streams_are_kept_apart() -> None:
    sink, events, _ = make_sink()
    sink.feed(Stream.STDOUT, b"out-a")
    sink.feed(Stream.STDERR, b"err\n")
    sink.feed(Stream.STDOUT, b"\n")
    assert printed(events, Stream.STDOUT) == b"out-a\n"
    assert printed(events, Stream.STDERR) == b"err\n"


def test_a_huge_line_is_passed_on_in_bounded_pieces_and_nothing_is_lost() -> None:
    sink, events, _ = make_sink()
    line = bytes(range(256)).replace(b"\n", b"") * (10 * (1 << 20) // 255)
    for start in range(0, len(line), 65536):
        sink.feed(Stream.STDOUT, line[start : start + 65536])
    sink.feed(Stream.STDOUT, b"\nnext\n")
    pieces = [e for e in events if isinstance(e, StageOutput)]
    assert all(len(e.data) <= PIECE_LIMIT + 65536 for e in pieces)
    assert len(pieces) > 5
    assert printed(events) == line + b"\nnext\n"


def test_a_stale_unfinished_line_is_flushed_for_viewers() -> None:
    sink, events, clock = make_sink()
    sink.feed(Stream.STDOUT, b"45%|####")
    sink.flush_stale()
    assert not events
    clock.now += 1
    sink.flush_stale()
    assert events[-1].data == b"45%|####" and events[-1].partial
    sink.feed(Stream.STDOUT, b"##| 100%\n")
    assert printed(events) == b"45%|######| 100%\n"


def test_secret_masked_in_plain_base64_and_url_forms() -> None:
    secret = "p@ss w/rd:42"
    sink, events, _ = make_sink((secret,))
    b64 = base64.b64encode(secret.encode()).decode()
    text = f"plain {secret}\nb64 {b64}\nurl {urllib.parse.quote(secret, safe='')}\n"
    text += f"form {urllib.parse.quote_plus(secret)}\n"
    sink.feed(Stream.STDOUT, text.encode())
    assert printed(events) == b"plain ***\nb64 ***\nurl ***\nform ***\n"


def test_secret_split_across_reads_and_flushes_is_masked() -> None:
    secret = "hunter2-token"
    sink, events, clock = make_sink((secret,))
    for byte in f"a {secret} b".encode():
        sink.feed(Stream.STDOUT, bytes([byte]))
        clock.now += 1  # every byte is "stale": flushed as soon as it could be
        sink.flush_stale()
    sink.feed(Stream.STDOUT, b"\n")
    assert printed(events) == b"a *** b\n"
    assert b"hunter" not in b"".join(e.data for e in events if hasattr(e, "data"))


def test_metric_lines_are_parsed_and_bad_ones_noted() -> None:
    sink, events, _ = make_sink()
    sink.feed(Stream.STDOUT, b"::metric loss=0.5 acc=0.9\nnoise\n::metric loss=0.25\n")
    sink.feed(Stream.STDERR, b"::metric f1=1e-1\r\n::metric broken\n::metric x=nan\n")
    assert sink.metrics == {"loss": 0.25, "acc": 0.9, "f1": 0.1}
    notes = [e.text for e in events if isinstance(e, StageNoted)]
    assert notes == [
        "ignored a malformed metric line: 'broken'",
        "ignored metric 'x' = 'nan': not a finite number",
    ]
    assert any(isinstance(e, StageMetrics) and e.metrics == {"f1": 0.1} for e in events)


def test_metric_line_flushed_in_pieces_still_counts() -> None:
    sink, _, clock = make_sink()
    sink.feed(Stream.STDOUT, b"::metric accu")
    clock.now += 1
    sink.flush_stale()
    sink.feed(Stream.STDOUT, b"racy=0.75\n")
    assert sink.metrics == {"accuracy": 0.75}


def test_a_line_passed_on_in_pieces_is_a_metric_line_only_if_it_starts_as_one() -> None:
    sink, _, clock = make_sink()
    for start, rest in ((b"::me", b"tric loss=1\n"), (b"noise ", b"::metric acc=2\n")):
        sink.feed(Stream.STDOUT, start)
        clock.now += 1
        sink.flush_stale()
        sink.feed(Stream.STDOUT, rest + b"::metric f1=3\n")
    assert sink.metrics == {"loss": 1.0, "f1": 3.0}


def test_metrics_file_is_read_and_flattened(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text('{"accuracy": 0.9, "eval": {"f1": 0.8}, "name": "x", "ok": true}')
    found = read_metrics_file(path)
    assert found.metrics == {"accuracy": 0.9, "eval.f1": 0.8}
    assert found.ignored == [
        ("name", "expected a number, got a string"),
        ("ok", "expected a number, got true or false"),
    ]
    assert found.problem is None
    path.write_text("[1, 2]")
    assert read_metrics_file(path).metrics == {} and read_metrics_file(path).problem
    assert read_metrics_file(tmp_path / "missing.json") == ({}, [], None)


def test_log_records_round_trip_any_bytes(tmp_path: Path) -> None:
    path = tmp_path / "stage.log"
    writer = LogWriter(path)
    weird = [b"", b"\x00\xff\xfe bin", b"[bold]x[/]", b"\x1b]0;title\x07", b"a\rb"]
    writer.write(log_records(Stream.STDOUT, b"\n".join(weird), 1.5))
    writer.write(log_records(Stream.STDERR, b"err\npiece", 2.0, partial=True))
    writer.write(log_records(Stream.MESSAGE, b"retrying", 2.5))
    writer.write(log_records(Stream.STDERR, b" end", 3.0))
    writer.close()
    records = list(LogCursor(path).read())
    assert [r.content for r in records] == [*weird, b"err", b"piece", b"retrying", b" end"]
    assert [r.stream for r in records[5:]] == [Stream.STDERR] * 2 + [Stream.MESSAGE, Stream.STDERR]
    assert records[0].time == 1.5 and records[6].partial and not records[5].partial
    out = b"".join(output_bytes(iter(records)))
    assert out == b"\n".join(weird) + b"\nerr\npiece end\n"


def test_a_block_is_encoded_as_one_record_per_line() -> None:
    """Whole chunks are encoded with one replace: record for record what encoding
    each line on its own gives, for any lines, empty ones and a last piece too."""
    rng = random.Random(7)
    alphabet = [b"a", b" ", b"+", b"\r", b"\x00", b"o+ ", b"\xff", b"::metric x=1"]
    for _ in range(300):
        lines = [
            b"".join(rng.choices(alphabet, k=rng.randrange(0, 6)))
            for _ in range(rng.randrange(1, 8))
        ]
        partial = rng.random() < 0.5
        expected = b"".join(b"%.3f o %s\n" % (4.25, line) for line in lines[:-1])
        expected += b"%.3f o%s %s\n" % (4.25, b"+" if partial else b"", lines[-1])
        block = b"\n".join(lines)
        assert log_records(Stream.STDOUT, block, 4.25, partial=partial) == expected
        assert b"".join(encode(Stream.STDOUT, block, 4.25, partial=partial)) == expected


def test_log_cursor_returns_only_whole_records_and_resumes(tmp_path: Path) -> None:
    path = tmp_path / "stage.log"
    assert list(LogCursor(path).read()) == []
    path.write_bytes(b"1.000 o first\n2.000 o seco")
    cursor = LogCursor(path, chunk_size=4)
    assert [r.content for r in cursor.read()] == [b"first"]
    with path.open("ab") as file:
        file.write(b"nd\n")
    assert [r.content for r in cursor.read()] == [b"second"]
    assert list(cursor.read()) == []
    assert list(parse(b"garbage\n1.0 q nope\n")) == []


def test_terminal_line_keeps_colour_and_drops_every_other_escape() -> None:
    hostile = (
        "\x1b[31mred\x1b[0m [bold]x[/] \x1b]0;title\x07\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\"
        "\x1b]52;c;Y29weQ==\x07\x1b[2J\x1b[?1049h\x1b[H\x1b[?2004h\x00\x07\x9b31m\ufffd"
    )
    assert terminal_line(hostile, keep_color=True) == (
        "\x1b[31mred\x1b[0m [bold]x[/] link\u2400\u2407\ufffd"
    )
    assert terminal_line(hostile, keep_color=False) == "red [bold]x[/] link\u2400\u2407\ufffd"
    assert terminal_line("10%\r50%\r100%\r", keep_color=False) == "100%"


def test_each_line_of_a_multiline_secret_is_masked_even_across_reads() -> None:
    secret = "line-one-secret\nline-two-secret"
    sink, events, _ = make_sink((secret,))
    sink.feed(Stream.STDOUT, b"key: line-one-secret\nline-")
    sink.feed(Stream.STDOUT, b"two-secret\n")
    assert printed(events) == b"key: ***\n***\n"


def test_a_secret_that_is_not_utf8_is_masked() -> None:
    masker = SecretMasker(["abc\udcffdef"])
    assert masker.mask(b"x abc\xffdef y") == b"x *** y"


def test_a_metric_on_an_unfinished_last_line_counts_after_a_stale_flush() -> None:
    sink, _, clock = make_sink()
    sink.feed(Stream.STDOUT, b"::metric acc=0.9")
    clock.now += 1
    sink.flush_stale()
    sink.close()
    assert sink.metrics == {"acc": 0.9}
