"""Metric checks such as ``accuracy >= 0.9``: stage gates and monitor checks."""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from typing import NamedTuple

METRIC_NAME = r"[A-Za-z_][A-Za-z0-9_.\-/]{0,127}"
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
# Patterns are compiled on first use (re caches them): importing costs nothing.
_CHECK = rf"^\s*(?P<metric>{METRIC_NAME})\s*(?P<op>>=|<=|==|!=|>|<)\s*(?P<threshold>{_NUMBER})\s*$"

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
}
# What a failed check shows between value and threshold: "0.61 < 0.85" for ">= 0.85".
_NEGATED = {">=": "<", "<=": ">", ">": "<=", "<": ">=", "==": "!=", "!=": "=="}

CHECK_EXAMPLE = 'a check like "accuracy >= 0.9" (metric, one of >= <= > < == !=, number)'


class Check(NamedTuple):
    """One comparison of a metric against a fixed threshold."""

    metric: str
    op: str
    threshold: float
    stage: str | None = None
    """The stage whose metric it is, where the config named one (``train.loss <= 1``);
    None for a bare name: the stage the check belongs to."""

    def __str__(self) -> str:
        return f"{self.written} {self.op} {number_text(self.threshold)}"

    @property
    def written(self) -> str:
        """The metric as the config names it: ``loss`` or ``train.loss``."""
        return self.metric if self.stage is None else f"{self.stage}.{self.metric}"

    def passes(self, value: float) -> bool:
        return _OPERATORS[self.op](value, self.threshold)

    def evaluate(self, metrics: Mapping[str, float]) -> str | None:
        """``None`` when the check passes, else why it failed, e.g. ``accuracy 0.61 < 0.85``."""
        value = metrics.get(self.metric)
        if value is None:
            return f"{self.written} was not reported (needed by {self})"
        if math.isnan(value) or not self.passes(value):
            shown = f"{number_text(value)} {_NEGATED[self.op]} {number_text(self.threshold)}"
            return f"{self.written} {shown}"
        return None


def parse_check(text: str) -> Check:
    """Parse ``"metric OP number"``; ``ValueError`` when the text is not one."""
    match = re.match(_CHECK, text)
    if match is None:
        raise ValueError(f"expected {CHECK_EXAMPLE}")
    threshold = float(match["threshold"])
    if not math.isfinite(threshold):
        raise ValueError("the threshold must be a finite number")
    return Check(match["metric"], match["op"], threshold)


def number_text(value: float) -> str:
    """``0.85``, ``100``, ``1e-05``: as short as ``:g`` where that is the number itself,
    else every digit (``0.8499999999999999``), so a value just past a threshold never
    shows as the threshold."""
    text = f"{value:g}"
    return text if float(text) == value else repr(value)
