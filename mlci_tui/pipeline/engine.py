"""The engine: runs a pipeline's stages as a DAG and reports what happens.

Stages start as soon as everything they need has passed, with up to
`max_parallel` commands running at a time (a cached stage runs none, so it
never waits for one); a stage whose dependency did not pass is skipped.
Each attempt runs on a `Executor`; a failed exit or a timeout is
retried with a short backoff, then gates are checked on the stage's metrics.
The engine knows nothing of the store or the screen: it emits events, and
whoever subscribed records or shows them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from mlci_tui.config import Config, StageConfig, param_environment
from mlci_tui.errors import ExitCode, MlciError
from mlci_tui.events import (
    CommandNoted,
    Event,
    ExternalJob,
    RunFinished,
    RunNoted,
    RunStarted,
    StageCached,
    StageFinished,
    StagePlanned,
    StageStarted,
    Subscriber,
)
from mlci_tui.execution import executors
from mlci_tui.execution.command import run_command
from mlci_tui.execution.executors.base import AttemptResult, Executor
from mlci_tui.execution.executors.local import LocalExecutor
from mlci_tui.execution.output import MetricsFile, OutputSink, finite, read_metrics_file
from mlci_tui.masking import SecretMasker
from mlci_tui.procs import new_tag
from mlci_tui.states import RunState, StageState
from mlci_tui.store.paths import keep_private
from mlci_tui.units import format_duration

if TYPE_CHECKING:  # a run without deps never loads the cache
    from mlci_tui.pipeline.stage_cache import Decision, StageCache

RETRY_DELAYS_S = (1.0, 2.0, 4.0, 8.0)

_NOT_PASSED = (StageState.FAILED, StageState.SKIPPED, StageState.CANCELLED)


class RunResult(NamedTuple):
    state: RunState
    exit_code: int
    stages: Mapping[str, StageFinished]
    message: str | None = None


class ActionContext(NamedTuple):
    """What a built-in stage (deploy, monitor) gets from the engine."""

    emit: Callable[[Event], None]
    finished: Mapping[str, StageFinished]
    """The stages that ended so far, in the order they ended."""
    hurry: asyncio.Event
    mark_run: Callable[[RunState, str], None]
    """Set how the run ends if it does not pass (e.g. ``rolled_back``)."""


Action = Callable[[ActionContext], Awaitable[AttemptResult]]
"""A stage that runs code of mlci's own instead of a command."""


class _Plan(NamedTuple):
    stages: dict[str, StageConfig]
    states: dict[str, StageState]
    finished: dict[str, StageFinished]


class Engine:
    """Runs one pipeline run. Create, subscribe, ``await run()``; ``cancel()`` stops it."""

    def __init__(
        self,
        config: Config,
        *,
        stages: Mapping[str, StageConfig] | None = None,
        actions: Mapping[str, Action] | None = None,
        masker: SecretMasker | None = None,
        executor: Executor | None = None,
        metrics_path: Callable[[str], Path],
        run_id: int | None = None,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
        on_pass: Callable[[Mapping[str, StageFinished]], str | None] | None = None,
        cache: StageCache | None = None,
        params_file: Path | None = None,
    ) -> None:
        """``on_pass`` is the last step of a run whose stages all passed (registering
        its version): what it returns, when not None, fails the run with that reason.
        With a ``cache``, a stage whose inputs did not change is cached, not run;
        ``params_file`` is the run's params as JSON, for ``$MLCI_PARAMS_FILE``."""
        self.config = config
        self.cache = cache
        self.params_file = params_file
        self.on_pass = on_pass
        self.stages = dict(config.stages if stages is None else stages)
        self.names = list(self.stages)
        self.actions = dict(actions or {})
        self.masker = masker or SecretMasker(())
        self.executors: dict[str, Executor] = {"local": executor or LocalExecutor()}
        """Executors by kind; others than the local one are made when a stage needs them."""
        self.metrics_path = metrics_path
        self.run_id = run_id
        self.environ = dict(os.environ if environ is None else environ)
        self.clock = clock
        self.subscribers: list[Subscriber] = []
        self._tasks: dict[asyncio.Task[StageFinished], str] = {}
        self._slots = asyncio.Semaphore(config.pipeline.max_parallel)
        """`max_parallel` counts commands: a stage decides, and is cached, without one."""
        self._cancelled = False
        self._hurry = asyncio.Event()
        self._fault: str | None = None
        self._marked: tuple[RunState, str] | None = None
        self._finished: dict[str, StageFinished] = {}
        self._noted: dict[str, set[str]] = {}
        """What mlci noted about each stage, so that a failure's reason is noted once."""

    def subscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.append(subscriber)

    def emit(self, event: Event) -> None:
        if type(event) is CommandNoted:
            self._noted.setdefault(event.stage, set()).add(event.text)
        for subscriber in self.subscribers:
            try:
                subscriber(event)
            except Exception as error:  # any failure to record stops the run
                if self._fault is None:
                    self._fault = f"cannot record the run: {error}"
                    self.cancel()
                    # Tell whoever can still listen (the terminal, when the disk is full).
                    self.emit(RunNoted(f"{self._fault}; stopping the run", self.clock()))

    def cancel(self, *, force: bool = False) -> None:
        """Stop the run: running stages get SIGTERM, then SIGKILL after the grace
        period (at once with ``force``); stages not started are cancelled."""
        if force or self._cancelled:
            self._hurry.set()
        if self._cancelled:
            return
        self._cancelled = True
        for task in self._tasks:
            task.cancel()

    async def run(self) -> RunResult:
        plan = _Plan(
            stages=dict(self.stages),
            states=dict.fromkeys(self.stages, StageState.PENDING),
            finished=self._finished,
        )
        self.emit(RunStarted(tuple(plan.stages), self.clock()))
        try:
            while True:
                if not self._cancelled:
                    if any(s in _NOT_PASSED for s in plan.states.values()):
                        self._skip_blocked(plan)
                    self._start_ready(plan)
                if not self._tasks:
                    break
                done, _ = await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    name = self._tasks.pop(task)
                    if task.cancelled():  # cancelled before it began: nothing ran
                        self._finish(plan, name, StageState.CANCELLED, message="cancelled")
                    else:
                        plan.finished[name] = task.result()
                        plan.states[name] = plan.finished[name].state
        finally:
            # Only reached with tasks left if run() itself was cancelled.
            for task in self._tasks:
                task.cancel()
            if self._tasks:
                await asyncio.wait(self._tasks)
        for name, state in plan.states.items():
            if state is StageState.PENDING:
                self._finish(plan, name, StageState.CANCELLED, message=self._cancel_message)
        return self._result(plan)

    @property
    def _cancel_message(self) -> str:
        """Why stages that did not finish were cancelled."""
        return "the run was cancelled" if self._fault is None else self._fault

    def _result(self, plan: _Plan) -> RunResult:
        failed = [n for n, s in plan.states.items() if s is StageState.FAILED]
        if self._fault is not None:
            state, code, message = RunState.FAILED, ExitCode.FAILED, self._fault
        elif self._cancelled:
            state, code, message = RunState.CANCELLED, ExitCode.CANCELLED, None
        elif any(s in _NOT_PASSED for s in plan.states.values()):
            state, code = RunState.FAILED, ExitCode.FAILED
            message = f"failed: {', '.join(failed)}" if failed else "failed"
            if self._marked is not None:
                state, message = self._marked
        else:
            state, code, message = RunState.PASSED, ExitCode.PASSED, None
            problem = self.on_pass(plan.finished) if self.on_pass is not None else None
            if problem is not None:
                state, code, message = RunState.FAILED, ExitCode.FAILED, problem
        self.emit(RunFinished(state, code, self.clock(), message))
        return RunResult(state, code, dict(plan.finished), message)

    def _skip_blocked(self, plan: _Plan) -> None:
        changed = True
        while changed:
            changed = False
            for name, stage in plan.stages.items():
                if plan.states[name] is not StageState.PENDING:
                    continue
                blocked = [n for n in stage.needs if plan.states.get(n) in _NOT_PASSED]
                if blocked:
                    self._finish(
                        plan, name, StageState.SKIPPED, message=f"{blocked[0]} did not pass"
                    )
                    changed = True

    def _start_ready(self, plan: _Plan) -> None:
        for name, stage in plan.stages.items():
            if plan.states[name] is not StageState.PENDING:
                continue
            if all(plan.states.get(n, StageState.PASSED).passed for n in stage.needs):
                plan.states[name] = StageState.RUNNING
                task = asyncio.ensure_future(self._run_stage(stage))
                self._tasks[task] = name

    def _finish(self, plan: _Plan, name: str, state: StageState, *, message: str) -> None:
        event = StageFinished(name, state, 0, None, None, self.clock(), message=message)
        plan.states[name] = state
        plan.finished[name] = event
        self.emit(event)

    async def _run_stage(self, stage: StageConfig) -> StageFinished:
        started_at = self.clock()
        attempts = stage.retries + 1
        sink = OutputSink(stage.name, self.masker, self.emit, self.clock)
        result = AttemptResult(None)
        attempt = 0
        try:
            decision = await self._decide(stage, sink)
            if decision is not None and decision.problem is not None:
                return self._stage_finished(
                    stage, StageState.FAILED, 0, None, result, sink, decision.problem
                )
            if decision is not None and decision.cached:
                reused = await self._reuse(stage, decision, started_at, sink)
                if reused is not None:
                    return reused
            for attempt in range(1, attempts + 1):
                sink = OutputSink(stage.name, self.masker, self.emit, self.clock)
                try:
                    async with self._slots:
                        result, problem = await self._attempt(stage, attempt, attempts, sink)
                except (OSError, ValueError, RuntimeError) as error:
                    # An OS limit or a bug fails this stage, not the whole runner.
                    result, problem = AttemptResult(None), f"{type(error).__name__}: {error}"
                    sink.note(problem)
                if problem is None and result.cached is not None:
                    return self._reused_action(stage, started_at, result, sink)
                if problem is None:
                    return await self._judge(stage, attempt, started_at, result, sink, decision)
                if attempt == attempts:
                    return self._stage_finished(
                        stage, StageState.FAILED, attempt, started_at, result, sink, problem
                    )
                delay = RETRY_DELAYS_S[min(attempt, len(RETRY_DELAYS_S)) - 1]
                sink.note(
                    f"attempt {attempt} of {attempts} failed ({problem});"
                    f" retrying in {format_duration(delay)}"
                )
                await asyncio.sleep(delay)
        except asyncio.CancelledError:
            if sink.cpu_seconds is not None:  # what the stopped command spent
                result = result._replace(cpu_seconds=sink.cpu_seconds)
            return self._stage_finished(
                stage, StageState.CANCELLED, attempt, started_at, result, sink, self._cancel_message
            )
        raise AssertionError("unreachable")

    async def _decide(self, stage: StageConfig, sink: OutputSink) -> Decision | None:
        """Whether the stage runs or is cached (None without a cache, or for a built-in stage)."""
        if self.cache is None or stage.name in self.actions:
            return None
        try:
            decision = await asyncio.to_thread(self.cache.decide, stage)
        except (OSError, ValueError, MlciError) as error:
            # The cache is a saving, never a reason to fail: the stage runs.
            sink.note(f"runs: the cache cannot be read ({error})")
            return None
        self.emit(StagePlanned(stage.name, decision.key, decision.reasons, self.clock()))
        if (stage.cacheable or self.cache.forced(stage.name)) and not decision.cached:
            sink.note("runs: " + "; ".join(decision.reasons))
        return decision

    async def _reuse(
        self, stage: StageConfig, decision: Decision, started_at: float, sink: OutputSink
    ) -> StageFinished | None:
        """End a cached stage as its entry says; None if it must run after all."""
        from mlci_tui.pipeline.outs import CacheDamaged

        assert self.cache is not None and decision.entry is not None
        source = decision.source
        assert source is not None
        try:
            restored = await asyncio.to_thread(self.cache.restore, decision)
        except (OSError, ValueError, CacheDamaged) as error:
            reason = f"its cached result cannot be restored ({error})"
            self.emit(StagePlanned(stage.name, decision.key, (reason,), self.clock()))
            sink.note(f"runs: {reason}")
            return None
        same_store = source.store is None
        text = f"cached: {decision.reasons[0]}"
        self.emit(
            StageCached(
                stage.name, source.run, source.stage, same_store, text, started_at, source.store
            )
        )
        if restored:
            sink.note(f"restored from the cache: {', '.join(restored)}")
        pairs = decision.entry.get("metrics", [])
        # From this store, the source run's whole series is copied with its log.
        sink.add_metrics(
            {str(k): v for k, raw in pairs if isinstance(v := finite(raw), float)},
            series=not same_store,
        )
        failure = self._failure(stage, sink)
        result = AttemptResult(None)
        if failure is not None:
            return self._stage_finished(
                stage, StageState.FAILED, 0, started_at, result, sink, *failure
            )
        self.cache.cached(stage, decision)
        return self._stage_finished(
            stage, StageState.CACHED, 0, started_at, result, sink, decision.reasons[0]
        )

    def _reused_action(
        self, stage: StageConfig, started_at: float, result: AttemptResult, sink: OutputSink
    ) -> StageFinished:
        """A built-in stage whose work an earlier run did (the artifact is live already)."""
        assert result.cached is not None
        if result.cached_from is not None:
            run, from_stage = result.cached_from
            text = f"cached: {result.cached}"
            self.emit(StageCached(stage.name, run, from_stage, False, text, started_at))
        return self._stage_finished(
            stage, StageState.CACHED, 1, started_at, result, sink, result.cached
        )

    def _mask_file(self, path: Path) -> None:
        """The file a stage wrote into the store, with its secrets masked, for its owner."""
        if self.masker:
            with contextlib.suppress(OSError):  # not written: nothing to mask
                data = path.read_bytes()
                if (masked := self.masker.mask(data)) != data:
                    path.write_bytes(masked)
        keep_private(path)

    def mark_run(self, state: RunState, message: str) -> None:
        self._marked = (state, message)

    async def _action(self, stage: StageConfig, action: Action) -> tuple[AttemptResult, str | None]:
        self.emit(StageStarted(stage.name, 1, 1, None, None, None, self.clock()))
        context = ActionContext(self.emit, self._finished, self._hurry, self.mark_run)
        result = await action(context)
        return result, result.problem

    async def _attempt(
        self, stage: StageConfig, attempt: int, attempts: int, sink: OutputSink
    ) -> tuple[AttemptResult, str | None]:
        """Run one attempt; returns its result and why it failed (None if it exited 0)."""
        action = self.actions.get(stage.name)
        if action is not None:
            return await self._action(stage, action)
        metrics_file = self.metrics_path(stage.name)
        metrics_file.unlink(missing_ok=True)
        removed = stage.removed_before_run  # validation held each to the rules for outs
        if removed:
            from mlci_tui.pipeline.outs import outs_behind_links, remove_outs

            # Checked again here: a link made since validation would lead elsewhere.
            linked = outs_behind_links(removed, self.config.root)
            if linked is not None:
                sink.note(linked)
                return AttemptResult(None, error=linked), linked
            await asyncio.to_thread(remove_outs, removed)
        variables = {
            "MLCI_STAGE": stage.name,
            "MLCI_ATTEMPT": str(attempt),
            "MLCI_METRICS_FILE": str(metrics_file),
            **param_environment(self.config, stage),
        }
        if self.params_file is not None:
            variables["MLCI_PARAMS_FILE"] = str(self.params_file)
        if self.run_id is not None:
            variables["MLCI_RUN_ID"] = str(self.run_id)
        tag = new_tag()

        def started(pid: int | None, pgid: int | None, job: ExternalJob | None = None) -> None:
            self.emit(
                StageStarted(stage.name, attempt, attempts, pid, pgid, tag, self.clock(), job)
            )

        result = await run_command(
            self.config,
            stage,
            variables=variables,
            sink=sink,
            executor=self._executor(stage.executor),
            environ=self.environ,
            hurry=self._hurry,
            tag=tag,
            started=started,
        )
        if result.timed_out:
            return result, result.error
        if result.error is not None:
            sink.note(result.error)
            return result, result.error
        if os.path.lexists(metrics_file):
            # A stage may write megabytes of it: read off the loop that reads the output.
            found = await asyncio.to_thread(read_metrics_file, metrics_file)
            self._mask_file(metrics_file)
        else:  # as most stages: no thread started, nor waited for, to read nothing
            found = MetricsFile({}, [])
        sink.add_file(found)
        return result, result.problem

    async def _judge(
        self,
        stage: StageConfig,
        attempt: int,
        started_at: float,
        result: AttemptResult,
        sink: OutputSink,
        decision: Decision | None,
    ) -> StageFinished:
        """A stage whose command passed: check its gates and outs, then cache it."""
        failure = self._failure(stage, sink)
        if failure is not None:
            return self._stage_finished(
                stage, StageState.FAILED, attempt, started_at, result, sink, *failure
            )
        if self.cache is not None and decision is not None:
            try:
                notes = await asyncio.to_thread(
                    self.cache.save, stage, decision, sink.metrics, self.run_id or 0
                )
            except OSError as error:  # its words and path, not Python's `[Errno N] …`
                where = f"{error.filename}: " if error.filename else ""
                notes = [f"not cached: {where}{error.strerror or error}"]
            except (ValueError, MlciError) as error:
                notes = [f"not cached: {error}"]
            for note in notes:
                sink.note(note)
        return self._stage_finished(stage, StageState.PASSED, attempt, started_at, result, sink)

    def _failure(self, stage: StageConfig, sink: OutputSink) -> tuple[str, str | None] | None:
        """Why a stage that exited 0 (or was cached) fails: a gate, or a missing out; and
        the gate. Noted in its log."""
        for gate in stage.gates:
            metrics: Mapping[str, float] = sink.metrics
            if gate.stage not in (None, stage.name):
                # A gate on a stage it needs reads that stage's metrics: it ended before.
                owner = self._finished.get(gate.stage)
                metrics = {} if owner is None else owner.metrics
            failure = gate.evaluate(metrics)
            if failure is not None:
                # What broke, with the value (`loss 1.334 > 0.7`), not what was asked.
                sink.note(failure)
                return failure, str(gate)
        for out in stage.products:
            if not os.path.lexists(out):  # a link is an out as it is, even to nothing
                what = "artifact" if out == stage.artifact else "out"
                message = f"the {what} {out} was not produced"
                sink.note(message)
                return message, None
        return None

    def _stage_finished(
        self,
        stage: StageConfig,
        state: StageState,
        attempt: int,
        started_at: float | None,
        result: AttemptResult,
        sink: OutputSink,
        message: str | None = None,
        failed_gate: str | None = None,
    ) -> StageFinished:
        if state is StageState.FAILED and message is not None:
            # Whatever failed it, the reason is in its log, whole, as a note of mlci's.
            text = self.masker.mask_text(message)
            if text not in self._noted.get(stage.name, ()):
                self.emit(CommandNoted(stage.name, text, self.clock()))
        event = StageFinished(
            stage=stage.name,
            state=state,
            attempt=attempt,
            exit_code=result.exit_code,
            started_at=started_at,
            ended_at=self.clock(),
            peak_rss_bytes=result.peak_rss_bytes,
            cpu_seconds=result.cpu_seconds,
            # A gate or a reason may hold a secret written into the config.
            failed_gate=None if failed_gate is None else self.masker.mask_text(failed_gate),
            message=None if message is None else self.masker.mask_text(message),
            metrics=dict(sink.metrics),
        )
        self.emit(event)
        return event

    def _executor(self, kind: str) -> Executor:
        executor = self.executors.get(kind)
        if executor is None:
            executor = self.executors[kind] = executors.create(kind, self.config)
        return executor
