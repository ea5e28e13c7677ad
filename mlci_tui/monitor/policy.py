"""What happens when a version fails its analysis: the `auto_rollback` policy.

``true`` rolls back to the last known-good version at once; ``"ask"`` records
a pending decision and alerts, for a person to confirm (`mlci rollback`) or
dismiss; ``false`` only alerts.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlci_tui import alerter
from mlci_tui.errors import MlciError
from mlci_tui.execution.command import CommandContext
from mlci_tui.monitor.analysis import Analysis, Verdict
from mlci_tui.registry.deployer import Deployer
from mlci_tui.store.records import VersionRecord


@dataclass(frozen=True)
class Response:
    rolled_back: bool
    message: str


async def guard(
    version: VersionRecord, analysis: Analysis, deployer: Deployer, context: CommandContext
) -> tuple[Verdict, Response | None]:
    """The post-deploy analysis of ``version``, just deployed, and the policy if it
    fails: what a run's monitor stage and a manual `mlci deploy` both do."""
    verdict = await analysis.post_deploy(version, context)
    if not verdict.failed:  # passed, or stopped when production moved (superseded)
        if not verdict.superseded:
            analysis.store.versions.mark_analysis_passed(version.number)
        return verdict, None
    assert verdict.finding is not None
    return verdict, await respond(version, verdict.finding, deployer, context)


async def respond(
    version: VersionRecord, finding: str, deployer: Deployer, context: CommandContext
) -> Response:
    """Apply the configured policy to ``version``, which failed with ``finding``."""
    registry = deployer.registry
    store = registry.store
    monitor = registry.config.monitor
    assert monitor is not None
    policy = monitor.auto_rollback
    failed = f"{version.name} failed its analysis: {finding}"
    store.versions.mark_analysis_failed(version.number, finding)
    if (moved := _moved_from(version, deployer)) is not None:
        # What failed is not live, and what is live is someone else's to judge.
        message = f"{failed}; not acted on: {moved} (superseded)"
        context.note(message, deployer.clock)
        return Response(False, message)
    target = registry.known_good(exclude={version.number})

    def note(text: str) -> None:
        context.note(text, deployer.clock)

    async def not_rolled_back(message: str) -> Response:
        note(message)
        await deployer.alerter.send(
            alerter.ANALYSIS_FAILED, message, version=version.number, run_id=context.run_id
        )
        return Response(False, message)

    if policy is True:
        if target is None:
            return await not_rolled_back(f"{failed}; no earlier healthy version to roll back to")
        note(f"rolling back to {target.name}")
        try:
            result = await deployer.rollback(
                target, context, reason=finding, automatic=True, only_from=version.number
            )
        except MlciError as error:
            if (moved := _moved_from(version, deployer)) is not None:
                message = f"{failed}; not acted on: {moved} (superseded)"
                note(message)
                return Response(False, message)
            return await not_rolled_back(
                f"{failed}; the rollback to {target.name} could not start: {error}"
            )
        if result.succeeded:
            return Response(True, f"{failed}; rolled back to {target.name}")
        message = f"{failed}; the rollback to {target.name} failed: {result.message}"
        note(message)
        return Response(False, message)
    if policy == "ask":
        to = f"roll back to {target.name}" if target else "no earlier healthy version"
        message = f"{failed}; {to}? (confirm: mlci rollback · dismiss: mlci alerts --dismiss)"
        note(message)
        # One decision, and one alert, per version until someone answers it.
        if not store.decisions.pending(version=version.number, limit=1):
            store.decisions.add(
                version=version.number,
                target=None if target is None else target.number,
                finding=finding,
                created_at=deployer.clock(),
            )
            await deployer.alerter.send(
                alerter.DECISION_PENDING, message, version=version.number, run_id=context.run_id
            )
        return Response(False, message)
    return await not_rolled_back(f"{failed}; auto_rollback is off")


def _moved_from(version: VersionRecord, deployer: Deployer) -> str | None:
    """How production left ``version`` (or is leaving it, by another process's
    deploy or rollback), or None while it is still ``version``'s."""
    store = deployer.registry.store
    for running in store.deployments.running():
        if running.from_version == version.number and not deployer.is_stale(running):
            return f"another process is moving production from it to v{running.to_version}"
    moved = deployer.registry.live_instead_of(version)
    return None if moved is None else f"production moved to {moved} meanwhile"
