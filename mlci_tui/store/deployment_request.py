"""What a deploy or rollback asks of the deploy lock and the audit trail."""

from __future__ import annotations

from typing import NamedTuple

from mlci_tui.states import DeployKind


class DeploymentRequest(NamedTuple):
    """A deploy or rollback as asked for, and by whom: the audit trail's row, whether
    the deploy lock lets it run (`DeploymentsTable.begin`) or refuses it
    (`DeploymentsTable.record_refused`)."""

    kind: DeployKind
    from_version: int | None
    """The live version when it was asked for, if any."""
    to_version: int
    user: str | None
    reason: str | None
    run_id: int | None
    """The run that deploys, if a run does."""
    host: str
    pid: int
    pid_started: float | None
    """When ``pid`` started: with it, a pid reused by another process is not taken for it."""
    process_tag: str
    """The tag of the deploy command's processes, so that recovery can stop them."""
    only_from: int | None = None
    """Only while this version is live, checked under the lock: an automatic rollback
    is for the version it watched."""
