"""The states a run and a stage can be in, shared by the engine, store and views."""

from __future__ import annotations

from enum import Enum


class RunState(str, Enum):
    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"
    """The runner died (kill -9, power loss); found and marked by the next command."""

    @property
    def finished(self) -> bool:
        return self is not RunState.RUNNING


class StageState(str, Enum):
    PENDING = "pending"
    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"
    """Not run because a stage it needs did not pass."""
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self not in (StageState.PENDING, StageState.RUNNING)


class Stream(str, Enum):
    """Where a log line came from; the value is its tag in a log file."""

    STDOUT = "o"
    STDERR = "e"
    MESSAGE = "m"
    """A note from mlci itself (a retry, a timeout, a failed gate), not from the stage."""
