"""`config.toml` → validated, immutable named tuples.

The schema is strict: unknown keys, wrong types and impossible values are
errors. Every error is a `ConfigError` whose text is one line naming the
file, the line of the offending key, the key path and what was expected::

    config.toml:14: stages.train.timeout: expected a duration like "90s" or "5m", got "5x"
"""

from __future__ import annotations

import errno
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, NamedTuple, TypeVar

from mlci_tui import dag
from mlci_tui.checks import Check, parse_check
from mlci_tui.errors import ConfigError
from mlci_tui.units import parse_duration

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]

MAX_CONFIG_BYTES = 1 << 20
MIN_SECRET_LENGTH = 4
STAGE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
DURATION_EXAMPLE = 'a duration like "90s" or "5m"'

KeyPath = tuple[str | int, ...]


_NO_ENV: Mapping[str, str] = MappingProxyType({})
"""The default environment table: empty, and immutable, since it is shared."""


class PipelineConfig(NamedTuple):
    """The `[pipeline]` table."""

    name: str
    """Shown in the dashboard and summaries; defaults to the config's directory name."""
    state_dir: Path
    """Where the run store lives (absolute); `state_dir` in the file is relative to it."""
    max_parallel: int
    """How many independent stages may run at once; defaults to the CPU count."""
    secrets: tuple[str, ...] = ()
    """Environment variables whose values are masked as ``***`` everywhere."""
    kill_grace: float = 5.0
    """Seconds between SIGTERM and SIGKILL when a stage is stopped."""
    env: Mapping[str, str] = _NO_ENV
    """Extra environment for every stage."""
    executor: str = "local"
    """The executor of stages that do not name one."""


class StageConfig(NamedTuple):
    """One `[stages.NAME]` table."""

    name: str
    command: str | tuple[str, ...]
    """A shell command (run by ``/bin/sh -c``) or an argv array (run directly)."""
    cwd: Path
    """Working directory (absolute); defaults to the config's directory."""
    needs: tuple[str, ...] = ()
    """Stages that must pass before this one starts."""
    env: Mapping[str, str] = _NO_ENV
    """Extra environment, on top of the pipeline's."""
    timeout: float | None = None
    """Seconds before the stage's process tree is stopped and the stage fails."""
    retries: int = 0
    """Extra attempts after a failed exit or a timeout (not after a failed gate)."""
    artifact: Path | None = None
    """The file or directory the stage produces (absolute; relative to `cwd` in the file)."""
    gates: tuple[Check, ...] = ()
    """Metric checks made when the stage ends; a failed one fails the stage."""
    executor: str = "local"
    """Where the command runs: ``local`` (a subprocess here) or ``ray`` (a Ray job)."""


class DeployConfig(NamedTuple):
    """The `[deploy]` table: how any model version is deployed (and rolled back)."""

    command: str | tuple[str, ...]
    cwd: Path
    timeout: float | None = None
    env: Mapping[str, str] = _NO_ENV


class MonitorConfig(NamedTuple):
    """The `[monitor]` table: checks of the live model's metrics."""

    command: str | tuple[str, ...]
    cwd: Path
    checks: tuple[Check, ...]
    interval: float = 5.0
    samples: int = 3
    failures_before_rollback: int = 3
    auto_rollback: bool | Literal["ask"] = True
    timeout: float | None = None
    env: Mapping[str, str] = _NO_ENV


class AlertsConfig(NamedTuple):
    """The `[alerts]` table: a command told about failures and rollbacks."""

    command: str | tuple[str, ...]
    cwd: Path
    timeout: float | None = 30.0
    env: Mapping[str, str] = _NO_ENV


class RayConfig(NamedTuple):
    """The `[executors.ray]` table: the cluster that `executor = "ray"` stages run on."""

    address: str | None = None
    """The Ray dashboard's address (``http://127.0.0.1:8265``); default ``$RAY_ADDRESS``."""
    runtime_env: Mapping[str, Any] = _NO_ENV
    """Ray's runtime environment: ``working_dir``, ``pip``, ``env_vars``."""
    entrypoint_num_cpus: float | None = None
    entrypoint_num_gpus: float | None = None
    entrypoint_memory: int | None = None
    """Bytes of memory to reserve for the command."""
    metadata: Mapping[str, str] = _NO_ENV
    """Stored with every job mlci submits (mlci adds its pipeline, run and stage)."""


class RegistryConfig(NamedTuple):
    """The `[registry]` table: how model versions are kept and shown."""

    keep_versions: int = 20
    """Artifacts kept in the store; older ones are pruned (never the live or last
    known-good one). Their rows, metrics and audit trail stay."""
    key_metrics: tuple[str, ...] = ()
    """Metrics shown in version tables; defaults to those named in gates and checks."""


class Config(NamedTuple):
    """A whole, valid `config.toml`."""

    path: Path
    """The file, absolute."""
    root: Path
    """The directory relative paths in the file are resolved against."""
    pipeline: PipelineConfig
    stages: Mapping[str, StageConfig]
    """Every stage, in an order where each comes after what it needs."""
    deploy: DeployConfig | None = None
    monitor: MonitorConfig | None = None
    alerts: AlertsConfig | None = None
    registry: RegistryConfig = RegistryConfig()
    ray: RayConfig | None = None
    """The `[executors.ray]` table, if given."""

    @property
    def order(self) -> list[str]:
        return list(self.stages)

    @property
    def artifact_stage(self) -> StageConfig | None:
        """The stage whose artifact becomes a model version, if any."""
        return next((s for s in self.stages.values() if s.artifact is not None), None)

    @property
    def key_metrics(self) -> tuple[str, ...]:
        if self.registry.key_metrics:
            return self.registry.key_metrics
        names: list[str] = []
        checks = [g for s in self.stages.values() for g in s.gates]
        checks += list(self.monitor.checks) if self.monitor else []
        for check in checks:
            if check.metric not in names:
                names.append(check.metric)
        return tuple(names)


def load_config(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> Config:
    """Read, parse and validate a config file.

    ``environ`` supplies the values of `pipeline.secrets`, which are checked
    for length; it defaults to ``os.environ``.
    """
    label = os.fspath(path)
    text = _read_text(label)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise _syntax_error(label, error, text) from None
    document = _Document(label, text)
    return _build(document, data, Path(label).resolve(), os.environ if environ is None else environ)


def _read_text(label: str) -> str:
    try:
        with open(label, "rb") as file:
            raw = file.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(label, "no such file (pass --config PATH)") from None
    except IsADirectoryError:
        raise ConfigError(label, "is a directory, expected a TOML file") from None
    except PermissionError:
        raise ConfigError(label, "cannot read the file: permission denied") from None
    except OSError as error:
        reason = os.strerror(error.errno) if error.errno else str(error)
        if error.errno == errno.ELOOP:
            reason = "symbolic link loop"
        raise ConfigError(label, f"cannot read the file: {reason.lower()}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(label, f"larger than {MAX_CONFIG_BYTES // 1024} KiB; is this a config?")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        byte = raw[error.start]
        raise ConfigError(label, f"not valid UTF-8 (byte 0x{byte:02x})", line=line) from None


_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)|\s*\(at end of document\)")


def _syntax_error(label: str, error: Exception, text: str) -> ConfigError:
    message = str(error)
    line = getattr(error, "lineno", None)
    match = _TOML_POSITION.search(message)
    if match:
        if match.group(1):
            line = int(match.group(1))
            message = message[: match.start()] + f" (column {match.group(2)})"
        else:
            line = text.count("\n") + 1
            message = message[: match.start()] + " (at the end of the file)"
    elif line is not None:
        message = getattr(error, "msg", message)
    return ConfigError(label, f"invalid TOML: {message}", line=line)


class _Document:
    """The file's name and text, to turn a key path into an error."""

    def __init__(self, label: str, text: str) -> None:
        self.label = label
        self.text = text
        self._lines: dict[KeyPath, int] | None = None

    @property
    def lines(self) -> dict[KeyPath, int]:
        # Scanned only when an error needs a line: a valid config never pays for it.
        if self._lines is None:
            from mlci_tui.toml_positions import key_lines

            self._lines = key_lines(self.text)
        return self._lines

    def line(self, path: KeyPath) -> int | None:
        for depth in range(len(path), 0, -1):
            found = self.lines.get(path[:depth])
            if found is not None:
                return found
        return None

    def error(self, path: KeyPath, message: str) -> ConfigError:
        return ConfigError(self.label, message, line=self.line(path), key=key_text(path))


def key_text(path: KeyPath) -> str:
    """``stages.train.needs[1]``; keys that are not bare are quoted."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            shown = part if re.fullmatch(r"[A-Za-z0-9_-]+", part) else show(part)
            text += f".{shown}" if text else shown
    return text


def show(value: object) -> str:
    """A value as it would be written in TOML, safe to print, cut to a sane length."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = json.dumps(value[:80] + ("…" if len(value) > 80 else ""), ensure_ascii=False)
        # C1 controls and bidi overrides could still steer a terminal.
        return re.sub(
            r"[\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]",
            lambda m: f"\\u{ord(m.group()):04x}",
            text,
        )
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return f"a {type(value).__name__}"


class _Table:
    """Typed, tracked access to one TOML table: keys never read are unknown keys."""

    def __init__(self, document: _Document, path: KeyPath, data: dict[str, Any]) -> None:
        self.document = document
        self.path = path
        self.data = data
        self.read: set[str] = set()

    def error(self, key: str | KeyPath, message: str) -> ConfigError:
        suffix = (key,) if isinstance(key, str) else key
        return self.document.error((*self.path, *suffix), message)

    def expected(self, key: str | KeyPath, what: str, value: object) -> ConfigError:
        return self.error(key, f"expected {what}, got {show(value)}")

    def raw(self, key: str) -> Any:
        self.read.add(key)
        return self.data.get(key)

    def string(self, key: str, default: str | None = None, *, required: bool = False) -> str | None:
        value = self.raw(key)
        if value is None:
            if required:
                raise self.error((), f'missing required key "{key}"')
            return default
        if not isinstance(value, str) or not value.strip():
            raise self.expected(key, "a non-empty string", value)
        return value

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        value = self.raw(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.expected(key, f"an integer from {low} to {high}", value)
        return value

    def choice(self, key: str, options: tuple[str, ...], default: str) -> str:
        value = self.raw(key)
        if value is None:
            return default
        if value not in options:
            names = ", ".join(f'"{o}"' for o in options)
            raise self.expected(key, f"one of {names}", value)
        return str(value)

    def number(self, key: str) -> float | None:
        value = self.raw(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise self.expected(key, "a number of at least 0", value)
        return float(value)

    def integer_or_none(self, key: str, low: int, high: int) -> int | None:
        return None if self.data.get(key) is None else self.integer(key, low, low, high)

    def duration(self, key: str, default: float | None, *, zero: bool = False) -> float | None:
        value = self.raw(key)
        if value is None:
            return default
        try:
            seconds = parse_duration(value)
        except ValueError:
            raise self.expected(key, DURATION_EXAMPLE, value) from None
        if seconds == 0 and not zero:
            raise self.expected(key, f"{DURATION_EXAMPLE}, longer than zero", value)
        return seconds

    def command(self, key: str) -> str | tuple[str, ...]:
        value = self.raw(key)
        if value is None:
            raise self.error((), f'missing required key "{key}"')
        if isinstance(value, str) and value.strip():
            return value
        if (
            isinstance(value, list)
            and value
            and all(isinstance(part, str) for part in value)
            and value[0].strip()
        ):
            return tuple(value)
        raise self.expected(key, "a shell command string or a non-empty array of strings", value)

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.raw(key)
        if value is None:
            return ()
        if not isinstance(value, list):
            raise self.expected(key, "an array of strings", value)
        for index, item in enumerate(value):
            if not isinstance(item, str):
                raise self.error((key, index), f"expected a string, got {show(item)}")
        return tuple(value)

    def environment(self, key: str, *, any_names: bool = False) -> dict[str, str]:
        """A table of strings, keyed by environment variable names unless ``any_names``."""
        value = self.raw(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.expected(key, "a table of strings", value)
        for name, item in value.items():
            if not any_names and not ENV_NAME.fullmatch(name):
                raise self.error((key, name), "expected an environment variable name")
            if not isinstance(item, str):
                raise self.error((key, name), f"expected a string, got {show(item)}")
        return dict(value)

    def checks(self, key: str) -> tuple[Check, ...]:
        checks = []
        for index, text in enumerate(self.strings(key)):
            try:
                checks.append(parse_check(text))
            except ValueError as error:
                raise self.error((key, index), f"{error}, got {show(text)}") from None
        return tuple(checks)

    def path_value(self, key: str, base: Path) -> Path | None:
        value = self.string(key)
        return None if value is None else (base / value).resolve()

    def table(self, key: str) -> _Table | None:
        value = self.raw(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.expected(key, "a table", value)
        return _Table(self.document, (*self.path, key), value)

    def done(self) -> None:
        unknown = [key for key in self.data if key not in self.read]
        if not unknown:
            return
        key = min(unknown, key=lambda k: self.document.line((*self.path, k)) or 0)
        known = sorted(self.read)
        close = _close_matches(key, known)
        hint = f'; did you mean "{close[0]}"?' if close else f" (known: {', '.join(known)})"
        raise self.error(key, f"unknown key{hint}")


def _build(
    document: _Document, data: dict[str, Any], path: Path, environ: Mapping[str, str]
) -> Config:
    root = path.parent
    _refuse_nul(document, data, ())
    top = _Table(document, (), data)
    pipeline_table = top.table("pipeline") or _Table(document, ("pipeline",), {})
    pipeline = _pipeline(pipeline_table, root, environ)
    stages = _stages(top, root, pipeline.executor)
    ray = _executors(top.table("executors"), root)
    _check_executors(top, pipeline_table, stages)
    deploy = _command_table(top.table("deploy"), root, DeployConfig, None)
    monitor = _monitor(top.table("monitor"), root)
    alerts = _command_table(top.table("alerts"), root, AlertsConfig, 30.0)
    registry = _registry(top.table("registry"))
    top.done()
    _check_pipeline_stages(document, stages, deploy, monitor)
    return Config(path, root, pipeline, stages, deploy, monitor, alerts, registry, ray)


BUILTIN_STAGES = ("deploy", "monitor")
EXECUTORS = ("local", "ray")
"""What a stage's ``executor`` may name; `mlci_tui.pipeline.executors.KINDS` runs each."""
RAY_INSTALL = "pip install -e '.[ray]'"


def ray_installed() -> bool:
    """Whether Ray's job client can be imported, without importing it (that is slow)."""
    import importlib.util

    try:
        return importlib.util.find_spec("ray") is not None
    except (ImportError, ValueError):
        return False


def _check_executors(top: _Table, pipeline: _Table, stages: Mapping[str, StageConfig]) -> None:
    """A config that asks for Ray where Ray is not installed fails here, not mid-run."""
    users = [name for name, stage in stages.items() if stage.executor == "ray"]
    if not users or ray_installed():
        return
    if "executor" in pipeline.data:
        where: KeyPath = ("pipeline", "executor")
    else:
        where = ("stages", users[0], "executor")
    raise top.document.error(
        where, f"the Ray executor needs Ray, which is not installed ({RAY_INSTALL})"
    )


_RUNTIME_ENV_KEYS = ("working_dir", "pip", "env_vars")


def _executors(table: _Table | None, root: Path) -> RayConfig | None:
    if table is None:
        return None
    ray_table = table.table("ray")
    table.done()
    if ray_table is None:
        return None
    runtime_env: dict[str, Any] = {}
    runtime = ray_table.table("runtime_env")
    if runtime is not None:
        working_dir = runtime.string("working_dir")
        if working_dir is not None:
            # A local directory (relative to the config), or a URI Ray fetches itself.
            if "://" not in working_dir:
                directory = (root / working_dir).resolve()
                if not directory.is_dir():
                    raise runtime.error("working_dir", f"{directory} is not a directory")
                working_dir = str(directory)
            runtime_env["working_dir"] = working_dir
        if "pip" in runtime.data:
            runtime_env["pip"] = list(runtime.strings("pip"))
        env_vars = runtime.environment("env_vars")
        if env_vars:
            runtime_env["env_vars"] = env_vars
        runtime.done()
    ray = RayConfig(
        address=ray_table.string("address"),
        runtime_env=runtime_env,
        entrypoint_num_cpus=ray_table.number("entrypoint_num_cpus"),
        entrypoint_num_gpus=ray_table.number("entrypoint_num_gpus"),
        entrypoint_memory=ray_table.integer_or_none("entrypoint_memory", 0, 2**62),
        metadata=ray_table.environment("metadata", any_names=True),
    )
    ray_table.done()
    return ray


def _refuse_nul(document: _Document, value: object, path: KeyPath) -> None:
    """No string may hold a NUL: no command, path or environment can carry one."""
    if isinstance(value, str) and "\0" in value:
        raise document.error(path, "contains a NUL character (\\u0000)")
    if isinstance(value, dict):
        for key, item in value.items():
            if "\0" in key:
                raise document.error(path, "a key contains a NUL character (\\u0000)")
            _refuse_nul(document, item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _refuse_nul(document, item, (*path, index))


def _check_pipeline_stages(
    document: _Document,
    stages: Mapping[str, StageConfig],
    deploy: DeployConfig | None,
    monitor: MonitorConfig | None,
) -> None:
    """The rules that span tables: one artifact, and the names deploy/monitor taken."""
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


def _registry(table: _Table | None) -> RegistryConfig:
    if table is None:
        return RegistryConfig()
    registry = RegistryConfig(
        keep_versions=table.integer("keep_versions", 20, 1, 100_000),
        key_metrics=table.strings("key_metrics"),
    )
    table.done()
    return registry


def _pipeline(table: _Table, root: Path, environ: Mapping[str, str]) -> PipelineConfig:
    name = table.string("name", root.name or "pipeline")
    assert name is not None
    state_dir = table.path_value("state_dir", root) or root / ".mlci"
    max_parallel = table.integer("max_parallel", os.cpu_count() or 1, 1, 1024)
    secrets = table.strings("secrets")
    for index, secret in enumerate(secrets):
        if not ENV_NAME.fullmatch(secret):
            raise table.expected(("secrets", index), "an environment variable name", secret)
        value = environ.get(secret, "")
        # An empty value masks nothing and is treated as unset.
        if 0 < len(value) < MIN_SECRET_LENGTH:
            raise table.error(
                ("secrets", index),
                f"the value of ${secret} is shorter than {MIN_SECRET_LENGTH} characters;"
                " masking it would garble every log",
            )
    kill_grace = table.duration("kill_grace", 5.0, zero=True)
    assert kill_grace is not None
    env = table.environment("env")
    executor = table.choice("executor", EXECUTORS, "local")
    table.done()
    return PipelineConfig(name, state_dir, max_parallel, secrets, kill_grace, env, executor)


def _stages(top: _Table, root: Path, executor: str) -> dict[str, StageConfig]:
    table = top.table("stages")
    if table is None or not table.data:
        raise top.error(
            "stages", "the pipeline has no stages; add a [stages.NAME] table with a command"
        )
    stages: dict[str, StageConfig] = {}
    for name in table.data:
        if not STAGE_NAME.fullmatch(name):
            raise table.error(
                name,
                'a stage name may use letters, digits, "_", "-" and "." (at most 64 characters)',
            )
        stage_table = table.table(name)
        assert stage_table is not None
        stages[name] = _stage(stage_table, name, root, executor)
    table.done()
    for name, stage in stages.items():
        seen: set[str] = set()
        for index, need in enumerate(stage.needs):
            where = ("stages", name, "needs", index)
            if need in seen:
                raise top.document.error(where, f"{show(need)} is listed twice")
            seen.add(need)
            if need not in stages:
                close = _close_matches(need, list(stages))
                hint = (
                    f'; did you mean "{close[0]}"?' if close else f" (stages: {', '.join(stages)})"
                )
                raise top.document.error(where, f"unknown stage {show(need)}{hint}")
    needs = {name: stage.needs for name, stage in stages.items()}
    cycle = dag.find_cycle(needs)
    if cycle:
        raise top.document.error(("stages", cycle[0], "needs"), "cycle " + " → ".join(cycle))
    return {name: stages[name] for name in dag.topological_order(needs)}


def _stage(table: _Table, name: str, root: Path, executor: str) -> StageConfig:
    command = table.command("command")
    cwd = table.path_value("cwd", root) or root
    stage = StageConfig(
        name=name,
        command=command,
        cwd=cwd,
        needs=table.strings("needs"),
        env=table.environment("env"),
        timeout=table.duration("timeout", None),
        retries=table.integer("retries", 0, 0, 100),
        artifact=table.path_value("artifact", cwd),
        gates=table.checks("gates"),
        executor=table.choice("executor", EXECUTORS, executor),
    )
    table.done()
    return stage


_CommandTable = TypeVar("_CommandTable", DeployConfig, AlertsConfig)


def _command_table(
    table: _Table | None, root: Path, kind: type[_CommandTable], timeout: float | None
) -> _CommandTable | None:
    """`[deploy]` or `[alerts]`: a command, where it runs, its ``timeout`` by default."""
    if table is None:
        return None
    parsed = kind(
        command=table.command("command"),
        cwd=table.path_value("cwd", root) or root,
        timeout=table.duration("timeout", timeout),
        env=table.environment("env"),
    )
    table.done()
    return parsed


def _monitor(table: _Table | None, root: Path) -> MonitorConfig | None:
    if table is None:
        return None
    auto = table.raw("auto_rollback")
    if auto is None:
        auto = True
    elif not isinstance(auto, bool) and auto != "ask":
        raise table.expected("auto_rollback", 'true, false or "ask"', auto)
    checks = table.checks("checks")
    if not checks:
        raise table.error((), 'missing required key "checks" (e.g. ["accuracy >= 0.9"])')
    interval = table.duration("interval", 5.0)
    assert interval is not None
    monitor = MonitorConfig(
        command=table.command("command"),
        cwd=table.path_value("cwd", root) or root,
        checks=checks,
        interval=interval,
        samples=table.integer("samples", 3, 1, 10_000),
        failures_before_rollback=table.integer("failures_before_rollback", 3, 1, 10_000),
        auto_rollback=auto,
        timeout=table.duration("timeout", None),
        env=table.environment("env"),
    )
    table.done()
    return monitor


def _close_matches(word: str, candidates: list[str]) -> list[str]:
    import difflib  # only for error messages

    return difflib.get_close_matches(word, candidates, n=1)
