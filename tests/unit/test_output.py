"""Output handling: line splitting, masking, metrics and the log file format."""

from __future__ import annotations

import base64
import itertools
import random
import re
import sys
import unicodedata
import urllib.parse
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from mlci_tui.config import MIN_SECRET_LENGTH
from mlci_tui.events import StageMetrics, StageNoted, StageOutput
from mlci_tui.masking import SecretMasker
from mlci_tui.pipeline.output import PIECE_LIMIT, OutputSink, read_metrics_file
from mlci_tui.states import Stream
from mlci_tui.store.logs import LogCursor, LogWriter, encode, output_bytes, parse
from mlci_tui.textsafe import terminal_line, visible_text
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


# Secrets, whatever their value and however they are printed ------------------------

SECRET = st.text(
    st.characters(blacklist_characters="*\n\r", blacklist_categories=("Cs",)),
    min_size=MIN_SECRET_LENGTH,
    max_size=24,
)
"""A secret's value ("*" is the mask's own character, and a line of a secret is a
form of its own, tested above)."""


def encodings(secret: str) -> set[bytes]:
    """Every form of ``secret`` a tool may print, worked out here, not by the masker:
    as written, base64 (padded, unpadded, URL-safe) and percent-encoded (`quote` and
    `quote_plus`, "/" escaped or kept, hex digits in upper or lower case)."""
    raw = secret.encode()
    forms = {raw, base64.b64encode(raw), base64.b64encode(raw).rstrip(b"=")}
    forms.add(base64.urlsafe_b64encode(raw).rstrip(b"="))
    for safe in ("", "/"):
        for quoted in (urllib.parse.quote(raw, safe=safe), urllib.parse.quote_plus(raw, safe=safe)):
            forms.add(quoted.encode())
            forms.add(re.sub("%[0-9A-F]{2}", lambda escape: escape[0].lower(), quoted).encode())
    return forms


def feed_in_pieces(secret: str, text: bytes, cuts: list[int], flushes: list[bool]) -> bytes:
    """What a stage printing ``text`` in pieces cut at ``cuts`` shows; after each piece
    for which ``flushes`` says so, a second passes and the unfinished line is passed on."""
    sink, events, clock = make_sink((secret,))
    edges = [0, *sorted({cut % (len(text) + 1) for cut in cuts}), len(text)]
    for index, (start, end) in enumerate(itertools.pairwise(edges)):
        sink.feed(Stream.STDOUT, text[start:end])
        if flushes and flushes[index % len(flushes)]:
            clock.now += 1
            sink.flush_stale()
    sink.close()
    return printed(events)


@settings(max_examples=500, deadline=None)
@given(
    secret=SECRET,
    order=st.randoms(use_true_random=False),
    cuts=st.lists(st.integers(min_value=0)),
    flushes=st.lists(st.booleans()),
)
def test_no_secret_in_any_of_its_encodings_survives_any_chunking(
    secret: str, order: random.Random, cuts: list[int], flushes: list[bool]
) -> None:
    forms = sorted(encodings(secret))
    order.shuffle(forms)
    shown = feed_in_pieces(secret, b"".join(b"<" + form + b">\n" for form in forms), cuts, flushes)
    for form in forms:
        assert form not in shown, form
    # Each masked (a padded base64 form cut after its unpadded one may keep its "=").
    assert shown.count(b"<***") == len(forms)


def test_a_url_encoded_secret_printed_byte_by_byte_never_leaks() -> None:
    """The longest form of this secret is its percent-encoding: all of it must be held
    back while it may still be coming, a byte at a time with every byte flushed."""
    secret = "p@ss w/rd:42"
    for form in encodings(secret):
        text = b"url " + form + b" end\n"
        shown = feed_in_pieces(secret, text, list(range(len(text))), [True])
        assert shown == b"url *** end\n", form


# Text that reaches a terminal -----------------------------------------------------

# Every bidirectional control (CVE-2021-42574), by name: Unicode's Bidi_Control.
BIDI_CONTROLS = [
    "\u202a",  # LEFT-TO-RIGHT EMBEDDING
    "\u202b",  # RIGHT-TO-LEFT EMBEDDING
    "\u202c",  # POP DIRECTIONAL FORMATTING
    "\u202d",  # LEFT-TO-RIGHT OVERRIDE
    "\u202e",  # RIGHT-TO-LEFT OVERRIDE
    "\u2066",  # LEFT-TO-RIGHT ISOLATE
    "\u2067",  # RIGHT-TO-LEFT ISOLATE
    "\u2068",  # FIRST STRONG ISOLATE
    "\u2069",  # POP DIRECTIONAL ISOLATE
    "\u200e",  # LEFT-TO-RIGHT MARK
    "\u200f",  # RIGHT-TO-LEFT MARK
    "\u061c",  # ARABIC LETTER MARK
]


def unsafe(char: str) -> bool:
    """Whether ``char`` must never reach a terminal as it is, by Unicode's own data:
    a control character (Cc) but the tab; a format character (Cf) that reorders
    text — an explicit bidirectional class, or one of the three implicit marks —
    or changes how it is drawn (the deprecated shaping and digit controls), or
    carries text nobody sees (tags, interlinear annotations)."""
    category = unicodedata.category(char)
    if category == "Cc":
        return char != "\t"
    if category != "Cf":
        return False
    name = unicodedata.name(char, "")
    explicit = {"LRE", "RLE", "LRO", "RLO", "PDF", "LRI", "RLI", "FSI", "PDI"}
    return (
        unicodedata.bidirectional(char) in explicit
        or name in ("LEFT-TO-RIGHT MARK", "RIGHT-TO-LEFT MARK", "ARABIC LETTER MARK")
        or name.endswith(("SYMMETRIC SWAPPING", "ARABIC FORM SHAPING", "DIGIT SHAPES"))
        or name.startswith(("TAG ", "LANGUAGE TAG", "CANCEL TAG", "INTERLINEAR ANNOTATION"))
    )


UNSAFE = [chr(code) for code in range(sys.maxunicode + 1) if unsafe(chr(code))]


def test_every_bidi_control_is_shown_by_its_code_point() -> None:
    assert set(BIDI_CONTROLS) <= set(UNSAFE)
    for char in BIDI_CONTROLS:
        shown = f"a<U+{ord(char):04X}>b"
        assert visible_text(f"a{char}b") == shown
        assert terminal_line(f"a{char}b", keep_color=True) == shown
        assert terminal_line(f"\x1b[31ma{char}b", keep_color=False) == shown


def test_every_format_character_that_reorders_or_hides_text_is_shown() -> None:
    for char in UNSAFE:
        if unicodedata.category(char) == "Cf":
            assert terminal_line(char, keep_color=False) == f"<U+{ord(char):04X}>", hex(ord(char))
    # And those that hide nothing but themselves stay, as emoji and scripts need them.
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    assert terminal_line(family, keep_color=True) == family


ESCAPES = ["\x1b[31m", "\x1b[8m", "\x1b[1;8;31m", "\x1b]0;title\x07", "\x1b[2J", "\x9b1m", "\x1b"]
terminal_text = st.lists(
    st.sampled_from(UNSAFE) | st.sampled_from(ESCAPES) | st.characters() | st.text(max_size=5),
    max_size=40,
).map("".join)


@settings(max_examples=500)
@given(text=terminal_text, keep_color=st.booleans())
def test_nothing_that_reorders_or_hides_text_reaches_a_terminal(
    text: str, keep_color: bool
) -> None:
    for shown in (terminal_line(text, keep_color=keep_color), visible_text(text)):
        colours = re.sub(r"\x1b\[[0-9;:]*m", "", shown) if keep_color else shown
        assert not [char for char in colours if unsafe(char)], ascii(shown)
        # Colours kept: none conceals (SGR 8), which would hide what follows.
        for sgr in re.findall(r"\x1b\[([0-9;:]*)m", shown):
            assert "8" not in sgr.split(";"), ascii(shown)
