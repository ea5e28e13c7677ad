"""Read models of the run store: what a viewer gets back."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, NamedTuple

from mlci_tui.events import StoreName
from mlci_tui.metric_keys import MONITOR, MetricKey, to_json
from mlci_tui.states import (
    DeployKind,
    DeployOutcome,
    ExperimentState,
    RunState,
    StageState,
    VersionStatus,
)
from mlci_tui.units import metric_text

_EMPTY: Mapping[str, float] = MappingProxyType({})
"""The default metrics: empty, and immutable, since it is shared."""
ALWAYS = "always = true"
NO_DEPS = "no deps declared: it always runs"
"""The reasons a stage that is never cached runs."""


class StageRecord(NamedTuple):
    name: str
    position: int
    needs: tuple[str, ...]
    state: StageState
    attempt: int = 0
    max_attempts: int = 1
    exit_code: int | None = None
    """The process's exit status; negative when a signal ended it (-9 for SIGKILL)."""
    started_at: float | None = None
    ended_at: float | None = None
    pid: int | None = None
    pgid: int | None = None
    process_tag: str | None = None
    cpu_percent: float | None = None
    rss_bytes: int | None = None
    peak_rss_bytes: int | None = None
    cpu_seconds: float | None = None
    failed_gate: str | None = None
    message: str | None = None
    metrics: Mapping[str, float] = _EMPTY
    job_kind: str | None = None
    """For a stage that ran elsewhere: the executor (``ray``), its job id and where."""
    job_id: str | None = None
    job_address: str | None = None
    cache_key: str | None = None
    reasons: tuple[str, ...] = ()
    """Why it ran, or that it was cached (and from where)."""
    cached_from_run: int | None = None
    cached_from_stage: str | None = None
    cached_from_store: StoreName | None = None
    """The store of that run, when it is another one sharing the cache."""

    def duration_s(self, now: float | None = None) -> float | None:
        """Wall time from the first attempt's start to the end (or ``now`` while running)."""
        return _duration(self.started_at, self.ended_at, now)

    @property
    def why_ran(self) -> str:
        """Why a stage that could have been cached ran (``param train.lr 0.05 → 0.01``),
        its first reason of several and how many more."""
        if not self.reasons or self.reasons[:1] in ((ALWAYS,), (NO_DEPS,)):
            return ""
        more = len(self.reasons) - 1
        return self.reasons[0] + (f" (and {more} more)" if more else "")

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state.value,
            "needs": list(self.needs),
            "attempts": self.attempt,
            "exit_code": self.exit_code,
            "started_at": iso_time(self.started_at),
            "ended_at": iso_time(self.ended_at),
            "duration_s": _round(self.duration_s()),
            "cpu_seconds": _round(self.cpu_seconds),
            "peak_rss_bytes": self.peak_rss_bytes,
            "rss_bytes": self.rss_bytes,
            "cpu_percent": _round(self.cpu_percent),
            "failed_gate": self.failed_gate,
            "message": self.message,
            "metrics": dict(self.metrics),
            "job": None
            if self.job_id is None
            else {"executor": self.job_kind, "id": self.job_id, "address": self.job_address},
            "cache_key": self.cache_key,
            "reasons": list(self.reasons),
            "cached_from": None
            if self.cached_from_stage is None
            else {
                "run": self.cached_from_run,
                "stage": self.cached_from_stage,
                "store": None
                if self.cached_from_store is None
                else self.cached_from_store._asdict(),
            },
        }


class RunRecord(NamedTuple):
    id: int
    pipeline: str
    state: RunState
    started_at: float
    exit_code: int | None = None
    ended_at: float | None = None
    pid: int | None = None
    pid_started: float | None = None
    host: str | None = None
    config_path: str | None = None
    message: str | None = None
    stages: tuple[StageRecord, ...] = ()
    params: Mapping[str, Any] = MappingProxyType({})
    """The params the run used, ``--set`` overrides included."""
    git_commit: str | None = None
    """Recorded when the run is mirrored into MLflow (`[mlflow]`)."""
    git_dirty: bool | None = None
    kind: str = "run"
    """``run``, or ``experiment`` for an experiment's run (`mlci exp`)."""

    def stage(self, name: str) -> StageRecord | None:
        return next((s for s in self.stages if s.name == name), None)

    def duration_s(self, now: float | None = None) -> float | None:
        return _duration(self.started_at, self.ended_at, now)

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.id,
            "pipeline": self.pipeline,
            "state": self.state.value,
            "exit_code": self.exit_code,
            "started_at": iso_time(self.started_at),
            "ended_at": iso_time(self.ended_at),
            "duration_s": _round(self.duration_s()),
            "pid": self.pid,
            "host": self.host,
            "message": self.message,
            "params": dict(self.params),
            "kind": self.kind,
            "stages": [stage.to_json() for stage in self.stages],
        }


class ExperimentRecord(NamedTuple):
    """One experiment: a run of the pipeline's stages with its own params, in a
    workspace of its own (`service.experiment_queue`)."""

    id: int
    name: str
    state: ExperimentState
    params: Mapping[str, Any]
    """The params it sets, by name (the rest are the config's)."""
    sets: tuple[str, ...]
    """Those params as ``NAME=VALUE``, as `--set` takes them."""
    config_path: str
    queued_at: float
    batch: str | None = None
    """The `mlci exp run` that runs it; None for the queue `mlci exp start` drains."""
    keep: bool = False
    """Whether its workspace stays when it ends."""
    started_at: float | None = None
    ended_at: float | None = None
    run_id: int | None = None
    pid: int | None = None
    """Its worker: the process that runs it (one runner per experiment)."""
    pid_started: float | None = None
    host: str | None = None
    workspace: str | None = None
    """The directory its stages ran in."""
    method: str | None = None
    """How its workspace was made: ``overlay``, ``reflink`` or ``copy``."""
    git_commit: str | None = None
    code_hash: str | None = None
    """A hash of what the project's work tree changed since that commit (None: none)."""
    message: str | None = None

    @property
    def label(self) -> str:
        """How output and tables name it: ``#3 lr-sweep``."""
        return f"#{self.id} {self.name}"

    def duration_s(self, now: float | None = None) -> float | None:
        return _duration(self.started_at, self.ended_at, now)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "state": self.state.value,
            "params": dict(self.params),
            "run_id": self.run_id,
            "queued_at": iso_time(self.queued_at),
            "started_at": iso_time(self.started_at),
            "ended_at": iso_time(self.ended_at),
            "duration_s": _round(self.duration_s()),
            "workspace": self.workspace,
            "method": self.method,
            "git_commit": self.git_commit,
            "code_hash": self.code_hash,
            "message": self.message,
        }


def _duration(started: float | None, ended: float | None, now: float | None) -> float | None:
    """From ``started`` to ``ended``, or to ``now`` while it goes on; None if unknown."""
    end = ended if ended is not None else now
    # Never negative: the wall clock may be stepped back while something runs.
    return None if started is None or end is None else max(0.0, end - started)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def iso_time(timestamp: float | None) -> str | None:
    """ISO 8601 in UTC, to the millisecond: ``2026-11-26T09:05:23.415+00:00``."""
    if timestamp is None:
        return None
    from datetime import datetime, timezone  # only JSON output needs it

    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="milliseconds")


class VersionRecord(NamedTuple):
    """A registered model version: ``v{number}``."""

    number: int
    run_id: int | None
    created_at: float
    artifact_name: str
    source_path: str
    is_dir: bool
    sha256: str
    size_bytes: int
    metrics: Mapping[MetricKey, float]
    """What the stages of the run that built it reported, before it was registered."""
    status: VersionStatus
    git_commit: str | None = None
    git_dirty: bool | None = None
    description: str | None = None
    pruned_at: float | None = None
    live_metrics: Mapping[str, float] = _EMPTY
    """What the newest monitor sample of it measured, if it was ever sampled."""
    params: Mapping[str, Any] = MappingProxyType({})
    """The params of the run that built it."""
    analysis_owed: int | None = None
    """The deployment that put it live with a post-deploy analysis to follow, until
    that analysis finished (passed or failed); None when none is owed."""
    experiment_id: int | None = None
    """The experiment it was promoted from (`mlci exp promote`), if it was."""

    @property
    def name(self) -> str:
        return f"v{self.number}"

    @property
    def all_metrics(self) -> dict[MetricKey, float]:
        """Its metrics and, as the monitor's, those of its newest monitor sample."""
        live = {MetricKey(MONITOR, name): value for name, value in self.live_metrics.items()}
        return {**self.metrics, **live}

    def live_text(self, metrics: Sequence[MetricKey]) -> str:
        """The key ``metrics``' names in its newest monitor sample: ``accuracy 0.5875``;
        ``-`` when it was never sampled (the other sampled metrics when none of those)."""
        live = self.live_metrics
        wanted = dict.fromkeys(key.name for key in metrics)
        names = [name for name in wanted if name in live] or sorted(live)[:2]
        return "  ".join(f"{name} {metric_text(live[name])}" for name in names) or "-"

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.name,
            "status": self.status.value,
            "description": self.description,
            "created_at": iso_time(self.created_at),
            "run_id": self.run_id,
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
            "artifact": self.artifact_name,
            "pruned": self.pruned_at is not None,
            "git_commit": self.git_commit,
            "git_dirty": self.git_dirty,
            "metrics": to_json(self.metrics),
            "live_metrics": to_json(
                {MetricKey(MONITOR, n): v for n, v in self.live_metrics.items()}
            ),
            "params": dict(self.params),
            "experiment_id": self.experiment_id,
        }

    @property
    def made_by(self) -> str:
        """What made it: ``run 4``, ``from experiment #3``, or ``-``."""
        if self.experiment_id is not None:
            return f"from experiment #{self.experiment_id}"
        return "-" if self.run_id is None else f"run {self.run_id}"


class DeploymentRecord(NamedTuple):
    """One deploy or rollback: a row of the audit trail."""

    id: int
    kind: DeployKind
    from_version: int | None
    to_version: int
    started_at: float
    outcome: DeployOutcome
    user: str | None = None
    reason: str | None = None
    run_id: int | None = None
    ended_at: float | None = None
    message: str | None = None
    pid: int | None = None
    pid_started: float | None = None
    host: str | None = None
    process_tag: str | None = None
    log_path: str | None = None

    def duration_s(self, now: float | None = None) -> float | None:
        return _duration(self.started_at, self.ended_at, now)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind.value,
            "from": None if self.from_version is None else f"v{self.from_version}",
            "to": f"v{self.to_version}",
            "user": self.user,
            "reason": self.reason,
            "outcome": self.outcome.value,
            "message": self.message,
            "started_at": iso_time(self.started_at),
            "ended_at": iso_time(self.ended_at),
            "duration_s": _round(self.duration_s()),
            "run_id": self.run_id,
        }


class AlertRecord(NamedTuple):
    id: int
    created_at: float
    kind: str
    message: str
    version: int | None = None
    run_id: int | None = None
    delivery: str | None = None
    """None when no alert command is configured, ``sent``, or why sending failed."""
    acknowledged_at: float | None = None
    acknowledged_by: str | None = None
    """Who said they saw it: the dashboard's alert bar shows only alerts nobody has."""

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created_at": iso_time(self.created_at),
            "kind": self.kind,
            "message": self.message,
            "version": None if self.version is None else f"v{self.version}",
            "run_id": self.run_id,
            "delivery": self.delivery,
            "acknowledged_at": iso_time(self.acknowledged_at),
            "acknowledged_by": self.acknowledged_by,
        }


class DecisionRecord(NamedTuple):
    """A rollback the monitor proposes and a person must confirm (``auto_rollback = "ask"``)."""

    id: int
    created_at: float
    version: int
    target: int | None
    finding: str
    state: str
    decided_at: float | None = None
    decided_by: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created_at": iso_time(self.created_at),
            "version": f"v{self.version}",
            "target": None if self.target is None else f"v{self.target}",
            "finding": self.finding,
            "state": self.state,
            "decided_at": iso_time(self.decided_at),
            "decided_by": self.decided_by,
        }
