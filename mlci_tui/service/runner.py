"""A runner: one process that executes one run and records it in the store.

`mlci run` is a runner in the foreground; the dashboard starts one detached.
Either way the store is where the run lives, so closing a terminal never
loses it: SIGHUP is ignored, SIGINT and SIGTERM cancel the run cleanly
(a second one stops stages without waiting for their grace period).

A full run of a pipeline with an artifact registers a model version when it
passes. With `[deploy]` it then has two more stages: ``deploy`` deploys the
new version, and ``monitor`` (with `[monitor]`) analyses it and applies the
rollback policy if it fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from functools import cached_property
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from mlci_tui import procs
from mlci_tui.config import BUILTIN_STAGES, Config, StageConfig, with_masked_params
from mlci_tui.errors import ExitCode, MlciError, RegistryError, StoreError
from mlci_tui.events import CommandNoted, RunNoted, StageFinished, Subscriber
from mlci_tui.execution.command import CommandContext
from mlci_tui.execution.executors.base import AttemptResult
from mlci_tui.execution.executors.local import (
    LocalExecutor,
    become_subreaper,
    is_subreaper,
    stop_being_subreaper,
)
from mlci_tui.masking import SecretMasker
from mlci_tui.metric_keys import MetricKey
from mlci_tui.pipeline.engine import ActionContext, Engine, RunResult
from mlci_tui.pipeline.recorder import StoreRecorder, StoreWriter
from mlci_tui.service.outs_lock import claim_outs, lock_outs
from mlci_tui.service.recovery import recover
from mlci_tui.states import DeployKind, RunState, StageState, VersionStatus
from mlci_tui.store import Store
from mlci_tui.store.paths import write_private

if TYPE_CHECKING:
    from mlci_tui.alerter import Alerter
    from mlci_tui.mirror.trigger import Mirroring
    from mlci_tui.pipeline.stage_cache import StageCache
    from mlci_tui.registry.deployer import Deployer
    from mlci_tui.registry.model_registry import Registry
    from mlci_tui.store.records import DeploymentRecord, RunRecord, VersionRecord

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
DEPLOY_STAGE, MONITOR_STAGE = BUILTIN_STAGES


class Runner:
    """One run, created in the store by `Runner.start`; `run()` executes it and returns
    how it ended."""

    # Set by the phases of `start`, in this order.
    store: Store
    executor: LocalExecutor
    _outs_lock: int | None
    run_id: int
    params_file: Path
    cache: StageCache | None
    engine: Engine
    writer: StoreWriter
    recorder: StoreRecorder

    def __init__(
        self,
        config: Config,
        *,
        targets: Collection[str],
        environ: Mapping[str, str],
        force: bool | Collection[str],
        redeploy: bool,
        process: contextlib.ExitStack,
        experiment: int | None = None,
    ) -> None:
        """What the run will be, without touching anything: `start` makes one."""
        self.experiment = experiment
        """The experiment this is the run of: its stages only, never a deploy, a
        version or an alert (`service.experiment_queue`)."""
        self.full = not targets
        self.redeploy = redeploy
        self.force = force
        self.environ = environ
        self.masker = SecretMasker(config.secret_values(environ))
        # A param is recorded (the store, the cache, $MLCI_PARAMS_FILE): never a secret.
        self.config = with_masked_params(config, self.masker)
        self.stages = self.config.selected(targets)
        self.stages.update(self._builtin_stages())
        self._process = process
        """Undoes what belongs to this process for as long as the runner lives (the
        subreaper): closed when `start`'s block ends."""
        self._recording = contextlib.ExitStack()
        """Undoes what recording the run holds (the store, the outs lock, the run row):
        closed by `run()` as soon as the run is recorded, before it is mirrored, or
        when `start`'s block ends."""
        self._started = False
        self.version: VersionRecord | None = None
        self.new_version = False
        """Whether the run registered a new version (not one whose artifact was stored).
        """
        self.record: RunRecord | None = None
        """The run as the store has it once it ended, for the summary."""
        self.mirroring: Mirroring | None = None
        self.mirror_text: str | None = None
        """What mirroring the run into MLflow did, or why it could not."""
        self._git: list[tuple[str | None, bool | None]] = []

    @classmethod
    @contextlib.contextmanager
    def start(
        cls,
        config: Config,
        *,
        targets: Collection[str] = (),
        environ: Mapping[str, str] | None = None,
        force: bool | Collection[str] = False,
        redeploy: bool = False,
        experiment: int | None = None,
    ) -> Iterator[Runner]:
        """The run, created in the store, for the block to execute with `run()`.

        ``force``: run every stage (True) or these, whatever the cache holds.
        ``redeploy``: deploy the version the run built even when an older version
        already had its artifact. ``experiment``: the run is that experiment's.

        Each phase registers its own undo as it succeeds: when a later one fails, or
        the block raises, nothing is left behind — no store connection, outs lock,
        subreaper, half-written file, or run still ``running``.
        """
        with contextlib.ExitStack() as process:
            runner = cls(
                config,
                targets=targets,
                environ=os.environ if environ is None else environ,
                force=force,
                redeploy=redeploy,
                process=process,
                experiment=experiment,
            )
            process.push(runner._recording)
            runner._take_signals()
            runner._open_store()
            runner._recover()
            runner._become_subreaper()
            runner._lock_outs()
            runner._create_run()
            runner._write_params()
            runner._open_cache()
            runner._make_engine()
            runner._start_recording()
            if runner.config.mlflow is not None and experiment is None:
                runner._start_mirroring()
            runner._started = True
            yield runner

    # The phases of `start`.

    def _take_signals(self) -> None:
        """Until the engine's own handlers take over, SIGTERM cancels as Ctrl-C does and
        a hang-up is let pass: a signal in the instant after the run row is made ends
        it ``cancelled`` (`_settle_run`), not ``running`` until the next command's
        recovery finds its runner gone. Python handlers, not SIG_IGN, so the stages'
        processes start with the default dispositions."""
        if threading.current_thread() is not threading.main_thread():
            return  # only the main thread may set handlers; nothing else runs `mlci run`
        for signum, handler in (
            (signal.SIGTERM, signal.default_int_handler),
            (signal.SIGHUP, _let_pass),
        ):
            before = signal.getsignal(signum)
            signal.signal(signum, handler)
            if before is not None:  # None: set outside Python, cannot be put back
                self._process.callback(signal.signal, signum, before)

    def _open_store(self) -> None:
        self.store = Store.open(self.config.pipeline.state_dir)
        self._recording.callback(self.store.close)
        # The registry's own connection, if the run came to make one.
        self._recording.callback(self._close_registry)

    def _recover(self) -> None:
        """What a dead runner or deployer left is settled before this run takes over;
        a store that cannot be written now fails when the run is created."""
        recover(self.store, self.config)

    def _become_subreaper(self) -> None:
        """Orphans of the run's commands become this process's children, to be stopped;
        a process that was no subreaper before is none after."""
        if not is_subreaper():
            self._process.callback(stop_being_subreaper)
        self.executor = LocalExecutor(subreaper=become_subreaper())

    def _lock_outs(self) -> None:
        """Outs are removed before their stage runs: two runs in one work tree would
        pull each other's outs away, and cache what neither made alone."""
        if any(stage.products for stage in self.stages.values()):
            self._outs_lock = lock_outs(self.config)
            self._recording.callback(os.close, self._outs_lock)
        else:
            self._outs_lock = None

    def _create_run(self) -> None:
        config = self.config
        # The row and the undo that settles it, as one step no signal falls between:
        # one that comes meanwhile is delivered as the block ends (`_take_signals`).
        held = signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED_SIGNALS)
        try:
            self.run_id = self.store.runs.create(
                config.pipeline.name,
                [(name, stage.needs, stage.retries + 1) for name, stage in self.stages.items()],
                started_at=time.time(),
                pid=os.getpid(),
                pid_started=procs.process_started(os.getpid()),
                host=socket.gethostname(),
                config_path=str(config.path),
                params=config.params,
                experiment=self.experiment,
            )
        except OSError as error:  # its directory: the row was not kept either
            raise StoreError(
                f"{error.filename}: cannot make the run's directory: {error.strerror}"
            ) from None
        else:
            self._recording.push(self._settle_run)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
        if self._outs_lock is not None:
            claim_outs(self._outs_lock, self.run_id, config)

    def _settle_run(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """A run that did not end (a later phase failed, the block raised, or `run()`
        was never called) is interrupted now, saying why, rather than left ``running``
        until this process is gone and the next command's recovery finds it."""
        try:
            run = self.store.runs.get(self.run_id)
            if run is None or run.state.finished:
                return
            now = time.time()
            if isinstance(error, KeyboardInterrupt):  # Ctrl-C: as a run cancelled later is
                self.store.runs.close_stages(self.run_id, StageState.CANCELLED, "cancelled", now)
                self.store.runs.finish(
                    self.run_id,
                    RunState.CANCELLED,
                    exit_code=ExitCode.CANCELLED,
                    ended_at=now,
                    only_if=RunState.RUNNING,
                )
                return
            why = "" if error is None else f": {str(error) or type(error).__name__}"
            why = self.masker.mask_text(why)  # an error may quote what a secret is in
            if self._started:
                message = f"the runner stopped without finishing the run{why}"
            else:
                message = f"the run could not start{why}"
            self.store.runs.close_stages(self.run_id, StageState.CANCELLED, message, now)
            self.store.runs.finish(
                self.run_id,
                RunState.INTERRUPTED,
                exit_code=None,
                ended_at=now,
                message=message,
                only_if=RunState.RUNNING,
            )
        except StoreError:
            pass  # what failed may be the store itself: recovery marks it later

    def _write_params(self) -> None:
        """The run's params as JSON, for ``$MLCI_PARAMS_FILE``; never left half-written."""
        self.params_file = self.store.params_path(self.run_id)
        text = json.dumps(dict(self.config.params), indent=2, sort_keys=True) + "\n"
        try:
            write_private(self.params_file, text)
        except OSError as error:
            with contextlib.suppress(OSError):
                self.params_file.unlink()
            raise StoreError(
                f"{self.params_file}: cannot write the run's params: {error.strerror}"
            ) from None

    def _open_cache(self) -> None:
        """Without deps anywhere nothing can be cached: no hashing, nor its imports, then."""
        self.cache = None
        if any(stage.cacheable for stage in self.stages.values()):
            from mlci_tui.pipeline.stage_cache import StageCache

            self.cache = StageCache(self.config, masker=self.masker, force=self.force)
            self._recording.callback(self.cache.close)

    def _make_engine(self) -> None:
        self.engine = Engine(
            self.config,
            stages=self.stages,
            actions={DEPLOY_STAGE: self._deploy, MONITOR_STAGE: self._monitor},
            masker=self.masker,
            executor=self.executor,
            metrics_path=lambda stage: self.store.metrics_path(self.run_id, stage),
            run_id=self.run_id,
            environ=self.environ,
            on_pass=self._register_passed,
            cache=self.cache,
            params_file=self.params_file,
        )

    def _start_recording(self) -> None:
        self.writer = StoreWriter(self.store)
        self._recording.callback(self.writer.close)
        self.recorder = StoreRecorder(self.store, self.writer, self.run_id)
        self._recording.callback(self.recorder.close)
        self.engine.subscribe(self.recorder)

    def _start_mirroring(self) -> None:
        """MLflow shows a run's commit: found while the stages run, not before them."""
        import threading

        from mlci_tui.mirror.trigger import Mirroring
        from mlci_tui.registry.model_registry import git_state

        self._git_thread = threading.Thread(
            target=lambda: self._git.append(git_state(self.config.root)), daemon=True
        )
        self._git_thread.start()
        self._recording.callback(self._git_thread.join)
        self.mirroring = Mirroring(
            self.config,
            executor=self.executor,
            masker=self.masker,
            environ=self.environ,
            report=lambda text: self.engine.emit(RunNoted(text, time.time())),
        )

    # The registry's parts are made when first needed: most runs of a pipeline
    # without [deploy] never need them, and their imports cost start-up time.

    @cached_property
    def registry(self) -> Registry:
        from mlci_tui.registry.model_registry import Registry

        # The recorder writes from its own thread; the registry gets its own connection.
        return Registry(Store.open(self.config.pipeline.state_dir), self.config)

    @cached_property
    def alerter(self) -> Alerter:
        from mlci_tui.alerter import Alerter

        return Alerter(
            self.registry.store,
            self.config,
            self.masker,
            executor=self.executor,
            environ=self.environ,
        )

    @cached_property
    def deployer(self) -> Deployer:
        from mlci_tui.registry.deployer import Deployer

        return Deployer(
            self.registry,
            executor=self.executor,
            masker=self.masker,
            alerter=self.alerter,
            environ=self.environ,
            on_settled=self._settled,
        )

    def _settled(self, deployment: DeploymentRecord) -> None:
        """A rollback during the run moves MLflow's alias at once; the run's own
        deploy is mirrored with the run, once it ends."""
        if self.mirroring is not None and deployment.kind is not DeployKind.DEPLOY:
            self.mirroring.kick()

    def _builtin_stages(self) -> dict[str, StageConfig]:
        """``deploy`` after every stage, then ``monitor``, when configured for a full run:
        the builtin edges of `Config.edges`, which the dashboard and `mlci dag` draw."""
        if not self.full or self.experiment is not None:
            return {}
        return {
            name: StageConfig(
                name=name,
                command=f"(mlci {name})",
                cwd=self.config.root,
                needs=tuple(edge.source for edge in edges),
                executor="local",
            )
            for name, edges in self.config.edges_into().items()
            if name in BUILTIN_STAGES
        }

    def subscribe(self, subscriber: Subscriber) -> None:
        self.engine.subscribe(subscriber)

    def run(self) -> RunResult:
        """Execute the run to its end; blocking. Raises `StoreError` if it could not be
        recorded (the store then shows it interrupted, never half-finished as passed)."""
        # Once recorded, the store and the outs lock are let go: mirroring is not the run.
        with self._recording:
            try:
                result = asyncio.run(self._main())
            finally:
                self.recorder.close()
                self.writer.close()
                if self.mirroring is not None:
                    self._git_thread.join()
                    self.store.runs.set_git(self.run_id, *self._git[0])
                self.record = self.store.runs.get(self.run_id)
                if self.version is not None:
                    # As it ended: deployed, rolled back, or its deploy failed.
                    self.version = self.store.versions.get(self.version.number) or self.version
        if self.mirroring is not None:
            self.mirror_text = self._mirror()
        return result

    def _close_registry(self) -> None:
        if "registry" in self.__dict__:
            self.registry.store.close()

    def _mirror(self) -> str:
        """The run, now recorded as ended, into MLflow: bounded, and never its outcome."""
        assert self.mirroring is not None
        try:
            return asyncio.run(self.mirroring.sync())
        except KeyboardInterrupt:
            return "mlflow: sync cancelled; `mlci mlflow sync` sends the run later"

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

        with _handling(loop, on_signal):
            try:
                result = await self.engine.run()
                await self._after(result)
                if self.mirroring is not None:
                    await self.mirroring.settle()
                return result
            finally:
                self.executor.stop_orphans(self.config.pipeline.kill_grace)

    def _register_passed(self, finished: Mapping[str, StageFinished]) -> str | None:
        """Register the version of a passing run without [deploy]; why it could not be."""
        if self.version is not None or not self._registers():
            return None
        if (problem := self._register_or_why(finished)) is not None:
            return f"failed: {problem}"
        assert self.version is not None
        self.engine.emit(RunNoted(self._registered_text(), time.time()))
        return None

    async def _after(self, result: RunResult) -> None:
        """Alert on failure (an experiment's is no news)."""
        if result.state is RunState.FAILED and self.experiment is None:
            from mlci_tui import alerter

            await self.alerter.send(
                alerter.RUN_FAILED,
                f"{self.config.pipeline.name} run {self.run_id} {result.message or 'failed'}",
                run_id=self.run_id,
            )

    def _registers(self) -> bool:
        return self.full and self.experiment is None and self.config.artifact_stage is not None

    def _register_or_why(self, finished: Mapping[str, StageFinished]) -> str | None:
        """Register the run's version as `self.version`; why it could not be, or None."""
        try:
            self.version = self._register(finished)
        except (OSError, MlciError) as error:
            return f"its artifact could not be registered: {error}"
        return None

    def _register(self, finished: Mapping[str, StageFinished]) -> VersionRecord:
        """Register the run's artifact, with the metrics of its finished stages."""
        metrics = {
            MetricKey(name, metric): value
            for name in self.config.stages
            if name in finished
            for metric, value in finished[name].metrics.items()
        }
        version, self.new_version = self.registry.register(self.run_id, metrics, self.config.params)
        return version

    def version_summary(self) -> str:
        """What became of the version this run registered, for the run's summary."""
        assert self.version is not None
        version = self.version
        said = {
            VersionStatus.LIVE: "deployed: it is live",
            VersionStatus.FAILED: "its deploy failed; the live version did not change",
            VersionStatus.ROLLED_BACK: "deployed, then rolled back",
            VersionStatus.REGISTERED: "not deployed",
        }.get(version.status, version.status.text)
        if not self.new_version:
            if version.status is VersionStatus.LIVE:
                return f"artifact unchanged: {version.name} is live"
            return (
                f"artifact unchanged: same as {version.name} ({version.status.text}), not deployed"
            )
        return f"version {version.name} registered (sha256 {version.sha256[:12]}…), {said}"

    def _registered_text(self) -> str:
        version = self.version
        assert version is not None
        if not self.new_version:
            return f"artifact unchanged: same as {version.name} (sha256 {version.sha256[:12]})"
        return f"registered {version.name} (sha256 {version.sha256[:12]}, {version.artifact_name})"

    def _unchanged(self) -> AttemptResult | None:
        """For a run whose artifact an earlier version has: the deploy stage's result
        when nothing is to be deployed (None: deploy it)."""
        version = self.version
        assert version is not None
        from mlci_tui.registry.model_registry import deploys_unchanged, unchanged_text

        live = self.registry.live()
        if deploys_unchanged(version, live, redeploy=self.redeploy):
            return None
        text = unchanged_text(version, live)
        if live is not None and live.number == version.number:
            return AttemptResult(0, cached=text, cached_from=(version.run_id, DEPLOY_STAGE))
        return AttemptResult(0, cached=text)

    def _context(self, context: ActionContext, stage: str) -> CommandContext:
        """Where a built-in stage's commands report: the stage's own log in this run."""
        return CommandContext(
            context.emit,
            stage,
            run_id=self.run_id,
            hurry=context.hurry,
            log_path=self.store.log_path(self.run_id, stage),
        )

    async def _deploy(self, context: ActionContext) -> AttemptResult:
        # A deploy that cannot happen (no artifact, another deploy holds the lock)
        # fails this stage: the run ends with its summary, its alert and the row.
        if (problem := self._register_or_why(context.finished)) is not None:
            return AttemptResult(None, error=problem)
        assert self.version is not None
        context.emit(CommandNoted(DEPLOY_STAGE, self._registered_text(), time.time()))
        if not self.new_version and (unchanged := self._unchanged()) is not None:
            return unchanged
        try:
            result = await self.deployer.deploy(
                self.version,
                self._context(context, DEPLOY_STAGE),
                reason=f"run {self.run_id}",
                analysis=self.config.monitor is not None,
            )
        except RegistryError as error:
            return AttemptResult(None, error=f"deploy refused: {error}")
        except StoreError as error:
            # Locked past the busy timeout, or full: the deploy did not start or finish.
            return AttemptResult(None, error=f"deploy failed: {error}")
        command = result.command or AttemptResult(None)
        if result.succeeded:
            context.emit(CommandNoted(DEPLOY_STAGE, result.message, time.time()))
        return AttemptResult(
            command.exit_code,
            error=None if result.succeeded else result.message,
            peak_rss_bytes=command.peak_rss_bytes,
            cpu_seconds=command.cpu_seconds,
        )

    async def _monitor(self, context: ActionContext) -> AttemptResult:
        from mlci_tui.monitor.analysis import Analysis
        from mlci_tui.monitor.policy import guard
        from mlci_tui.registry.model_registry import analysis_cut_short, cut_short_text

        assert self.version is not None
        version = self.version
        deployed = context.finished.get(DEPLOY_STAGE)
        if deployed is not None and deployed.state is StageState.CACHED:
            # Nothing new is live; what is live may still owe the analysis a crash cut short.
            live = self.registry.live()
            owed = analysis_cut_short(self.registry.store, self.config, live, time.time())
            if live is None or owed is None:
                return AttemptResult(
                    0,
                    cached="nothing new was deployed",
                    cached_from=(self.version.run_id, MONITOR_STAGE),
                )
            context.emit(CommandNoted(MONITOR_STAGE, cut_short_text(live, owed), time.time()))
            version = live
        monitor = self._context(context, MONITOR_STAGE)
        analysis = Analysis(
            self.registry, executor=self.executor, masker=self.masker, environ=self.environ
        )
        verdict, response = await guard(version, analysis, self.deployer, monitor)
        peak, cpu = verdict.peak_rss_bytes, verdict.cpu_seconds
        if response is None:
            return AttemptResult(0, peak_rss_bytes=peak, cpu_seconds=cpu)
        if response.rolled_back:
            context.mark_run(RunState.ROLLED_BACK, response.message)
        return AttemptResult(None, error=response.message, peak_rss_bytes=peak, cpu_seconds=cpu)


def _let_pass(signum: int, frame: object) -> None:
    """A hang-up while the run starts: it goes on, as it does once running."""


@contextlib.contextmanager
def _handling(loop: asyncio.AbstractEventLoop, on_signal: Callable[[int], None]) -> Iterator[None]:
    """SIGINT and SIGTERM cancel the run while inside; the handlers this process had
    before are its handlers again after."""
    before = {signum: signal.getsignal(signum) for signum in HANDLED_SIGNALS}
    try:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, on_signal, signum)
        # A lost terminal does not stop the run. Caught rather than ignored, since
        # an ignored signal would stay ignored in every stage's processes too.
        loop.add_signal_handler(signal.SIGHUP, lambda: None)
        yield
    finally:
        for signum, handler in before.items():
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(signum)
            if handler is not None:  # None: set outside Python, cannot be put back
                signal.signal(signum, handler)
