"""What two runs or versions differ in: params, metrics against the gates,
which stages ran or were cached and how long they took, the artifact.

`mlci diff`, `mlci report`, the dashboard's diff view and its rollback
confirmation all read a `Comparison`; each only renders it."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from decimal import Context, Decimal
from typing import Any, NamedTuple

from mlci_tui.checks import Check
from mlci_tui.config import param_text
from mlci_tui.errors import NotFound, UsageError
from mlci_tui.metric_keys import MetricKey, labels
from mlci_tui.states import DeployOutcome, StageState
from mlci_tui.store.db import Store
from mlci_tui.store.records import RunRecord, VersionRecord
from mlci_tui.store.runs import EXPERIMENT
from mlci_tui.textsafe import visible_text


class Side(NamedTuple):
    """One side of a comparison: a run, a version, or a version and its run; or
    neither, when nothing is live to roll back from (`compare_versions`)."""

    run: RunRecord | None
    version: VersionRecord | None
    same_as: VersionRecord | None = None
    """The version whose artifact the run's is, when it registered none for it: its
    artifact stage was cached from the run that built that version (`with_artifact`)."""
    named: str | None = None
    """What to call it instead, where a run is more than a run: ``#3 lr-sweep (run 12)``."""

    @property
    def label(self) -> str:
        if self.named is not None:
            return self.named
        if self.version is not None and self.run is not None:
            return f"{self.version.name} (run {self.run.id})"
        if self.version is not None:
            return self.version.name
        if self.run is None:
            return "nothing"
        return f"run {self.run.id}"

    @property
    def params(self) -> Mapping[str, Any]:
        if self.version is not None and self.version.params:
            return self.version.params
        return self.run.params if self.run is not None else {}

    @property
    def metrics(self) -> dict[MetricKey, float]:
        """Every metric by stage and name: what the version recorded, and all its run's
        stages reported (the monitor's too: it measured the version live)."""
        recorded = dict(self.version.metrics) if self.version is not None else {}
        for stage in self.run.stages if self.run is not None else ():
            recorded.update((MetricKey(stage.name, n), v) for n, v in stage.metrics.items())
        return recorded

    @property
    def sha256(self) -> str | None:
        known = self.version or self.same_as
        return None if known is None else known.sha256


class MetricRow(NamedTuple):
    stage: str
    name: str
    old: float | None
    new: float | None
    gates: tuple[Check, ...]
    """The gates on this metric, checked on the new value."""

    def _exact_delta(self) -> Decimal | None:
        # Decimal: the difference of two float64s may be past the float64 range.
        return (
            None if self.old is None or self.new is None else Decimal(self.new) - Decimal(self.old)
        )

    def _exact_percent(self) -> Decimal | None:
        delta = self._exact_delta()
        if delta is None or not self.old:
            return None
        return delta / abs(Decimal(self.old)) * 100

    @property
    def delta(self) -> float | None:
        """``new - old``; None when either side lacks the metric, or when the difference
        is past the float64 range (`delta_text` still tells it)."""
        return _float(self._exact_delta())

    @property
    def delta_percent(self) -> float | None:
        """The change in % of ``|old|``; None when it cannot be told (no old value, or
        an old value of 0) or is past the float64 range."""
        return _float(self._exact_percent())

    def failed_gates(self) -> list[str]:
        """Why the new value fails its gates (empty: it passes, or has none)."""
        found = [
            gate.evaluate({self.name: self.new}) for gate in self.gates if self.new is not None
        ]
        return [f for f in found if f is not None]

    @property
    def delta_text(self) -> str:
        """``+0.0089``; ``-`` when either side lacks the metric."""
        delta = self._exact_delta()
        return "-" if delta is None else _signed(delta, 4)

    @property
    def percent_text(self) -> str:
        """``+0.96%``; ``-`` when it cannot be told (no old value, or an old value of 0)."""
        percent = self._exact_percent()
        if percent is None:
            return "-"
        if abs(percent) < PERCENT_FIXED:
            return f"{float(percent):+.2f}%"
        return f"{_signed(percent, 3)}%"

    @property
    def gate_note(self) -> str:
        """What follows the verdict: what broke (``loss 1.334 > 0.7``), else the gates."""
        return ", ".join(self.failed_gates() or [str(g) for g in self.gates])

    @property
    def gate_text(self) -> str:
        if not self.gates:
            return ""
        if self.new is None:
            return "not reported"
        return "fail" if self.failed_gates() else "pass"


class ParamRow(NamedTuple):
    name: str
    old: Any
    new: Any

    @property
    def changed(self) -> bool:
        return self.old != self.new

    @property
    def old_text(self) -> str:
        return "-" if self.old is None else param_text(self.old)

    @property
    def new_text(self) -> str:
        return "-" if self.new is None else param_text(self.new)


class StageRow(NamedTuple):
    name: str
    old_state: StageState | None
    new_state: StageState | None
    old_duration: float | None
    new_duration: float | None


class Comparison(NamedTuple):
    old: Side
    new: Side
    params: tuple[ParamRow, ...]
    metrics: tuple[MetricRow, ...]
    stages: tuple[StageRow, ...]

    @property
    def metric_labels(self) -> list[str]:
        """Each metric row's name, as ``stage.name`` where two stages here report it."""
        shown = labels(MetricKey(m.stage, m.name) for m in self.metrics)
        return [shown[MetricKey(m.stage, m.name)] for m in self.metrics]

    def metrics_led_by(self, first: Sequence[MetricKey]) -> list[MetricRow]:
        """The metric rows with ``first`` (the config's key metrics) leading in its
        order, each one even where neither side reports it, then the others by stage
        and name."""
        rows = {MetricKey(m.stage, m.name): m for m in self.metrics}
        led = [rows.get(key, MetricRow(key.stage, key.name, None, None, ())) for key in first]
        return led + [rows[key] for key in sorted(rows.keys() - set(first))]

    @property
    def title(self) -> str:
        """``v1 (run 2) → v2 (run 3)``: old to new, as the columns below it read."""
        return f"{self.old.label} → {self.new.label}"

    @property
    def artifact_text(self) -> str:
        old, new = self.old.sha256, self.new.sha256
        if old is None and new is None:
            return "artifact: none registered on either side"
        if old == new:
            return f"artifact: the same (sha256 {(new or '')[:12]})"
        return f"artifact: sha256 {(old or '-')[:12]} → {(new or '-')[:12]}"

    def to_json(self) -> dict[str, Any]:
        def side(s: Side) -> dict[str, Any]:
            return {
                "label": s.label,
                "run": None if s.run is None else s.run.id,
                "version": None if s.version is None else s.version.name,
                "state": None if s.run is None else s.run.state.value,
                "sha256": s.sha256,
            }

        return {
            "old": side(self.old),
            "new": side(self.new),
            "same_artifact": self.old.sha256 is not None and self.old.sha256 == self.new.sha256,
            "params": [
                {"name": p.name, "old": p.old, "new": p.new, "changed": p.changed}
                for p in self.params
            ],
            "metrics": [
                {
                    "stage": m.stage,
                    "name": m.name,
                    "old": m.old,
                    "new": m.new,
                    "delta": m.delta,
                    "delta_percent": _round(m.delta_percent),
                    "gates": [str(g) for g in m.gates],
                    "gate": m.gate_text or None,
                    "failed_gates": m.failed_gates(),
                }
                for m in self.metrics
            ],
            "stages": [
                {
                    "name": s.name,
                    "old_state": None if s.old_state is None else s.old_state.value,
                    "new_state": None if s.new_state is None else s.new_state.value,
                    "old_duration_s": _round(s.old_duration),
                    "new_duration_s": _round(s.new_duration),
                }
                for s in self.stages
            ],
        }


def resolve(store: Store, spec: str | None, *, default: str) -> Side:
    """``12`` or ``run 12`` is a run, ``v3`` a version (with the run that built it);
    None is ``default``: ``latest`` (the newest run) or ``live`` (the live version)."""
    text = (spec if spec is not None else default).strip()
    if text == "latest":
        run = store.runs.latest()
        if run is None:
            raise NotFound("no runs yet (start one with `mlci run`)")
        return Side(run, store.versions.of_run(run.id))
    if text == "live":
        version = store.versions.live()
        if version is None:
            raise NotFound(
                "no version is live to compare with: name what to compare, as in"
                " `mlci diff 3 4` or `mlci diff v1 v2`"
            )
        return _version_side(store, version)
    digits = text[1:] if text[:1] in ("v", "V") else text
    if not (digits.isascii() and digits.isdigit() and 0 < int(digits) < 2**63):
        raise UsageError(f"expected a run (12) or a version (v3), got {text!r}")
    if text[:1] in ("v", "V"):
        found = store.versions.get(int(digits))
        if found is None:
            raise NotFound(f"no version {text}")
        return _version_side(store, found)
    run = store.runs.get(int(digits))
    if run is None:
        raise NotFound(f"no run {digits}")
    return Side(run, store.versions.of_run(run.id), named=_experiment_named(store, run))


def _experiment_named(store: Store, run: RunRecord) -> str | None:
    """``#3 lr-sweep (run 12)`` for an experiment's run: what people call it."""
    if run.kind != EXPERIMENT:
        return None
    experiment = store.experiments.of_run(run.id)
    if experiment is None:
        return None
    return visible_text(f"{experiment.label} (run {run.id})")


def with_artifact(store: Store, side: Side, stage: str | None) -> Side:
    """``side`` knowing its artifact when its run registered no version because the
    artifact ``stage`` (`Config.artifact_stage`) was cached: it is the file of the
    version the run it was cached from built."""
    if side.version is not None or side.run is None or stage is None:
        return side
    record = side.run.stage(stage)
    seen: set[int] = set()
    # A stage cached from a run whose stage was itself cached: follow to the one that ran.
    while record is not None and record.cached_from_store is None:
        origin = record.cached_from_run
        if origin is None or origin in seen:
            return side
        seen.add(origin)
        version = store.versions.of_run(origin)
        if version is not None:
            return side._replace(same_as=version)
        run = store.runs.get(origin)
        record = None if run is None else run.stage(record.cached_from_stage or stage)
    return side


def baseline(store: Store, new: Side, *, as_deployed: bool = False) -> Side:
    """What ``new`` is judged against: the live version — or, when ``new`` is the live
    version, the version that was live before it went live. With ``as_deployed`` (a
    run's report), a run that deployed its version is judged against the version it
    replaced, whatever is live now."""
    live = store.versions.live()
    version = new.version
    if as_deployed and version is not None and new.run is not None:
        own = [d for d in store.deployments.all(new.run.id) if d.to_version == version.number]
        if own and own[0].outcome is DeployOutcome.SUCCEEDED:
            return _before(store, own[0].from_version, version)
    if live is None or version is None or version.number != live.number:
        return resolve(store, None, default="live")
    for deployment in store.deployments.all():  # newest first
        if deployment.to_version == live.number and deployment.outcome is DeployOutcome.SUCCEEDED:
            return _before(store, deployment.from_version, live)
    return _before(store, None, live)


def _before(store: Store, number: int | None, version: VersionRecord) -> Side:
    before = None if number is None else store.versions.get(number)
    if before is None:
        raise NotFound(
            f"nothing was live before {version.name} to compare it with: name what to"
            " compare, as in `mlci diff 3 4` or `mlci diff v1 v2`"
        )
    return _version_side(store, before)


def _version_side(store: Store, version: VersionRecord) -> Side:
    return Side(None if version.run_id is None else store.runs.get(version.run_id), version)


def compare(old: Side, new: Side, gates: Sequence[tuple[MetricKey, Check]]) -> Comparison:
    """``gates``: each with the metric it checks (`Config.gates`)."""
    old_params, new_params = _flat(old.params), _flat(new.params)
    params = tuple(
        ParamRow(name, old_params.get(name), new_params.get(name))
        for name in _union(old_params, new_params)
    )
    old_metrics, new_metrics = old.metrics, new.metrics
    metrics = tuple(
        MetricRow(
            key.stage,
            key.name,
            old_metrics.get(key),
            new_metrics.get(key),
            tuple(gate for on, gate in gates if on == key),
        )
        for key in _union(old_metrics, new_metrics)
    )
    old_stages = {s.name: s for s in old.run.stages} if old.run else {}
    new_stages = {s.name: s for s in new.run.stages} if new.run else {}
    stages = tuple(
        StageRow(
            name,
            old_stages[name].state if name in old_stages else None,
            new_stages[name].state if name in new_stages else None,
            old_stages[name].duration_s() if name in old_stages else None,
            new_stages[name].duration_s() if name in new_stages else None,
        )
        for name in _union(old_stages, new_stages)
    )
    return Comparison(old, new, params, metrics, stages)


def compare_versions(
    old: VersionRecord | None, new: VersionRecord, gates: Sequence[tuple[MetricKey, Check]]
) -> Comparison:
    """Two versions as they were registered: their own metrics and params, not their
    runs' (the rollback confirmation: the live version, if any, and the target)."""
    return compare(Side(None, old), Side(None, new), gates)


def _union(first: Mapping[Any, Any], second: Mapping[Any, Any]) -> list[Any]:
    return list(dict.fromkeys([*first, *second]))


def _flat(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested params by dotted name: ``{"train": {"lr": 0.1}}`` → ``train.lr``."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, Mapping):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


PERCENT_FIXED = 1_000_000
"""A change of this many % or more is shown with an exponent: ``+1.5e+12%``."""


def _float(value: Decimal | None) -> float | None:
    """``value`` as a float64, or None when it is past the float64 range."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _signed(value: Decimal, digits: int) -> str:
    """``value`` with its sign and ``digits`` significant digits, as its float64 would be
    shown where it is one."""
    number = float(value)
    if math.isfinite(number):
        return f"{number:+.{digits}g}"
    return f"{Context(prec=digits).plus(value).normalize():+g}"


def _round(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, 3)
