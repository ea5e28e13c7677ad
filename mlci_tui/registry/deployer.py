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
from pathlib import Path

from mlci_tui import procs
from mlci_tui.config import Config
from mlci_tui.masking import SecretMasker
from mlci_tui.monitor import alerts
from mlci_tui.monitor.alerts import Alerter
from mlci_tui.pipeline.events import Event, StageNoted, StageOutput
from mlci_tui.pipeline.executors.base import AttemptResult, StageExecutor
from mlci_tui.pipeline.recorder import log_record
from mlci_tui.registry.artifacts import digest
from mlci_tui.registry.audit import current_user
from mlci_tui.registry.model_command import run_model_command
from mlci_tui.registry.pointer import Pointer, link_artifact, read_pointer, write_pointer
from mlci_tui.registry.versions import Registry, RegistryError
from mlci_tui.states import DeployKind, DeployOutcome, VersionStatus
from mlci_tui.store.logs import LogWriter
from mlci_tui.store.records import DeploymentRecord, VersionRecord
from mlci_tui.store.registry_tables import DeploymentBusy
from mlci_tui.units import format_duration

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
    """How the deploy command ran (exit code, CPU time, peak memory), if it ran."""


class Deployer:
    """Deploys versions of one pipeline's model."""

    def __init__(
        self,
        registry: Registry,
        *,
        executor: StageExecutor,
        masker: SecretMasker,
        alerter: Alerter,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry = registry
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
        *,
        reason: str | None = None,
        run_id: int | None = None,
        emit: Callable[[Event], None] | None = None,
        log_path: Path | None = None,
        hurry: asyncio.Event | None = None,
        stage: str = "deploy",
    ) -> DeployResult:
        """Deploy ``version``. Output goes to ``emit`` (if given), as the output of
        ``stage``, and to a log file of the deployment's own, unless ``log_path``
        names where ``emit`` records it."""
        live = self.registry.live()
        return await self._run(
            DeployKind.DEPLOY, version, live, reason, run_id, emit, log_path, hurry, stage
        )

    async def rollback(
        self,
        target: VersionRecord | None = None,
        *,
        reason: str | None = None,
        automatic: bool = False,
        run_id: int | None = None,
        emit: Callable[[Event], None] | None = None,
        log_path: Path | None = None,
        hurry: asyncio.Event | None = None,
        stage: str = "rollback",
    ) -> DeployResult:
        """Deploy ``target``, by default the last version that was live and healthy."""
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
        return await self._run(kind, target, live, reason, run_id, emit, log_path, hurry, stage)

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
        run_id: int | None,
        emit: Callable[[Event], None] | None,
        log_path: Path | None,
        hurry: asyncio.Event | None,
        stage: str,
    ) -> DeployResult:
        self.check_deployable(version, live)
        deployment = self._lock(kind, version, live, reason, run_id)
        log: LogWriter | None = None
        if log_path is None:
            log_path = self.store.deployment_log(deployment.id)
            log_path.parent.mkdir(parents=True, exist_ok=True)
            log = LogWriter(log_path)
            emit = _log_events(log, emit)
        assert emit is not None
        self.store.set_deployment_log(deployment.id, str(log_path))
        command: AttemptResult | None = None
        try:
            failure = self._verify(version)
            if failure is None:
                failure, command = await self._command(
                    deployment, version, live, emit, hurry, stage
                )
        except asyncio.CancelledError:
            self._finish(deployment, version, live, "cancelled")
            raise
        finally:
            if log is not None:
                log.close()
        result = self._finish(deployment, version, live, failure, command)
        await self._alert(result, version)
        return result

    def _lock(
        self,
        kind: DeployKind,
        version: VersionRecord,
        live: VersionRecord | None,
        reason: str | None,
        run_id: int | None,
    ) -> DeploymentRecord:
        try:
            return self.store.begin_deployment(
                kind=kind,
                from_version=None if live is None else live.number,
                to_version=version.number,
                user=self.user,
                reason=None if reason is None else self.masker.mask_text(reason),
                run_id=run_id,
                started_at=self.clock(),
                pid=os.getpid(),
                pid_started=procs.process_started(os.getpid()),
                host=self.host,
                process_tag=procs.new_tag(),
                is_stale=self.is_stale,
            )
        except DeploymentBusy as busy:
            running = busy.running
            age = format_duration(self.clock() - running.started_at)
            raise RegistryError(
                f"a {_VERBS[running.kind]} v{running.to_version} is in progress"
                f" (by {running.user}, pid {running.pid} on {running.host}, started {age} ago);"
                " one deploy or rollback runs at a time"
            ) from None

    def is_stale(self, deployment: DeploymentRecord) -> bool:
        return is_stale(deployment, self.registry, self.clock())

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
        emit: Callable[[Event], None],
        hurry: asyncio.Event | None,
        stage: str,
    ) -> tuple[str | None, AttemptResult | None]:
        """Run the deploy command: why it did not succeed (None if it did), and how it
        ran (None if it timed out)."""
        deploy = self.config.deploy
        assert deploy is not None
        artifact = self.registry.artifact_path(version)
        verb = _VERBS[deployment.kind]
        emit(StageNoted(stage, f"{verb} {version.name} ({artifact.name})", self.clock()))
        result, _ = await run_model_command(
            self.config,
            deploy,
            stage=stage,
            variables={
                "MLCI_MODEL_VERSION": version.name,
                "MLCI_MODEL_PATH": str(artifact),
                "MLCI_MODEL_SHA256": version.sha256,
                "MLCI_PREVIOUS_VERSION": "" if live is None else live.name,
                "MLCI_DEPLOY_KIND": deployment.kind.value,
                "MLCI_STATE_DIR": str(self.store.state_dir),
            },
            tag=deployment.process_tag or "",
            environ=self.environ,
            executor=self.executor,
            masker=self.masker,
            emit=emit,
            clock=self.clock,
            hurry=hurry,
        )
        if result is None:
            return f"the deploy command timed out after {format_duration(deploy.timeout)}", None
        if result.error is not None:
            return result.error, result
        if result.exit_code != 0:
            return f"the deploy command failed ({procs.describe_exit(result.exit_code)})", result
        return None, result

    def _finish(
        self,
        deployment: DeploymentRecord,
        version: VersionRecord,
        live: VersionRecord | None,
        failure: str | None,
        command: AttemptResult | None = None,
    ) -> DeployResult:
        now = self.clock()
        kind = deployment.kind
        if failure is None:
            # The pointer moves first: if we crash before the database is updated,
            # recovery sees the pointer naming this deployment and completes the record.
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
            statuses = succeeded_statuses(deployment, version.name, live)
            message = _done_message(kind, version, live)
            self.store.finish_deployment(
                deployment.id,
                DeployOutcome.SUCCEEDED,
                ended_at=now,
                message=message,
                statuses=statuses,
            )
            # Which versions are live and known-good changed: older artifacts may go now.
            self.registry.prune()
        else:
            message = failure
            statuses = []
            if kind is DeployKind.DEPLOY and version.status is VersionStatus.REGISTERED:
                statuses = [(version.number, VersionStatus.FAILED, f"deploy failed: {failure}")]
            self.store.finish_deployment(
                deployment.id,
                DeployOutcome.FAILED,
                ended_at=now,
                message=self.masker.mask_text(message),
                statuses=statuses,
            )
        record = self.store.deployment(deployment.id)
        assert record is not None
        return DeployResult(record, failure is None, message, command)

    async def _alert(self, result: DeployResult, version: VersionRecord) -> None:
        kind = result.deployment.kind
        if not result.succeeded:
            verb = _VERBS[kind]
            await self.alerter.send(
                alerts.DEPLOY_FAILED,
                f"{verb} {version.name} failed: {result.message}",
                version=version.number,
                run_id=result.deployment.run_id,
            )
        elif kind is not DeployKind.DEPLOY:
            reason = result.deployment.reason
            await self.alerter.send(
                alerts.AUTO_ROLLBACK if kind is DeployKind.AUTO_ROLLBACK else alerts.ROLLBACK,
                # The message is `_done_message`'s: "rolled back from vA to vB".
                result.message + (f": {reason}" if reason else ""),
                version=version.number,
                run_id=result.deployment.run_id,
            )


def succeeded_statuses(
    deployment: DeploymentRecord, name: str, live: VersionRecord | None
) -> list[tuple[int, VersionStatus, str | None]]:
    """How version statuses change when ``deployment`` succeeds."""
    kind = deployment.kind
    reason = f": {deployment.reason}" if deployment.reason else ""
    statuses: list[tuple[int, VersionStatus, str | None]] = []
    if live is not None:
        if kind is DeployKind.DEPLOY:
            statuses.append((live.number, VersionStatus.PREVIOUS, f"superseded by {name}"))
        elif kind is DeployKind.ROLLBACK:
            statuses.append(
                (live.number, VersionStatus.ROLLED_BACK, f"rolled back to {name}{reason}")
            )
        else:
            statuses.append((live.number, VersionStatus.ROLLED_BACK, f"auto-rolled back{reason}"))
    if kind is DeployKind.DEPLOY:
        description = "deployed" + reason
    else:
        automatic = " (automatic)" if kind is DeployKind.AUTO_ROLLBACK else ""
        description = f"rolled back from {live.name if live else '-'}{automatic}"
    statuses.append((deployment.to_version, VersionStatus.LIVE, description))
    return statuses


def _done_message(kind: DeployKind, version: VersionRecord, live: VersionRecord | None) -> str:
    if kind is DeployKind.DEPLOY:
        return f"{version.name} is live"
    return f"rolled back from {live.name if live else '-'} to {version.name}"


def _log_events(log: LogWriter, forward: Callable[[Event], None] | None) -> Callable[[Event], None]:
    """An event subscriber that writes a deployment's output to its own log file,
    then passes the event on."""

    def write(event: Event) -> None:
        if isinstance(event, (StageOutput, StageNoted)):
            log.write(log_record(event))
        if forward is not None:
            forward(event)

    return write


def is_stale(deployment: DeploymentRecord, registry: Registry, now: float) -> bool:
    """Whether a running deployment's process is gone, so its lock may be taken."""
    if deployment.host == socket.gethostname():
        return deployment.pid is None or not procs.is_alive(deployment.pid, deployment.pid_started)
    # Another machine's process cannot be checked; trust it until its timeout passed.
    deploy = registry.config.deploy
    timeout = (deploy.timeout if deploy else None) or 3600.0
    return now - deployment.started_at > timeout + 60


def recover_deployments(registry: Registry, now: float | None = None) -> list[int]:
    """Settle deployments whose process died: completed if the pointer had moved,
    else interrupted — never left holding the lock. Their leftover processes are
    stopped. Returns the ids settled."""
    store = registry.store
    now = time.time() if now is None else now
    settled = []
    pointer = read_pointer(store.state_dir)
    for deployment in store.running_deployments():
        if not is_stale(deployment, registry, now):
            continue
        if deployment.process_tag:
            procs.kill_tagged({deployment.process_tag}, (), grace=2.0)
        if pointer is not None and pointer.deployment_id == deployment.id:
            version = store.version(deployment.to_version)
            live = (
                None if deployment.from_version is None else store.version(deployment.from_version)
            )
            name = version.name if version else f"v{deployment.to_version}"
            store.finish_deployment(
                deployment.id,
                DeployOutcome.SUCCEEDED,
                ended_at=now,
                message="completed; recorded after the deploying process stopped",
                statuses=succeeded_statuses(deployment, name, live),
            )
            link_artifact(store.state_dir, Path(pointer.artifact))
        else:
            store.finish_deployment(
                deployment.id,
                DeployOutcome.INTERRUPTED,
                ended_at=now,
                message="the deploying process stopped before it finished;"
                " the live version did not change",
            )
        settled.append(deployment.id)
    return settled
