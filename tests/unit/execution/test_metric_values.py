"""What a metric may hold: a finite float64 is kept; a value past the float64
range, NaN, an infinity, text that is no number, or anything a metrics file nests
deeper than five objects is ignored with one note naming the metric and why — on a
`::metric` line, in a metrics file of any size, shape or kind, read from any depth
of the caller's stack."""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mlci_tui.checks import METRIC_NAME
from mlci_tui.events import CommandMetrics, CommandNoted
from mlci_tui.execution import output
from mlci_tui.execution.output import (
    MAX_METRIC_NOTES,
    MAX_METRICS_FILE,
    MetricsFile,
    OutputSink,
    finite,
    read_metrics_file,
)
from mlci_tui.masking import SecretMasker
from mlci_tui.states import Stream


def make_sink() -> tuple[OutputSink, list]:
    events: list = []
    return OutputSink("train", SecretMasker(()), events.append, lambda: 1000.0), events


HUGE_INT = "1" + "0" * 400


def notes_of(events: list) -> list[str]:
    return [e.text for e in events if isinstance(e, CommandNoted)]


def points_of(events: list) -> list[tuple[str, int, float]]:
    return [p for e in events if isinstance(e, CommandMetrics) for p in e.points]


def test_a_value_past_float64_nan_or_infinite_is_ignored_and_the_rest_of_its_line_kept() -> None:
    sink, events = make_sink()
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
    sink, events = make_sink()
    flood = b"".join(b"::metric m%d=nan same=1e999 ok=1\n" % (i % 50) for i in range(200_000))
    for start in range(0, len(flood), 65536):
        sink.feed(Stream.STDOUT, flood[start : start + 65536])
    sink.close()
    notes = [note for note in notes_of(events) if note.startswith("ignored")]
    assert len(notes) == MAX_METRIC_NOTES
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
        file.truncate(MAX_METRICS_FILE + 1)
    found = read_metrics_file(path)
    assert found == ({}, [], "the metrics file is over 16 MiB: removed unread")
    assert not path.exists()


def test_a_metrics_file_of_the_limit_exactly_is_read(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    head = b'{"acc": 0.5'
    path.write_bytes(head + b" " * (MAX_METRICS_FILE - len(head) - 1) + b"}")
    assert path.stat().st_size == MAX_METRICS_FILE
    assert read_metrics_file(path) == ({"acc": 0.5}, [], None)


def test_a_metrics_file_removed_while_it_is_read_is_no_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stage's leftover process may remove its metrics file at any moment: here, just
    after the runner opened it, which only a hook in `os.fstat` can time."""
    path = tmp_path / "m.json"
    real_fstat = os.fstat

    def fstat_then_remove(fd: int) -> os.stat_result:
        result = real_fstat(fd)
        path.unlink(missing_ok=True)  # at the first look: the open goes on through it
        return result

    monkeypatch.setattr(os, "fstat", fstat_then_remove)
    os.mkfifo(path)
    assert read_metrics_file(path).problem == (
        "the metrics file is a FIFO, not a file: removed unread"
    )
    with open(path, "wb") as file:
        file.truncate(MAX_METRICS_FILE + 1)
    assert read_metrics_file(path).problem == "the metrics file is over 16 MiB: removed unread"
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


# The parser against oracles of its own ------------------------------------------------


def test_malformed_metric_lines_are_noted_nine_times_then_once_more_saying_so() -> None:
    for count in (0, 1, 9, 10, 11, 25):
        sink, events = make_sink()
        sink.feed(Stream.STDOUT, b"".join(b"::metric bad line %d\n" % i for i in range(count)))
        notes = notes_of(events)
        assert len(notes) == min(count, MAX_METRIC_NOTES), count
        lines = [f"ignored a malformed metric line: 'bad line {i}'" for i in range(count)]
        if count >= MAX_METRIC_NOTES:
            lines[MAX_METRIC_NOTES - 1] += (
                "; further malformed metric lines are ignored without a note"
            )
        assert notes == lines[:MAX_METRIC_NOTES]


@example(rest=b"\xff" * 300).via("a note cut at 200 characters")
@given(rest=st.binary(max_size=300).map(lambda rest: rest.replace(b"\n", b"")))
def test_a_metric_line_that_is_no_utf8_is_noted_as_it_reads(rest: bytes) -> None:
    sink, events = make_sink()
    sink.feed(Stream.STDOUT, b"::metric \xff" + rest + b"\n")
    # No name starts with U+FFFD: the line is malformed, and noted as Python reads it.
    text = ("\ufffd" + rest.decode("utf-8", "replace")).strip()
    assert notes_of(events) == [f"ignored a malformed metric line: {text[:200]!r}"]
    assert sink.metrics == {}


def test_a_metric_line_with_no_value_is_malformed() -> None:
    sink, events = make_sink()
    sink.feed(Stream.STDOUT, b"::metric \n::metric step=3\n::metric   \n::metric step=4 acc=1\n")
    assert notes_of(events) == [
        "ignored a malformed metric line: ''",
        "ignored a malformed metric line: 'step=3'",
        "ignored a malformed metric line: ''",
    ]
    assert points_of(events) == [("acc", 4, 1.0)]


@settings(max_examples=100, deadline=None)
@given(
    secret=st.from_regex(r"[A-Za-z0-9_.\-/]{12,20}", fullmatch=True),
    names=st.lists(st.sampled_from(["acc", "loss", "eval.f1"]), min_size=1, unique=True),
    value=st.floats(allow_nan=False, allow_infinity=False),
)
def test_a_metrics_file_naming_a_secret_gives_its_values_masked_names(
    tmp_path_factory: pytest.TempPathFactory, secret: str, names: list[str], value: float
) -> None:
    path = tmp_path_factory.mktemp("metrics") / "m.json"
    path.write_text(json.dumps({f"{name}.{secret}": value for name in names}))
    events: list = []
    sink = OutputSink("train", SecretMasker([secret]), events.append, lambda: 1000.0)
    sink.add_file(read_metrics_file(path))
    assert sink.metrics == {f"{name}.***": value for name in names}
    assert points_of(events) == [(f"{name}.***", 0, value) for name in names]


@settings(max_examples=30, deadline=None)
@given(
    count=st.integers(min_value=0, max_value=12_000) | st.sampled_from([100, 1100, 11_100]),
    cuts=st.lists(st.integers(min_value=0, max_value=12_000), max_size=5),
)
def test_a_series_keeps_every_point_then_ten_times_fewer_past_each_block(
    count: int, cuts: list[int]
) -> None:
    """With blocks of 100 points, as `SERIES_POINTS` (100 000) does at scale: points 0-99
    kept, then every 10th to 1090, then every 100th to 11 000, then every 1000th."""
    starts = [0, 100, 1100, 11_100, 111_100]
    expected = [
        i
        for i in range(count)
        for phase in range(4)
        if starts[phase] <= i < starts[phase + 1] and i % 10**phase == 0
    ]
    notes = [
        f"metric x: {100 * (phase + 1)} points kept;"
        f" from here on every {10 ** (phase + 1)}th is kept"
        for phase in range(3)
        if count > starts[phase + 1] - 10**phase
    ]
    sink, events = make_sink()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(output, "SERIES_POINTS", 100)
        text = b"".join(b"::metric x=%d\n" % i for i in range(count))
        edges = [0, *sorted({cut % (len(text) + 1) for cut in cuts}), len(text)]
        for start, end in itertools.pairwise(edges):
            sink.feed(Stream.STDOUT, text[start:end])
    assert points_of(events) == [("x", i, float(i)) for i in expected]
    assert notes_of(events) == notes


OUT_OF_RANGE = "beyond the float64 range (±1.8e308)"
KINDS = {str: "a string", list: "an array", type(None): "null", bool: "true or false"}
JSON_LEAF = (
    st.floats(allow_nan=True, allow_infinity=True)
    | st.integers()
    | st.sampled_from([10**308 * 2, -(10**400), 2**1024 - 1, 1.7976931348623157e308, -0.0])
    | st.booleans()
    | st.none()
    # A lone surrogate too: a file's bytes may hold one (CESU-8, or UTF-16 cut in half).
    | st.text(alphabet='ab{}[]" \\\u00e9\ud800', max_size=5)
)
KEY = st.sampled_from(["acc", "loss", "eval", "f1", "x y", "1st", "_b", "a/b", "{[", '"q"'])
JSON_VALUE = st.recursive(
    JSON_LEAF,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEY, inner, max_size=3),
    max_leaves=30,
)


def file_oracle(data: dict[str, Any], depth: int = 1, prefix: str = "") -> MetricsFile:
    """What a metrics file holding ``data`` yields, from the JSON value Python reads:
    objects flattened with dots, an object or array deeper than five levels ignored,
    each number kept exactly when it is a finite float64 under a valid metric name."""
    found = MetricsFile({}, [])
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, (dict, list)) and depth + 1 > 5:
            found.ignored.append((name, "nested deeper than 5 levels"))
        elif isinstance(value, dict):
            inner = file_oracle(value, depth + 1, f"{name}.")
            found.metrics.update(inner.metrics)
            found.ignored.extend(inner.ignored)
        elif type(value) in KINDS:
            found.ignored.append((name, f"expected a number, got {KINDS[type(value)]}"))
        else:
            try:
                number = float(value)
            except OverflowError:
                found.ignored.append((name, OUT_OF_RANGE))
                continue
            if not math.isfinite(number):  # NaN or an infinity: JSON has neither
                found.ignored.append((name, "not a finite number"))
            elif re.fullmatch(METRIC_NAME, name):
                found.metrics[name] = number
            else:
                found.ignored.append((name, "not a valid metric name"))
    return found


@settings(max_examples=400, deadline=None)
@given(
    data=st.dictionaries(KEY, JSON_VALUE, max_size=4),
    layout=st.sampled_from([(None, (",", ":")), (None, (", ", ": ")), (1, None), (0, None)]),
    # Every encoding JSON's own reader detects, escapes or the characters themselves.
    encoding=st.sampled_from(
        ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"]
    ),
    ascii_only=st.booleans(),
)
def test_a_metrics_file_yields_exactly_what_its_json_holds_to_five_levels(
    tmp_path_factory: pytest.TempPathFactory,
    data: dict[str, Any],
    layout: tuple[int | None, tuple[str, str] | None],
    encoding: str,
    ascii_only: bool,
) -> None:
    indent, separators = layout
    path = tmp_path_factory.mktemp("metrics") / "m.json"
    text = json.dumps(data, indent=indent, separators=separators, ensure_ascii=ascii_only)
    path.write_bytes(text.encode(encoding, "surrogatepass"))
    assert read_metrics_file(path) == file_oracle(data)


NOT_VALID_JSON = 'the metrics file is not valid JSON; expected an object like {"accuracy": 0.9}'
NO_OBJECT = 'the metrics file must hold a JSON object like {"accuracy": 0.9}'


@settings(max_examples=200, deadline=None)
@given(
    text=st.text(st.sampled_from('{}[]":,. 0123456789-eEnulltrueNaInfity\\'), max_size=20)
    | JSON_VALUE.map(json.dumps)
)
def test_a_metrics_file_that_is_no_json_or_holds_no_object_says_which(
    tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    path = tmp_path_factory.mktemp("metrics") / "m.json"
    path.write_text(text)
    # Python's own reader is the oracle; an int of any length is read as a float.
    try:
        data = json.loads(text.encode(), parse_int=float)
    except ValueError:
        expected = None if not text.strip() else NOT_VALID_JSON
    else:
        expected = None if isinstance(data, dict) else NO_OBJECT
    assert read_metrics_file(path).problem == expected


def test_objects_closing_back_to_the_fifth_level_leave_their_deep_part_ignored(
    tmp_path: Path,
) -> None:
    path = tmp_path / "m.json"
    # Seven levels closed two at a time, back to the fifth, which goes on.
    path.write_text('{"a":{"b":{"c":{"d":{"e":{"f":{"g":1}},"h":2}},"i":3}},"j":4}')
    assert read_metrics_file(path) == MetricsFile(
        {"a.b.c.d.h": 2.0, "a.b.i": 3.0, "j": 4.0},
        [("a.b.c.d.e", "nested deeper than 5 levels")],
    )


def test_a_value_of_no_number_is_ignored_naming_its_kind() -> None:
    for value, kind in [
        ("0.5", "a string"),
        ([0.5], "an array"),
        (None, "null"),
        (True, "true or false"),
        (complex(1, 0), "complex"),
        (Decimal("0.5"), "Decimal"),
    ]:
        assert finite(value) == f"expected a number, got {kind}"
    assert finite(10**400) == OUT_OF_RANGE
    assert finite(float("nan")) == finite(-math.inf) == "not a finite number"
    assert finite(3) == 3.0 and isinstance(finite(3), float)


@settings(max_examples=100, deadline=None)
@given(data=st.dictionaries(KEY, JSON_VALUE, max_size=4))
def test_each_value_a_metrics_file_holds_is_kept_or_noted_with_why(
    tmp_path_factory: pytest.TempPathFactory, data: dict[str, Any]
) -> None:
    path = tmp_path_factory.mktemp("metrics") / "m.json"
    path.write_text(json.dumps(data))
    expected = file_oracle(data)
    sink, events = make_sink()
    sink.add_file(read_metrics_file(path))
    assert sink.metrics == expected.metrics
    notes = [f"ignored metric {name!r}: {why}" for name, why in expected.ignored]
    if len(notes) >= MAX_METRIC_NOTES:
        notes[MAX_METRIC_NOTES - 1 :] = [
            f"{notes[MAX_METRIC_NOTES - 1]}; further metrics with values ignored are not noted"
        ]
    assert [e for e in events if isinstance(e, CommandNoted)] == [
        CommandNoted("train", note, 1000.0) for note in notes
    ]


@example(name="n" * 80, value="v" * 80).via("the longest shown whole")
@example(name="n" * 81, value="v" * 81).via("the shortest cut")
@given(
    name=st.text(st.characters(codec="utf-8"), min_size=1, max_size=100),
    value=st.none() | st.text(st.characters(codec="utf-8"), min_size=1, max_size=100),
)
def test_a_note_shows_a_name_or_value_whole_to_80_characters_and_cut_past_them(
    name: str, value: str | None
) -> None:
    def shown(text: str) -> str:
        return repr(text if len(text) <= 80 else text[:79] + "\u2026")

    sink, events = make_sink()
    sink.ignore(name, "why", value)
    sink.ignore(name, "a second value, not noted", value)
    what = "" if value is None else f" = {shown(value)}"
    assert notes_of(events) == [f"ignored metric {shown(name)}{what}: why"]


def test_a_metrics_file_that_cannot_be_read_yields_nothing_but_why(tmp_path: Path) -> None:
    found = read_metrics_file(tmp_path)
    assert found == MetricsFile({}, [], "cannot read the metrics file: Is a directory")
    sink, events = make_sink()
    sink.add_file(found)
    assert sink.metrics == {}
    assert notes_of(events) == ["cannot read the metrics file: Is a directory"]


def test_a_fifo_as_metrics_file_is_left_unread_for_whoever_else_reads_it(tmp_path: Path) -> None:
    fifo = tmp_path / "m.json"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    writer = os.open(fifo, os.O_WRONLY)
    try:
        os.write(writer, b'{"acc": 0.9}')
        found = read_metrics_file(fifo)
        assert found == ({}, [], "the metrics file is a FIFO, not a file: removed unread")
        assert os.read(reader, 100) == b'{"acc": 0.9}'
    finally:
        os.close(writer)
        os.close(reader)


def test_a_metrics_file_larger_than_memory_is_removed_without_reading_it_all(
    tmp_path: Path,
) -> None:
    path = tmp_path / "m.json"
    with open(path, "wb") as file:
        file.truncate(1 << 40)  # a terabyte, sparse: no disk, and more than any memory
    found = read_metrics_file(path)
    assert found == ({}, [], "the metrics file is over 16 MiB: removed unread")
    assert not path.exists()


def test_a_name_that_is_no_metric_name_is_ignored_saying_so(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text('{"x y": 1, "ok": 2, "": 3}')
    assert read_metrics_file(path) == MetricsFile(
        {"ok": 2.0},
        [("x y", "not a valid metric name"), ("", "not a valid metric name")],
    )
