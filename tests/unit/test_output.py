"""Output handling: line splitting, masking, metrics and the log file format."""

from __future__ import annotations

import base64
import os
import random
import sys
import urllib.parse
from pathlib import Path

from mlci_tui.events import StageMetrics, StageNoted, StageOutput
from mlci_tui.masking import SecretMasker
from mlci_tui.pipeline import output as output_module
from mlci_tui.pipeline.output import PIECE_LIMIT, MetricsFile, OutputSink, read_metrics_file
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


# Metric values: a finite float64 is kept; anything else is ignored with one note.

HUGE_INT = "1" + "0" * 400


def notes_of(events: list) -> list[str]:
    return [e.text for e in events if isinstance(e, StageNoted)]


def points_of(events: list) -> list[tuple[str, int, float]]:
    return [p for e in events if isinstance(e, StageMetrics) for p in e.points]


def test_a_value_past_float64_nan_or_infinite_is_ignored_and_the_rest_of_its_line_kept() -> None:
    sink, events, _ = make_sink()
    lines = [
        f"::metric step=1 big={HUGE_INT} ok=0.5",
        "::metric step=2 low=-1.7e308 high=1.7e308 tiny=5e-324 zero=-0",
        "::metric over=1e309 under=-1e309 nan=nan inf=-inf name=Infinity hex=0x10",
    ]
    sink.feed(Stream.STDOUT, "\n".join(lines).encode() + b"\n")
    assert points_of(events) == [
        ("ok", 1, 0.5),
        ("low", 2, -1.7e308),
        ("high", 2, 1.7e308),
        ("tiny", 2, 5e-324),
        ("zero", 2, -0.0),
    ]
    assert notes_of(events) == [
        f"ignored metric 'big' = '{HUGE_INT[:79]}…': beyond the float64 range (±1.8e308)",
        "ignored metric 'over' = '1e309': beyond the float64 range (±1.8e308)",
        "ignored metric 'under' = '-1e309': beyond the float64 range (±1.8e308)",
        "ignored metric 'nan' = 'nan': not a finite number",
        "ignored metric 'inf' = '-inf': not a finite number",
        "ignored metric 'name' = 'Infinity': not a finite number",
        "ignored metric 'hex' = '0x10': not a number",
    ]


def test_a_flood_of_bad_values_gives_one_note_per_metric_for_at_most_ten_metrics() -> None:
    sink, events, _ = make_sink()
    flood = b"".join(b"::metric m%d=nan same=1e999 ok=1\n" % (i % 50) for i in range(200_000))
    for start in range(0, len(flood), 65536):
        sink.feed(Stream.STDOUT, flood[start : start + 65536])
    sink.close()
    notes = [note for note in notes_of(events) if note.startswith("ignored")]
    assert len(notes) == output_module.MAX_METRIC_NOTES
    assert notes[0] == "ignored metric 'm0' = 'nan': not a finite number"
    assert notes[1] == "ignored metric 'same' = '1e999': beyond the float64 range (±1.8e308)"
    assert notes[-1].endswith("; further metrics with values ignored are not noted")
    assert sink.metrics == {"ok": 1.0}


def test_a_metrics_file_with_a_400_digit_int_nan_and_infinity_keeps_the_rest(
    tmp_path: Path,
) -> None:
    path = tmp_path / "m.json"
    path.write_text(
        f'{{"x": {HUGE_INT}, "y": -{HUGE_INT}0, "z": 1e400, "n": NaN, "i": -Infinity,'
        f' "ok": 0.25, "neg": -0, "max": 1.7976931348623157e308, "long": {"9" * 5000}}}'
    )
    found = read_metrics_file(path)
    assert found.metrics == {"ok": 0.25, "neg": -0.0, "max": 1.7976931348623157e308}
    out_of_range = "beyond the float64 range (±1.8e308)"
    assert found.ignored == [
        ("x", out_of_range),
        ("y", out_of_range),
        ("z", out_of_range),
        ("n", "not a finite number"),
        ("i", "not a finite number"),
        ("long", out_of_range),
    ]
    assert found.problem is None


def deep(depth: int, inner: str = "1") -> str:
    return '{"a":' * depth + inner + "}" * depth


def test_nesting_past_five_levels_is_ignored_with_its_name_however_deep_and_wherever_read(
    tmp_path: Path,
) -> None:
    path = tmp_path / "m.json"
    for depth in (6, 900, 3000, 100_000):
        path.write_text(f'{{"ok": 1, "deep": {deep(depth)}, "arr": [[[[[[[1]]]]]]], "f": 2}}')

        def read_from(stack: int) -> MetricsFile:
            # The runner reads the file deep in its own stack: recursion must not matter.
            return read_from(stack - 1) if stack else read_metrics_file(path)

        found = read_from(sys.getrecursionlimit() - 100)
        assert found.metrics == {"ok": 1.0, "f": 2.0}, depth
        assert found.ignored == [
            ("deep.a.a.a.a", "nested deeper than 5 levels"),
            ("arr", "expected a number, got an array"),
        ]
    path.write_text(deep(4, '{"e": 3}'))
    assert read_metrics_file(path).metrics == {"a.a.a.a.e": 3.0}  # five levels: kept


def test_brackets_that_cannot_be_json_are_not_valid_json_even_when_deep(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    for text in ('{"a": ' + "[" * 100_000, "]" * 10 + "[" * 10, '{"a": 1}}', '{"s": "[[[[[["}'):
        path.write_text(text)
        found = read_metrics_file(path)
        assert found.metrics == {}
        if text.startswith('{"s"'):  # brackets inside a string are text
            assert found.ignored == [("s", "expected a number, got a string")]
        else:
            assert found.problem is not None and "not valid JSON" in found.problem


def test_a_metrics_file_past_the_limit_is_removed_unread(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    with open(path, "wb") as file:
        file.truncate(output_module.MAX_METRICS_FILE + 1)
    found = read_metrics_file(path)
    assert found == ({}, [], "the metrics file is over 16 MiB: removed unread")
    assert not path.exists()


def test_a_metrics_file_that_is_a_fifo_a_device_or_a_directory_is_never_waited_on(
    tmp_path: Path,
) -> None:
    fifo, device, folder = tmp_path / "fifo.json", tmp_path / "zero.json", tmp_path / "dir.json"
    os.mkfifo(fifo)  # no writer: an open for reading that waits would wait forever
    device.symlink_to("/dev/zero")
    folder.mkdir()
    assert read_metrics_file(fifo) == (
        {},
        [],
        "the metrics file is a FIFO, not a file: removed unread",
    )
    assert read_metrics_file(device).problem == (
        "the metrics file is a device or socket, not a file: removed unread"
    )
    assert not fifo.exists() and not device.is_symlink() and Path("/dev/zero").exists()
    assert read_metrics_file(folder).problem == "cannot read the metrics file: Is a directory"
