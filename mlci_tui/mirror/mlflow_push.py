"""Sending a store's items to MLflow: the only module that imports MLflow, and
only in the `mlci mlflow sync` process.

Every item is looked up in MLflow before anything is sent (by the tags mlci
puts on what it makes: ``mlci.store`` and ``mlci.run_id`` or
``mlci.version``), and only what differs is written, so a sync after a
crash, or a second sync, changes nothing that is already there. A run is
marked ``mlci.complete`` last; one found without that mark (a sync that died
half-way) is deleted and sent again.
"""

from __future__ import annotations

import logging
import os
import posixpath
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from mlci_tui.config import param_text
from mlci_tui.errors import MirrorError
from mlci_tui.mirror.items import (
    Item,
    Target,
    Wanted,
    alias_item,
    deployment_item,
    run_item,
    version_item,
    version_tags,
    wanted,
)
from mlci_tui.states import RunState, StageState
from mlci_tui.store import Store
from mlci_tui.store.logs import output_bytes
from mlci_tui.store.records import DeploymentRecord, RunRecord, VersionRecord

COMPLETE = "mlci.complete"
MLFLOW_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
"""In every process mlci starts for MLflow: no telemetry."""
HTTP_DEFAULTS = {
    # MLflow's own defaults retry an unreachable server for minutes.
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
}
MAX_METRICS = 1000
MAX_PARAMS_TAGS = 100
MAX_VALUE = 5000
"""Longer tag and param values are cut: MLflow's limits are 6000 to 8000."""
STATUS = {RunState.PASSED: "FINISHED", RunState.CANCELLED: "KILLED"}


def client(mirror: Target) -> Any:
    """An `MlflowClient` for ``mirror``, with telemetry off and short retries."""
    os.environ.update(MLFLOW_ENV)
    # Its links to the runs and models it made would be mixed into mlci's output.
    os.environ.update(
        MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT="true", MLFLOW_PRINT_MODEL_URLS_ON_CREATION="false"
    )
    for name, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(name, value)
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise MirrorError(
            "MLflow is not installed where mlci runs: pip install -e '.[mlflow]'"
        ) from None
    # Its store announces every migration at INFO; only problems are of interest.
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return MlflowClient(tracking_uri=mirror.tracking_uri, registry_uri=mirror.tracking_uri)


class Pusher:
    """Brings one mirror up to date with one store."""

    def __init__(self, store: Store, mirror: Target) -> None:
        self.store = store
        self.mirror = mirror
        self.client = client(mirror)
        self.store_id = store.store_id
        self.have = store.mirrored.get(mirror.key)
        self.sent: list[str] = []
        """What was written to MLflow, item by item, as a person reads it."""

    def push(self) -> list[str]:
        want = wanted(self.store)
        self.experiment_id = experiment = self._experiment()
        runs = self._push_runs(experiment, want)
        versions = self._push_versions(want, runs)
        self._push_audit(want, versions)
        self._push_alias(want, versions)
        return self.sent

    # Runs ------------------------------------------------------------------

    def _experiment(self) -> str:
        found = self.client.get_experiment_by_name(self.mirror.experiment)
        if found is not None:
            if found.lifecycle_stage == "deleted":
                raise MirrorError(
                    f"experiment {self.mirror.experiment!r} is deleted in MLflow: restore it"
                    " or name another in [mlflow] experiment"
                )
            return str(found.experiment_id)
        location = None
        if self.mirror.tracking_uri.startswith("sqlite:///"):
            # Beside the database, not in whatever directory the sync runs in.
            database = Path(self.mirror.tracking_uri[len("sqlite:///") :])
            location = (database.parent / "mlruns").as_uri()
        tags = {"mlci.pipeline": self.mirror.experiment}
        return str(self.client.create_experiment(self.mirror.experiment, location, tags))

    def _remote_runs(self, experiment: str) -> dict[int, Any]:
        found: dict[int, Any] = {}
        token = None
        while True:
            page = self.client.search_runs(
                [experiment],
                filter_string=f"tags.`mlci.store` = '{self.store_id}'",
                max_results=1000,
                page_token=token,
            )
            for run in page:
                number = run.data.tags.get("mlci.run_id", "")
                if number.isdigit():
                    found.setdefault(int(number), run)
            token = page.token
            if not token:
                return found

    def _push_runs(self, experiment: str, want: Wanted) -> dict[int, Any]:
        """Every ended run in MLflow; their MLflow runs by mlci run id."""
        remote = self._remote_runs(experiment)
        for run in want.runs:
            found = remote.get(run.id)
            if found is not None and found.data.tags.get(COMPLETE) != "true":
                self.client.delete_run(found.info.run_id)
                found = None
            item = run_item(run)
            if found is None:
                found = self._create_run(experiment, run)
                self.sent.append(item.label)
            elif self._update_run(found, run):
                self.sent.append(f"{item.label} ({run.state.value})")
            remote[run.id] = found
            self._done(item, found.info.run_id)
        return remote

    def _create_run(self, experiment: str, record: RunRecord) -> Any:
        run = self.store.runs.get(record.id) or record
        created = self.client.create_run(
            experiment,
            start_time=_ms(run.started_at),
            tags={"mlci.store": self.store_id, "mlci.run_id": str(run.id)},
            run_name=f"run {run.id}",
        )
        run_id = created.info.run_id
        from mlflow.entities import Metric, Param, RunTag

        params = [Param(_key(name), _cut(param_text(value))) for name, value in run.params.items()]
        tags = [RunTag(key, value) for key, value in run_tags(run).items()]
        for chunk in _chunks(params, MAX_PARAMS_TAGS):
            self.client.log_batch(run_id, params=chunk)
        for chunk in _chunks(tags, MAX_PARAMS_TAGS):
            self.client.log_batch(run_id, tags=chunk)
        self._log_metrics(run, run_id, Metric)
        self._log_files(run, run_id)
        self.client.set_tag(run_id, COMPLETE, "true")
        self.client.set_terminated(run_id, _status(run), end_time=_ms(run.ended_at))
        return self.client.get_run(run_id)

    def _log_metrics(self, run: RunRecord, run_id: str, metric: Any) -> None:
        with_points = set()
        batch = []
        for series in self.store.series.all(run.id):
            key = _metric_key(series.stage, series.name)
            if series.points:
                with_points.add((series.stage, series.name))
            for point in series.points:
                batch.append(metric(key, point.value, _ms(point.time), point.step))
                if len(batch) == MAX_METRICS:
                    self.client.log_batch(run_id, metrics=batch)
                    batch = []
        # A store older than metric series has only last values: one point each.
        for stage in run.stages:
            for name, value in stage.metrics.items():
                if (stage.name, name) not in with_points:
                    ended = _ms(stage.ended_at or run.ended_at)
                    batch.append(metric(_metric_key(stage.name, name), value, ended, 0))
        for chunk in _chunks(batch, MAX_METRICS):
            self.client.log_batch(run_id, metrics=chunk)

    def _log_files(self, run: RunRecord, run_id: str) -> None:
        """The stages' output as `mlci logs` prints it, and the run's params file."""
        with tempfile.TemporaryDirectory(prefix="mlci-mlflow-") as scratch:
            folder = Path(scratch) / "logs"
            folder.mkdir()
            for stage in run.stages:
                log = self.store.log_path(run.id, stage.name)
                if not log.exists():
                    continue
                with open(folder / f"{stage.name}.log", "wb") as out:
                    out.writelines(output_bytes(log))
            if any(folder.iterdir()):
                self.client.log_artifacts(run_id, str(folder), "logs")
            params = self.store.params_path(run.id)
            if params.exists():
                self.client.log_artifact(run_id, str(params))

    def _update_run(self, found: Any, run: RunRecord) -> bool:
        """A run whose state changed since it was sent (rolled back later)."""
        if found.data.tags.get("mlci.state") == run.state.value:
            return False
        self.client.set_tag(found.info.run_id, "mlci.state", run.state.value)
        self.client.set_terminated(found.info.run_id, _status(run), end_time=_ms(run.ended_at))
        return True

    # Versions ----------------------------------------------------------------

    def _model(self) -> Any:
        from mlflow.exceptions import MlflowException

        name = self.mirror.model_name
        try:
            return self.client.get_registered_model(name)
        except MlflowException as error:
            if getattr(error, "error_code", "") != "RESOURCE_DOES_NOT_EXIST":
                raise
        return self.client.create_registered_model(
            name,
            tags={"mlci.pipeline": self.mirror.experiment},
            description="Versions registered, deployed and rolled back by mlci.",
        )

    def _remote_versions(self) -> dict[int, Any]:
        found: dict[int, Any] = {}
        token = None
        name = self.mirror.model_name
        while True:
            page = self.client.search_model_versions(
                f"name = '{name}'", max_results=10000, page_token=token
            )
            for version in page:
                tags = version.tags or {}
                number = tags.get("mlci.version", "")[1:]
                if tags.get("mlci.store") == self.store_id and number.isdigit():
                    found.setdefault(int(number), version)
            token = page.token
            if not token:
                return found

    def _push_versions(self, want: Wanted, runs: dict[int, Any]) -> dict[int, Any]:
        self.model = self._model()
        remote = self._remote_versions()
        for version in want.versions:
            item = version_item(version)
            tags = model_version_tags(version, self.store_id)
            found = remote.get(version.number)
            run = runs.get(version.run_id or 0)
            no_run_here = version.run_id is None or self.store.runs.get(version.run_id) is None
            if found is None and run is None and not no_run_here:
                continue  # its run has not ended: it is sent with the run
            if found is None:
                found = self._create_version(version, run, tags)
                self.sent.append(item.label)
            else:
                changed = [k for k, v in tags.items() if (found.tags or {}).get(k) != v]
                for key in changed:
                    self.client.set_model_version_tag(
                        self.mirror.model_name, found.version, key, tags[key]
                    )
                if changed:
                    self.sent.append(f"{item.label} ({version.status.value})")
            remote[version.number] = found
            self._done(item, str(found.version))
        return remote

    def _create_version(self, version: VersionRecord, run: Any, tags: dict[str, str]) -> Any:
        if run is None:
            # Registered outside a run the store still has: a run of its own holds it.
            run = self.client.create_run(
                self.experiment_id,
                tags={"mlci.store": self.store_id, "mlci.version": version.name},
                run_name=f"{version.name} artifact",
            )
            self.client.set_terminated(run.info.run_id, "FINISHED")
        run_id = run.info.run_id
        artifact = self.store.version_dir(version.number) / version.artifact_name
        if artifact.is_dir():
            self.client.log_artifacts(run_id, str(artifact), f"model/{version.artifact_name}")
        elif artifact.exists():
            self.client.log_artifact(run_id, str(artifact), "model")
        source = f"{run.info.artifact_uri}/model"
        return self.client.create_model_version(
            self.mirror.model_name,
            source,
            run_id=run_id,
            tags=tags,
            description=_cut(version.description) if version.description else None,
        )

    # Deploys, rollbacks and the alias -------------------------------------------

    def _push_audit(self, want: Wanted, versions: dict[int, Any]) -> None:
        for deployment in want.deployments:
            key, text = f"mlci.audit.{deployment.id}", _cut(audit_text(deployment))
            wrote = False
            involved = [n for n in (deployment.from_version, deployment.to_version) if n]
            for number in involved:
                found = versions.get(number)
                if found is not None and (found.tags or {}).get(key) != text:
                    self.client.set_model_version_tag(
                        self.mirror.model_name, found.version, key, text
                    )
                    found.tags[key] = text
                    wrote = True
            item = deployment_item(deployment)
            if wrote:
                self.sent.append(item.label)
            if all(number in versions for number in involved):
                self._done(item, key)

    def _push_alias(self, want: Wanted, versions: dict[int, Any]) -> None:
        alias = self.mirror.alias
        aliases = _aliases(self.client.get_registered_model(self.mirror.model_name))
        live = versions.get(want.live.number) if want.live is not None else None
        item = alias_item(want.live, alias)
        if want.live is not None and live is None:
            return  # the live version's run has not ended: the alias moves with it
        if live is None:
            if alias in aliases:
                self.client.delete_registered_model_alias(self.mirror.model_name, alias)
                self.sent.append(item.label)
        elif aliases.get(alias) != str(live.version):
            self.client.set_registered_model_alias(self.mirror.model_name, alias, live.version)
            self.sent.append(item.label)
        self._done(item, "" if live is None else str(live.version))

    def _done(self, item: Item, remote_id: str) -> None:
        """Remember ``item`` as mirrored (what `mlci mlflow status` reads)."""
        if self.have.get(item.key) != (remote_id, item.digest):
            self.store.mirrored.set(
                self.mirror.key, item.key, remote_id, item.digest, when=time.time()
            )


def run_tags(run: RunRecord) -> dict[str, str]:
    """What MLflow's run page shows of a run besides its params and metrics."""
    cached = [stage.name for stage in run.stages if stage.state is StageState.CACHED]
    tags = {
        "mlci.pipeline": run.pipeline,
        "mlci.state": run.state.value,
        "mlci.cached_stages": ", ".join(cached) or "none",
    }
    if run.exit_code is not None:
        tags["mlci.exit_code"] = str(run.exit_code)
    if run.host:
        tags["mlci.host"] = run.host
    if run.message:
        tags["mlci.message"] = _cut(run.message)
    for stage in run.stages:
        state = stage.state.value
        if stage.cached_from_run is not None:
            state += f" (from run {stage.cached_from_run})"
        tags[f"mlci.stage.{stage.name}"] = state
    if run.git_commit:
        tags["mlflow.source.git.commit"] = run.git_commit
        tags["mlci.git_commit"] = run.git_commit
    if run.git_dirty is not None:
        tags["mlci.git_dirty"] = "true" if run.git_dirty else "false"
    return tags


def model_version_tags(version: VersionRecord, store_id: str) -> dict[str, str]:
    tags = {
        "mlci.store": store_id,
        "mlci.version": version.name,
        "mlci.sha256": version.sha256,
        "mlci.artifact": version.artifact_name,
        **version_tags(version),
    }
    if version.run_id is not None:
        tags["mlci.run_id"] = str(version.run_id)
    if version.git_commit:
        tags["mlci.git_commit"] = version.git_commit
    return tags


def audit_text(deployment: DeploymentRecord) -> str:
    """An audit row as one line: kind, from, to, who, outcome, when, why."""
    from mlci_tui.store.records import iso_time

    was = "nothing" if deployment.from_version is None else f"v{deployment.from_version}"
    parts = [
        f"{deployment.kind.value} {was} -> v{deployment.to_version}",
        f"by {deployment.user or 'unknown'}",
        deployment.outcome.value,
        str(iso_time(deployment.ended_at or deployment.started_at)),
    ]
    if deployment.reason:
        parts.append(f"why: {' '.join(deployment.reason.split())}")
    if deployment.message and deployment.outcome.value != "succeeded":
        parts.append(" ".join(deployment.message.split()))
    return "; ".join(parts)


def _aliases(model: Any) -> dict[str, str]:
    aliases = model.aliases or {}
    if isinstance(aliases, dict):
        return {str(k): str(v) for k, v in aliases.items()}
    return {a.alias: str(a.version) for a in aliases}


def _status(run: RunRecord) -> str:
    return STATUS.get(run.state, "FAILED")


def _ms(timestamp: float | None) -> int:
    return int((timestamp if timestamp is not None else time.time()) * 1000)


def _cut(text: str) -> str:
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "…"


def _key(name: str) -> str:
    return name[:250]


def _metric_key(stage: str, name: str) -> str:
    """``stage/name``; a name MLflow would read as a path elsewhere has its slashes
    replaced."""
    key = f"{stage}/{name}"
    if posixpath.normpath(key) != key:
        key = f"{stage}/{name.replace('/', '_')}"
    return key[:250]


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
