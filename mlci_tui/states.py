"""The states a run and a stage can be in, shared by the engine, store and views."""

from __future__ import annotations

from enum import Enum


class Worded(str, Enum):
    """A state whose value is for machines (``rolled_back``, in JSON, CSV, tags)
    and whose `text` is for people (``rolled back``)."""

    @property
    def text(self) -> str:
        return self.value.replace("_", " ")


class RunState(Worded):
    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"
    """The runner died (kill -9, power loss); found and marked by the next command."""
    ROLLED_BACK = "rolled_back"
    """The new version failed its post-deploy analysis and production was rolled back."""

    @property
    def finished(self) -> bool:
        return self is not RunState.RUNNING


class ExperimentState(Worded):
    QUEUED = "queued"
    """Waiting for `mlci exp run` or `mlci exp start` to run it."""
    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"
    """Its worker died (kill -9); found and marked by the next command."""

    @property
    def finished(self) -> bool:
        return self not in (ExperimentState.QUEUED, ExperimentState.RUNNING)

    @classmethod
    def of_run(cls, run: RunState) -> ExperimentState:
        """How an experiment whose run ended in ``run`` ended."""
        if run in (RunState.PASSED, RunState.CANCELLED, RunState.INTERRUPTED):
            return cls(run.value)
        return cls.FAILED


class StageState(Worded):
    PENDING = "pending"
    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"
    """Not run because a stage it needs did not pass."""
    CANCELLED = "cancelled"
    CACHED = "cached"
    """Not run: its inputs were those of an earlier result, whose outs were restored."""

    @property
    def finished(self) -> bool:
        return self not in (StageState.PENDING, StageState.RUNNING)

    @property
    def passed(self) -> bool:
        """Passed, by running or by reusing a result that did."""
        return self in (StageState.PASSED, StageState.CACHED)


class Stream(str, Enum):
    """Where a log line came from; the value is its tag in a log file."""

    STDOUT = "o"
    STDERR = "e"
    MESSAGE = "m"
    """A note from mlci itself (a retry, a timeout, a failed gate), not from the stage."""


class VersionStatus(Worded):
    REGISTERED = "registered"
    """Built by a passing run, never deployed."""
    LIVE = "live"
    """Production runs it now; at most one version is live."""
    PREVIOUS = "previous"
    """Was live and healthy until another version replaced it: a rollback target."""
    FAILED = "failed"
    """Its deploy failed, so it never went live."""
    ROLLED_BACK = "rolled_back"
    """Was live, then production was rolled back away from it."""


class DeployKind(Worded):
    DEPLOY = "deploy"
    ROLLBACK = "rollback"
    AUTO_ROLLBACK = "auto_rollback"


class DeployOutcome(Worded):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    """The deploying process died; the live version stayed as it was."""
    POINTER_FAILED = "pointer_failed"
    """The deploy command ran, but the live pointer could not be written: serving
    may have moved while the store still names the version before."""
