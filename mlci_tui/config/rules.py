"""The rules that span tables, checked once the tables they span are read.

Between stages, as `[stages]` is read: each need names a stage, once; each out
belongs to one stage and holds none of the project's own files, nor lies behind a
link; a stage needs the stages whose outs its deps read too (`with_reads`), and
no needs make a cycle. Across the file, once it is read: one artifact, which
`[deploy]` needs, as `[monitor]` needs `[deploy]`; the names of mlci's own stages;
Ray installed where a stage asks for it; the stage each gate's metric is of;
secrets the config sets long enough to mask.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

from mlci_tui import dag
from mlci_tui.config.kinds import MIN_SECRET_LENGTH, inside
from mlci_tui.config.schema import KeyPath, Scope, close_matches, show
from mlci_tui.config.tables import (
    BUILTIN_STAGES,
    DeployConfig,
    MonitorConfig,
    PipelineConfig,
    StageConfig,
    need_text,
)
from mlci_tui.globs import Glob
from mlci_tui.metric_keys import MONITOR, split

RAY_INSTALL = "pip install -e '.[ray]'"


def check_needs(scope: Scope, stages: Mapping[str, StageConfig]) -> None:
    for name, stage in stages.items():
        seen: set[str] = set()
        for index, need in enumerate(stage.needs):
            where = ("stages", name, "needs", index)
            if need in seen:
                raise scope.document.error(where, f"{show(need)} is listed twice")
            seen.add(need)
            if need not in stages:
                close = close_matches(need, list(stages))
                hint = (
                    f'; did you mean "{close[0]}"?' if close else f" (stages: {', '.join(stages)})"
                )
                raise scope.document.error(where, f"unknown stage {show(need)}{hint}")


def check_outs(scope: Scope, pipeline: PipelineConfig, stages: Mapping[str, StageConfig]) -> None:
    """Outs are removed before their stage runs: each belongs to one stage, and none
    may hold the project's own files, its store or its cache. The artifact of a stage
    with deps is cached with its outs, and so removed too: it is held to the same rules."""
    owners: dict[Path, str] = {}
    protected = [
        (Path(scope.document.label).resolve(), "the config file"),
        (pipeline.state_dir, "the run store"),
        (pipeline.cache_dir, "the cache"),
        (scope.root / ".git", "the project's git repository"),
        (scope.root / ".mlci", "the project's outs lock"),
    ]
    if pipeline.params_file is not None:
        protected.append((pipeline.params_file, "the params file"))
    products = {name: _removed_before_run(name, stage) for name, stage in stages.items()}
    if not any(products.values()):
        return
    for name, stage in stages.items():
        for where, out in products[name]:
            if where[-1] == "artifact" and not inside(out, scope.root):
                raise scope.document.error(
                    where,
                    f"{show(_relative(out, scope))} is outside the project ({scope.root});"
                    " the artifact of a stage with deps is cached, and removed before the"
                    " stage runs",
                )
            for other, owner in owners.items():
                if out == other or inside(out, other) or inside(other, out):
                    if owner == name and where[-1] == "artifact":
                        raise scope.document.error(where, _artifact_overlap(stage, other))
                    same = "is also" if out == other else "overlaps"
                    raise scope.document.error(
                        where, f"{_relative(out, scope)} {same} an out of stage {owner}"
                    )
            for path, what in protected:
                if inside(path, out):
                    raise scope.document.error(
                        where,
                        f"{_relative(out, scope)} holds {what}; outs are removed before"
                        " their stage runs",
                    )
                if inside(out, path):
                    raise scope.document.error(
                        where,
                        f"{_relative(out, scope)} is inside {what}, which only mlci writes;"
                        " outs are removed before their stage runs",
                    )
            for dep in stage.deps:
                if isinstance(dep, Glob):
                    clash = inside(dep.base, out)
                else:
                    clash = inside(dep, out) or inside(out, dep)
                if clash:
                    # A directory that holds the out: a glob of it leaves the out out.
                    glob = os.path.normpath(os.path.join(_relative(dep, scope), "*"))
                    hint = (
                        f"; deps = [{show(glob)}] takes in the rest of it without the"
                        " stage's own outs"
                        if not isinstance(dep, Glob) and inside(out, dep) and out != dep
                        else ""
                    )
                    raise scope.document.error(
                        where,
                        f"{_relative(out, scope)} is also a dep of this stage"
                        f" ({_relative(dep, scope)}){hint}",
                    )
            owners[out] = name


def _artifact_overlap(stage: StageConfig, out: Path) -> str:
    """Why an artifact may not overlap an out of its own stage, and the two ways out:
    it is cached with the outs, so it may be one of them, but not half of one."""
    assert stage.artifact is not None
    artifact = show(os.path.relpath(stage.artifact, stage.cwd))
    shown = show(os.path.relpath(out, stage.cwd))
    rule = "an artifact may be one of its stage's outs, but not overlap one"
    if inside(stage.artifact, out):
        return (
            f"{artifact} lies inside {shown}, an out of this stage; {rule}: put {artifact}"
            f" in outs in place of {shown} (only that file is cached), or make the"
            f" artifact {shown} (the whole directory becomes the version)"
        )
    return (
        f"{artifact} holds {shown}, an out of this stage; {rule}: put {artifact} in outs"
        f" in place of {shown} (the artifact is cached whole)"
    )


def check_out_links(scope: Scope, stages: Mapping[str, StageConfig]) -> None:
    """An out behind a link (``build -> /elsewhere``, ``outs = ["build/data"]``) would
    be removed and written wherever the link leads: refused, as the run refuses one
    made later."""
    for name, stage in stages.items():
        for where, out in _removed_before_run(name, stage):
            link = link_above(out, scope.root)
            if link is not None:
                raise scope.document.error(
                    where,
                    f"{_relative(out, scope)} is behind a link ({_relative(link, scope)} ->"
                    f" {show(os.readlink(link))}); outs are removed before their stage runs,"
                    " never through a link",
                )


def _removed_before_run(name: str, stage: StageConfig) -> list[tuple[KeyPath, Path]]:
    """Where each path the engine removes before ``stage`` runs is declared, with it."""
    found: list[tuple[KeyPath, Path]] = [
        (("stages", name, "outs", index), out) for index, out in enumerate(stage.outs)
    ]
    if stage.artifact not in stage.outs and stage.artifact in stage.removed_before_run:
        found.append((("stages", name, "artifact"), Path(os.path.normpath(stage.artifact))))
    return found


def _relative(path: Path | Glob, scope: Scope) -> str:
    return os.path.relpath(str(path), scope.root)


def link_above(path: Path, root: Path) -> Path | None:
    """The first link among the directories from ``root`` down to ``path`` (itself
    excluded): what is written at ``path`` lands wherever that link leads."""
    try:
        parts = path.relative_to(root).parts[:-1]
    except ValueError:
        return None
    current = root
    for part in parts:
        current = current / part
        if current.is_symlink():
            return current
    return None


def with_reads(scope: Scope, stages: Mapping[str, StageConfig]) -> dict[str, StageConfig]:
    """Each stage needing, after those it names, the stages whose outs it reads; a
    cycle is refused, with the outs read where reading them makes it."""
    found = dag.reads(
        {name: stage.deps for name, stage in stages.items()},
        {name: stage.products for name, stage in stages.items()},
    )
    merged: dict[str, StageConfig] = {}
    for name, stage in stages.items():
        inferred = {
            writer: tuple(dict.fromkeys(Path(read.out) for read in how))
            for writer, how in found.get(name, {}).items()
            if writer not in stage.needs
        }
        if inferred:
            stage = stage._replace(
                needs=(*stage.needs, *inferred), inferred=MappingProxyType(inferred)
            )
        merged[name] = stage
    cycle = dag.find_cycle({name: stage.needs for name, stage in merged.items()})
    if cycle:
        by_reading = [
            (stage, need)
            for stage, need in itertools.pairwise(cycle)
            if need in merged[stage].inferred
        ]
        text = "cycle " + " → ".join(cycle)
        if not by_reading:
            raise scope.document.error(("stages", cycle[0], "needs"), text)
        reader, writer = by_reading[0]
        reasons = "; ".join(
            f"{stage} needs {need_text(need, merged[stage].inferred[need], scope.root)}"
            for stage, need in by_reading
        )
        where = ("stages", reader, "deps", found[reader][writer][0].dep)
        raise scope.document.error(where, f"{text}: {reasons}")
    return merged


def check_pipeline_stages(
    scope: Scope,
    stages: Mapping[str, StageConfig],
    deploy: DeployConfig | None,
    monitor: MonitorConfig | None,
) -> None:
    """The rules that span tables: one artifact, and the names deploy/monitor take."""
    document = scope.document
    with_artifact = [name for name, stage in stages.items() if stage.artifact is not None]
    if len(with_artifact) > 1:
        raise document.error(
            ("stages", with_artifact[1], "artifact"),
            f"only one stage may declare an artifact (already: {with_artifact[0]});"
            " make it a directory to keep several files",
        )
    if monitor is not None and deploy is None:
        raise document.error(("monitor",), "needs a [deploy] table: it checks a deployed model")
    if deploy is not None:
        for name in BUILTIN_STAGES:
            if name in stages:
                raise document.error(
                    ("stages", name),
                    f'"{name}" is the stage mlci adds when [deploy] is set; rename this stage',
                )
        if not with_artifact:
            raise document.error(
                ("deploy",), "needs a stage with an artifact: there is no model to deploy"
            )


def check_executors(
    scope: Scope, data: Mapping[str, Any], stages: Mapping[str, StageConfig]
) -> None:
    """A config that asks for Ray where Ray is not installed fails here, not mid-run."""
    users = [name for name, stage in stages.items() if stage.executor == "ray"]
    if not users or ray_installed():
        return
    if "executor" in data.get("pipeline", {}):
        where: KeyPath = ("pipeline", "executor")
    else:
        where = ("stages", users[0], "executor")
    raise scope.document.error(
        where, f"the Ray executor needs Ray, which is not installed ({RAY_INSTALL})"
    )


def ray_installed() -> bool:
    """Whether Ray's job client can be imported, without importing it (that is slow)."""
    import importlib.util

    try:
        return importlib.util.find_spec("ray") is not None
    except (ImportError, ValueError):
        return False


def with_metric_stages(
    scope: Scope, stages: Mapping[str, StageConfig], monitor: MonitorConfig | None
) -> tuple[dict[str, StageConfig], MonitorConfig | None]:
    """Gates and checks that name ``stage.name`` split so: a gate may name a metric of
    its own stage or of one it needs (finished before it), a check only the monitor's."""
    names = [*stages, *BUILTIN_STAGES]
    needs = {name: stage.needs for name, stage in stages.items()}
    split_stages = dict(stages)
    for name, stage in stages.items():
        gates = []
        for index, gate in enumerate(stage.gates):
            owner, metric = split(gate.metric, names)
            if owner is not None and owner not in dag.upstream(needs, [name]):
                raise scope.document.error(
                    ("stages", name, "gates", index),
                    f"{owner}.{metric}: a gate may check a metric of its own stage or of a"
                    f" stage it needs, and {name} does not need {owner}",
                )
            gates.append(gate._replace(metric=metric, stage=owner))
        split_stages[name] = stage._replace(gates=tuple(gates))
    if monitor is not None:
        checks = []
        for index, check in enumerate(monitor.checks):
            owner, metric = split(check.metric, names)
            if owner not in (None, MONITOR):
                raise scope.document.error(
                    ("monitor", "checks", index),
                    f"{owner}.{metric}: a check reads what the monitor command reports;"
                    f" name it {metric} or {MONITOR}.{metric}",
                )
            checks.append(check._replace(metric=metric, stage=owner))
        monitor = monitor._replace(checks=tuple(checks))
    return split_stages, monitor


def check_secret_values(
    scope: Scope, env_tables: list[tuple[KeyPath, Mapping[str, str]]], secrets: Sequence[str]
) -> None:
    """A secret the config sets itself (in one of ``env_tables``, with where each is)
    must be long enough to mask, as one from the environment must."""
    for where, env in env_tables:
        for name in secrets:
            if 0 < len(env.get(name, "")) < MIN_SECRET_LENGTH:
                raise scope.document.error(
                    (*where, name),
                    f"the value of secret {name} is shorter than {MIN_SECRET_LENGTH}"
                    " characters; masking it would garble every log",
                )
