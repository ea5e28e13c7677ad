"""`config.toml` → validated, immutable records: the schema, declared once.

Each table is a record below whose fields are its keys: a `setting` gives
each one's reader, default and meaning, and `schema` reads the file
against them. The schema is strict: unknown keys, wrong types and impossible
values are errors, each one line naming the file, the line of the offending
key, the key path and what was expected::

    config.toml:14: stages.train.timeout: expected a duration like "90s" or "5m", got "5x"

The rules that span tables (needs, the needs that reading another stage's outs
makes, cycles, one artifact, what [deploy] and [monitor] need) are checked once
every table is read.
"""

# No `from __future__ import annotations` here, unlike everywhere else: the records'
# annotations are then evaluated once as types, where typing.NamedTuple would
# compile each one from a string at every start-up (3 M instructions).

import itertools
import math
import os
import re
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

from mlci_tui import dag
from mlci_tui.checks import Check, parse_check
from mlci_tui.config.schema import (
    ENV_NAME,
    NO_STRINGS,
    Boolean,
    Choice,
    Document,
    Integer,
    KeyPath,
    Number,
    RelativePath,
    Scope,
    Strings,
    StringTable,
    Subtable,
    Table,
    Text,
    close_matches,
    empty_table,
    from_scope,
    load_document,
    read_section,
    section,
    setting,
    show,
)
from mlci_tui.globs import Glob
from mlci_tui.masking import SecretMasker
from mlci_tui.metric_keys import MONITOR, MetricKey, split
from mlci_tui.units import parse_duration

MIN_SECRET_LENGTH = 4
STAGE_NAME = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}"
STAGE_NAME_RULE = 'a stage name may use letters, digits, "_", "-" and "." (at most 64 characters)'
DURATION_EXAMPLE = 'a duration like "90s" or "5m"'
# Longer than any stage, deploy or sample should take, and far below what the
# event loop's and the kernel's timers can hold.
MAX_DURATION_S = 30 * 24 * 3600.0
MAX_RESOURCES = 100_000
BUILTIN_STAGES = ("deploy", "monitor")
"""The stages a full run adds when `[deploy]` is set."""
EXECUTORS = ("local", "ray")
"""What a stage's ``executor`` may name; `mlci_tui.execution.executors.KINDS` runs each."""
RAY_INSTALL = "pip install -e '.[ray]'"

CommandLine = str | tuple[str, ...]
"""A shell command (run by ``/bin/sh -c``) or an argv array (run directly)."""
ParamValue = str | int | float | bool | tuple[Any, ...]
"""A param's value: a TOML string, number or boolean, or an array of them."""
PARAM_SEGMENT = r"[A-Za-z0-9_-]+"
PARAM_VARIABLE = "MLCI_PARAM_"
GLOB_CHARS = frozenset("*?[")
MAX_OUTS_SHOWN = 3
"""Outs named where a stage is said to need another for them; the rest are counted."""


# The kinds of value particular to mlci ----------------------------------------


class _Command:
    def read(
        self, table: Table, key: str, value: Any, values: Mapping[str, Any], scope: Scope
    ) -> CommandLine:
        if isinstance(value, str) and value.strip():
            return value
        if (
            isinstance(value, list)
            and value
            and all(isinstance(part, str) for part in value)
            and value[0].strip()
        ):
            return tuple(value)
        raise table.expected(key, "a shell command string or a non-empty array of strings", value)


class _Duration:
    def __init__(self, *, zero: bool = False) -> None:
        self.zero = zero

    def read(
        self, table: Table, key: str, value: Any, values: Mapping[str, Any], scope: Scope
    ) -> float:
        try:
            seconds = parse_duration(value)
        except ValueError:
            raise table.expected(key, DURATION_EXAMPLE, value) from None
        if seconds == 0 and not self.zero:
            raise table.expected(key, f"{DURATION_EXAMPLE}, longer than zero", value)
        if seconds > MAX_DURATION_S:
            raise table.expected(key, f"{DURATION_EXAMPLE}, at most 30 days", value)
        return seconds


class _Checks:
    def read(
        self, table: Table, key: str, value: Any, values: Mapping[str, Any], scope: Scope
    ) -> tuple[Check, ...]:
        checks = []
        for index, text in enumerate(Strings().read(table, key, value, values, scope)):
            try:
                checks.append(parse_check(text))
            except ValueError as error:
                raise table.error((key, index), f"{error}, got {show(text)}") from None
        return tuple(checks)


class _Secrets:
    """Names of environment variables; a value too short to mask is refused."""

    def read(
        self, table: Table, key: str, value: Any, values: Mapping[str, Any], scope: Scope
    ) -> tuple[str, ...]:
        names = Strings().read(table, key, value, values, scope)
        for index, name in enumerate(names):
            if not re.fullmatch(ENV_NAME, name):
                raise table.expected((key, index), "an environment variable name", name)
            secret = scope.environ.get(name, "")
            # An empty value masks nothing and is treated as unset.
            if 0 < len(secret) < MIN_SECRET_LENGTH:
                raise table.error(
                    (key, index),
                    f"the value of ${name} is shorter than {MIN_SECRET_LENGTH} characters;"
                    " masking it would garble every log",
                )
        return names


class _AutoRollback:
    def read(
        self, table: Table, key: str, value: Any, values: Mapping[str, Any], scope: Scope
    ) -> bool | Literal["ask"]:
        if isinstance(value, bool) or value == "ask":
            return value
        raise table.expected(key, 'true, false or "ask"', value)


class _WorkingDir:
    """A local directory (relative to the config), or a URI Ray fetches itself."""

    def read(
        self, table: Table, key: str, value: Any, values: Mapping[str, Any], scope: Scope
    ) -> str:
        text = Text().read(table, key, value, values, scope)
        if "://" in text:
            return text
        directory = (scope.root / text).resolve()
        if not directory.is_dir():
            raise table.error(key, f"{directory} is not a directory")
        return str(directory)


TRACKING_SCHEMES = ("sqlite", "http", "https", "postgresql", "mysql", "mssql", "databricks")
MLFLOW_ALIAS = re.compile(r"[A-Za-z0-9_-]{1,255}")


class _TrackingUri:
    """An MLflow tracking URI; a relative SQLite path is resolved beside the config.
    Credentials never go in it: they would reach the store and the screen."""

    def read(
        self, table: Table, key: str, value: Any, values: Mapping[str, Any], scope: Scope
    ) -> str:
        text = Text().read(table, key, value, values, scope).strip()
        if text.lower() == "databricks":
            return text
        scheme, colon, rest = text.partition(":")
        scheme = scheme.split("+")[0].lower()  # postgresql+psycopg2 and the like
        if not colon or scheme not in TRACKING_SCHEMES:
            names = ", ".join(f"{s}:" for s in TRACKING_SCHEMES)
            raise table.error(key, f"expected a tracking URI starting with one of {names}")
        host = rest[2:].split("/", 1)[0] if rest.startswith("//") else ""
        if scheme in ("http", "https") and "@" in host:
            raise table.error(
                key,
                "credentials do not belong in the URI: set MLFLOW_TRACKING_TOKEN or"
                " MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD instead",
            )
        if scheme != "sqlite":
            return text
        if not rest.startswith("///") or rest == "///":
            raise table.error(
                key, 'expected "sqlite:///PATH" (a relative PATH is beside the config)'
            )
        path = rest[3:]
        if path == ":memory:":
            raise table.error(key, "an in-memory database would forget everything at once")
        return "sqlite:///" + str((scope.root / path).resolve())


class _ModelName:
    """A registered model's name, quoted as is in MLflow's search filters."""

    def read(
        self, table: Table, key: str, value: Any, values: Mapping[str, Any], scope: Scope
    ) -> str:
        text = Text().read(table, key, value, values, scope)
        if any(mark in text for mark in "'\"`"):
            raise table.error(key, "a model name may not hold quotes or backticks")
        return text


_URI_PASSWORD = re.compile(r"^([^:/]+://[^:/@]*:)([^@/]*)@")


def uri_password(uri: str) -> str | None:
    """The password of a database URI (``user:PASSWORD@host``), if it has one."""
    found = _URI_PASSWORD.match(uri)
    return found.group(2) if found and found.group(2) else None


def redacted_uri(uri: str) -> str:
    """``uri`` with the password of a database URI as ***, for the store and the screen."""
    return _URI_PASSWORD.sub(r"\1***@", uri)


class _Alias:
    """A Model Registry alias MLflow accepts."""

    def read(
        self, table: Table, key: str, value: Any, values: Mapping[str, Any], scope: Scope
    ) -> str:
        text = Text().read(table, key, value, values, scope)
        if not MLFLOW_ALIAS.fullmatch(text):
            raise table.error(key, 'an alias may use letters, digits, "_" and "-"')
        if text.lower() == "latest" or re.fullmatch(r"[vV]\d+", text):
            raise table.error(key, f'MLflow keeps "{text}" for itself: choose another alias')
        return text


class _Params:
    """The `[params]` table: nested tables of values, known by dotted names (``train.lr``)."""

    def read(
        self, table: Table, key: str, value: Any, values: Mapping[str, Any], scope: Scope
    ) -> Mapping[str, ParamValue]:
        pipeline: PipelineConfig = values["pipeline"]
        if pipeline.params_file is not None:
            raise table.error(
                key, "params come from [pipeline] params_file or from [params], not both"
            )
        if not isinstance(value, dict):
            raise table.expected(key, "a table", value)
        return _flatten_params(scope.document, value, (key,), 1)


def _params_from_file(scope: Scope, values: Mapping[str, Any]) -> Mapping[str, ParamValue]:
    """The default of `[params]`: the params file's, or none."""
    pipeline: PipelineConfig = values["pipeline"]
    if pipeline.params_file is None:
        return NO_PARAMS
    if not pipeline.params_file.is_file():
        raise scope.document.error(
            ("pipeline", "params_file"), f"{pipeline.params_file} is not a file"
        )
    document, data = load_document(str(pipeline.params_file))
    return _flatten_params(document, data, (), 0)


def _flatten_params(
    document: Document, data: Mapping[str, Any], path: KeyPath, skip: int
) -> Mapping[str, ParamValue]:
    params: dict[str, ParamValue] = {}
    variables: dict[str, str] = {}

    def walk(table: Mapping[str, Any], where: KeyPath) -> None:
        for name, item in table.items():
            key_path = (*where, name)
            if not re.fullmatch(PARAM_SEGMENT, name):
                raise document.error(key_path, 'a param name may use letters, digits, "_" and "-"')
            if isinstance(item, dict):
                walk(item, key_path)
                continue
            full = ".".join(str(part) for part in key_path[skip:])
            params[full] = _param_value(document, key_path, item)
            variable = param_variable(full)
            if variable in variables:
                raise document.error(
                    key_path, f"{full} and {variables[variable]} would both be ${variable}"
                )
            variables[variable] = full

    walk(data, path)
    return MappingProxyType(params)


def _param_value(document: Document, where: KeyPath, value: Any) -> ParamValue:
    try:
        return _checked_param(value)
    except _ParamProblem as problem:
        raise document.error((*where, *problem.where), problem.message) from None


class _ParamProblem(Exception):
    """A value TOML can hold that a param cannot: where in it (array indexes), and why."""

    def __init__(self, where: tuple[int, ...], message: str) -> None:
        super().__init__(message)
        self.where = where
        self.message = message


def _checked_param(value: Any) -> ParamValue:
    """A value read as TOML as a param holds it (arrays as tuples), held to the rules
    of params: a string (without NUL), a finite number, an integer of 64 bits, a
    boolean, or an array of one kind of them (integers and floats are one kind; in
    an array of arrays, the values at every depth)."""
    if isinstance(value, list):
        items: list[ParamValue] = []
        for index, item in enumerate(value):
            try:
                items.append(_checked_param(item))
            except _ParamProblem as problem:
                raise _ParamProblem((index, *problem.where), problem.message) from None
        stranger = _stranger(items)
        if stranger is not None:
            index, item, first = stranger
            raise _ParamProblem(
                (index,),
                f"expected {_KIND_WORDS[_kind(first)]} like the array's first item,"
                f" got {_shown(item)}",
            )
        return tuple(items)
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise _ParamProblem((), f"expected an integer of 64 bits, got {_shown(value)}")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _ParamProblem((), f"expected a finite number, got {show(value)}")
        return value
    if isinstance(value, str):
        if "\0" in value:
            raise _ParamProblem((), "expected a string without a NUL character (\\u0000)")
        return value
    raise _ParamProblem(
        (), f"expected a string, number, boolean or an array of them, got {show(value)}"
    )


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_KIND_WORDS = {
    "boolean": "a boolean",
    "number": "a number",
    "string": "a string",
    "array": "an array",
}


def _stranger(items: list[ParamValue]) -> tuple[int, ParamValue, ParamValue] | None:
    """The first item not of the kind of the first (its index, it, and that first):
    an array's items are all arrays or all not, and the values in it, at any depth,
    are of one kind."""
    for index, item in enumerate(items):
        if _kind(item) != _kind(items[0]):
            return index, item, items[0]
    leaves = [(index, leaf) for index, item in enumerate(items) for leaf in _leaves(item)]
    for index, leaf in leaves:
        if _kind(leaf) != _kind(leaves[0][1]):
            return index, leaf, leaves[0][1]
    return None


def _leaves(value: ParamValue) -> list[ParamValue]:
    if isinstance(value, tuple):
        return [leaf for item in value for leaf in _leaves(item)]
    return [value]


def _kind(value: ParamValue) -> str:
    """What the rules of params tell apart in an array."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return "string" if isinstance(value, str) else "array"


def _shown(value: Any) -> str:
    """A value in a message; an integer too long to read is said by its length."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**20:
        return f"an integer of {len(str(abs(value)))} digits"
    return show(value)


def param_variable(name: str) -> str:
    """The variable a param reaches a command as: ``train.lr`` → ``MLCI_PARAM_TRAIN_LR``."""
    return PARAM_VARIABLE + re.sub(r"[.-]", "_", name).upper()


class _StageParams:
    """Params a stage uses: names in `[params]`, or a table of them (``train``)."""

    def read(
        self, table: Table, key: str, value: Any, values: Mapping[str, Any], scope: Scope
    ) -> tuple[str, ...]:
        known: Mapping[str, ParamValue] = scope.inherited["params"]
        chosen: list[str] = []
        for index, name in enumerate(Strings().read(table, key, value, values, scope)):
            found = [p for p in known if p == name or p.startswith(name + ".")]
            if not found:
                close = close_matches(name, list(known))
                hint = (
                    f'; did you mean "{close[0]}"?'
                    if close
                    else (
                        f" (params: {', '.join(known)})"
                        if known
                        else "; there is no [params] table"
                    )
                )
                raise table.error((key, index), f"unknown param {show(name)}{hint}")
            chosen += [p for p in found if p not in chosen]
        return tuple(chosen)


class _ProjectPaths:
    """Paths relative to the stage's ``cwd`` that stay inside the project (the config's
    directory); globs (``data/*.csv``, ``src/**/*.py``) only where ``globs``."""

    def __init__(self, *, globs: bool) -> None:
        self.globs = globs

    def read(
        self, table: Table, key: str, value: Any, values: Mapping[str, Any], scope: Scope
    ) -> tuple[Path | Glob, ...]:
        paths: list[Path | Glob] = []
        for index, text in enumerate(Strings().read(table, key, value, values, scope)):
            where = (key, index)
            if not text.strip():
                raise table.expected(where, "a path", text)
            # Whether it is a pattern is in what was written, not in where the project is.
            parts = Path(text).parts
            magic = next((i for i, part in enumerate(parts) if GLOB_CHARS & set(part)), None)
            if magic is not None and not self.globs:
                raise table.error(
                    where, f"an out is a file or a directory, not a pattern: {show(text)}"
                )
            literal = parts if magic is None else parts[:magic]
            path = Path(os.path.normpath(values["cwd"].joinpath(*literal)))
            if not _inside(path, scope.root):
                raise table.error(where, f"{show(text)} is outside the project ({scope.root})")
            item: Path | Glob = path
            if magic is not None:
                if ".." in parts[magic:]:
                    raise table.error(where, f"a pattern may not climb with ..: {show(text)}")
                item = Glob(path, tuple(parts[magic:]))
            if item in paths:
                raise table.error(where, f"{show(text)} is listed twice")
            paths.append(item)
        return tuple(paths)


def _inside(path: Path, directory: Path) -> bool:
    return path == directory or directory in path.parents


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


def is_glob(dep: Path | Glob) -> bool:
    return isinstance(dep, Glob)


COMMAND = _Command()
DURATION = _Duration()
NO_PARAMS: Mapping[str, ParamValue] = MappingProxyType({})
CHECKS = _Checks()
ENV = StringTable()
HERE = from_scope(lambda scope: scope.root)
"""The default working directory: the config's."""


# The tables --------------------------------------------------------------------


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
        _Secrets(), "environment variables whose values are masked as *** everywhere", ()
    )
    kill_grace: float = setting(
        _Duration(zero=True), "time between SIGTERM and SIGKILL when a stage is stopped", 5.0
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
        _ProjectPaths(globs=True),
        "files, directories and globs (relative to cwd) whose content the stage reads;"
        " with them, a stage whose inputs did not change is cached",
        (),
    )
    params: tuple[str, ...] = setting(
        _StageParams(), 'params the stage reads (names, or a table of them like "train")', ()
    )
    outs: tuple[Path, ...] = setting(
        _ProjectPaths(globs=False),
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
        _AutoRollback(), "what a failed analysis does: roll back, only alert, or ask", True
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
        _TrackingUri(),
        "where runs and versions are mirrored: sqlite:///PATH (beside the config) or http(s)://",
        example='"sqlite:///mlflow.db"',
    )
    experiment: str | None = setting(
        Text(), "the experiment runs go to (default: the pipeline's name)", None
    )
    model_name: str | None = setting(
        _ModelName(), "the registered model versions go to (default: the pipeline's name)", None
    )
    alias: str = setting(_Alias(), "the alias moved to the live version", "production")
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
        _WorkingDir(), "a directory (relative to the config) or a URI", None
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


class _Stages:
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
        _check_needs(scope, stages)
        _check_outs(scope, pipeline, stages)
        _check_out_links(scope, stages)
        stages = _with_reads(scope, stages)
        needs = {name: stage.needs for name, stage in stages.items()}
        return {name: stages[name] for name in dag.topological_order(needs)}


def _with_reads(scope: Scope, stages: Mapping[str, StageConfig]) -> dict[str, StageConfig]:
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


def need_text(need: str, outs: Sequence[Path], root: Path) -> str:
    """A stage needed, as a person reads it: ``prep``, or, when it is needed for its
    outs, ``prep (its out data/clean.csv)``."""
    if not outs:
        return need
    shown = [os.path.relpath(out, root) for out in outs[:MAX_OUTS_SHOWN]]
    if len(outs) > MAX_OUTS_SHOWN:
        shown.append(f"{len(outs) - MAX_OUTS_SHOWN} more")
    return f"{need} (its out{'s' * (len(outs) > 1)} {', '.join(shown)})"


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
        _Params(), "values stages read, by dotted name", _params_from_file
    )
    stages: Mapping[str, StageConfig] = setting(
        _Stages(),
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
        for _, env in _env_tables(self):
            values += [env[name] for name in names if name in env]
        return values

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

    @property
    def layers(self) -> dict[str, int]:
        """Each stage of a full run (`edges`) by its layer (`dag.layers`), in run order."""
        needs: dict[str, list[str]] = {name: [] for name in self.stages}
        for edge in self.edges:
            needs.setdefault(edge.target, []).append(edge.source)
        return dag.layers(needs)

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
    _check_executors(scope, data, config)
    _check_pipeline_stages(scope, config)
    config = _with_metric_stages(scope, config)
    _check_secret_values(scope, config)
    # Masked once, here: the name is shown by every command and recorded with each run.
    name = SecretMasker(config.secret_values(scope.environ)).mask_text(config.pipeline.name)
    return config._replace(pipeline=config.pipeline._replace(name=name))


def _with_metric_stages(scope: Scope, config: Config) -> Config:
    """Gates and checks that name ``stage.name`` split so: a gate may name a metric of
    its own stage or of one it needs (finished before it), a check only the monitor's."""
    names = [*config.stages, *BUILTIN_STAGES]
    needs = {name: stage.needs for name, stage in config.stages.items()}
    stages = dict(config.stages)
    for name, stage in config.stages.items():
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
        stages[name] = stage._replace(gates=tuple(gates))
    monitor = config.monitor
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
    return config._replace(stages=stages, monitor=monitor)


def with_params(config: Config, sets: Sequence[str]) -> Config:
    """``config`` with the params ``--set NAME=VALUE`` gives; each value is read as TOML
    and must be a value the config could hold, of the kind it declares (see
    `_set_value`)."""
    from mlci_tui.errors import UsageError

    params = dict(config.params)
    for text in sets:
        name, equals, raw = text.partition("=")
        name = name.strip()
        if not equals or not name:
            raise UsageError(f"--set {text}: expected PARAM=VALUE, like train.lr=0.01")
        if name not in params:
            close = close_matches(name, list(params))
            hint = (
                f'; did you mean "{close[0]}"?'
                if close
                else (
                    f" (params: {', '.join(params)})" if params else "; the config has no [params]"
                )
            )
            raise UsageError(f"--set {name}: no such param{hint}")
        params[name] = _set_value(name, raw, params[name])
    return config._replace(params=MappingProxyType(params))


def _set_value(name: str, raw: str, declared: ParamValue) -> ParamValue:
    """``raw`` read as one TOML value, as a param of ``declared``'s kind; for a string
    param, a TOML string (``"abc"``, ``'abc'``) is what it says, anything else the
    text as written."""
    from mlci_tui.errors import UsageError

    value = _toml_value(raw)
    if isinstance(declared, str) and not isinstance(value, str):
        value = raw
    conformed = None
    if value is not _NOT_TOML:
        try:
            checked = _checked_param(value)
        except _ParamProblem as problem:
            raise UsageError(f"--set {name}={raw}: {problem.message}") from None
        conformed = _conformed(declared, checked)
    if conformed is None:
        shown = param_text(declared) if isinstance(declared, tuple) else show(declared)
        raise UsageError(
            f"--set {name}={raw}: expected {_expected(declared)}, as the config has ({shown})"
        )
    return conformed


_NOT_TOML = object()


def _toml_value(raw: str) -> Any:
    """The one TOML value ``raw`` is, or `_NOT_TOML`."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python < 3.11
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        document = tomllib.loads(f"value = {raw}")
    except (tomllib.TOMLDecodeError, RecursionError):
        return _NOT_TOML
    # ``1\nother = 2`` is a document, not a value.
    return document["value"] if list(document) == ["value"] else _NOT_TOML


def _conformed(declared: ParamValue, value: ParamValue) -> ParamValue | None:
    """``value`` as a value of ``declared``'s kind (an integer where a float is
    declared becomes a float), or None if it is of another kind. An array's items
    must be of the kind of the declared array's items."""
    if isinstance(declared, bool) or isinstance(value, bool):
        return value if isinstance(declared, bool) and isinstance(value, bool) else None
    if isinstance(declared, int):
        return value if isinstance(value, int) else None
    if isinstance(declared, float):
        return float(value) if isinstance(value, (int, float)) else None
    if isinstance(declared, str):
        return value if isinstance(value, str) else None
    if not isinstance(value, tuple):
        return None
    if not declared:
        return value
    like = _item_like(declared)
    items = [_conformed(like, item) for item in value]
    return None if any(item is None for item in items) else tuple(items)  # type: ignore[misc]


def _item_like(array: tuple[Any, ...]) -> ParamValue:
    """One value of the kind every item of a (valid, non-empty) array has: a float
    where numbers mix; for an array of arrays, an array of all their items."""
    if isinstance(array[0], tuple):
        return tuple(item for inner in array for item in inner)
    return next((item for item in array if isinstance(item, float)), array[0])


def _expected(declared: ParamValue, *, plural: bool = False) -> str:
    """What a value of ``declared``'s kind is called: ``an integer``, ``an array of
    integers`` (``integers``, ``arrays of integers`` in the plural)."""
    if isinstance(declared, tuple):
        words = "arrays" if plural else "an array"
        return f"{words} of {_expected(_item_like(declared), plural=True)}" if declared else words
    if isinstance(declared, bool):
        return "booleans" if plural else "true or false"
    if isinstance(declared, int):
        return "integers" if plural else "an integer"
    if isinstance(declared, float):
        return "numbers" if plural else "a number"
    return "strings" if plural else "a string"


def param_environment(config: Config, stage: StageConfig) -> dict[str, str]:
    """The stage's params as variables: ``train.lr`` → ``MLCI_PARAM_TRAIN_LR``."""
    return {param_variable(name): param_text(config.params[name]) for name in stage.params}


def param_text(value: object) -> str:
    """A param as a command (or a person) reads it: strings as they are, the rest as JSON."""
    import json

    if isinstance(value, str):
        return value
    return json.dumps(list(value) if isinstance(value, tuple) else value)


def with_masked_params(config: Config, masker: SecretMasker) -> Config:
    """``config`` with every secret in a param's value masked, as it is everywhere."""
    if not masker:
        return config

    def mask(value: Any) -> Any:
        if isinstance(value, str):
            return masker.mask_text(value)
        if isinstance(value, tuple):
            return tuple(mask(item) for item in value)
        # A number can be a secret too (a PIN, an account id): masked, it is text.
        text = param_text(value)
        masked = masker.mask_text(text)
        return value if masked == text else masked

    return config._replace(params={name: mask(v) for name, v in config.params.items()})


def ray_installed() -> bool:
    """Whether Ray's job client can be imported, without importing it (that is slow)."""
    import importlib.util

    try:
        return importlib.util.find_spec("ray") is not None
    except (ImportError, ValueError):
        return False


def _check_needs(scope: Scope, stages: Mapping[str, StageConfig]) -> None:
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


def _check_outs(scope: Scope, pipeline: PipelineConfig, stages: Mapping[str, StageConfig]) -> None:
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
            if where[-1] == "artifact" and not _inside(out, scope.root):
                raise scope.document.error(
                    where,
                    f"{show(_relative(out, scope))} is outside the project ({scope.root});"
                    " the artifact of a stage with deps is cached, and removed before the"
                    " stage runs",
                )
            for other, owner in owners.items():
                if out == other or _inside(out, other) or _inside(other, out):
                    if owner == name and where[-1] == "artifact":
                        raise scope.document.error(where, _artifact_overlap(stage, other))
                    same = "is also" if out == other else "overlaps"
                    raise scope.document.error(
                        where, f"{_relative(out, scope)} {same} an out of stage {owner}"
                    )
            for path, what in protected:
                if _inside(path, out):
                    raise scope.document.error(
                        where,
                        f"{_relative(out, scope)} holds {what}; outs are removed before"
                        " their stage runs",
                    )
                if _inside(out, path):
                    raise scope.document.error(
                        where,
                        f"{_relative(out, scope)} is inside {what}, which only mlci writes;"
                        " outs are removed before their stage runs",
                    )
            for dep in stage.deps:
                if isinstance(dep, Glob):
                    clash = _inside(dep.base, out)
                else:
                    clash = _inside(dep, out) or _inside(out, dep)
                if clash:
                    raise scope.document.error(
                        where,
                        f"{_relative(out, scope)} is also a dep of this stage"
                        f" ({_relative(dep, scope)})",
                    )
            owners[out] = name


def _artifact_overlap(stage: StageConfig, out: Path) -> str:
    """Why an artifact may not overlap an out of its own stage, and the two ways out:
    it is cached with the outs, so it may be one of them, but not half of one."""
    assert stage.artifact is not None
    artifact = show(os.path.relpath(stage.artifact, stage.cwd))
    shown = show(os.path.relpath(out, stage.cwd))
    rule = "an artifact may be one of its stage's outs, but not overlap one"
    if _inside(stage.artifact, out):
        return (
            f"{artifact} lies inside {shown}, an out of this stage; {rule}: put {artifact}"
            f" in outs in place of {shown} (only that file is cached), or make the"
            f" artifact {shown} (the whole directory becomes the version)"
        )
    return (
        f"{artifact} holds {shown}, an out of this stage; {rule}: put {artifact} in outs"
        f" in place of {shown} (the artifact is cached whole)"
    )


def _check_out_links(scope: Scope, stages: Mapping[str, StageConfig]) -> None:
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


def _check_executors(scope: Scope, data: Mapping[str, Any], config: Config) -> None:
    """A config that asks for Ray where Ray is not installed fails here, not mid-run."""
    users = [name for name, stage in config.stages.items() if stage.executor == "ray"]
    if not users or ray_installed():
        return
    if "executor" in data.get("pipeline", {}):
        where: KeyPath = ("pipeline", "executor")
    else:
        where = ("stages", users[0], "executor")
    raise scope.document.error(
        where, f"the Ray executor needs Ray, which is not installed ({RAY_INSTALL})"
    )


def _env_tables(config: Config) -> list[tuple[KeyPath, Mapping[str, str]]]:
    """Every env table of the config, with where it is."""
    tables: list[tuple[KeyPath, Mapping[str, str]]] = [(("pipeline", "env"), config.pipeline.env)]
    tables += [(("stages", name, "env"), stage.env) for name, stage in config.stages.items()]
    for key, part in (
        ("deploy", config.deploy),
        ("monitor", config.monitor),
        ("alerts", config.alerts),
    ):
        if part is not None:
            tables.append(((key, "env"), part.env))
    if config.executors.ray is not None:
        where = ("executors", "ray", "runtime_env", "env_vars")
        tables.append((where, config.executors.ray.runtime_env.env_vars))
    return tables


def _check_secret_values(scope: Scope, config: Config) -> None:
    """A secret the config sets itself must be long enough to mask, as one from the
    environment must."""
    for where, env in _env_tables(config):
        for name in config.pipeline.secrets:
            if 0 < len(env.get(name, "")) < MIN_SECRET_LENGTH:
                raise scope.document.error(
                    (*where, name),
                    f"the value of secret {name} is shorter than {MIN_SECRET_LENGTH}"
                    " characters; masking it would garble every log",
                )


def _check_pipeline_stages(scope: Scope, config: Config) -> None:
    """The rules that span tables: one artifact, and the names deploy/monitor take."""
    document = scope.document
    stages = config.stages
    with_artifact = [name for name, stage in stages.items() if stage.artifact is not None]
    if len(with_artifact) > 1:
        raise document.error(
            ("stages", with_artifact[1], "artifact"),
            f"only one stage may declare an artifact (already: {with_artifact[0]});"
            " make it a directory to keep several files",
        )
    if config.monitor is not None and config.deploy is None:
        raise document.error(("monitor",), "needs a [deploy] table: it checks a deployed model")
    if config.deploy is not None:
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
