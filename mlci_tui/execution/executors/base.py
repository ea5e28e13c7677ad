"""The interface every executor offers the engine.

An executor runs one attempt of one stage: it starts the command, feeds
everything the command prints into the `OutputSink`, and returns when the
command has ended and every process it started is gone. Cancelling the
coroutine (a timeout, Ctrl-C, `mlci` cancel) must stop the command the same
way — quickly, leaving nothing running — before the cancellation propagates.
A new kind of executor (a Kubernetes Job, a Slurm batch) is a new module
implementing `Executor`; the engine does not change.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import NamedTuple, Protocol

from mlci_tui.events import ExternalJob
from mlci_tui.execution.output import OutputSink
from mlci_tui.procs import describe_exit

__all__ = ["AttemptResult", "AttemptSpec", "Executor", "ExternalJob", "StartedCallback"]


class AttemptSpec(NamedTuple):
    """What to run, and how to stop it."""

    stage: str
    command: str | tuple[str, ...]
    cwd: Path
    env: Mapping[str, str]
    """The complete environment of the command."""
    process_tag: str
    """Unique per attempt; also in ``env`` as ``MLCI_PROCESS_TAG``."""
    kill_grace: float
    """Seconds between the polite stop (SIGTERM) and the forced one."""
    hurry: asyncio.Event
    """Set when stopping must not wait for the grace period (a second Ctrl-C)."""
    own_env: Mapping[str, str] = MappingProxyType({})
    """The part of ``env`` that mlci and the config set, without what the runner
    inherited: what a remote executor ships along with the command."""


class AttemptResult(NamedTuple):
    exit_code: int | None
    """The exit status; negative when a signal ended it; None if it never started."""
    error: str | None = None
    """Why the command could not be started, watched or finished, for a person."""
    peak_rss_bytes: int | None = None
    cpu_seconds: float | None = None
    timed_out: bool = False
    """It ran past its timeout and was stopped (``error`` says after how long)."""
    cached: str | None = None
    """A built-in stage that had nothing to do, because an earlier run did it: why.
    The stage ends ``cached``, as the result of ``cached_from`` (a run, a stage)."""
    cached_from: tuple[int | None, str] | None = None

    @property
    def problem(self) -> str | None:
        """Why the command did not succeed, for a person; None if it exited 0."""
        if self.error is not None:
            return self.error
        return None if self.exit_code == 0 else describe_exit(self.exit_code)


class StartedCallback(Protocol):
    """Called once the command runs: with its pid and process group when it is a
    local process, with the job when it runs elsewhere."""

    def __call__(
        self, pid: int | None, pgid: int | None, job: ExternalJob | None = None
    ) -> None: ...


def ignore_started(pid: int | None, pgid: int | None, job: ExternalJob | None = None) -> None:
    """A `StartedCallback` for callers that do not need to know."""


class Executor(Protocol):
    async def run(
        self, spec: AttemptSpec, sink: OutputSink, started: StartedCallback
    ) -> AttemptResult: ...
