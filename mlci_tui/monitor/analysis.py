"""Checking the live model: one sample at a time, or a post-deploy analysis.

A sample runs the `[monitor]` command against a version; the command reports
metrics as stages do (``::metric`` lines or ``$MLCI_METRICS_FILE``), and the
`checks` decide whether the sample passed. A failing command is a failing
sample. The post-deploy analysis takes `samples` samples, `interval` apart,
and fails as soon as enough of them fail in a row.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from mlci_tui.config import MonitorConfig
from mlci_tui.execution.command import CommandContext, run_command
from mlci_tui.execution.executors.base import Executor
from mlci_tui.execution.output import OutputSink, read_metrics_file
from mlci_tui.masking import SecretMasker
from mlci_tui.registry.model_registry import Registry
from mlci_tui.store.paths import DIR_MODE
from mlci_tui.store.records import VersionRecord

STAGE = "monitor"
"""What the monitor command's output is reported as."""


@dataclass(frozen=True)
class Sample:
    passed: bool
    metrics: Mapping[str, float] = field(default_factory=dict)
    finding: str | None = None
    """Why it failed: ``accuracy 0.61 < 0.85``, or what went wrong with the command."""


@dataclass(frozen=True)
class Verdict:
    failed: bool
    finding: str | None
    samples: int
    """How many samples were taken."""
    cpu_seconds: float = 0.0
    peak_rss_bytes: int | None = None
    """Of the monitor command, over all samples; None when no sample measured one."""
    superseded: bool = False
    """Stopped before its end because production moved: not a finished analysis."""


class Analysis:
    """Takes samples of a version with the `[monitor]` command."""

    def __init__(
        self,
        registry: Registry,
        *,
        executor: Executor,
        masker: SecretMasker,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        assert registry.config.monitor is not None
        self.registry = registry
        self.store = registry.store
        self.monitor: MonitorConfig = registry.config.monitor
        self.executor = executor
        self.masker = masker
        self.environ = dict(os.environ if environ is None else environ)
        self.clock = clock
        self.cpu_seconds = 0.0
        self.peak_rss_bytes: int | None = None
        """Resources the monitor command used, over every sample taken so far."""
        self.steps: dict[str, int] = {}
        """Each metric's points so far: the samples are one series, one step each."""

    @property
    def threshold(self) -> int:
        """Failures in a row that fail the post-deploy analysis."""
        return min(self.monitor.failures_before_rollback, self.monitor.samples)

    async def sample(
        self, version: VersionRecord, context: CommandContext, *, label: str
    ) -> Sample:
        """Run the monitor command once against ``version`` and record the result."""
        metrics_dir = self.store.state_dir / "monitor"
        metrics_dir.mkdir(DIR_MODE, parents=True, exist_ok=True)
        metrics_file = metrics_dir / f"{uuid.uuid4().hex}.json"
        monitor = self.monitor
        variables = {
            "MLCI_MODEL_VERSION": version.name,
            "MLCI_MODEL_PATH": str(self.registry.artifact_path(version)),
            "MLCI_METRICS_FILE": str(metrics_file),
        }
        if context.run_id is not None:
            variables["MLCI_RUN_ID"] = str(context.run_id)
        sink = OutputSink(context.stage, self.masker, context.emit, self.clock, seen=self.steps)
        result = await run_command(
            self.registry.config,
            monitor,
            variables=variables,
            sink=sink,
            executor=self.executor,
            environ=self.environ,
            hurry=context.hurry,
        )
        problem = result.problem
        self.cpu_seconds += result.cpu_seconds or 0.0
        if result.peak_rss_bytes is not None:
            self.peak_rss_bytes = max(self.peak_rss_bytes or 0, result.peak_rss_bytes)
        # Its values win over printed ones, and what it held that was ignored is noted.
        sink.add_file(await asyncio.to_thread(read_metrics_file, metrics_file))
        metrics_file.unlink(missing_ok=True)
        metrics = dict(sink.metrics)
        # A finding quotes checks, which a secret may be written into: masked before it
        # reaches the store, the log, the policy and the alert.
        mask = self.masker.mask_text
        if problem is not None:
            sample = Sample(False, metrics, mask(f"the monitor command failed ({problem})"))
        else:
            failures = [f for f in (c.evaluate(metrics) for c in monitor.checks) if f]
            sample = Sample(not failures, metrics, mask("; ".join(failures)) or None)
        self.store.samples.add(
            version=version.number,
            passed=sample.passed,
            metrics=sample.metrics,
            finding=sample.finding,
            created_at=self.clock(),
            run_id=context.run_id,
        )
        shown = ", ".join(f"{k} {v:g}" for k, v in metrics.items()) or "no metrics"
        verdict = "passed" if sample.passed else f"failed: {sample.finding}"
        context.note(f"{label} of {version.name}: {verdict} ({shown})", self.clock)
        return sample

    async def post_deploy(self, version: VersionRecord, context: CommandContext) -> Verdict:
        """Up to `samples` samples; failed once `threshold` fail in a row."""
        in_a_row = 0
        total = self.monitor.samples
        for index in range(1, total + 1):
            if index > 1:
                await asyncio.sleep(self.monitor.interval)
            if (moved := self.registry.live_instead_of(version)) is not None:
                # Someone moved production: this analysis owns only the version it watched.
                context.note(
                    f"analysis of {version.name} stopped: production moved to {moved} (superseded)",
                    self.clock,
                )
                return Verdict(
                    False, None, index - 1, self.cpu_seconds, self.peak_rss_bytes, superseded=True
                )
            sample = await self.sample(version, context, label=f"sample {index}/{total}")
            in_a_row = 0 if sample.passed else in_a_row + 1
            if in_a_row >= self.threshold:
                return Verdict(True, sample.finding, index, self.cpu_seconds, self.peak_rss_bytes)
        return Verdict(False, None, total, self.cpu_seconds, self.peak_rss_bytes)

    def failures_in_a_row(self, version: VersionRecord) -> int:
        """Consecutive failed samples of ``version``, newest first, from the store (so
        that `mlci monitor --once` under cron counts across invocations)."""
        return self.store.samples.failures_in_a_row(version.number)
