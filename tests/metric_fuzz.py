"""What the output fuzzers share: Hypothesis strategies for what a stage may print
and write as metrics, and the oracle of which values are kept. Not a test module:
the fuzz tests of each tier import from here.

The oracle is stated apart from the code it checks: a printed value is kept when
Python's own ``float()`` reads it as a finite number from ASCII without
underscores; a metrics file's value when it is a JSON number (not true or false)
whose float64 is finite, at most five objects deep, under a valid metric name.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import Any, NamedTuple

from hypothesis import settings
from hypothesis import strategies as st

from mlci_tui.checks import METRIC_NAME
from mlci_tui.states import Stream

NESTING = 5

ODD_NUMBERS = [
    "1" + "0" * 400,
    "-" + "9" * 5000,
    "1e309",
    "-1e309",
    "1.7e308",
    "-1.7e308",
    "1.7976931348623157e308",
    "1.7976931348623159e308",
    "4.9e-324",
    "5e-324",
    "2.2250738585072014e-308",
    "1e-400",
    "nan",
    "NaN",
    "-nan",
    "inf",
    "-inf",
    "Infinity",
    "-Infinity",
    "-0",
    "+0",
    "-0.0",
    "0x10",
    "0o7",
    "1_000",
    "\u0661\u0662",  # Arabic-Indic digits
    "\uff11",  # a full-width 1
    "1\u00b2",
    "1e",
    "e5",
    ".",
    "+.5",
    "5.",
    "--1",
    "+-1",
    "1.0.0",
    "1e5e5",
    "\u066b5",  # an Arabic decimal separator
]


def examples(count: int) -> int:
    """``count`` under the default profile, scaled by a profile that asks for more."""
    return max(1, count * settings.default.max_examples // 100)


def kept_value(text: str) -> float | None:
    """The oracle for a printed value: its float64 if mlci must keep it, else None."""
    if not text.isascii() or "_" in text:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


names = st.sampled_from(["accuracy", "loss", "val/loss", "eval.f1", "_x-1"]) | st.from_regex(
    METRIC_NAME, fullmatch=True
).filter(lambda name: name != "step")

values = (
    st.sampled_from(ODD_NUMBERS)
    | st.floats().map(repr)
    | st.floats(allow_nan=False, allow_infinity=False).map(lambda x: f"{x:.17e}")
    | st.floats(allow_nan=False, allow_infinity=False).map(lambda x: f"{x:f}")
    | st.integers(min_value=-(10**420), max_value=10**420).map(str)
    | st.text(
        st.characters(blacklist_categories=("Zs", "Zl", "Zp", "Cc", "Cs")), min_size=1, max_size=12
    )
)


class MetricLine(NamedTuple):
    step: int | None
    pairs: list[tuple[str, str]]

    def text(self) -> bytes:
        step = [] if self.step is None else [f"step={self.step}"]
        return ("::metric " + " ".join(step + [f"{n}={v}" for n, v in self.pairs])).encode()


metric_lines = st.builds(
    MetricLine,
    st.none() | st.integers(min_value=0, max_value=10**18 - 1),
    st.lists(st.tuples(names, values), min_size=1, max_size=4),
)

# Lines that are never metric lines, and metric lines that are malformed as a whole.
noise = st.binary(max_size=200).filter(lambda data: b"::metric" not in data) | st.sampled_from(
    [
        b"::metric",
        b"::metric ",
        b"::metric step=1",
        b"::metric step=1 step=2 a=1",
        b"::metric step=-1 a=1",
        b"::metric step=1000000000000000000 a=1",
        b"::metric a=1 b",
        b"::metric 1a=1",
        b"::metric a==1",
        b"::metric a=1\x00",
        b"::metricx a=1",
        b"::metric\ta=1",
    ]
)

items = st.lists(metric_lines | noise, max_size=25)


# The metrics file ------------------------------------------------------------------


class Unquoted(NamedTuple):
    """JSON text as written: a number past what `json.dumps` writes, or punctuation."""

    text: str


leaves = (
    st.floats()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.sampled_from(
        [
            Unquoted("1" + "0" * 400),
            Unquoted("-" + "9" * 5000),
            Unquoted("1e400"),
            Unquoted("-0"),
            Unquoted("1.7976931348623157e308"),
            Unquoted("5e-324"),
        ]
    )
    | st.booleans()
    | st.none()
    | st.text(max_size=10)
    | st.lists(st.integers(), max_size=3)
)
keys = names | st.text(max_size=10)
documents = st.recursive(
    leaves,
    lambda inner: st.dictionaries(keys, inner, max_size=4),
    max_leaves=20,
)


def deep(value: Any, depth: int) -> Any:
    """``value`` under ``depth`` more objects."""
    for _ in range(depth):
        value = {"d": value}
    return value


metric_files = (
    st.dictionaries(keys, documents, max_size=6)
    | st.builds(deep, st.dictionaries(names, leaves, max_size=3), st.integers(0, 3000))
    | documents  # a top that is no object
)


def dump(document: Any) -> str:
    """JSON text of ``document``, `Unquoted` numbers as written, NaN and infinities
    as Python's JSON writes them; deep documents without recursion."""
    parts: list[str] = []
    stack: list[Any] = [document]
    while stack:
        item = stack.pop()
        if isinstance(item, Unquoted):
            parts.append(item.text)
        elif isinstance(item, dict):
            entries: list[Any] = [Unquoted("{")]
            for index, (key, value) in enumerate(item.items()):
                entries += [Unquoted(("," if index else "") + json.dumps(key) + ":"), value]
            stack.extend(reversed([*entries, Unquoted("}")]))
        elif isinstance(item, list):
            entries = [Unquoted("[")]
            for index, value in enumerate(item):
                entries += [Unquoted(","), value] if index else [value]
            stack.extend(reversed([*entries, Unquoted("]")]))
        elif isinstance(item, int) and not isinstance(item, bool):
            parts.append(str(item))
        else:
            parts.append(json.dumps(item))
    return "".join(parts)


def kept_from_file(document: Any) -> dict[str, float]:
    """The oracle for a metrics file: the metrics mlci must keep from ``document``."""
    if not isinstance(document, dict):
        return {}
    kept: dict[str, float] = {}
    for name, value, depth in _leaves(document, "", 1):
        number = _number(value)
        if depth <= NESTING and number is not None and re.fullmatch(METRIC_NAME, name):
            kept[name] = number
    return kept


def _leaves(document: dict[str, Any], prefix: str, depth: int) -> Iterator[tuple[str, Any, int]]:
    """Every value that is no object, with its dotted name and its object depth; what
    lies deeper than `NESTING` objects is never reached."""
    for key, value in document.items():
        name = f"{prefix}{key}"
        if not isinstance(value, dict):
            yield name, value, depth
        elif depth < NESTING:
            yield from _leaves(value, f"{name}.", depth + 1)


def _number(value: Any) -> float | None:
    if isinstance(value, Unquoted):
        return kept_value(value.text)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


# A stage's whole output -------------------------------------------------------------


class Printed:
    """One run's stage: what it printed on each stream, how the bytes were cut into
    reads (in-process), and its metrics file: a document, or any bytes."""

    def __init__(
        self,
        out: list[MetricLine | bytes],
        err: list[MetricLine | bytes],
        cuts: list[int],
        stale: bool,
        file: Any,
        raw_file: bytes | None,
    ) -> None:
        self.streams = {Stream.STDOUT: out, Stream.STDERR: err}
        self.cuts = cuts
        self.stale = stale
        self.file = file
        self.raw_file = raw_file

    def bytes_of(self, stream: Stream) -> bytes:
        lines = self.streams[stream]
        return b"".join((x.text() if isinstance(x, MetricLine) else x) + b"\n" for x in lines)

    def expected(self) -> dict[str, list[tuple[int, float]]]:
        """The oracle: each kept point of each series, in order, with its step."""
        series: dict[str, list[tuple[int, float]]] = {}
        for stream in (Stream.STDOUT, Stream.STDERR):
            for line in self.streams[stream]:
                if not isinstance(line, MetricLine):
                    continue
                for name, text in line.pairs:
                    value = kept_value(text)
                    if value is not None:
                        points = series.setdefault(name, [])
                        points.append((len(points) if line.step is None else line.step, value))
        if self.raw_file is None:
            for name, value in kept_from_file(self.file).items():
                points = series.setdefault(name, [])
                points.append((len(points), value))
        return series


printed = st.builds(
    Printed,
    items,
    items,
    st.lists(st.integers(1, 64), max_size=8),
    st.booleans(),
    metric_files,
    st.none() | st.binary(max_size=64),
)
