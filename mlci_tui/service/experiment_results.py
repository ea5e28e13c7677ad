"""What an experiment leaves for the workspace: its outs and params (`mlci exp apply`),
and its artifact as a model version (`mlci exp promote`).

An experiment's workspace is gone once it ends; what it made is in the cache, under
the keys its run's stages name. Both commands take it from there, and check all of
it before they write anything: a missing or damaged entry or object is said, and
nothing is half-applied.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from mlci_tui.config import Config
from mlci_tui.errors import MlciError, UsageError
from mlci_tui.masking import MASK, SecretMasker
from mlci_tui.metric_keys import MetricKey
from mlci_tui.pipeline.outs import ABSENT, CacheDamaged, Meta, outs_behind_links
from mlci_tui.pipeline.stage_cache import Decision, StageCache, valid_entry
from mlci_tui.service.outs_lock import lock_outs
from mlci_tui.states import ExperimentState, StageState
from mlci_tui.store import Store
from mlci_tui.store.paths import STAGING
from mlci_tui.store.records import ExperimentRecord, RunRecord

_STORED = (StageState.PASSED, StageState.CACHED)
"""Stages whose outs the cache holds under their key."""


_STATE_WORDS = {
    ExperimentState.QUEUED: "is queued",
    ExperimentState.RUNNING: "is still running",
    ExperimentState.FAILED: "failed",
    ExperimentState.CANCELLED: "was cancelled",
    ExperimentState.INTERRUPTED: "was interrupted",
}


class CacheLacks(MlciError):
    """What an experiment made is no longer in the cache as it was stored."""


class StoredOut(NamedTuple):
    """One out of an experiment's stage, as the cache holds it."""

    stage: str
    name: str
    """Its path, relative to the project."""
    meta: Meta


class StoredStage(NamedTuple):
    stage: str
    key: str
    entry: Mapping[str, Any]


class ApplyPlan(NamedTuple):
    """What `mlci exp apply` will write, worked out before anything is written."""

    experiment: ExperimentRecord
    run: RunRecord
    stages: list[StoredStage]
    changed: list[str]
    """Files (relative) it would overwrite or remove that differ from what the
    workspace's own latest run left there: the user's changes."""
    params: dict[str, Any]
    """The params whose value the experiment ran with differs from the config's."""
    dropped: list[str]
    """Params the experiment set that the config no longer has."""
    masked: list[str]
    """Params whose value held a secret: the store keeps it masked, so it is never
    written back (the file keeps its own)."""
    params_text: str | None
    """The params file with ``params`` written into it; None without a params file,
    without params to write, or when they cannot be written only where they are."""


class ExperimentResults:
    """An experiment's outs and artifact, taken from the cache."""

    def __init__(self, store: Store, config: Config, masker: SecretMasker) -> None:
        self.store = store
        self.config = config
        self.masker = masker
        self.cache = StageCache(config, masker=masker, store=store)

    # Finding -----------------------------------------------------------------------

    def finished(self, experiment_id: int, doing: str) -> tuple[ExperimentRecord, RunRecord]:
        """The experiment and its run; `UsageError` unless it passed."""
        experiment = self.store.experiments.get(experiment_id)
        if experiment is None:
            raise UsageError(f"no experiment #{experiment_id} (see mlci exp show)")
        label = self.masker.mask_text(experiment.label)
        if experiment.state is not ExperimentState.PASSED:
            said = _STATE_WORDS.get(experiment.state, f"is {experiment.state.value}")
            raise UsageError(
                f"experiment {label} {said}: only an experiment that passed can be {doing}"
            )
        run = None if experiment.run_id is None else self.store.runs.get(experiment.run_id)
        if run is None:
            raise UsageError(f"experiment {label} has no run left in the store")
        return experiment, run

    def stored_stages(self, run: RunRecord) -> list[StoredStage]:
        """Each stage of ``run`` whose outs the cache holds, checked: `CacheLacks`
        naming the first out whose entry or objects are missing or damaged."""
        found = []
        for stage in run.stages:
            if stage.state not in _STORED or stage.cache_key is None:
                continue
            if stage.name not in self.config.stages:
                continue  # a stage the config no longer has: nothing to bring back
            entry = self._entry(stage.cache_key)
            if entry is None:
                raise CacheLacks(
                    f"the cache entry of stage {stage.name} of run {run.id} is missing"
                    " (removed by mlci cache gc?): run the experiment again"
                )
            for name, meta in entry["outs"].items():
                self._check_out(stage.name, name, meta)
            found.append(StoredStage(stage.name, stage.cache_key, entry))
        return found

    def _entry(self, key: str) -> Mapping[str, Any] | None:
        try:
            entry = self.cache.dir.read_entry(key)
        except ValueError:
            return None
        return entry if entry is not None and valid_entry(entry, key) else None

    def _check_out(self, stage: str, name: str, meta: Meta) -> None:
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise CacheLacks(f"the cache entry of stage {stage} names an out outside: {name}")
        problem = self.cache.outs.unavailable(meta)
        if problem == "missing":
            raise CacheLacks(
                f"out {name} of stage {stage} is missing from the cache"
                " (removed by mlci cache gc?): run the experiment again"
            )
        if problem == "damaged":
            raise CacheLacks(
                f"the cache's copy of out {name} of stage {stage} was changed since it was stored"
            )

    # Apply -------------------------------------------------------------------------

    def plan_apply(self, experiment_id: int) -> ApplyPlan:
        experiment, run = self.finished(experiment_id, "applied")
        stages = self.stored_stages(run)
        for stored in stages:
            paths = [self.config.root / name for name in stored.entry["outs"]]
            linked = outs_behind_links(paths, self.config.root)
            if linked is not None:
                raise UsageError(linked)
        changed = []
        for stored in stages:
            left = self._left_by_workspace(stored.stage)
            for name, meta in stored.entry["outs"].items():
                changed += self._changed_files(name, meta, left.get(name))
        params, dropped, masked = self._param_changes(experiment, run)
        return ApplyPlan(
            experiment, run, stages, changed, params, dropped, masked, self._params_text(params)
        )

    def _params_text(self, params: Mapping[str, Any]) -> str | None:
        params_file = self.config.pipeline.params_file
        if params_file is None or not params:
            return None
        from mlci_tui.config.params_file import edited_params

        try:
            text = params_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None
        return edited_params(text, params)

    def _left_by_workspace(self, stage: str) -> Mapping[str, Meta]:
        """The outs the workspace's latest run of ``stage`` left (as its entry says)."""
        for recent in self.store.runs.recent(limit=20):
            run = self.store.runs.get(recent.id)
            record = next((s for s in run.stages if s.name == stage), None) if run else None
            if record is None or record.state not in _STORED or record.cache_key is None:
                continue
            entry = self._entry(record.cache_key)
            return {} if entry is None else entry["outs"]
        return {}

    def _changed_files(self, name: str, target: Meta, left: Meta | None) -> list[str]:
        """The files at out ``name`` that restoring ``target`` would overwrite or remove
        and that are neither as ``target`` nor as the workspace's run ``left`` them, nor
        kept by the cache: the user's changes."""
        path = self.config.root / name
        try:
            now = self._files(name, self.cache.outs.snapshot(path).meta)
        except (OSError, ValueError):
            return [name]  # what is there cannot be read as an out: the user's
        wanted = self._files(name, target)
        before = self._files(name, left)
        return [
            file
            for file, what in now.items()
            if what != wanted.get(file) and what != before.get(file) and not self._kept(what)
        ]

    def _kept(self, what: tuple[Any, ...]) -> bool:
        """Whether the cache holds this file's content (an earlier run's or `exp
        apply`'s): overwriting it loses nothing."""
        return what[0] == "f" and self.cache.dir.state([what[1]]) == "intact"

    def _files(self, name: str, meta: Meta | None) -> dict[str, tuple[Any, ...]]:
        """Each file and link of an out, relative to the project: what it holds."""
        if meta is None:
            return {}
        if meta["kind"] == "link":
            return {name: ("l", meta["target"])}
        if meta["kind"] == "file":
            return {name: ("f", meta["sha"], meta["exe"])}
        path = self.config.root / name
        try:
            manifest = self.cache.outs.manifest(meta["sha"])
        except (OSError, ValueError, CacheDamaged):
            # Not in the cache: the out as it is here (the workspace's, read now).
            try:
                manifest = self.cache.outs.snapshot(path).manifest
            except (OSError, ValueError):
                return {}
        return {
            os.path.join(name, entry[1]): (entry[0], *entry[2:])
            for entry in manifest
            if entry[0] != "d"
        }

    def _param_changes(
        self, experiment: ExperimentRecord, run: RunRecord
    ) -> tuple[dict[str, Any], list[str], list[str]]:
        from mlci_tui.config.params import checked_param, masked_params

        # The run's params were recorded masked: compared with the config's, masked.
        current = masked_params(self.config.params, self.masker)
        changes: dict[str, Any] = {}
        dropped: list[str] = []
        masked: list[str] = []
        for name, value in run.params.items():
            if name not in current:
                if name in experiment.params:
                    dropped.append(name)
                continue
            value = checked_param(value)
            if _typed(value) == _typed(current[name]):
                continue
            if MASK.decode() in json.dumps(value):
                masked.append(name)  # `***` where the secret was: never written back
            else:
                changes[name] = value
        return changes, dropped, masked

    def apply(self, plan: ApplyPlan) -> list[str]:
        """Restore every out of the plan and write its params file, under the project's
        outs lock; the names of the outs that were not as the experiment left them
        (with how they were copied)."""
        descriptor = lock_outs(self.config)
        try:
            params = None if plan.params_text is None else self._stage_params(plan.params_text)
            try:
                restored: list[str] = []
                for stored in plan.stages:
                    decision = Decision(stored.stage, stored.key, True, (), entry=stored.entry)
                    restored += self.cache.restore(decision)
                if params is not None:
                    assert self.config.pipeline.params_file is not None
                    os.replace(params, self.config.pipeline.params_file)
            finally:
                if params is not None:
                    params.unlink(missing_ok=True)
            return restored
        finally:
            os.close(descriptor)

    def _stage_params(self, text: str) -> Path:
        """The params file's new text, written whole beside it (with its mode) before
        any out is restored: what is left then is one rename."""
        path = self.config.pipeline.params_file
        assert path is not None
        temporary = path.with_name(f".{path.name}.mlci-{uuid.uuid4().hex[:12]}")
        try:
            mode = path.stat().st_mode & 0o7777
            with open(temporary, "w", encoding="utf-8") as file:
                file.write(text)
                file.flush()
                os.fsync(file.fileno())
            os.chmod(temporary, mode)
        except OSError as error:
            temporary.unlink(missing_ok=True)
            raise UsageError(f"{path}: cannot write the params: {error.strerror}") from None
        return temporary

    # Promote -----------------------------------------------------------------------

    def artifact(self, run: RunRecord, label: str) -> StoredOut:
        """The artifact of the config's artifact stage as ``run`` left it in the cache;
        `UsageError` when there is none, `CacheLacks` when it is gone."""
        stage = self.config.artifact_stage
        if stage is None or stage.artifact is None:
            raise UsageError("no stage in the config declares an artifact: nothing to promote")
        name = os.path.relpath(stage.artifact, self.config.root)
        record = next((s for s in run.stages if s.name == stage.name), None)
        if record is None or record.state not in _STORED:
            raise UsageError(f"experiment {label}: stage {stage.name} did not pass")
        if record.cache_key is None:
            raise UsageError(
                f"experiment {label} has no artifact in the cache: stage {stage.name} is"
                " never cached (it declares no deps)"
            )
        entry = self._entry(record.cache_key)
        if entry is None:
            raise CacheLacks(
                f"the cache entry of stage {stage.name} of experiment {label} is missing"
                " (removed by mlci cache gc?): run the experiment again"
            )
        meta = entry["outs"].get(name)
        if meta is None:
            raise UsageError(f"experiment {label}: stage {stage.name} stored no {name}")
        self._check_out(stage.name, name, meta)
        return StoredOut(stage.name, name, meta)

    @contextlib.contextmanager
    def artifact_copy(self, out: StoredOut) -> Iterator[Path]:
        """A copy of the artifact, made from the cache, named as the artifact is: in a
        staging directory of the versions (recovery sweeps it if this process dies)."""
        versions = self.store.state_dir / "versions"
        versions.mkdir(parents=True, exist_ok=True)
        staging = versions / f"{STAGING}{os.getpid()}-{uuid.uuid4().hex}"
        staging.mkdir()
        try:
            copy = staging / Path(out.name).name
            self.cache.outs.restore(copy, out.meta, ABSENT, out.name)
            yield copy
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def metrics(self, run: RunRecord) -> dict[MetricKey, float]:
        """The metrics of the run's stages, as a run's version keeps them."""
        return {
            MetricKey(stage.name, name): value
            for stage in run.stages
            if stage.name in self.config.stages
            for name, value in stage.metrics.items()
        }


def _typed(value: Any) -> Any:
    """A value with its type beside it: 1, 1.0 and true differ."""
    if isinstance(value, (tuple, list)):
        return ("array", [_typed(item) for item in value])
    return (type(value).__name__, value)
