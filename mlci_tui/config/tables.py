"""One record per table of `config.toml`: `[pipeline]`, `[stages.NAME]`, `[deploy]`,
`[monitor]`, `[alerts]`, `[mlflow]`, `[registry]` and `[executors.ray]`.

A record's fields are its table's keys: each one's `setting` gives its kind, its
default and its meaning, which `schema.read_section` reads the table against
and the README's tables of keys document.
"""

# No `from __future__ import annotations` here, unlike everywhere else: the records'
# annotations are then evaluated once as types, where typing.NamedTuple would
# compile each one from a string at every start-up (3 M instructions).

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

from mlci_tui.checks import Check
from mlci_tui.config.kinds import (
    CHECKS,
    COMMAND,
    DURATION,
    ENV,
    HERE,
    Alias,
    AutoRollback,
    CommandLine,
    Duration,
    ModelName,
    ProjectPaths,
    Secrets,
    TrackingUri,
    WorkingDir,
)
from mlci_tui.config.params import StageParams
from mlci_tui.config.schema import (
    NO_STRINGS,
    Boolean,
    Choice,
    Integer,
    Number,
    RelativePath,
    Strings,
    StringTable,
    Subtable,
    Text,
    from_scope,
    section,
    setting,
)
from mlci_tui.globs import Glob

MAX_RESOURCES = 100_000
BUILTIN_STAGES = ("deploy", "monitor")
"""The stages a full run adds when `[deploy]` is set."""
EXECUTORS = ("local", "ray")
"""What a stage's ``executor`` may name; `mlci_tui.execution.executors.KINDS` runs each."""
MAX_OUTS_SHOWN = 3
"""Outs named where a stage is said to need another for them; the rest are counted."""


@section
class PipelineConfig(NamedTuple):
    """The `[pipeline]` table."""

    name: str = setting(
        Text(),
        "shown in summaries and the dashboard",
        from_scope(lambda scope: scope.root.name or "pipeline"),
    )
    state_dir: Path = setting(
        RelativePath(), "the run store", from_scope(lambda scope: scope.root / ".mlci")
    )
    max_parallel: int = setting(
        Integer(1, 1024),
        "how many independent stages run at once",
        from_scope(lambda scope: os.cpu_count() or 1),
    )
    secrets: tuple[str, ...] = setting(
        Secrets(), "environment variables whose values are masked as *** everywhere", ()
    )
    kill_grace: float = setting(
        Duration(zero=True), "time between SIGTERM and SIGKILL when a stage is stopped", 5.0
    )
    env: Mapping[str, str] = setting(ENV, "extra environment for every stage", NO_STRINGS)
    executor: str = setting(Choice(*EXECUTORS), "where stages that do not say run", "local")
    cache_dir: Path = setting(
        RelativePath(),
        "where stages' outs are cached (default: state_dir/cache); a shared filesystem"
        " shares them between machines",
        lambda scope, values: values["state_dir"] / "cache",
    )
    params_file: Path | None = setting(
        RelativePath(), "a TOML file of params, instead of a [params] table", None
    )


@section
class StageConfig(NamedTuple):
    """One `[stages.NAME]` table."""

    name: str
    command: CommandLine = setting(COMMAND, "a shell command or an argv array")
    cwd: Path = setting(RelativePath(), "working directory (absolute once read)", HERE)
    needs: tuple[str, ...] = setting(Strings(), "stages that must pass before this one", ())
    env: Mapping[str, str] = setting(ENV, "extra environment, on top of the pipeline's", NO_STRINGS)
    timeout: float | None = setting(
        DURATION, "after this the stage's process tree is stopped and the stage fails", None
    )
    retries: int = setting(
        Integer(0, 100), "extra attempts after a failed exit or a timeout (not a gate)", 0
    )
    artifact: Path | None = setting(
        RelativePath("cwd"), "the file or directory the stage produces (relative to cwd)", None
    )
    gates: tuple[Check, ...] = setting(
        CHECKS, "metric checks made when the stage exits 0; a failed one fails it", ()
    )
    executor: str = setting(
        Choice(*EXECUTORS),
        "local (a subprocess here) or ray (a Ray job)",
        from_scope(lambda scope: scope.inherited["executor"]),
    )
    deps: tuple[Path | Glob, ...] = setting(
        ProjectPaths(globs=True),
        "files, directories and globs (relative to cwd) whose content the stage reads;"
        " with them, a stage whose inputs did not change is cached",
        (),
    )
    params: tuple[str, ...] = setting(
        StageParams(), 'params the stage reads (names, or a table of them like "train")', ()
    )
    outs: tuple[Path, ...] = setting(
        ProjectPaths(globs=False),
        "files or directories the stage writes (relative to cwd): removed before it runs,"
        " cached after it passes, restored when it is cached",
        (),
    )
    always: bool = setting(Boolean(), "run even when the inputs did not change", False)
    inferred: Mapping[str, tuple[Path, ...]] = MappingProxyType({})
    """The stages at the end of ``needs`` that the config does not name: those whose
    outs (or artifact) a dep of this one reads, with those outs (`dag.reads`)."""

    @property
    def cacheable(self) -> bool:
        """Whether the stage may be cached: it declares deps and is not ``always``."""
        return bool(self.deps) and not self.always

    @property
    def products(self) -> tuple[Path, ...]:
        """What the stage leaves for others: its outs, and its artifact."""
        if self.artifact is None or self.artifact in self.outs:
            return self.outs
        return (*self.outs, self.artifact)

    def needs_text(self, root: Path) -> tuple[str, ...]:
        """Each stage it needs, as `need_text` shows it."""
        return tuple(need_text(need, self.inferred.get(need, ()), root) for need in self.needs)

    @property
    def removed_before_run(self) -> tuple[Path, ...]:
        """Its outs, and the artifact of a cacheable stage (cached with them, by hard
        link: a command that rewrote it in place would change the cached copy)."""
        return self.products if self.cacheable else self.outs


@section
class DeployConfig(NamedTuple):
    """The `[deploy]` table: how any model version is deployed (and rolled back)."""

    command: CommandLine = setting(COMMAND, "deploys the version in MLCI_MODEL_PATH")
    cwd: Path = setting(RelativePath(), "working directory", HERE)
    timeout: float | None = setting(
        DURATION, "a deploy that takes longer is stopped and recorded as failed", None
    )
    env: Mapping[str, str] = setting(ENV, "extra environment", NO_STRINGS)


@section
class MonitorConfig(NamedTuple):
    """The `[monitor]` table: checks of the live model's metrics."""

    # Keys are read in this order, so it decides which of two mistakes is reported.
    auto_rollback: bool | Literal["ask"] = setting(
        AutoRollback(), "what a failed analysis does: roll back, only alert, or ask", True
    )
    checks: tuple[Check, ...] = setting(
        CHECKS, "what a sample must pass", example='(e.g. ["accuracy >= 0.9"])'
    )
    interval: float = setting(DURATION, "time between samples", 5.0)
    command: CommandLine = setting(COMMAND, "checks the version in MLCI_MODEL_PATH")
    cwd: Path = setting(RelativePath(), "working directory", HERE)
    samples: int = setting(Integer(1, 10_000), "samples in the post-deploy analysis", 3)
    failures_before_rollback: int = setting(
        Integer(1, 10_000), "failed samples in a row that fail the analysis", 3
    )
    timeout: float | None = setting(DURATION, "a sample that takes longer fails", None)
    env: Mapping[str, str] = setting(ENV, "extra environment", NO_STRINGS)


@section
class AlertsConfig(NamedTuple):
    """The `[alerts]` table: a command told about failures and rollbacks."""

    command: CommandLine = setting(COMMAND, "told about failures and rollbacks")
    cwd: Path = setting(RelativePath(), "working directory", HERE)
    timeout: float | None = setting(DURATION, "an alert command that takes longer is stopped", 30.0)
    env: Mapping[str, str] = setting(ENV, "extra environment", NO_STRINGS)


@section
class MlflowConfig(NamedTuple):
    """The `[mlflow]` table: an MLflow tracking server the store is mirrored into."""

    tracking_uri: str = setting(
        TrackingUri(),
        "where runs and versions are mirrored: sqlite:///PATH (beside the config) or http(s)://",
        example='"sqlite:///mlflow.db"',
    )
    experiment: str | None = setting(
        Text(), "the experiment runs go to (default: the pipeline's name)", None
    )
    model_name: str | None = setting(
        ModelName(), "the registered model versions go to (default: the pipeline's name)", None
    )
    alias: str = setting(Alias(), "the alias moved to the live version", "production")
    timeout: float | None = setting(
        DURATION,
        "how long mirroring may take after a run, deploy or rollback; what is left,"
        " `mlci mlflow sync` pushes later",
        60.0,
    )


@section
class RegistryConfig(NamedTuple):
    """The `[registry]` table: how model versions are kept and shown."""

    keep_versions: int = setting(
        Integer(1, 100_000),
        "artifacts kept; older ones are pruned (never the live or last known-good one,"
        " nor one a deploy in progress uses)",
        20,
    )
    key_metrics: tuple[str, ...] = setting(
        Strings(),
        "the metric columns of version tables, as stage.name or a bare name (the metric of"
        " the stage that gates it, else of the artifact's stage) (default: the gated metrics)",
        (),
    )


@section
class RuntimeEnvConfig(NamedTuple):
    """The `[executors.ray.runtime_env]` table: Ray's runtime environment."""

    working_dir: str | None = setting(
        WorkingDir(), "a directory (relative to the config) or a URI", None
    )
    pip: tuple[str, ...] | None = setting(Strings(), "requirements to install", None)
    env_vars: Mapping[str, str] = setting(ENV, "environment of the job", NO_STRINGS)

    def for_ray(self) -> dict[str, Any]:
        """As Ray's ``runtime_env`` argument: only what was given."""
        runtime_env: dict[str, Any] = {}
        if self.working_dir is not None:
            runtime_env["working_dir"] = self.working_dir
        if self.pip is not None:
            runtime_env["pip"] = list(self.pip)
        if self.env_vars:
            runtime_env["env_vars"] = dict(self.env_vars)
        return runtime_env


@section
class RayConfig(NamedTuple):
    """The `[executors.ray]` table: the cluster that `executor = "ray"` stages run on."""

    runtime_env: RuntimeEnvConfig = setting(
        Subtable(RuntimeEnvConfig), "Ray's runtime environment", RuntimeEnvConfig()
    )
    address: str | None = setting(
        Text(), "the Ray dashboard's address (default: $RAY_ADDRESS)", None
    )
    entrypoint_num_cpus: float | None = setting(
        Number(MAX_RESOURCES), "CPUs reserved for the command", None
    )
    entrypoint_num_gpus: float | None = setting(
        Number(MAX_RESOURCES), "GPUs reserved for the command", None
    )
    entrypoint_memory: int | None = setting(
        Integer(0, 2**62), "bytes of memory reserved for the command", None
    )
    metadata: Mapping[str, str] = setting(
        StringTable(any_names=True), "stored with each job mlci submits", NO_STRINGS
    )


@section
class ExecutorsConfig(NamedTuple):
    """The `[executors]` table: settings of executors other than the local one."""

    ray: RayConfig | None = setting(Subtable(RayConfig), "the Ray cluster", None)


def need_text(need: str, outs: Sequence[Path], root: Path) -> str:
    """A stage needed, as a person reads it: ``prep``, or, when it is needed for its
    outs, ``prep (its out data/clean.csv)``."""
    if not outs:
        return need
    shown = [os.path.relpath(out, root) for out in outs[:MAX_OUTS_SHOWN]]
    if len(outs) > MAX_OUTS_SHOWN:
        shown.append(f"{len(outs) - MAX_OUTS_SHOWN} more")
    return f"{need} (its out{'s' * (len(outs) > 1)} {', '.join(shown)})"
