"""Alerts: stored for the dashboard, and handed to the `[alerts]` command.

A failing alert command is recorded next to the alert, never fatal: an
alert must not turn a rollback into a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping

from mlci_tui.config import AlertsConfig
from mlci_tui.masking import SecretMasker
from mlci_tui.store import Store

RUN_FAILED = "run_failed"
DEPLOY_FAILED = "deploy_failed"
ROLLBACK = "rollback"
AUTO_ROLLBACK = "auto_rollback"
ANALYSIS_FAILED = "analysis_failed"
DECISION_PENDING = "decision_pending"


class Alerter:
    def __init__(
        self,
        store: Store,
        config: AlertsConfig | None,
        masker: SecretMasker,
        *,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.config = config
        self.masker = masker
        self.environ = dict(os.environ if environ is None else environ)
        self.clock = clock

    async def send(
        self, kind: str, message: str, *, version: int | None = None, run_id: int | None = None
    ) -> None:
        message = self.masker.mask_text(" ".join(message.split("\n")))
        alert_id = self.store.add_alert(
            kind, message, created_at=self.clock(), version=version, run_id=run_id
        )
        if self.config is None:
            return
        env = {
            **self.environ,
            **self.config.env,
            "MLCI_ALERT_KIND": kind,
            "MLCI_ALERT_MESSAGE": message,
            "MLCI_ALERT_VERSION": "" if version is None else f"v{version}",
            "MLCI_ALERT_RUN_ID": "" if run_id is None else str(run_id),
        }
        delivery = await asyncio.to_thread(self._deliver, env)
        self.store.set_alert_delivery(alert_id, self.masker.mask_text(delivery))

    def _deliver(self, env: dict[str, str]) -> str:
        assert self.config is not None
        command = self.config.command
        argv = ["/bin/sh", "-c", command] if isinstance(command, str) else list(command)
        try:
            process = subprocess.Popen(
                argv,
                cwd=self.config.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as error:
            return f"alert command could not start: {error.strerror or error}"
        try:
            _, err = process.communicate(timeout=self.config.timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            return f"alert command timed out after {self.config.timeout:g}s"
        if process.returncode != 0:
            last = err.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
            return f"alert command failed (exit code {process.returncode}) {last[0][:200]}".strip()
        return "sent"
