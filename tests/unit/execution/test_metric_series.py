"""Metric series from a command's output: which points are kept, and which lines are noted."""

from __future__ import annotations

import pytest

from mlci_tui.events import CommandMetrics, CommandNoted
from mlci_tui.execution import output
from mlci_tui.execution.output import OutputSink
from mlci_tui.masking import SecretMasker


def test_a_series_keeps_its_first_points_then_every_tenth_then_every_hundredth(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(output, "SERIES_POINTS", 100)
    events: list = []
    sink = OutputSink("train", SecretMasker(()), events.append)
    for start in range(0, 2500, 250):
        lines = b"".join(b"::metric loss=%d\n" % i for i in range(start, start + 250))
        sink.feed(output.Stream.STDOUT, lines)
    sink.close()
    kept = [p for e in events if isinstance(e, CommandMetrics) for p in e.points]
    steps = [step for _, step, _ in kept]
    assert steps[:100] == list(range(100))
    assert steps[100:200] == list(range(100, 1100, 10))
    assert steps[200:] == list(range(1100, 2500, 100))
    assert sink.metrics == {"loss": 2499.0}  # the last value, kept or not
    notes = [e.text for e in events if isinstance(e, CommandNoted)]
    assert notes == [
        "metric loss: 100 points kept; from here on every 10th is kept",
        "metric loss: 200 points kept; from here on every 100th is kept",
    ]


def test_odd_steps_are_malformed_lines_odd_numbers_ignored_and_no_output_is_lost() -> None:
    events: list = []
    sink = OutputSink("train", SecretMasker(()), events.append)
    lines = [
        "before",
        "::metric step=\u00b2 a=1",  # a digit to str.isdigit(), not to int()
        "::metric step=1 step=2 a=1",
        "::metric a=\uff11",  # a full-width 1
        "::metric a=1_000",
        "::metric step=3 a=2.5e-1",
        "after",
    ]
    sink.feed(output.Stream.STDOUT, "\n".join(lines).encode() + b"\n")
    sink.close()
    shown = [
        line for e in events if isinstance(e, output.CommandOutput) for line in e.data.split(b"\n")
    ]
    assert shown == [line.encode() for line in lines]
    assert [p for e in events if isinstance(e, CommandMetrics) for p in e.points] == [
        ("a", 3, 0.25)
    ]
    notes = [e.text for e in events if isinstance(e, CommandNoted)]
    assert notes == [
        "ignored a malformed metric line: 'step=² a=1'",
        "ignored a malformed metric line: 'step=1 step=2 a=1'",
        "ignored metric 'a' = '\uff11': not a number",  # and no second note for 'a'
    ]


def test_after_ten_malformed_lines_the_last_note_says_the_rest_are_not_noted() -> None:
    events: list = []
    sink = OutputSink("train", SecretMasker(()), events.append)
    sink.feed(output.Stream.STDOUT, b"::metric bad\n" * 25)
    notes = [e.text for e in events if isinstance(e, CommandNoted)]
    assert len(notes) == 10
    assert notes[-1].endswith("; further malformed metric lines are ignored without a note")
