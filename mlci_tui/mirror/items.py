"""What a mirror should hold, item by item, and what it lacks.

Every ended run, every version, every settled deploy or rollback and the
alias of the live version is an item with a digest of what a mirror is sent
for it: an item whose digest changed (a version rolled back since, the alias
moved) is sent again. Nothing here imports MLflow.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import NamedTuple

from mlci_tui.config import Config, MlflowConfig, redacted_uri
from mlci_tui.states import DeployOutcome, RunState
from mlci_tui.store import Store
from mlci_tui.store.records import DeploymentRecord, RunRecord, VersionRecord

NO_LIVE = "none"


class Target(NamedTuple):
    """Where a store is mirrored: what the `[mlflow]` table names, defaults filled in."""

    tracking_uri: str
    experiment: str
    model_name: str
    alias: str

    @property
    def key(self) -> str:
        """How the store knows this mirror (no password of a database URI in it)."""
        uri = redacted_uri(self.tracking_uri)
        return f"{uri} experiment={self.experiment} model={self.model_name}"


def target(config: Config, table: MlflowConfig) -> Target:
    name = config.pipeline.name
    return Target(
        table.tracking_uri, table.experiment or name, table.model_name or name, table.alias
    )


class Item(NamedTuple):
    key: str
    """``run:12``, ``version:3``, ``deployment:7`` or ``alias``."""
    digest: str
    label: str
    """As a person reads it: ``run 12``, ``v3``, ``deploy #7``."""


def run_item(run: RunRecord) -> Item:
    return Item(f"run:{run.id}", run.state.value, f"run {run.id}")


def version_tags(version: VersionRecord) -> dict[str, str]:
    """The tags of a version's model version that may change after it is made."""
    tags = {"mlci.status": version.status.value}
    if version.pruned_at is not None:
        tags["mlci.pruned"] = "true"
    return tags


def version_item(version: VersionRecord) -> Item:
    return Item(f"version:{version.number}", _digest(version_tags(version)), version.name)


def deployment_item(deployment: DeploymentRecord) -> Item:
    return Item(
        f"deployment:{deployment.id}",
        deployment.outcome.value,
        f"{deployment.kind.value.replace('_', ' ')} #{deployment.id}",
    )


def alias_item(live: VersionRecord | None, alias: str) -> Item:
    where = NO_LIVE if live is None else live.name
    return Item("alias", f"{alias}={where}", f"alias {alias} → {where}")


class Wanted(NamedTuple):
    """Everything a mirror should hold now, in the order it is sent."""

    runs: list[RunRecord]
    versions: list[VersionRecord]
    deployments: list[DeploymentRecord]
    live: VersionRecord | None

    def items(self, alias: str) -> list[Item]:
        return [
            *(run_item(run) for run in self.runs),
            *(version_item(version) for version in self.versions),
            *(deployment_item(deployment) for deployment in self.deployments),
            alias_item(self.live, alias),
        ]


def wanted(store: Store) -> Wanted:
    """Ended runs (a running one is mirrored once it ends), every version, and the
    deploys and rollbacks that settled, oldest first."""
    runs = [
        run for run in reversed(store.runs.recent(limit=-1)) if run.state is not RunState.RUNNING
    ]
    deployments = [
        d for d in reversed(store.deployments.all()) if d.outcome is not DeployOutcome.RUNNING
    ]
    return Wanted(runs, list(reversed(store.versions.recent())), deployments, store.versions.live())


def behind(store: Store, mirror: Target, items: list[Item]) -> list[Item]:
    """Those of ``items`` that ``mirror`` lacks or holds an older form of."""
    have = store.mirrored.get(mirror.key)
    return [
        item for item in items if (got := have.get(item.key)) is None or got.digest != item.digest
    ]


def _digest(values: Mapping[str, str]) -> str:
    text = json.dumps(dict(values), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
