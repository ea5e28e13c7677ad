"""Where a stage's command runs. Each executor is one module; the engine only
knows the `Executor` interface in `base`.

A module named in `KINDS` offers ``create(config)``, which returns its
executor; if its settings change what a command makes, ``cache_inputs(config,
env)``, which names them for the cache key of each stage it runs; and, if its
jobs can outlive the runner (they run elsewhere), ``stop_job(job, timeout)``,
which recovery calls for the jobs of a runner that died. None may import
anything slow at module level: the module is loaded only when a stage asks for
it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

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


def cache_inputs(
    kind: str, config: Config, env: Callable[[Mapping[str, str]], dict[str, str]]
) -> dict[str, object]:
    """What of the executor's settings changes what a stage it runs makes, for the
    stage's cache key: each named ``KIND_SETTING``, which `mlci why` shows as "KIND
    SETTING changed". ``env`` turns an environment into what a key may hold.

    An executor without a table in ``[executors]`` (the local one, always) has no
    settings: its module, which may load asyncio and more, is not loaded to ask
    (`mlci why` never runs a command)."""
    if getattr(config.executors, kind, None) is None:
        return {}
    inputs = getattr(importlib.import_module(KINDS[kind]), "cache_inputs", None)
    found: dict[str, object] = {} if inputs is None else inputs(config, env)
    return found


def stop_job(job: ExternalJob, timeout: float) -> str | None:
    """Stop a job left by a runner that died; returns why it could not be stopped."""
    module = importlib.import_module(KINDS[job.kind]) if job.kind in KINDS else None
    stop = getattr(module, "stop_job", None)
    if stop is None:
        return f"mlci cannot stop {job.kind} jobs"
    problem: str | None = stop(job, timeout)
    return problem
