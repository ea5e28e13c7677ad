"""Where a stage's command runs. Each executor is one module; the engine only
knows the `Executor` interface in `base`.

A module named in `KINDS` offers ``create(config)``, which returns its
executor, and, if its jobs can outlive the runner (they run elsewhere),
``stop_job(job, timeout)``, which recovery calls for the jobs of a runner that
died. Neither may import anything slow at module level: the module is loaded
only when a stage asks for it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlci_tui.config import Config
    from mlci_tui.events import ExternalJob
    from mlci_tui.execution.executors.base import Executor

KINDS: dict[str, str] = {
    "local": "mlci_tui.execution.executors.local",
    "ray": "mlci_tui.execution.executors.ray",
}
"""The executors a stage may name, and the modules that implement them."""


def create(kind: str, config: Config) -> Executor:
    executor: Executor = importlib.import_module(KINDS[kind]).create(config)
    return executor


def stop_job(job: ExternalJob, timeout: float) -> str | None:
    """Stop a job left by a runner that died; returns why it could not be stopped."""
    module = importlib.import_module(KINDS[job.kind]) if job.kind in KINDS else None
    stop = getattr(module, "stop_job", None)
    if stop is None:
        return f"mlci cannot stop {job.kind} jobs"
    problem: str | None = stop(job, timeout)
    return problem
