"""Writing a run's events into the store: log lines to files, state to SQLite."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from mlci_tui.errors import StoreBusy
from mlci_tui.events import (
    CommandMetrics,
    CommandNoted,
    CommandOutput,
    CommandSampled,
    Event,
    RunFinished,
    StageCached,
    StageFinished,
    StagePlanned,
    StageStarted,
)
from mlci_tui.states import StageState
from mlci_tui.store import Store
from mlci_tui.store.logs import LogWriter

MAX_LOCKED_S = 600.0
"""How long a write of the run waits on a database another process keeps locked."""


class StoreWriter:
    """Applies store writes on one background thread, in order.

    A database that another process holds locked makes this thread wait (the
    busy timeout); the event loop keeps reading stage output meanwhile. A write
    that fails is raised by the next `submit` or by `close`.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._queue: queue.SimpleQueue[
            tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]] | None
        ] = queue.SimpleQueue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name="mlci-store", daemon=True)
        self._thread.start()

    def submit(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self._raise_pending()
        self._queue.put((method, args, kwargs))

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            method, args, kwargs = item
            waited_until = time.monotonic() + MAX_LOCKED_S
            while True:
                try:
                    method(*args, **kwargs)
                except StoreBusy as error:
                    # Another process holds the lock past the busy timeout: nothing of
                    # the run may be lost, so this write waits on (stage output goes on).
                    if time.monotonic() < waited_until:
                        continue
                    if self._error is None:
                        self._error = error
                except BaseException as error:  # kept for the caller; the thread goes on
                    if self._error is None:
                        self._error = error
                break

    def _raise_pending(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def close(self) -> None:
        """Wait for every write; raise the first that failed."""
        self._queue.put(None)
        self._thread.join()
        self._raise_pending()


class StoreRecorder:
    """An engine subscriber that records one run."""

    def __init__(self, store: Store, writer: StoreWriter, run_id: int) -> None:
        self.store = store
        self.writer = writer
        self.run_id = run_id
        self._logs: dict[str, LogWriter] = {}
        self._started: dict[str, float] = {}

    def __call__(self, event: Event) -> None:
        # Output first: it is by far the most frequent event.
        if isinstance(event, (CommandOutput, CommandNoted)):
            self._log(event.stage).record(event)
        elif isinstance(event, CommandSampled):
            self._update(
                event.stage,
                cpu_percent=event.cpu_percent,
                rss_bytes=event.rss_bytes,
                peak_rss_bytes=event.peak_rss_bytes,
            )
        elif isinstance(event, CommandMetrics):
            self.writer.submit(
                self.store.runs.record_metrics, self.run_id, event.stage, event.metrics
            )
            if event.points:
                self.writer.submit(
                    self.store.series.record_points,
                    self.run_id,
                    event.stage,
                    event.points,
                    event.time,
                )
        elif isinstance(event, StageStarted):
            self._log(event.stage)
            if event.attempt > 1:
                # A retried stage's metrics are its last attempt's, as its gates are.
                self.writer.submit(self.store.series.forget_metrics, self.run_id, event.stage)
            first = self._started.setdefault(event.stage, event.time)
            self._update(
                event.stage,
                state=StageState.RUNNING,
                attempt=event.attempt,
                started_at=first,
                pid=event.pid,
                pgid=event.pgid,
                process_tag=event.process_tag,
                job_kind=None if event.job is None else event.job.kind,
                job_id=None if event.job is None else event.job.id,
                job_address=None if event.job is None else event.job.address,
                exit_code=None,
            )
        elif isinstance(event, StageFinished):
            ended: dict[str, Any] = {}
            if event.peak_rss_bytes is not None:
                # Unknown at the end (a timeout, a stage too short to sample): the peak
                # the samples recorded stays.
                ended["peak_rss_bytes"] = event.peak_rss_bytes
            self._update(
                event.stage,
                state=event.state,
                attempt=event.attempt,
                exit_code=event.exit_code,
                ended_at=event.ended_at if event.started_at is not None else None,
                cpu_seconds=event.cpu_seconds,
                failed_gate=event.failed_gate,
                message=event.message,
                cpu_percent=None,
                rss_bytes=None,
                **ended,
            )
            log = self._logs.pop(event.stage, None)
            if log is not None:
                log.close()
        elif isinstance(event, StagePlanned):
            self._update(event.stage, cache_key=event.cache_key, reasons=event.reasons)
        elif isinstance(event, StageCached):
            self._update(
                event.stage,
                started_at=event.time,
                cached_from_run=event.from_run,
                cached_from_stage=event.from_stage,
                cached_from_store=event.from_store,
            )
            self._log(event.stage).note(event.text, event.time)
            if event.same_store and event.from_run is not None:
                self._copy_log(event.stage, event.from_run, event.from_stage)
                self.writer.submit(
                    self.store.series.copy,
                    self.run_id,
                    event.stage,
                    event.from_run,
                    event.from_stage,
                )
        elif isinstance(event, RunFinished):
            self.writer.submit(
                self.store.runs.finish,
                self.run_id,
                event.state,
                exit_code=event.exit_code,
                ended_at=event.time,
                message=event.message,
            )

    def _update(self, stage: str, **fields: Any) -> None:
        self.writer.submit(self.store.runs.update_stage, self.run_id, stage, **fields)

    def _copy_log(self, stage: str, run_id: int, from_stage: str) -> None:
        """A cached stage's log goes on with the log of the stage whose result it reuses."""
        log = self._log(stage)
        try:
            log.append_log(self.store.log_path(run_id, from_stage))
        except FileNotFoundError:
            log.note(f"the log of run {run_id}, stage {from_stage} is gone", time.time())

    def _log(self, stage: str) -> LogWriter:
        log = self._logs.get(stage)
        if log is None:
            log = self._logs[stage] = LogWriter(self.store.log_path(self.run_id, stage))
        return log

    def close(self) -> None:
        for log in self._logs.values():
            log.close()
        self._logs.clear()
