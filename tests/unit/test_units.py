"""Sparklines, means and positions over the whole float64 range, against exact
rational arithmetic (`fractions.Fraction`) as the oracle: -1.7e308 and 1.7e308 in
one series, subnormals, flat series."""

from __future__ import annotations

import math
from fractions import Fraction

from hypothesis import assume, given, settings
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


def test_a_series_from_minus_to_plus_1_7e308_is_drawn() -> None:
    assert sparkline([-1.7e308, 1.7e308, 0.0]) == "▁█▅"
    assert sparkline([BIGGEST] * 90, 30) == "▄" * 30


# Drawn honestly: a flat series looks flat, and bars keep the values' order. --------

BARS = "▁▂▃▄▅▆▇█"
usual = st.floats(-1e6, 1e6, allow_nan=False).filter(lambda x: abs(x) > 1e-6)


@settings(max_examples=examples(500))
@given(finite, st.integers(1, 100), st.integers(1, 60))
def test_a_constant_series_draws_bars_all_of_one_height(
    value: float, count: int, width: int
) -> None:
    line = sparkline([value] * count, width)
    assert len(set(line)) == 1


@settings(max_examples=examples(500))
@given(finite, st.lists(st.floats(-1.0, 1.0), min_size=2, max_size=60))
def test_differences_under_a_small_share_of_the_values_draw_flat(
    value: float, shares: list[float]
) -> None:
    """0.957, 0.957, 0.956, 0.957 is flat: values within 0.2 % of each other."""
    values = [value * (1 + 0.002 * share) for share in shares]
    assume(all(math.isfinite(v) for v in values))
    assert len(set(sparkline(values, 60))) == 1


def test_the_version_trend_the_issue_names_is_flat() -> None:
    assert sparkline([0.957, 0.957, 0.956, 0.957]) == "▄▄▄▄"


@settings(max_examples=examples(500))
@given(st.lists(usual, min_size=2, max_size=60))
def test_bars_keep_the_order_of_the_values_and_span_the_height_when_they_differ(
    values: list[float],
) -> None:
    line = sparkline(values, 60)
    assert len(line) == len(values)
    for a, bar_a in zip(values, line, strict=True):
        for b, bar_b in zip(values, line, strict=True):
            if a < b:
                assert BARS.index(bar_a) <= BARS.index(bar_b)
    low, high = min(values), max(values)
    size = max(abs(low), abs(high))
    if high - low >= 0.06 * size:  # past the least span the bars cover: the whole height
        assert line[values.index(low)] == "▁"
        assert line[values.index(high)] == "█"
