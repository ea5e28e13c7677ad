"""A runner: one process that executes one run and records it in the store.

`mlci run` is a runner in the foreground; the dashboard starts one detached.
Either way the store is where the run lives, so closing a terminal never
loses it: SIGHUP is ignored, SIGINT and SIGTERM cancel the run cleanly
(a second one stops stages without waiting for their grace period).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import time
from collections.abc import Collection, Mapping

from mlci_tui import procs
from mlci_tui.config import Config
from mlci_tui.masking import SecretMasker
from mlci_tui.pipeline.engine import Engine, RunResult, select_stages
from mlci_tui.pipeline.events import RunNoted, Subscriber
from mlci_tui.pipeline.executors.local import LocalExecutor
from mlci_tui.pipeline.recorder import StoreRecorder, StoreWriter
from mlci_tui.store import Store, open_store


class Runner:
    """Creates the run in the store; `run()` executes it and returns how it ended."""

    def __init__(
        self,
        config: Config,
        *,
        targets: Collection[str] = (),
        environ: Mapping[str, str] | None = None,
    ) -> None:
        environ = os.environ if environ is None else environ
        self.config = config
        self.store: Store = open_store(config.pipeline.state_dir)
        names = select_stages(config, targets)
        self.run_id = self.store.create_run(
            config.pipeline.name,
            [(name, config.stages[name].needs, config.stages[name].retries + 1) for name in names],
            started_at=time.time(),
            pid=os.getpid(),
            pid_started=procs.process_started(os.getpid()),
            host=socket.gethostname(),
            config_path=str(config.path),
        )
        masker = SecretMasker(environ.get(name, "") for name in config.pipeline.secrets)
        self.executor = LocalExecutor(subreaper=procs.become_subreaper())
        self.engine = Engine(
            config,
            stages=names,
            masker=masker,
            executor=self.executor,
            metrics_path=lambda stage: self.store.metrics_path(self.run_id, stage),
            run_id=self.run_id,
            environ=environ,
        )
        self.writer = StoreWriter(self.store)
        self.recorder = StoreRecorder(self.store, self.writer, self.run_id)
        self.engine.subscribe(self.recorder)

    def subscribe(self, subscriber: Subscriber) -> None:
        self.engine.subscribe(subscriber)

    def run(self) -> RunResult:
        """Execute the run to its end; blocking. Raises `StoreError` if it could not be
        recorded (the store then shows it interrupted, never half-finished as passed)."""
        previous_hup = signal.signal(signal.SIGHUP, signal.SIG_IGN)
        try:
            return asyncio.run(self._main())
        finally:
            signal.signal(signal.SIGHUP, previous_hup)
            self.recorder.close()
            try:
                self.writer.close()
            finally:
                self.store.close()

    async def _main(self) -> RunResult:
        loop = asyncio.get_running_loop()
        requests = 0

        def on_signal(signum: int) -> None:
            nonlocal requests
            requests += 1
            name = signal.Signals(signum).name
            if requests == 1:
                text = f"{name}: cancelling the run (again to stop stages at once)"
            else:
                text = f"{name}: stopping stages now"
            self.engine.emit(RunNoted(text, time.time()))
            self.engine.cancel(force=requests > 1)

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, on_signal, signum)
        try:
            return await self.engine.run()
        finally:
            self.executor.reap_orphans()
            for signum in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(Exception):
                    loop.remove_signal_handler(signum)
