"""Alerts: stored for the dashboard, and handed to the `[alerts]` command.

The alert command runs as every command does (`execution.command`), with the
alert in ``MLCI_ALERT_*`` variables. A failing alert command is recorded
next to the alert, never fatal: an alert must not turn a rollback into a
failure.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping

from mlci_tui.config import AlertsConfig, Config
from mlci_tui.errors import StoreError
from mlci_tui.events import CommandOutput, Event
from mlci_tui.execution.command import run_command
from mlci_tui.execution.executors.base import Executor
from mlci_tui.execution.output import OutputSink
from mlci_tui.masking import SecretMasker
from mlci_tui.states import Stream
from mlci_tui.store import Store

RUN_FAILED = "run_failed"
DEPLOY_FAILED = "deploy_failed"
ROLLBACK = "rollback"
AUTO_ROLLBACK = "auto_rollback"
ANALYSIS_FAILED = "analysis_failed"
DECISION_PENDING = "decision_pending"

STAGE = "alerts"
"""What the alert command's output is reported as."""


class Alerter:
    def __init__(
        self,
        store: Store,
        config: Config,
        masker: SecretMasker,
        *,
        executor: Executor,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.config = config
        self.masker = masker
        self.executor = executor
        self.environ = dict(os.environ if environ is None else environ)
        self.clock = clock

    async def send(
        self, kind: str, message: str, *, version: int | None = None, run_id: int | None = None
    ) -> None:
        message = self.masker.mask_text(" ".join(message.split("\n")))
        try:
            alert_id: int | None = self.store.alerts.add(
                kind, message, created_at=self.clock(), version=version, run_id=run_id
            )
        except StoreError as error:
            # A store that cannot be written (a full disk, a damaged file) is when an
            # alert matters most: the command still hears of it, and of why.
            alert_id = None
            message = f"{message} (not recorded in the run store: {error})"
        table = self.config.alerts
        if table is None:
            if alert_id is None:
                raise StoreError(message)
            return
        variables = {
            "MLCI_ALERT_KIND": kind,
            "MLCI_ALERT_MESSAGE": message,
            "MLCI_ALERT_VERSION": "" if version is None else f"v{version}",
            "MLCI_ALERT_RUN_ID": "" if run_id is None else str(run_id),
        }
        delivery = await self._deliver(table, variables)
        if alert_id is not None:
            self.store.alerts.set_delivery(alert_id, self.masker.mask_text(delivery))

    async def _deliver(self, table: AlertsConfig, variables: Mapping[str, str]) -> str:
        """Run the alert command; ``sent``, or why it failed (with its last line of stderr)."""
        last_error = b""

        def keep_last_error(event: Event) -> None:
            nonlocal last_error
            if isinstance(event, CommandOutput) and event.stream is Stream.STDERR:
                lines = [line for line in event.data.split(b"\n") if line.strip()]
                if lines:
                    last_error = lines[-1]

        result = await run_command(
            self.config,
            table,
            variables=variables,
            sink=OutputSink(STAGE, self.masker, keep_last_error, self.clock),
            executor=self.executor,
            environ=self.environ,
        )
        if result.problem is None:
            return "sent"
        if result.timed_out:
            return f"alert command {result.error}"
        if result.error is not None:
            return f"alert command: {result.error}"
        last = last_error.decode("utf-8", "replace").strip()[:200]
        return f"alert command failed ({result.problem}) {last}".strip()
