"""Gates and monitor checks (`accuracy >= 0.9`) against Python's own comparison
operators as the oracle, for every operator, with values on, just off and far
from the threshold across the whole float64 range; and what a failed check says."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlci_tui.checks import parse_check

OPERATORS = [">=", "<=", ">", "<", "==", "!="]
finite = st.floats(allow_nan=False, allow_infinity=False)


def python_says(left: float, op: str, right: float) -> bool:
    """What Python's own ``op`` says: the oracle is the language, not a table of ours."""
    return bool(eval(f"left {op} right", {}, {"left": left, "right": right}))


@st.composite
def value_and_threshold(draw: st.DrawFn) -> tuple[float, float]:
    """A threshold, and a value on it, one float away from it, or anywhere."""
    threshold = draw(finite)
    value = draw(
        st.sampled_from(
            [
                threshold,
                math.nextafter(threshold, math.inf),
                math.nextafter(threshold, -math.inf),
                -threshold,
            ]
        )
        | finite
    )
    return value, threshold


def examples(count: int) -> int:
    """``count`` under the default profile, scaled by a profile that asks for more."""
    return max(1, count * settings.default.max_examples // 100)


@settings(max_examples=examples(600), deadline=None)
@given(st.sampled_from(OPERATORS), value_and_threshold(), st.booleans())
def test_a_check_passes_exactly_when_python_says_value_op_threshold(
    op: str, pair: tuple[float, float], spaced: bool
) -> None:
    value, threshold = pair
    gap = " " if spaced else ""
    check = parse_check(f"accuracy{gap}{op}{gap}{threshold!r}")
    assert (check.metric, check.op, check.threshold) == ("accuracy", op, threshold)
    expected = python_says(value, op, threshold)
    assert check.passes(value) is expected
    failure = check.evaluate({"accuracy": value, "other": threshold})
    assert (failure is None) is expected
    if failure is not None:
        # What it shows is true of the numbers shown, and they are the numbers compared.
        match = re.fullmatch(r"accuracy (\S+) (>=|<=|>|<|==|!=) (\S+)", failure)
        assert match is not None, failure
        shown_value, shown_op, shown_threshold = match.groups()
        assert float(shown_value) == value and float(shown_threshold) == threshold
        # The relation shown is the check's negation: at, just below and just above the
        # threshold (where any two of the six differ) it holds exactly where the check fails.
        for probe in (
            threshold,
            math.nextafter(threshold, -math.inf),
            math.nextafter(threshold, math.inf),
        ):
            assert python_says(probe, shown_op, threshold) is not python_says(probe, op, threshold)


@pytest.mark.parametrize("op", OPERATORS)
def test_a_value_exactly_on_the_threshold_passes_only_the_operators_that_include_it(
    op: str,
) -> None:
    check = parse_check(f"accuracy {op} 0.9")
    assert check.passes(0.9) is (op in (">=", "<=", "=="))
    below, above = math.nextafter(0.9, 0), math.nextafter(0.9, 1)
    assert check.passes(below) is (op in ("<=", "<", "!="))
    assert check.passes(above) is (op in (">=", ">", "!="))


def test_a_value_one_float_below_the_threshold_never_shows_as_the_threshold() -> None:
    check = parse_check("accuracy >= 0.85")
    assert check.evaluate({"accuracy": math.nextafter(0.85, 0)}) == (
        "accuracy 0.8499999999999999 < 0.85"
    )
    assert check.evaluate({"accuracy": 0.61}) == "accuracy 0.61 < 0.85"
    assert check.evaluate({}) == "accuracy was not reported (needed by accuracy >= 0.85)"
    assert str(parse_check("f1 <= 0.123456789")) == "f1 <= 0.123456789"
    assert str(parse_check("loss < 100")) == "loss < 100"


@pytest.mark.parametrize("threshold", ["1e999", "-1e400", "9" * 400])
def test_a_threshold_past_the_float64_range_is_refused_saying_so(threshold: str) -> None:
    with pytest.raises(ValueError) as refused:
        parse_check(f"accuracy >= {threshold}")
    assert str(refused.value) == "the threshold must be a finite number"
