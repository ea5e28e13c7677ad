"""Running a command against a model version: the deploy command, the monitor command.

Each runs as a stage attempt does: in its own process group with a process
tag, its output masked and passed on as events, stopped at its timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

from mlci_tui import procs
from mlci_tui.config import Config, DeployConfig, MonitorConfig
from mlci_tui.masking import SecretMasker
from mlci_tui.pipeline.events import Event
from mlci_tui.pipeline.executors.base import (
    AttemptResult,
    AttemptSpec,
    StageExecutor,
    ignore_started,
)
from mlci_tui.pipeline.output import OutputSink


async def run_model_command(
    config: Config,
    table: DeployConfig | MonitorConfig,
    *,
    stage: str,
    variables: Mapping[str, str],
    tag: str,
    environ: Mapping[str, str],
    executor: StageExecutor,
    masker: SecretMasker,
    emit: Callable[[Event], None],
    clock: Callable[[], float],
    hurry: asyncio.Event | None,
) -> tuple[AttemptResult | None, OutputSink]:
    """Run ``table.command`` with ``variables`` (the ``MLCI_*`` ones) in its environment,
    its output going to ``emit`` as ``stage``'s. The result is None when the command ran
    past ``table.timeout``; the sink holds the metrics it reported."""
    env = {
        **environ,
        **config.pipeline.env,
        **table.env,
        **variables,
        procs.TAG_VARIABLE: tag,
    }
    # Output should stream while it happens, not arrive in one block at exit.
    env.setdefault("PYTHONUNBUFFERED", "1")
    spec = AttemptSpec(
        stage=stage,
        command=table.command,
        cwd=table.cwd,
        env=env,
        process_tag=tag,
        kill_grace=config.pipeline.kill_grace,
        hurry=hurry or asyncio.Event(),
    )
    sink = OutputSink(stage, masker, emit, clock)
    run = executor.run(spec, sink, ignore_started)
    try:
        result = await (run if table.timeout is None else asyncio.wait_for(run, table.timeout))
    except asyncio.TimeoutError:
        return None, sink
    return result, sink
