"""A metric is its stage and its name: evaluate's ``accuracy`` is not the monitor's.

Text names one as ``name`` or, where two stages in what is shown report that name,
``stage.name``; the config may write ``stage.name`` for any of them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from typing import Any, NamedTuple

MONITOR = "monitor"
"""The stage the monitor's measurements belong to: the built-in stage, and a live sample."""


class MetricKey(NamedTuple):
    stage: str
    name: str

    @property
    def text(self) -> str:
        """``evaluate.accuracy``."""
        return f"{self.stage}.{self.name}"


def labels(keys: Iterable[MetricKey]) -> dict[MetricKey, str]:
    """How a text view names each of ``keys``: its name, or ``stage.name`` where
    two stages among them report that name."""
    unique = list(dict.fromkeys(keys))
    counts = Counter(key.name for key in unique)
    return {key: key.text if counts[key.name] > 1 else key.name for key in unique}


def split(text: str, stages: Collection[str]) -> tuple[str | None, str]:
    """``evaluate.accuracy`` → ``("evaluate", "accuracy")`` when ``evaluate`` is one of
    ``stages`` (the longest that fits, since a stage name may hold a dot); a bare name
    → ``(None, name)``."""
    found = [s for s in stages if text.startswith(s + ".") and len(text) > len(s) + 1]
    if not found:
        return None, text
    stage = max(found, key=len)
    return stage, text[len(stage) + 1 :]


def nested(metrics: Mapping[MetricKey, float]) -> dict[str, dict[str, float]]:
    """``{stage: {name: value}}``: how the store keeps a version's metrics."""
    out: dict[str, dict[str, float]] = {}
    for key, value in metrics.items():
        out.setdefault(key.stage, {})[key.name] = value
    return out


def flat(by_stage: Mapping[str, Mapping[str, float]]) -> dict[MetricKey, float]:
    """The inverse of `nested`."""
    return {MetricKey(stage, name): v for stage, m in by_stage.items() for name, v in m.items()}


def to_json(metrics: Mapping[MetricKey, float]) -> list[dict[str, Any]]:
    """``[{"stage": …, "name": …, "value": …}]``: what every ``--json`` says of metrics."""
    return [{"stage": k.stage, "name": k.name, "value": v} for k, v in metrics.items()]
