"""Read models of the run store: what a viewer gets back."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from mlci_tui.states import RunState, StageState


@dataclass(frozen=True)
class StageRecord:
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
    metrics: Mapping[str, float] = field(default_factory=dict)

    def duration_s(self, now: float | None = None) -> float | None:
        """Wall time from the first attempt's start to the end (or ``now`` while running)."""
        if self.started_at is None:
            return None
        end = self.ended_at if self.ended_at is not None else now
        return None if end is None else max(0.0, end - self.started_at)

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
        }


@dataclass(frozen=True)
class RunRecord:
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

    def stage(self, name: str) -> StageRecord | None:
        return next((s for s in self.stages if s.name == name), None)

    def duration_s(self, now: float | None = None) -> float | None:
        end = self.ended_at if self.ended_at is not None else now
        return None if end is None else max(0.0, end - self.started_at)

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
            "stages": [stage.to_json() for stage in self.stages],
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def iso_time(timestamp: float | None) -> str | None:
    """ISO 8601 in UTC, to the millisecond: ``2026-11-26T09:05:23.415+00:00``."""
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="milliseconds")
