"""The kinds of value particular to mlci: commands, durations, metric checks,
secrets, Ray's working directory, MLflow's tracking URI, model name and alias, and
paths inside the project. Each reads one key's value, as `schema`'s kinds do, or
refuses it naming the key and what was expected."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from mlci_tui.checks import Check, parse_check
from mlci_tui.config.schema import (
    ENV_NAME,
    Scope,
    Strings,
    StringTable,
    Table,
    Text,
    from_scope,
    show,
)
from mlci_tui.globs import Glob
from mlci_tui.units import parse_duration

MIN_SECRET_LENGTH = 4
DURATION_EXAMPLE = 'a duration like "90s" or "5m"'
# Longer than any stage, deploy or sample should take, and far below what the
# event loop's and the kernel's timers can hold.
MAX_DURATION_S = 30 * 24 * 3600.0
GLOB_CHARS = frozenset("*?[")

CommandLine = str | tuple[str, ...]
"""A shell command (run by ``/bin/sh -c``) or an argv array (run directly)."""


class Command:
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


class Duration:
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


class Checks:
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


class Secrets:
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


class AutoRollback:
    def read(
        self, table: Table, key: str, value: Any, values: Mapping[str, Any], scope: Scope
    ) -> bool | Literal["ask"]:
        if isinstance(value, bool) or value == "ask":
            return value
        raise table.expected(key, 'true, false or "ask"', value)


class WorkingDir:
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
MLFLOW_ALIAS = r"[A-Za-z0-9_-]{1,255}"
"""An alias MLflow accepts (patterns are compiled on first use: re caches them)."""


class TrackingUri:
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


class ModelName:
    """A registered model's name, quoted as is in MLflow's search filters."""

    def read(
        self, table: Table, key: str, value: Any, values: Mapping[str, Any], scope: Scope
    ) -> str:
        text = Text().read(table, key, value, values, scope)
        if any(mark in text for mark in "'\"`"):
            raise table.error(key, "a model name may not hold quotes or backticks")
        return text


_URI_PASSWORD = r"^([^:/]+://[^:/@]*:)([^@/]*)@"


def uri_password(uri: str) -> str | None:
    """The password of a database URI (``user:PASSWORD@host``), if it has one."""
    found = re.match(_URI_PASSWORD, uri)
    return found.group(2) if found and found.group(2) else None


def redacted_uri(uri: str) -> str:
    """``uri`` with the password of a database URI as ***, for the store and the screen."""
    return re.sub(_URI_PASSWORD, r"\1***@", uri)


class Alias:
    """A Model Registry alias MLflow accepts."""

    def read(
        self, table: Table, key: str, value: Any, values: Mapping[str, Any], scope: Scope
    ) -> str:
        text = Text().read(table, key, value, values, scope)
        if not re.fullmatch(MLFLOW_ALIAS, text):
            raise table.error(key, 'an alias may use letters, digits, "_" and "-"')
        if text.lower() == "latest" or re.fullmatch(r"[vV]\d+", text):
            raise table.error(key, f'MLflow keeps "{text}" for itself: choose another alias')
        return text


class ProjectPaths:
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
            if not inside(path, scope.root):
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


def inside(path: Path, directory: Path) -> bool:
    """Whether ``path`` is ``directory`` or lies within it (by name: links not followed)."""
    return path == directory or directory in path.parents


COMMAND = Command()
DURATION = Duration()
CHECKS = Checks()
ENV = StringTable()
HERE = from_scope(lambda scope: scope.root)
"""The default working directory: the config's."""
