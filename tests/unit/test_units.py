"""Sparklines, means and positions over the whole float64 range, against exact
rational arithmetic (`fractions.Fraction`) as the oracle: -1.7e308 and 1.7e308 in
one series, subnormals, flat series."""

from __future__ import annotations

import math
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from mlci_tui.units import mean, position, sparkline
from tests.metric_fuzz import examples

BIGGEST = 1.7976931348623157e308
extremes = st.sampled_from([BIGGEST, -BIGGEST, 1.7e308, -1.7e308, 5e-324, -5e-324, 0.0, -0.0])
finite = extremes | st.floats(allow_nan=False, allow_infinity=False)
series = st.lists(finite, min_size=1, max_size=100)


@settings(max_examples=examples(500))
@given(series)
def test_the_mean_is_the_exact_mean_rounded_however_large_or_small(values: list[float]) -> None:
    exact = sum(map(Fraction, values)) / len(values)
    found = mean(values)
    assert min(values) <= found <= max(values)
    # Within two units in the last place of the exact mean (or of the smallest float).
    grain = max(math.ulp(float(exact)), 5e-324)
    assert abs(Fraction(found) - exact) <= 2 * grain, (found, float(exact))


@settings(max_examples=examples(500))
@given(finite, finite, finite)
def test_a_position_lies_in_order_between_its_ends(a: float, b: float, c: float) -> None:
    low, value, high = sorted((a, b, c))
    where = position(value, low, high)
    assert 0.0 <= where <= 1.0
    if low < high:
        exact = (Fraction(value) - Fraction(low)) / (Fraction(high) - Fraction(low))
        assert abs(Fraction(where) - exact) <= Fraction(1, 2**40)


@settings(max_examples=examples(500))
@given(series, st.integers(1, 60))
def test_a_sparkline_ranks_its_values_whatever_their_range(values: list[float], width: int) -> None:
    line = sparkline(values, width)
    assert len(line) == min(len(values), width)
    assert set(line) <= set("▁▂▃▄▅▆▇█")
    if len(values) <= width:
        ranked = sorted(zip(values, line, strict=True))
        assert [bar for _, bar in ranked] == sorted(bar for _, bar in ranked)
        if min(values) < max(values):
            assert line[values.index(min(values))] == "▁"
            assert line[values.index(max(values))] == "█"


def test_a_series_from_minus_to_plus_1_7e308_is_drawn() -> None:
    assert sparkline([-1.7e308, 1.7e308, 0.0]) == "▁█▅"
    assert sparkline([BIGGEST] * 90, 30) == "▄" * 30
