"""The audit trail's rules: who did it, whether a running deploy's process is
gone, and how a deploy that succeeded changes the versions' statuses.

A module of its own, without the deployer's imports, so that recovery and a
command that only answers a decision (`mlci alerts --dismiss`) stay quick to
start.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Mapping

from mlci_tui import procs
from mlci_tui.config import Config
from mlci_tui.states import DeployKind, VersionStatus
from mlci_tui.store.records import DeploymentRecord, VersionRecord
from mlci_tui.textsafe import visible_text

STALE_ELSEWHERE_S = 3600.0
"""How long a deploy of another host, whose process cannot be checked, may run
(when `[deploy] timeout` does not say) before its lock is taken."""
ACTOR_MAX = 64
"""Characters of `MLCI_ACTOR` kept: it names who acted, in a column of `mlci history`."""


def current_user(environ: Mapping[str, str]) -> str:
    """Who acts, as the audit trail, decisions and acknowledgements record it:
    `MLCI_ACTOR` when it says (`mlci serve` sets `web:SESSION` for each dashboard it
    serves), else the login name. The actor is anyone's text, shown by `mlci
    history` and the dashboard: escapes dropped, control characters made visible."""
    actor = visible_text(_text(environ.get("MLCI_ACTOR", "")).strip())[:ACTOR_MAX].strip()
    if actor:
        return actor
    user = environ.get("USER") or environ.get("LOGNAME")
    if user:
        return visible_text(_text(user))[:ACTOR_MAX]
    import getpass  # only needed when the environment does not say

    with contextlib.suppress(Exception):
        return getpass.getuser()
    return "unknown"


def _text(value: str) -> str:
    """An environment value that was not UTF-8 (surrogate escapes), as text SQLite
    can hold: its undecodable bytes as U+FFFD."""
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def is_stale(deployment: DeploymentRecord, config: Config, now: float) -> bool:
    """Whether a running deployment's process is gone, so its lock may be taken."""
    if deployment.host == socket.gethostname():
        return deployment.pid is None or not procs.is_alive(deployment.pid, deployment.pid_started)
    # Another machine's process cannot be checked; trust it until its timeout passed.
    timeout = (config.deploy.timeout if config.deploy else None) or STALE_ELSEWHERE_S
    return now - deployment.started_at > timeout + 60


def succeeded_statuses(
    deployment: DeploymentRecord, name: str, live: VersionRecord | None
) -> list[tuple[int, VersionStatus, str | None]]:
    """How version statuses change when ``deployment`` (to the version ``name``),
    which replaced ``live``, succeeds."""
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
    if kind is DeployKind.DEPLOY and deployment.run_id is not None:
        # Written as the deploy ends, before the run does: whether it passes is not known.
        description = f"deployed by run {deployment.run_id}"
    elif kind is DeployKind.DEPLOY:
        description = "deployed" + reason
    else:
        automatic = " (automatic)" if kind is DeployKind.AUTO_ROLLBACK else ""
        description = f"rolled back from {live.name if live else '-'}{automatic}"
    statuses.append((deployment.to_version, VersionStatus.LIVE, description))
    return statuses
