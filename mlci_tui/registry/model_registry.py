"""Registering model versions, finding them, and pruning old artifacts."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from mlci_tui.config import Config
from mlci_tui.errors import RegistryError
from mlci_tui.metric_keys import MetricKey
from mlci_tui.registry.artifacts import commit_copy, digest, stage_copy
from mlci_tui.registry.audit import is_stale
from mlci_tui.states import VersionStatus
from mlci_tui.store import Store
from mlci_tui.store.records import DeploymentRecord, VersionRecord

_VERSION = re.compile(r"[vV]?(\d+)")


class Registry:
    """The versions of one pipeline's model, in its store."""

    def __init__(
        self, store: Store, config: Config, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.config = config
        self.clock = clock

    # Reading -------------------------------------------------------------------

    def resolve(self, text: str) -> VersionRecord:
        """``"v3"`` or ``"3"`` → that version, or a `RegistryError` saying what exists."""
        match = _VERSION.fullmatch(text.strip())
        version = self.store.versions.get(int(match.group(1))) if match else None
        if version is None:
            newest = self.store.versions.recent(limit=1)
            known = f"v1 to v{newest[0].number}" if newest else "none yet"
            raise RegistryError(f"no version {text!r} (versions: {known})")
        return version

    def artifact_path(self, version: VersionRecord) -> Path:
        return self.store.version_dir(version.number) / version.artifact_name

    def live(self) -> VersionRecord | None:
        return self.store.versions.live()

    def live_instead_of(self, version: VersionRecord) -> str | None:
        """None while ``version`` is live; else what is (``nothing`` if nothing is)."""
        live = self.live()
        if live is not None and live.number == version.number:
            return None
        return "nothing" if live is None else live.name

    def known_good(self, exclude: set[int] | None = None) -> VersionRecord | None:
        """The last version that was live and healthy, other than ``exclude`` and the
        live one: the default rollback target, as ``helm rollback`` with no revision."""
        return self.store.versions.known_good(exclude or ())

    # Writing -------------------------------------------------------------------

    def register(
        self,
        run_id: int,
        metrics: Mapping[MetricKey, float],
        params: Mapping[str, object] | None = None,
        *,
        source: Path | None = None,
        experiment_id: int | None = None,
        git: tuple[str | None, bool | None] | None = None,
    ) -> tuple[VersionRecord, bool]:
        """Copy the run's artifact (or the copy of it at ``source``, named as the artifact
        is) into the store as the next version ``vN``; or, when a stored version has the
        same sha256, that version. The version, and whether it is new. ``git``: the
        commit it was built from and whether the work tree had changes (default: this
        project's now)."""
        stage = self.config.artifact_stage
        if stage is None or stage.artifact is None:
            raise RegistryError("no stage declares an artifact")
        declared = stage.artifact
        source = declared if source is None else source
        if not source.exists():
            raise RegistryError(f"the artifact {source} does not exist")
        # Hashed in place first: an unchanged artifact is not copied at all.
        same = self.store.versions.with_sha256(digest(source)[0])
        if same is not None:
            return same, False
        versions_dir = self.store.state_dir / "versions"
        staging = stage_copy(source, versions_dir)
        try:
            sha256, size = digest(staging / source.name)
            commit, dirty = git_state(self.config.root) if git is None else git
            number = self.store.versions.add(
                run_id=run_id,
                created_at=self.clock(),
                artifact_name=source.name,
                source_path=str(declared),
                is_dir=source.is_dir(),
                sha256=sha256,
                size_bytes=size,
                metrics=metrics,
                git_commit=commit,
                git_dirty=dirty,
                params=params,
                experiment_id=experiment_id,
            )
            commit_copy(staging, self.store.version_dir(number))
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        self.prune()
        version = self.store.versions.get(number)
        assert version is not None
        return version, True

    def prune(self) -> list[int]:
        """Delete artifacts beyond the newest `keep_versions`, but never the live one,
        the last known-good one, or one a deploy in progress is moving from or to.
        Rows, metrics and history stay. Returns the pruned numbers."""
        pruned = self.store.deployments.claim_for_pruning(
            self.config.registry.keep_versions, self.clock()
        )
        for number in pruned:
            shutil.rmtree(self.store.version_dir(number), ignore_errors=True)
        return pruned


def deploys_unchanged(
    version: VersionRecord, live: VersionRecord | None, *, redeploy: bool = False
) -> bool:
    """Whether a run whose artifact ``version`` already has deploys it: never while it
    is live; when asked to (``--redeploy``); and when it never reached production
    (its deploy was cut short by a crash, or refused while another one ran)."""
    if live is not None and live.number == version.number:
        return False
    return redeploy or version.status is VersionStatus.REGISTERED


def unchanged_text(version: VersionRecord, live: VersionRecord | None) -> str:
    """What a run whose artifact ``version`` already has says of its deploy."""
    if live is not None and live.number == version.number:
        return f"artifact unchanged: {version.name} is live"
    if deploys_unchanged(version, live):
        return f"artifact unchanged: same as {version.name}, which never went live: deploys it"
    now = "nothing" if live is None else live.name
    # What went wrong once is deployed again only when meant: by name, with --force.
    if version.status in (VersionStatus.ROLLED_BACK, VersionStatus.FAILED):
        how = f"mlci deploy {version.name} --force"
    else:
        how = "mlci run --redeploy"
    return (
        f"artifact unchanged: same as {version.name} ({version.status.text}); {now}"
        f" stays live ({how} deploys it)"
    )


def analysis_cut_short(
    store: Store, config: Config, live: VersionRecord | None, now: float
) -> DeploymentRecord | None:
    """The deployment that put ``live`` live with a post-deploy analysis to follow,
    when that analysis never finished and no process is doing it now (a crash or a
    cancel cut it short); else None. A run that deploys nothing analyses it then, as
    the run that deployed it would have: the runner and `mlci why` both ask here."""
    if live is None or live.status is not VersionStatus.LIVE or live.analysis_owed is None:
        return None
    deployment = store.deployments.get(live.analysis_owed)
    if deployment is None or not is_stale(deployment, config, now):
        return None
    return deployment


def cut_short_text(version: VersionRecord, deployment: DeploymentRecord) -> str:
    """What a run that analyses ``version`` in place of ``deployment``'s says."""
    if deployment.run_id is not None:
        by = f"run {deployment.run_id}"
    else:
        by = f"mlci deploy (deployment {deployment.id})"
    return f"analyses {version.name}: its analysis by {by} was cut short"


def git_state(path: Path) -> tuple[str | None, bool | None]:
    """The commit checked out at ``path`` and whether the work tree has changes;
    ``(None, None)`` outside a git work tree or without git."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        if commit.returncode != 0:
            return None, None
        status = subprocess.run(
            ["git", "-C", str(path), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit.stdout.strip(), bool(status.stdout.strip()) if status.returncode == 0 else None
