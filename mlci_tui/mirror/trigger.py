"""After a run, a deploy or a rollback: `mlci mlflow sync --auto`, in a process of
its own, bounded by `[mlflow] timeout`.

MLflow is never in production's way: the process starts once what changed is
recorded, and what it cannot send (a server down, an MLflow error, too slow) it
records as a failed sync and an alert of kind `mlflow_sync_failed`; the next
sync sends it. Its own process keeps MLflow's imports (over a second) and any
hang of its client out of the runner and the deployer.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NamedTuple

from mlci_tui.config import CommandLine, Config
from mlci_tui.events import CommandOutput, Event
from mlci_tui.execution.command import run_command
from mlci_tui.execution.executors.base import Executor
from mlci_tui.execution.output import OutputSink
from mlci_tui.masking import SecretMasker
from mlci_tui.mirror.mlflow_push import MLFLOW_ENV
from mlci_tui.mirror.sync import record_lost_sync
from mlci_tui.states import Stream

STAGE = "mlflow"
"""What the sync's output is reported as."""
RECORDED_FAILURE = 1
"""The sync's exit status when it failed and recorded why itself."""


class _SyncCommand(NamedTuple):
    command: CommandLine
    cwd: Path
    env: Mapping[str, str]
    timeout: float | None


class Mirroring:
    """Syncs a store's mirror whenever asked, one sync at a time: a request made
    while one runs is served by one more sync after it."""

    def __init__(
        self,
        config: Config,
        *,
        executor: Executor,
        masker: SecretMasker,
        environ: Mapping[str, str],
        report: Callable[[str], None] = lambda text: None,
    ) -> None:
        assert config.mlflow is not None
        self.config = config
        self.executor = executor
        self.masker = masker
        self.environ = environ
        self.report = report
        """Told what each sync did, or why it failed, in one line."""
        self._task: asyncio.Future[None] | None = None
        self._again = False

    def kick(self, *_: object) -> None:
        """Ask for a sync from inside the event loop, without waiting for it."""
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._task = asyncio.ensure_future(self._serve())

    async def settle(self) -> None:
        """Wait for the syncs asked for so far."""
        if self._task is not None:
            await self._task

    async def _serve(self) -> None:
        while True:
            self._again = False
            self.report(await self.sync())
            if not self._again:
                return

    async def sync(self) -> str:
        """One sync to its end; what it did, or why it failed."""
        table = self.config.mlflow
        assert table is not None
        said: list[bytes] = []

        def keep(event: Event) -> None:
            if isinstance(event, CommandOutput) and event.stream in (Stream.STDOUT, Stream.STDERR):
                said.extend(line for line in event.data.split(b"\n") if line.strip())

        command = _SyncCommand(
            (
                sys.executable,
                "-m",
                "mlci_tui",
                "--config",
                str(self.config.path),
                "mlflow",
                "sync",
                "--auto",
            ),
            self.config.root,
            MLFLOW_ENV,
            table.timeout,
        )
        result = await run_command(
            self.config,
            command,
            variables={},
            sink=OutputSink(STAGE, self.masker, keep),
            executor=self.executor,
            environ=self.environ,
        )
        last = said[-1].decode("utf-8", "replace").strip() if said else ""
        last = last.removeprefix("mlci: ")
        if result.exit_code == 0:
            return last or "mlflow: up to date"
        if result.exit_code == RECORDED_FAILURE and last:
            return last
        problem = f"mlflow: sync {result.problem}" + (f": {last[:200]}" if last else "")
        await self._record_failure(problem)
        return problem

    async def _record_failure(self, problem: str) -> None:
        """A sync that could not say why itself (stopped, killed): recorded here."""
        from mlci_tui.store import Store

        with Store.open(self.config.pipeline.state_dir) as store:
            await record_lost_sync(
                store,
                self.config,
                problem,
                executor=self.executor,
                masker=self.masker,
                environ=self.environ,
            )
