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

from hypothesis import example, given, settings
from hypothesis import strategies as st

from mlci_tui.config import MIN_SECRET_LENGTH
from mlci_tui.events import CommandMetrics, CommandNoted, CommandOutput
from mlci_tui.execution.output import PIECE_LIMIT, STALE_AFTER_S, OutputSink, read_metrics_file
from mlci_tui.masking import MIN_LINE, SecretMasker
from mlci_tui.states import Stream
from mlci_tui.textsafe import FIELD_TEXT, field_text, terminal_line, visible_text


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
        if isinstance(event, CommandOutput) and event.stream is stream:
            out += event.data + (b"" if event.partial else b"\n")
    return out


def test_lines_split_across_chunks_are_joined() -> None:
    sink, events, _ = make_sink()
    for chunk in (b"hel", b"lo\nwor", b"ld\n", b"", b"tail"):
        sink.feed(Stream.STDOUT, chunk)
    sink.close()
    outputs = [e for e in events if isinstance(e, CommandOutput)]
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
    pieces = [e for e in events if isinstance(e, CommandOutput)]
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


@given(
    waited=st.sampled_from([STALE_AFTER_S, STALE_AFTER_S * 2])
    | st.floats(min_value=0, max_value=STALE_AFTER_S * 4),
    start=st.sampled_from([0.0, 1000.0, 1.7e9]),
)
def test_an_unfinished_line_is_passed_on_once_it_has_waited_the_stale_time(
    waited: float, start: float
) -> None:
    sink, events, clock = make_sink()
    clock.now = start
    sink.feed(Stream.STDOUT, b"45%|####")
    clock.now = start + waited
    sink.flush_stale()
    # What the clock says has passed, as the sink can know it, is the oracle.
    assert bool(events) == (clock.now - start >= STALE_AFTER_S)


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
    notes = [e.text for e in events if isinstance(e, CommandNoted)]
    assert notes == [
        "ignored a malformed metric line: 'broken'",
        "ignored metric 'x' = 'nan': not a finite number",
    ]
    assert any(isinstance(e, CommandMetrics) and e.metrics == {"f1": 0.1} for e in events)


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


# Masking, exactly: every form of a secret (worked out here, not by the masker) becomes
# "***" and nothing else a stage prints changes, not even text that is all but a form.


def forms_of(secret: str) -> set[bytes]:
    """The forms of a one-line secret: its encodings, and the secret without the
    spaces around it (a line of output is masked as a line of a secret is)."""
    trimmed = secret.encode().strip()
    return encodings(secret) | ({trimmed} if len(trimmed) >= MIN_LINE else set())


def near_misses(secret: str) -> list[bytes]:
    """Text that is all but a form of ``secret`` — a byte short at either end — and
    holds none of its forms: a stage may print it, and it must pass unchanged."""
    forms = forms_of(secret)
    misses = {cut for form in forms for cut in (form[:-1], form[1:]) if cut}
    return sorted(miss for miss in misses if not any(form in miss for form in forms))


# "tokenW" is "dG9rZW5X" in base64, padded or not: its last character is an "X".
@example(secret="tokenW", order=random.Random(0), cuts=[])
@example(secret="tokenW", order=random.Random(0), cuts=[3, 9, 20])
@settings(max_examples=300, deadline=None)
@given(
    secret=SECRET,
    order=st.randoms(use_true_random=False),
    cuts=st.lists(st.integers(min_value=0)),
)
def test_each_form_of_a_secret_is_masked_and_all_but_a_form_is_left_alone(
    secret: str, order: random.Random, cuts: list[int]
) -> None:
    lines = [(form, b"***") for form in forms_of(secret)]
    lines += [(miss, miss) for miss in near_misses(secret)]
    order.shuffle(lines)
    text = b"".join(line + b"\n" for line, _ in lines)
    assert feed_in_pieces(secret, text, cuts, []) == b"".join(shown + b"\n" for _, shown in lines)


def test_an_escape_left_open_never_joins_two_lines_into_a_secret() -> None:
    # Found by the property above: "00" + an OSC left open (C1 \x9d), then on the next
    # line "0%c2%9d", read as one form of "000\x9d" with an escape inside it.
    text = b"00\xc2\x9d\n00%c2%9d\n"
    assert SecretMasker(["000\x9d"]).mask(text) == text
    assert SecretMasker(["tokenW"]).mask(b"tok\x1b]0;\nenW\n") == b"tok\x1b]0;\nenW\n"
    assert SecretMasker(["tokenW"]).mask(b"tok\x1b]0;title\x07enW\n") == b"***\n"


LINE_CHARACTER = st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="*")


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(st.text(LINE_CHARACTER, min_size=1, max_size=8), min_size=2, max_size=5),
    order=st.randoms(use_true_random=False),
)
def test_each_line_of_a_multiline_secret_is_masked_from_four_characters_on(
    lines: list[str], order: random.Random
) -> None:
    secret = "\n".join(lines)
    printed = [line.encode() for line in lines]
    order.shuffle(printed)
    # Blank lines between them: the lines in a row would be the secret itself.
    shown = feed_in_pieces(secret, b"\n\n".join(printed) + b"\n", [], [])
    expected = [b"***" if len(line) >= MIN_LINE else line for line in printed]
    assert shown == b"\n\n".join(expected) + b"\n"


@st.composite
def output_ending_in_part_of_a_form(draw: st.DrawFn) -> tuple[str, bytes]:
    secret = draw(SECRET)
    form = draw(st.sampled_from(sorted(forms_of(secret))))
    start = draw(st.binary(max_size=40))
    return secret, start + form[: draw(st.integers(min_value=0, max_value=len(form) - 1))]


@settings(max_examples=300, deadline=None)
@given(case=output_ending_in_part_of_a_form())
def test_a_cut_releases_all_but_what_may_start_a_secret_and_no_more(
    case: tuple[str, bytes],
) -> None:
    secret, data = case
    masker = SecretMasker([secret])
    data = masker.mask(data)
    cut = masker.safe_split(data)
    assert 0 <= cut <= len(data)
    # Nothing released may be the start of a form the next bytes complete ...
    for form in forms_of(secret):
        for start in range(cut):
            rest = data[start:]
            assert not (len(rest) < len(form) and form.startswith(rest)), (form, start)
    # ... and no more than a form's length less a byte is held back.
    longest = max(map(len, forms_of(secret)))
    assert cut >= len(data) - (longest - 1)


@given(values=st.lists(st.text(max_size=3), max_size=3))
def test_a_masker_is_true_exactly_when_it_has_a_secret_to_mask(values: list[str]) -> None:
    masker = SecretMasker(values)
    assert bool(masker) == any(values)


# Output with no ASCII letter in it: bytes that are not UTF-8, characters that are not
# ASCII, spaces.
NON_ASCII = st.lists(
    st.integers(min_value=0x80, max_value=0xFF).map(lambda byte: bytes([byte]))
    | st.characters(min_codepoint=0x80, exclude_categories=("Cs",)).map(str.encode)
    | st.just(b" "),
    max_size=12,
).map(b"".join)


def as_held(data: bytes) -> str:
    """Bytes as mlci holds them in text: what is not UTF-8 as surrogate escapes."""
    return data.decode("utf-8", "surrogateescape")


@given(
    value=st.binary(max_size=8).filter(lambda value: not set(value) & set(b"\n\r*")),
    before=NON_ASCII,
    after=NON_ASCII,
)
def test_text_that_is_not_utf8_is_masked_and_otherwise_kept_as_it_is(
    value: bytes, before: bytes, after: bytes
) -> None:
    # An ASCII start, which no side holds, and one line: no form of the secret but
    # itself can be in the text (its encodings are ASCII, and longer than any spaces).
    secret = b"tok" + value
    masker = SecretMasker([as_held(secret)])
    assert masker.mask_text(as_held(before + after)) == as_held(before + after)
    assert masker.mask_text(as_held(before + secret + after)) == as_held(before + b"***" + after)


@example(secret="hunter2-token", before=b"x", after=b"", shown=False, cuts=[], flushes=[]).via(
    "a last line of one byte"
)
@settings(max_examples=200, deadline=None)
@given(
    # Without spaces at its ends, where the secret's line is a form shorter than itself
    # and a cut between the two masks the line and shows the space.
    secret=SECRET.map(str.strip).filter(lambda secret: len(secret) >= MIN_SECRET_LENGTH),
    before=st.binary(max_size=20).map(lambda data: data.replace(b"\n", b"")),
    after=st.binary(max_size=20).map(lambda data: data.replace(b"\n", b"")),
    shown=st.booleans(),
    cuts=st.lists(st.integers(min_value=0)),
    flushes=st.lists(st.booleans()),
)
def test_a_last_line_without_a_newline_is_shown_whole_and_masked_at_the_end(
    secret: str,
    before: bytes,
    after: bytes,
    shown: bool,
    cuts: list[int],
    flushes: list[bool],
) -> None:
    """However it arrives, the unfinished last line is passed on whole when output ends,
    masked as the same bytes masked at once are."""
    text = before + (secret.encode() if shown else b"") + after
    assert feed_in_pieces(secret, text, cuts, flushes) == SecretMasker([secret]).mask(text)


@given(data=st.binary())
def test_without_secrets_everything_can_be_released(data: bytes) -> None:
    masker = SecretMasker([])
    assert not masker
    assert masker.mask(data) == data
    assert masker.safe_split(data) == len(data)


@settings(max_examples=200, deadline=None)
@given(
    secret=SECRET,
    names=st.lists(st.text(max_size=10), max_size=4),
    value=st.floats(allow_nan=False),
)
def test_a_metric_name_holding_a_secret_is_masked_and_its_value_kept(
    secret: str, names: list[str], value: float
) -> None:
    masker = SecretMasker([secret])
    metrics = {f"{name}{secret}{name}": value for name in names}
    masked = masker.mask_names(metrics)
    assert set(masked.values()) <= {value}
    assert len(masked) <= len(metrics)
    for name in masked:
        assert not any(form in name.encode() for form in forms_of(secret)), name
    assert SecretMasker([]).mask_names(metrics) == metrics


@settings(max_examples=100, deadline=None)
@given(
    secret=SECRET,
    names=st.lists(st.text(max_size=10), max_size=4),
    value=st.floats(allow_nan=False, allow_infinity=False),
)
def test_a_cached_stages_values_are_its_metrics_names_masked_and_no_series_points(
    secret: str, names: list[str], value: float
) -> None:
    sink, events, clock = make_sink((secret,))
    metrics = {f"{name}{secret}": value for name in names}
    sink.add_metrics(metrics, series=False)
    if not metrics:
        assert events == [] and sink.metrics == {}
        return
    masked = SecretMasker([secret]).mask_names(metrics)
    assert events == [CommandMetrics("train", masked, clock.now)]
    assert sink.metrics == masked


# Terminal text, exactly: lines built from pieces whose rendering is known on its own (a
# character shown by what Unicode's data says it is, an escape sequence dropped, a
# colour kept without conceal) and compared whole.


def as_shown(char: str) -> str:
    """How one character that starts no escape sequence is shown, from Unicode's data:
    a control character by its picture (C0 and DEL; the tab stays) or U+FFFD (C1), a
    format character that reorders or hides text by its code point, the rest as it is."""
    code = ord(char)
    if unicodedata.category(char) == "Cc" and char != "\t":
        if code < 0x20:
            return chr(0x2400 + code)
        return "\u2421" if code == 0x7F else "\ufffd"
    return f"<U+{code:04X}>" if unsafe(char) else char


def test_the_pictures_are_unicodes_symbols_for_the_controls() -> None:
    assert unicodedata.name(as_shown("\x00")) == "SYMBOL FOR NULL"
    assert unicodedata.name(as_shown("\x1b")) == "SYMBOL FOR ESCAPE"
    assert unicodedata.name(as_shown("\x1f")) == "SYMBOL FOR UNIT SEPARATOR"
    assert unicodedata.name(as_shown("\x7f")) == "SYMBOL FOR DELETE"
    assert unicodedata.name(as_shown("\x85")) == "REPLACEMENT CHARACTER"


# Characters that start an escape sequence (ESC, and C1's CSI and OSC) come as pieces
# of their own; the carriage return has its own test (a terminal line keeps what
# follows the last one).
STARTS_ESCAPE = "\x1b\x9b\x9d"
NOTABLE = [chr(code) for code in [*range(0x20), *range(0x7F, 0xA0)] if chr(code) not in "\r"]
NOTABLE += ["\u00a0", "\u0600", "\u061c", "\u200b", "\u200d", "\u202e", "\u2066", "\u2069"]
NOTABLE += ["\u206f", "\ufeff", "\ufff9", "\U000e0001", "\U000e0041", "X", " ", "a", "\u00e9"]
one_character = st.sampled_from([c for c in NOTABLE if c not in STARTS_ESCAPE]) | st.characters(
    exclude_characters=STARTS_ESCAPE + "\r"
)


@settings(max_examples=500, deadline=None)
@given(text=st.lists(one_character, max_size=30).map("".join), keep_color=st.booleans())
def test_each_character_is_shown_as_unicode_says_it_is(text: str, keep_color: bool) -> None:
    expected = "".join(map(as_shown, text))
    assert terminal_line(text, keep_color=keep_color) == expected
    assert visible_text(text) == expected
    # A value shows its carriage returns too; a line keeps what follows the last one.
    assert visible_text(f"{text}\r{text}") == f"{expected}\u240d{expected}"


@settings(max_examples=300, deadline=None)
@given(
    earlier=st.lists(st.lists(one_character, max_size=8).map("".join), max_size=4),
    last=st.lists(one_character, min_size=1, max_size=12).map("".join),
    returns=st.integers(min_value=0, max_value=3),
)
def test_a_line_shows_what_follows_its_last_carriage_return_and_nothing_else_is_cut(
    earlier: list[str], last: str, returns: int
) -> None:
    """Progress bars redraw their line: what a terminal ends up showing is the text
    after the last carriage return that is followed by anything; a trailing one
    redraws nothing. Whatever the text after it ends with (spaces, tabs, letters,
    controls) stays."""
    line = "\r".join([*earlier, last]) + "\r" * returns
    assert terminal_line(line, keep_color=False) == "".join(map(as_shown, last))


# Colour sequences: a list of parameters, each known to be kept or dropped --------------

# The parameter values a terminal reads as 8 ("conceal"): leading zeros are allowed.
CONCEAL = st.sampled_from(["8", "08", "008"])
COLOUR_ARGUMENT = st.sampled_from(["8", "5", "2", "0", "255", "08"]) | st.integers(0, 255).map(str)
SELECTOR = st.sampled_from(["38", "48", "58", "038"])


@st.composite
def colour_parameters(draw: st.DrawFn) -> tuple[list[str], list[str]]:
    """The parameters of one colour sequence, and those of it that must be kept."""
    written: list[str] = []
    kept: list[str] = []
    after_bare = False
    for _ in range(draw(st.integers(min_value=0, max_value=6))):
        kind = draw(
            st.sampled_from(["conceal", "one_character", "palette", "rgb", "bare", "colon"])
        )
        if kind == "conceal":
            written.append(draw(CONCEAL))
            after_bare = False
            continue
        if kind == "one_character":
            # After a bare 38, a 5 or a 2 would make it a colour: that is "palette".
            taken = {8, 38, 48, 58} | ({2, 5} if after_bare else set())
            value = draw(st.sampled_from([n for n in range(108) if n not in taken]))
            item = [draw(st.sampled_from([str(value), f"0{value}", ""]))]
        elif kind == "palette":  # 38;5;N: its N is a colour, whatever its value
            item = [draw(SELECTOR), draw(st.sampled_from(["5", "05"])), draw(COLOUR_ARGUMENT)]
        elif kind == "rgb":  # 38;2;R;G;B
            item = [draw(SELECTOR), draw(st.sampled_from(["2", "02"]))]
            item += [draw(COLOUR_ARGUMENT) for _ in range(3)]
        elif kind == "bare":  # 38 followed by neither 5 nor 2: what follows stands alone
            item = [draw(SELECTOR)]
        else:  # colon sub-parameters make one parameter: "4:3", "38:5:8"
            item = [draw(st.sampled_from(["4:3", "38:5:8", "58:2::8:8:8"]))]
        written += item
        kept += item
        after_bare = kind == "bare"
    # A colour cut short by the end of the sequence is kept as it is.
    tail = draw(st.sampled_from([[], ["38"], ["48", "5"], ["58", "2", "8", "8"]]))
    return written + tail, kept + tail


def colour_shown(written: list[str], kept: list[str], keep_color: bool) -> tuple[str, str]:
    """A colour sequence of ``written`` parameters, and what a terminal is given of it:
    nothing at all when colours are not kept or nothing but conceal was in it."""
    sgr = f"\x1b[{';'.join(written)}m"
    if not keep_color:
        return sgr, ""
    if not written:
        return sgr, sgr  # "\x1b[m", a reset, holds no conceal
    return sgr, f"\x1b[{';'.join(kept)}m" if kept else ""


@settings(max_examples=1000, deadline=None)
@given(parameters=colour_parameters(), keep_color=st.booleans())
def test_a_colour_sequence_keeps_every_parameter_but_conceal(
    parameters: tuple[list[str], list[str]], keep_color: bool
) -> None:
    sgr, expected = colour_shown(*parameters, keep_color)
    assert terminal_line(f"{sgr}text", keep_color=keep_color) == f"{expected}text"
    assert visible_text(f"{sgr}text") == "text"


def test_conceal_written_with_leading_zeros_is_taken_out_too() -> None:
    """A terminal reads "08" as 8: conceal, whatever zeros it is written with."""
    for conceal in ("08", "008", "1;08"):
        assert terminal_line(f"\x1b[{conceal}mhidden", keep_color=True) in (
            "hidden",
            "\x1b[1mhidden",
        )
    # And a colour's selector or index written with zeros is still that colour.
    assert terminal_line("\x1b[038;05;8mx", keep_color=True) == "\x1b[038;05;8mx"


# Whole lines: characters, escape sequences and colours in any order ---------------------

parameter_bytes = st.text(st.sampled_from("0123456789;:<=>?"), max_size=6)
intermediates = st.text(st.sampled_from(" !\"#$%&'()*+,-./"), max_size=2)
string_body = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=10)


@st.composite
def escape_sequence(draw: st.DrawFn) -> str:
    """A complete escape sequence that is no colour: what follows it stands alone."""
    kind = draw(st.sampled_from(["csi", "osc", "string", "short", "c1 csi", "c1 osc"]))
    if kind in ("csi", "c1 csi"):
        final = draw(st.characters(min_codepoint=0x40, max_codepoint=0x7E))
        start = "\x1b[" if kind == "csi" else "\x9b"
        body = draw(parameter_bytes) + draw(intermediates)
        if kind == "csi" and final == "m" and all(c in "0123456789;:" for c in body):
            final = "J"  # that is a colour: the test above holds those
        return f"{start}{body}{final}"
    if kind == "osc":
        return "\x1b]" + draw(string_body) + draw(st.sampled_from(["\x07", "\x1b\\"]))
    if kind == "c1 osc":
        return "\x9d" + draw(string_body) + draw(st.sampled_from(["\x07", "\x9c"]))
    if kind == "string":  # DCS, SOS, PM, APC: ended by ST
        return f"\x1b{draw(st.sampled_from('PX^_'))}{draw(string_body)}\x1b\\"
    between = draw(intermediates)
    final = draw(st.characters(min_codepoint=0x30, max_codepoint=0x7E))
    if not between and final in "[]PX^_":
        final = "7"  # those start the longer sequences above
    return f"\x1b{between}{final}"


# What the end of a line may cut short, and what is shown of it.
UNFINISHED = {
    "\x1b": "",
    "\x1b[31": "",
    "\x1b]0;title": "",
    "\x1bP+q": "",
    "\x9b": "\ufffd",
    "\x9d": "\ufffd",
    "\x9b1": "",
    "\x9d0;t": "",
}


@st.composite
def line_and_shown(draw: st.DrawFn, keep_color: bool) -> tuple[str, str]:
    written: list[str] = []
    expected: list[str] = []
    for _ in range(draw(st.integers(min_value=0, max_value=12))):
        kind = draw(st.sampled_from(["char", "escape", "colour"]))
        if kind == "char":
            char = draw(one_character)
            written.append(char)
            expected.append(as_shown(char))
        elif kind == "escape":
            written.append(draw(escape_sequence()))
        else:
            sgr, colour = colour_shown(*draw(colour_parameters()), keep_color)
            written.append(sgr)
            expected.append(colour)
    end = draw(st.sampled_from(["", *UNFINISHED]))
    return "".join(written) + end, "".join(expected) + UNFINISHED.get(end, "")


@settings(max_examples=1000, deadline=None)
@given(data=st.data(), keep_color=st.booleans())
def test_a_line_shows_its_text_and_colours_and_no_other_escape_sequence(
    data: st.DataObject, keep_color: bool
) -> None:
    line, expected = data.draw(line_and_shown(keep_color))
    assert terminal_line(line, keep_color=keep_color) == expected
    if not keep_color:
        assert visible_text(line) == expected


@given(st.text())
@example("\x1b]0;title\x07\x1b]52;c;eA==\x07x\t\u202eb\x9b2J")
def test_a_fields_text_has_no_control_character_and_is_its_own_field_text(text: str) -> None:
    """What a field may hold (`FIELD_TEXT`, a restrict of Textual's Input) is what
    `field_text` gives: no control character, no bidi control, no tab; shown again, the
    same (a field left as it opened is no change)."""
    shown = field_text(text)
    assert re.fullmatch(FIELD_TEXT, shown)
    assert not any(unicodedata.category(c) == "Cc" for c in shown)
    assert field_text(shown) == shown
    assert (re.fullmatch(FIELD_TEXT, text) is not None) == (shown == text)


def test_a_tab_in_a_field_shows_as_its_symbol() -> None:
    assert field_text("a\tb") == "a\u2409b"


def test_a_secret_cut_only_by_c1_escape_sequences_is_masked() -> None:
    """An OSC or a CSI in its one-character C1 form (U+009D, U+009B), with no ESC in
    the line, inside a secret: a screen drops it and shows the secret whole."""
    masker = SecretMasker(["hunter2secret"])
    for escape in ("\u009d0;title\u0007", "\u009d8;;x\u009c", "\u009b31m"):
        assert masker.mask(f"hunter{escape}2secret\n".encode()) == b"***\n", escape


DROPPED_ON_SCREEN = st.sampled_from(
    [
        *(b"\x1b[1m", b"\x1b[0m", b"\x1b[38;5;196m", b"\x1b]0;title\x07", b"\x1b]8;;x\x1b\\"),
        *(b"\x1b7", "\u009b1m".encode(), b"\x1bPq\x1b\\"),
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    # A secret holding a control character itself is masked only as written.
    secret=st.text(
        st.characters(blacklist_characters="*\n\r", blacklist_categories=("Cs", "Cc")),
        min_size=MIN_SECRET_LENGTH,
        max_size=24,
    ),
    data=st.data(),
)
def test_escape_sequences_inside_a_secret_do_not_join_it_again_on_screen(
    secret: str, data: st.DataObject
) -> None:
    """A screen drops escape sequences: one printed inside a secret must not leave the
    two halves to meet there. Held against what the dashboard and `mlci logs` show."""
    raw = secret.encode()
    cuts = sorted(data.draw(st.lists(st.integers(1, len(raw) - 1), min_size=1, max_size=3)))
    pieces = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
    escapes = [data.draw(DROPPED_ON_SCREEN) for _ in cuts]
    spread = b"".join(p + e for p, e in zip(pieces, [*escapes, b""], strict=True))
    masked = SecretMasker([secret]).mask(b"before " + spread + b" after").decode()
    for keep_color in (True, False):
        assert secret not in terminal_line(masked, keep_color=keep_color)
    assert secret not in visible_text(masked)
    assert masked.startswith("before ") and masked.endswith(" after")
