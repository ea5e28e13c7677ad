"""`load_config`: a `config.toml` read into a `Config`, the record of the whole file,
valid; and the copies of one that ``--set`` (`with_params`) and masking make.

`Config`'s fields are the top-level tables, read in the order they are declared:
`[stages]` once `[pipeline]` and `[params]` are, each stage after what it needs
(`Stages`). The rules across the file (`rules`) are checked once it is all read.
"""

# No `from __future__ import annotations` here, unlike everywhere else: the records'
# annotations are then evaluated once as types, where typing.NamedTuple would
# compile each one from a string at every start-up (3 M instructions).

import os
import re
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple

from mlci_tui import dag
from mlci_tui.checks import Check
from mlci_tui.config.params import (
    Params,
    ParamValue,
    masked_params,
    param_text,
    param_variable,
    params_from_file,
)
from mlci_tui.config.rules import (
    check_executors,
    check_needs,
    check_out_links,
    check_outs,
    check_pipeline_stages,
    check_secret_values,
    with_metric_stages,
    with_reads,
)
from mlci_tui.config.schema import (
    KeyPath,
    Scope,
    Subtable,
    Table,
    empty_table,
    load_document,
    read_section,
    section,
    setting,
)
from mlci_tui.config.tables import (
    BUILTIN_STAGES,
    MAX_OUTS_SHOWN,
    AlertsConfig,
    DeployConfig,
    ExecutorsConfig,
    MlflowConfig,
    MonitorConfig,
    PipelineConfig,
    RegistryConfig,
    StageConfig,
)
from mlci_tui.masking import SecretMasker
from mlci_tui.metric_keys import MONITOR, MetricKey, split

STAGE_NAME = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}"
STAGE_NAME_RULE = 'a stage name may use letters, digits, "_", "-" and "." (at most 64 characters)'


class Stages:
    """The `[stages]` table: every stage, in an order where each comes after what it needs."""

    def read(
        self, table: Table, key: str, value: Any, values: Mapping[str, Any], scope: Scope
    ) -> Mapping[str, StageConfig]:
        stages_table = table.table(key)
        assert stages_table is not None
        if not stages_table.data:
            raise _no_stages(table)
        pipeline: PipelineConfig = values["pipeline"]
        stage_scope = scope.inheriting(executor=pipeline.executor, params=values["params"])
        stages: dict[str, StageConfig] = {}
        for name in stages_table.data:
            if not re.fullmatch(STAGE_NAME, name):
                raise stages_table.error(name, STAGE_NAME_RULE)
            stage_table = stages_table.table(name)
            assert stage_table is not None
            stages[name] = read_section(StageConfig, stage_table, stage_scope, name=name)
        stages_table.done()
        check_needs(scope, stages)
        check_outs(scope, pipeline, stages)
        check_out_links(scope, stages)
        stages = with_reads(scope, stages)
        needs = {name: stage.needs for name, stage in stages.items()}
        return {name: stages[name] for name in dag.topological_order(needs)}


class Edge(NamedTuple):
    """One edge of the stage graph: ``target`` runs after ``source``, and why."""

    source: str
    target: str
    kind: Literal["needs", "out", "builtin"]
    """``needs``: named in ``needs``; ``out``: a dep of ``target`` reads ``outs``, which
    ``source`` makes; ``builtin``: mlci's deploy after every stage, monitor after it."""
    outs: tuple[Path, ...] = ()

    def why(self, root: Path, shown: int = MAX_OUTS_SHOWN) -> str:
        """Why ``target`` runs after ``source``, in words; at most ``shown`` outs named
        (relative to ``root``)."""
        if self.kind == "needs":
            return "named in needs"
        if self.kind == "out":
            paths = [os.path.relpath(out, root) for out in self.outs[:shown]]
            if len(self.outs) > shown:
                paths.append(f"{len(self.outs) - shown} more")
            return f"a dep reads its out{'s' * (len(self.outs) > 1)} {', '.join(paths)}"
        if self.target == BUILTIN_STAGES[0]:
            return "deploys the run's version once every stage passed"
        return "checks each version deployed"


def _no_stages(top: Table) -> Exception:
    return top.error(
        "stages", "the pipeline has no stages; add a [stages.NAME] table with a command"
    )


def _no_stages_default(scope: Scope, values: Mapping[str, Any]) -> Any:
    raise _no_stages(Table(scope.document, (), {}))


@section
class Config(NamedTuple):
    """A whole, valid `config.toml`."""

    path: Path
    """The file, absolute."""
    root: Path
    """The directory relative paths in the file are resolved against."""
    pipeline: PipelineConfig = setting(
        Subtable(PipelineConfig), "the pipeline as a whole", empty_table(PipelineConfig, "pipeline")
    )
    params: Mapping[str, ParamValue] = setting(
        Params(), "values stages read, by dotted name", params_from_file
    )
    stages: Mapping[str, StageConfig] = setting(
        Stages(),
        "every stage, in an order where each comes after what it needs",
        _no_stages_default,
    )
    executors: ExecutorsConfig = setting(
        Subtable(ExecutorsConfig), "executors other than the local one", ExecutorsConfig()
    )
    deploy: DeployConfig | None = setting(Subtable(DeployConfig), "how a version goes live", None)
    monitor: MonitorConfig | None = setting(
        Subtable(MonitorConfig), "checks of the live model", None
    )
    alerts: AlertsConfig | None = setting(Subtable(AlertsConfig), "who is told", None)
    mlflow: MlflowConfig | None = setting(
        Subtable(MlflowConfig), "an MLflow the store is mirrored into", None
    )
    registry: RegistryConfig = setting(
        Subtable(RegistryConfig), "how versions are kept and shown", RegistryConfig()
    )

    @property
    def order(self) -> list[str]:
        return list(self.stages)

    @property
    def artifact_stage(self) -> StageConfig | None:
        """The stage whose artifact becomes a model version, if any."""
        return next((s for s in self.stages.values() if s.artifact is not None), None)

    def secret_values(self, environ: Mapping[str, str]) -> list[str]:
        """The value of each of `pipeline.secrets`: from the environment mlci runs in,
        and wherever the config's own env tables set one (a command sees those too)."""
        names = self.pipeline.secrets
        values = [environ.get(name, "") for name in names]
        for _, env in self.env_tables():
            values += [env[name] for name in names if name in env]
        return values

    def env_tables(self) -> list[tuple[KeyPath, Mapping[str, str]]]:
        """Every env table of the config, with where it is."""
        tables: list[tuple[KeyPath, Mapping[str, str]]] = [(("pipeline", "env"), self.pipeline.env)]
        tables += [(("stages", name, "env"), stage.env) for name, stage in self.stages.items()]
        for key, part in (
            ("deploy", self.deploy),
            ("monitor", self.monitor),
            ("alerts", self.alerts),
        ):
            if part is not None:
                tables.append(((key, "env"), part.env))
        if self.executors.ray is not None:
            where = ("executors", "ray", "runtime_env", "env_vars")
            tables.append((where, self.executors.ray.runtime_env.env_vars))
        return tables

    def selected(self, targets: Collection[str] = ()) -> dict[str, StageConfig]:
        """The stages a run includes, in order: all, or ``targets`` and what they need."""
        if not targets:
            return dict(self.stages)
        wanted = dag.upstream({n: s.needs for n, s in self.stages.items()}, list(targets))
        return {name: stage for name, stage in self.stages.items() if name in wanted}

    @property
    def edges(self) -> list[Edge]:
        """The edges of a full run's graph, by target in order, each target's in the
        order of its ``needs``; with mlci's deploy and monitor when configured."""
        found = [
            Edge(need, name, "out", stage.inferred[need])
            if need in stage.inferred
            else Edge(need, name, "needs")
            for name, stage in self.stages.items()
            for need in stage.needs
        ]
        if self.deploy is not None and self.artifact_stage is not None:
            deploy, monitor = BUILTIN_STAGES
            found += [Edge(name, deploy, "builtin") for name in self.stages]
            if self.monitor is not None:
                found.append(Edge(deploy, monitor, "builtin"))
        return found

    def edges_into(self) -> dict[str, list[Edge]]:
        """Each stage of a full run (`edges`), its own first, with the edges into it."""
        into: dict[str, list[Edge]] = {name: [] for name in self.stages}
        for edge in self.edges:
            into.setdefault(edge.target, []).append(edge)
        return into

    @property
    def layers(self) -> dict[str, int]:
        """Each stage of a full run (`edges`) by its layer (`dag.layers`), in run order."""
        into = self.edges_into()
        return dag.layers({name: [e.source for e in edges] for name, edges in into.items()})

    def incoming(self) -> dict[str, list[tuple[str, str]]]:
        """For each stage in `layers`' order, what it runs after and why, as people
        read it: (stage, why) rows, the deploy's edges from every stage as one."""
        rows: dict[str, list[tuple[str, str]]] = {name: [] for name in self.layers}
        for edge in self.edges:
            if edge.kind == "builtin" and edge.source in self.stages:
                rows[edge.target] = [("every stage", edge.why(self.root))]
            else:
                rows[edge.target].append((edge.source, edge.why(self.root)))
        return rows

    @property
    def gates(self) -> tuple[tuple[MetricKey, Check], ...]:
        """Every stage's gates, in stage order, each with the metric it checks."""
        return tuple(
            (MetricKey(g.stage or s.name, g.metric), g)
            for s in self.stages.values()
            for g in s.gates
        )

    @property
    def metric_checks(self) -> tuple[tuple[MetricKey, Check], ...]:
        """`gates`, then the monitor's checks, each with the metric it checks: what a
        comparison's GATE column holds a run's metrics to (the monitor's too, which
        decided whether its version stayed live)."""
        checks = () if self.monitor is None else self.monitor.checks
        return (*self.gates, *((MetricKey(MONITOR, c.metric), c) for c in checks))

    @property
    def key_metrics(self) -> tuple[MetricKey, ...]:
        """The metric columns of version tables: `registry.key_metrics`, else the metrics
        gates check (the monitor's checks are of live samples, which versions lack); a
        metric named twice (``c`` and the ``a.b.c`` it resolves to) is one column, the first."""
        if not self.registry.key_metrics:
            return tuple(dict.fromkeys(key for key, _ in self.gates))
        return tuple(dict.fromkeys(self.metric_key(text) for text in self.registry.key_metrics))

    def metric_key(self, text: str) -> MetricKey:
        """``evaluate.accuracy``; a bare name is the metric of the first stage whose gates
        check it, else of the artifact's stage."""
        stage, name = split(text, [*self.stages, *BUILTIN_STAGES])
        if stage is not None:
            return MetricKey(stage, name)
        gated = next((key for key, _ in self.gates if key.name == name), None)
        if gated is not None:
            return gated
        owner = self.artifact_stage or next(iter(self.stages.values()))
        return MetricKey(owner.name, name)


def load_config(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> Config:
    """Read, parse and validate a config file.

    ``environ`` supplies the values of `pipeline.secrets`, which are checked
    for length; it defaults to ``os.environ``.
    """
    label = os.fspath(path)
    document, data = load_document(label)
    absolute = Path(label).resolve()
    scope = Scope(document, absolute.parent, os.environ if environ is None else environ)
    top = Table(document, (), data)
    config = read_section(Config, top, scope, path=absolute, root=absolute.parent)
    check_executors(scope, data, config.stages)
    check_pipeline_stages(scope, config.stages, config.deploy, config.monitor)
    stages, monitor = with_metric_stages(scope, config.stages, config.monitor)
    config = config._replace(stages=stages, monitor=monitor)
    check_secret_values(scope, config.env_tables(), config.pipeline.secrets)
    # Masked once, here: the name is shown by every command and recorded with each run.
    name = SecretMasker(config.secret_values(scope.environ)).mask_text(config.pipeline.name)
    return config._replace(pipeline=config.pipeline._replace(name=name))


def param_environment(config: Config, stage: StageConfig) -> dict[str, str]:
    """The stage's params as variables: ``train.lr`` → ``MLCI_PARAM_TRAIN_LR``."""
    return {param_variable(name): param_text(config.params[name]) for name in stage.params}


def with_params(config: Config, sets: Sequence[str]) -> Config:
    """``config`` with the params ``--set NAME=VALUE`` gives (`param_sets.set_params`)."""
    # Imported here: reading --set values is the one part of the config a run without one
    # never needs, and start-up compiles every module it imports.
    from mlci_tui.config.param_sets import set_params

    return config._replace(params=set_params(config.params, sets))


def with_masked_params(config: Config, masker: SecretMasker) -> Config:
    """``config`` with every secret in a param's value masked, as it is everywhere."""
    if not masker:
        return config
    return config._replace(params=masked_params(config.params, masker))
