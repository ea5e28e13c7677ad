"""Deploying a version, and rolling back, with a lock and an audit trail.

One command in `[deploy]` deploys any version: it gets the version's stored
artifact in ``MLCI_MODEL_PATH``. Only when it succeeds does the live pointer
move, atomically; a failure, a timeout or a cancel leaves production as it
was. Every attempt, refused ones included, is a row in the audit trail, and
only one deploy or rollback runs at a time across all processes.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from mlci_tui import alerter, procs
from mlci_tui.alerter import Alerter
from mlci_tui.config import Config
from mlci_tui.errors import RegistryError
from mlci_tui.events import CommandNoted, CommandOutput, Event
from mlci_tui.execution.command import CommandContext, run_command
from mlci_tui.execution.executors.base import AttemptResult, Executor
from mlci_tui.execution.output import OutputSink
from mlci_tui.masking import SecretMasker
from mlci_tui.registry.artifacts import digest
from mlci_tui.registry.audit import current_user, is_stale, succeeded_statuses
from mlci_tui.registry.model_registry import Registry
from mlci_tui.registry.pointer import Pointer, write_pointer
from mlci_tui.states import DeployKind, DeployOutcome, VersionStatus
from mlci_tui.store.deployment_request import DeploymentRequest
from mlci_tui.store.deployments import DeploymentBusy, DeploymentRefused
from mlci_tui.store.logs import LogWriter
from mlci_tui.store.paths import DIR_MODE
from mlci_tui.store.records import DeploymentRecord, VersionRecord
from mlci_tui.units import format_bytes, format_duration

MIN_FREE_BYTES = 1 << 20
"""Free space a deploy needs in the state dir first: the pointer, the records."""

_VERBS = {
    DeployKind.DEPLOY: "deploy of",
    DeployKind.ROLLBACK: "rollback to",
    DeployKind.AUTO_ROLLBACK: "automatic rollback to",
}


@dataclass(frozen=True)
class DeployResult:
    deployment: DeploymentRecord
    succeeded: bool
    message: str
    command: AttemptResult | None = None
    """How the deploy command ran (exit code, CPU time, peak memory), if it started."""


class Deployer:
    """Deploys versions of one pipeline's model."""

    def __init__(
        self,
        registry: Registry,
        *,
        executor: Executor,
        masker: SecretMasker,
        alerter: Alerter,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
        on_settled: Callable[[DeploymentRecord], None] = lambda deployment: None,
    ) -> None:
        """``on_settled`` is told of each deploy or rollback once it is recorded as
        ended (the MLflow mirror syncs then)."""
        self.registry = registry
        self.on_settled = on_settled
        self.store = registry.store
        self.config: Config = registry.config
        self.executor = executor
        self.masker = masker
        self.alerter = alerter
        self.environ = dict(os.environ if environ is None else environ)
        self.clock = clock
        self.user = current_user(self.environ)
        self.host = socket.gethostname()

    # The two operations ------------------------------------------------------

    async def deploy(
        self,
        version: VersionRecord,
        context: CommandContext,
        *,
        reason: str | None = None,
        force: bool = False,
        analysis: bool = False,
    ) -> DeployResult:
        """Deploy ``version``. Its output goes to ``context``, and to a log file of the
        deployment's own unless ``context.log_path`` says where it is recorded.

        A version that production was rolled back from, or whose deploy failed, is
        deployed again only with ``force``: what went wrong once must be meant.
        ``analysis``: a post-deploy analysis follows, so the version owes one once live."""
        live = self.registry.live()
        if not force and version.status in (VersionStatus.ROLLED_BACK, VersionStatus.FAILED):
            what = "was rolled back" if version.status is VersionStatus.ROLLED_BACK else "failed"
            why = f" ({version.description})" if version.description else ""
            raise RegistryError(
                f"{version.name} {what}{why}; to deploy it again anyway:"
                f" mlci deploy {version.name} --force"
            )
        return await self._run(DeployKind.DEPLOY, version, live, reason, context, analysis=analysis)

    async def rollback(
        self,
        target: VersionRecord | None,
        context: CommandContext,
        *,
        reason: str | None = None,
        automatic: bool = False,
        only_from: int | None = None,
    ) -> DeployResult:
        """Deploy ``target``, by default (None) the last version that was live and healthy.

        With ``only_from``, only while that version is still the live one, checked
        under the deploy lock: an analysis rolls back only the version it watched."""
        live = self.registry.live()
        if live is None:
            raise RegistryError("nothing is live, so there is nothing to roll back")
        if target is None:
            target = self.registry.known_good()
            if target is None:
                raise RegistryError(
                    f"no earlier healthy version to roll back to from {live.name}"
                    " (name one: mlci rollback VERSION)"
                )
        kind = DeployKind.AUTO_ROLLBACK if automatic else DeployKind.ROLLBACK
        return await self._run(kind, target, live, reason, context, only_from=only_from)

    # The steps ---------------------------------------------------------------

    def check_deployable(self, version: VersionRecord, live: VersionRecord | None) -> None:
        """Refuse, changing nothing, what can never be deployed (``live`` is live now)."""
        if self.config.deploy is None:
            raise RegistryError("no [deploy] table in the config: nothing knows how to deploy")
        if live is not None and live.number == version.number:
            raise RegistryError(f"{version.name} is already live")
        if version.pruned_at is not None:
            raise RegistryError(
                f"the artifact of {version.name} was pruned (keep_versions ="
                f" {self.config.registry.keep_versions}); it cannot be deployed again"
            )
        if not self.registry.artifact_path(version).exists():
            raise RegistryError(f"the artifact of {version.name} is missing from the store")

    async def _run(
        self,
        kind: DeployKind,
        version: VersionRecord,
        live: VersionRecord | None,
        reason: str | None,
        context: CommandContext,
        *,
        only_from: int | None = None,
        analysis: bool = False,
    ) -> DeployResult:
        self.check_deployable(version, live)
        deployment = self._lock(kind, version, live, reason, context.run_id, only_from)
        log: LogWriter | None = None
        log_path = context.log_path
        if log_path is None:
            log_path = self.store.deployment_log(deployment.id)
            log_path.parent.mkdir(DIR_MODE, parents=True, exist_ok=True)
            log = LogWriter(log_path)
            context = context._replace(emit=log_events(log, context.emit), log_path=log_path)
        self.store.deployments.set_log(deployment.id, str(log_path))
        command: AttemptResult | None = None
        try:
            failure = self._verify(version) or self._room()
            if failure is None:
                failure, command = await self._command(deployment, version, live, context)
        except asyncio.CancelledError:
            self._finish(deployment, version, live, "cancelled")
            raise
        finally:
            if log is not None:
                log.close()
        result = self._finish(deployment, version, live, failure, command, analysis=analysis)
        self.on_settled(result.deployment)
        await self._alert(result, version)
        return result

    def _lock(
        self,
        kind: DeployKind,
        version: VersionRecord,
        live: VersionRecord | None,
        reason: str | None,
        run_id: int | None,
        only_from: int | None = None,
    ) -> DeploymentRecord:
        request = DeploymentRequest(
            kind=kind,
            from_version=None if live is None else live.number,
            to_version=version.number,
            user=self.user,
            reason=None if reason is None else self.masker.mask_text(reason),
            run_id=run_id,
            host=self.host,
            pid=os.getpid(),
            pid_started=procs.process_started(os.getpid()),
            process_tag=procs.new_tag(),
            only_from=only_from,
        )
        try:
            return self.store.deployments.begin(
                request, started_at=self.clock(), is_stale=self.is_stale
            )
        except DeploymentRefused as refused:
            raise RegistryError(str(refused)) from None
        except DeploymentBusy as busy:
            running = busy.running
            age = format_duration(self.clock() - running.started_at)
            message = (
                f"a {_VERBS[running.kind]} v{running.to_version} is in progress"
                f" (by {running.user}, pid {running.pid} on {running.host}, started {age} ago);"
                " one deploy or rollback runs at a time"
            )
            self.store.deployments.record_refused(
                request, at=self.clock(), message=f"refused: {message}"
            )
            raise RegistryError(message) from None

    def _room(self) -> str | None:
        """Why the pointer might not be written after the command ran, or None: a
        deploy that moved serving but not the pointer is worse than none."""
        try:
            found = os.statvfs(self.store.state_dir)
        except OSError:
            return None  # not knowable here: the pointer write says, if it fails
        free = found.f_bavail * found.f_frsize
        if free >= MIN_FREE_BYTES:
            return None
        return (
            f"refused: only {format_bytes(free)} free in {self.store.state_dir};"
            f" a deploy needs {format_bytes(MIN_FREE_BYTES)} to record where production is"
        )

    def is_stale(self, deployment: DeploymentRecord) -> bool:
        return is_stale(deployment, self.config, self.clock())

    def _verify(self, version: VersionRecord) -> str | None:
        """Why the stored artifact must not be deployed (its bytes changed), or None."""
        sha256, _ = digest(self.registry.artifact_path(version))
        if sha256 != version.sha256:
            return (
                f"refused: the artifact of {version.name} was modified in the store"
                f" (sha256 {sha256[:12]}…, registered as {version.sha256[:12]}…)"
            )
        return None

    async def _command(
        self,
        deployment: DeploymentRecord,
        version: VersionRecord,
        live: VersionRecord | None,
        context: CommandContext,
    ) -> tuple[str | None, AttemptResult]:
        """Run the deploy command: why it did not succeed (None if it did), and how it ran."""
        deploy = self.config.deploy
        assert deploy is not None
        artifact = self.registry.artifact_path(version)
        verb = _VERBS[deployment.kind]
        context.note(f"{verb} {version.name} ({artifact.name})", self.clock)
        variables = {
            "MLCI_MODEL_VERSION": version.name,
            "MLCI_MODEL_PATH": str(artifact),
            "MLCI_MODEL_SHA256": version.sha256,
            "MLCI_PREVIOUS_VERSION": "" if live is None else live.name,
            "MLCI_DEPLOY_KIND": deployment.kind.value,
        }
        if context.run_id is not None:
            variables["MLCI_RUN_ID"] = str(context.run_id)
        result = await run_command(
            self.config,
            deploy,
            variables=variables,
            sink=OutputSink(context.stage, self.masker, context.emit, self.clock),
            executor=self.executor,
            environ=self.environ,
            hurry=context.hurry,
            tag=deployment.process_tag,
        )
        if result.timed_out:
            return f"the deploy command {result.error}", result
        if result.error is not None:
            return result.error, result
        if result.exit_code != 0:
            return f"the deploy command failed ({result.problem})", result
        return None, result

    def _finish(
        self,
        deployment: DeploymentRecord,
        version: VersionRecord,
        live: VersionRecord | None,
        failure: str | None,
        command: AttemptResult | None = None,
        *,
        analysis: bool = False,
    ) -> DeployResult:
        now = self.clock()
        kind = deployment.kind
        if failure is None:
            # The pointer moves first: if we crash before the database is updated,
            # recovery sees the pointer naming this deployment and completes the record.
            try:
                write_pointer(
                    self.store.state_dir,
                    Pointer(
                        version=version.number,
                        sha256=version.sha256,
                        artifact=str(self.registry.artifact_path(version)),
                        deployed_at=now,
                        deployment_id=deployment.id,
                    ),
                )
            except OSError as error:
                return self._pointer_failed(deployment, version, live, error)
            statuses = succeeded_statuses(deployment, version.name, live)
            message = _done_message(kind, version, live)
            self.store.deployments.finish(
                deployment.id,
                DeployOutcome.SUCCEEDED,
                ended_at=now,
                message=message,
                statuses=statuses,
                owes_analysis=version.number if analysis else None,
            )
            if kind is DeployKind.ROLLBACK and live is not None:
                # A rollback answers the monitor's question about the version it left:
                # yes, by whoever rolled back.
                for decision in self.store.decisions.pending(version=live.number):
                    self.store.decisions.decide(decision.id, "approved", by=self.user, when=now)
            # Any other decision, about a version production left, is nobody's to make now.
            self.store.decisions.supersede(version.number, now)
            # Which versions are live and known-good changed: older artifacts may go now.
            self.registry.prune()
        else:
            message = failure
            statuses = []
            if kind is DeployKind.DEPLOY and version.status is VersionStatus.REGISTERED:
                statuses = [(version.number, VersionStatus.FAILED, f"deploy failed: {failure}")]
            self.store.deployments.finish(
                deployment.id,
                DeployOutcome.FAILED,
                ended_at=now,
                message=self.masker.mask_text(message),
                statuses=statuses,
            )
        record = self.store.deployments.get(deployment.id)
        assert record is not None
        return DeployResult(record, failure is None, message, command)

    def _pointer_failed(
        self,
        deployment: DeploymentRecord,
        version: VersionRecord,
        live: VersionRecord | None,
        error: OSError,
    ) -> DeployResult:
        """The command ran, the pointer did not move: say so, and what to do."""
        was = live.name if live is not None else "nothing"
        message = (
            f"the deploy command ran, but the live pointer could not be written"
            f" ({error.strerror or error}): serving may be on {version.name} while the"
            f" store still says {was}; free space in {self.store.state_dir}, then run"
            f" `mlci deploy {version.name} --force` (or `mlci rollback {was}`)"
        )
        self.store.deployments.finish(
            deployment.id, DeployOutcome.POINTER_FAILED, ended_at=self.clock(), message=message
        )
        record = self.store.deployments.get(deployment.id)
        assert record is not None
        return DeployResult(record, False, message, None)

    async def _alert(self, result: DeployResult, version: VersionRecord) -> None:
        kind = result.deployment.kind
        if not result.succeeded:
            verb = _VERBS[kind]
            await self.alerter.send(
                alerter.DEPLOY_FAILED,
                f"{verb} {version.name} failed: {result.message}",
                version=version.number,
                run_id=result.deployment.run_id,
            )
        elif kind is not DeployKind.DEPLOY:
            reason = result.deployment.reason
            await self.alerter.send(
                alerter.AUTO_ROLLBACK if kind is DeployKind.AUTO_ROLLBACK else alerter.ROLLBACK,
                # The message is `_done_message`'s: "rolled back from vA to vB".
                result.message + (f": {reason}" if reason else ""),
                version=version.number,
                run_id=result.deployment.run_id,
            )


def _done_message(kind: DeployKind, version: VersionRecord, live: VersionRecord | None) -> str:
    if kind is DeployKind.DEPLOY:
        return f"{version.name} is live"
    return f"rolled back from {live.name if live else '-'} to {version.name}"


def log_events(log: LogWriter, forward: Callable[[Event], None]) -> Callable[[Event], None]:
    """An event subscriber that writes a deployment's output to its own log file,
    then passes the event on."""

    def write(event: Event) -> None:
        if isinstance(event, (CommandOutput, CommandNoted)):
            log.record(event)
        forward(event)

    return write
