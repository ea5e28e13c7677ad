"""Durations and sizes: parsing what people write, formatting what they read."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence

_DURATION_PART = r"(\d+(?:\.\d+)?)(ms|s|m|h|d)"
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: object) -> float:
    """Seconds in ``value``: a string like ``"90s"``, ``"5m"``, ``"1h30m"``, ``"500ms"``,
    or a plain number of seconds.

    Raises ``ValueError`` for anything else, including negative and non-finite numbers.
    """
    if isinstance(value, bool):
        raise ValueError("not a duration")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        parts = list(re.finditer(_DURATION_PART, text))
        if not text or not parts or "".join(p.group(0) for p in parts) != text:
            raise ValueError("not a duration")
        seconds = sum(float(p.group(1)) * _UNIT_SECONDS[p.group(2)] for p in parts)
    else:
        raise ValueError("not a duration")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError("not a duration")
    return seconds


def format_duration(seconds: float | None) -> str:
    """``0.42s``, ``12.3s``, ``4m 05s``, ``2h 03m``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def format_bytes(size: int | None) -> str:
    """``812 B``, ``14.2 MB``, ``1.3 GB`` (powers of 1024, as `top` shows); ``-`` when unknown."""
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


def local_time(timestamp: float | None) -> str:
    """``2026-11-26 10:04:05`` in local time; ``-`` when unknown."""
    if timestamp is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


def metric_text(value: float | None) -> str:
    """A metric as tables show it: four significant digits; ``-`` when unknown."""
    return "-" if value is None else f"{value:.4g}"


def position(value: float, low: float, high: float) -> float:
    """Where ``value`` lies from ``low`` (0) to ``high`` (1), for any finite float64s:
    their difference may overflow (``1.7e308 - -1.7e308``), that of their halves cannot."""
    if high == low:
        return 0.0
    half = 0.5 if max(abs(low), abs(high)) > _HUGE else 1.0  # exact: a power of two
    return (value * half - low * half) / (high * half - low * half)


def mean(values: Sequence[float]) -> float:
    """The mean of finite float64s, subnormal or past half the float64 range alike."""
    count = len(values)
    try:
        total = math.fsum(values) / count
    except OverflowError:
        # The sum is past the float64 range: summed scaled by a power of two past the
        # count (exact for such values), the mean scaled back.
        shift = count.bit_length()
        total = math.ldexp(math.fsum(math.ldexp(v, -shift) for v in values) / count, shift)
    return min(max(total, min(values)), max(values))  # rounding stays within them


_HUGE = 2.0**1000
_BARS = "▁▂▃▄▅▆▇█"
FLAT = 0.005
"""Values that differ by less than this share of their size draw flat: 0.957 and
0.956 are the same height, not the lowest bar and the highest."""
LEAST_SPAN = 0.05
"""The bars span at least this share of the values' size, centred on them: 0.91,
0.93, 0.95 climb the whole height; 0.95 and 0.96, a little."""


def sparkline(values: list[float], width: int = 40) -> str:
    """``values`` as one line of bars, at most ``width`` wide (averaged into buckets),
    in order; a series whose values differ by less than `FLAT` of their size is flat."""
    if not values:
        return ""
    if len(values) > width:
        size = len(values) / width
        values = [
            mean(chunk)
            for chunk in (
                values[int(i * size) : max(int(i * size) + 1, int((i + 1) * size))]
                for i in range(width)
            )
        ]
    # Halves: neither their spread nor their size can overflow.
    halves = [value / 2 for value in values]
    low, high = min(halves), max(halves)
    size = max(abs(low), abs(high))
    spread = high - low
    if spread <= FLAT * size:
        return _BARS[3] * len(values)
    margin = max(0.0, LEAST_SPAN * size - spread) / 2
    low, high = low - margin, high + margin
    return "".join(_BARS[max(0, min(7, int(position(v, low, high) * 8)))] for v in halves)
