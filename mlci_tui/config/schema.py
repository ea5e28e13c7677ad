"""Strict, typed reading of TOML tables, with errors that name file, line and key.

A table's keys are declared once, as the fields of a record: a `NamedTuple`
decorated with `@section`, each field's default a `setting` that says how the
key is read (its `Kind`), what it defaults to and what it means. `read_section`
reads a table into such a record; keys the record does not declare, wrong
types and impossible values are `ConfigError`\\ s whose text is one line::

    config.toml:14: stages.train.timeout: expected a duration like "90s" or "5m", got "5x"

Line numbers come from `positions`, scanned only when an error needs
one: a valid config never pays for it.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar

from mlci_tui.errors import ConfigError

MAX_FILE_BYTES = 1 << 20

if TYPE_CHECKING:  # only type checkers need the protocol, and making one is slow
    from typing import Protocol

    class Kind(Protocol):
        """How one key's value is read: checked, converted, or refused with a `ConfigError`.

        Called only for a key that is present. ``values`` holds the keys of the same
        table read so far (a path may be relative to the table's ``cwd``).
        """

        def read(
            self, table: Table, key: str, value: Any, values: Mapping[str, Any], scope: Scope
        ) -> Any: ...


KeyPath = tuple[str | int, ...]
ENV_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
"""An environment variable's name (patterns are compiled on first use: re caches them)."""
NO_STRINGS: Mapping[str, str] = MappingProxyType({})
"""The default of a table of strings: empty, and immutable, since it is shared."""


def load_document(label: str) -> tuple[Document, dict[str, Any]]:
    """Read and parse the TOML file ``label``: the document, and its data.

    Any string holding a NUL is refused too: no command, path or environment
    can carry one.
    """
    text = _read_text(label)
    try:
        import tomllib
    except ModuleNotFoundError:  # Python < 3.11
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        data = tomllib.loads(text)
        document = Document(label, text)
        _refuse_nul(document, data, ())
    except tomllib.TOMLDecodeError as error:
        raise _syntax_error(label, error, text) from None
    except RecursionError:
        # The parser recurses once per level: hundreds of nested arrays or inline
        # tables exhaust Python's stack before they are any config.
        raise ConfigError(label, TOO_DEEP) from None
    return document, data


TOO_DEEP = "arrays or inline tables nested hundreds deep; no config holds such a value"


def _read_text(label: str) -> str:
    try:
        with open(label, "rb") as file:
            raw = file.read(MAX_FILE_BYTES + 1)
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
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError(label, f"larger than {MAX_FILE_BYTES // 1024} KiB; is this a config?")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        byte = raw[error.start]
        raise ConfigError(label, f"not valid UTF-8 (byte 0x{byte:02x})", line=line) from None


_TOML_POSITION = r"\s*\(at line (\d+), column (\d+)\)|\s*\(at end of document\)"


def _syntax_error(label: str, error: Exception, text: str) -> ConfigError:
    message = str(error)
    line = getattr(error, "lineno", None)
    match = re.search(_TOML_POSITION, message)
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


def _refuse_nul(document: Document, value: object, path: KeyPath) -> None:
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


class Document:
    """The file's name and text, to turn a key path into an error."""

    def __init__(self, label: str, text: str) -> None:
        self.label = label
        self.text = text
        self._lines: dict[KeyPath, int] | None = None

    @property
    def lines(self) -> dict[KeyPath, int]:
        if self._lines is None:
            from mlci_tui.config.positions import key_lines

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


class Scope:
    """What a key's reader may need besides its value."""

    __slots__ = ("document", "environ", "inherited", "root")

    def __init__(
        self,
        document: Document,
        root: Path,
        environ: Mapping[str, str],
        inherited: Mapping[str, Any] = NO_STRINGS,
    ) -> None:
        self.document = document
        self.root = root
        """The directory relative paths are resolved against: the config's."""
        self.environ = environ
        self.inherited = inherited
        """Values an enclosing table gives its subtables' defaults (a stage's executor)."""

    def inheriting(self, **values: Any) -> Scope:
        return Scope(self.document, self.root, self.environ, {**self.inherited, **values})


class Table:
    """Typed, tracked access to one TOML table: keys never read are unknown keys."""

    def __init__(self, document: Document, path: KeyPath, data: dict[str, Any]) -> None:
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

    def table(self, key: str) -> Table | None:
        value = self.raw(key)
        if not isinstance(value, dict):
            raise self.expected(key, "a table", value)
        return Table(self.document, (*self.path, key), value)

    def done(self) -> None:
        """Refuse the first key (in the file) that nothing read."""
        unknown = [key for key in self.data if key not in self.read]
        if not unknown:
            return
        key = min(unknown, key=lambda k: self.document.line((*self.path, k)) or 0)
        known = sorted(self.read)
        close = close_matches(key, known)
        hint = f'; did you mean "{close[0]}"?' if close else f" (known: {', '.join(known)})"
        raise self.error(key, f"unknown key{hint}")


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()
"""The default of a key that must be given."""


class Setting:
    """One key of a table: how it is read, what it defaults to, what it means."""

    __slots__ = ("default", "doc", "example", "kind")

    def __init__(self, kind: Kind, doc: str, default: Any, example: str) -> None:
        self.kind = kind
        self.doc = doc
        self.default = default
        """The value when the key is absent; a callable takes the `Scope` and the
        values read so far (a default that depends on where the config is)."""
        self.example = example
        """Shown after "missing required key" (``(e.g. ["accuracy >= 0.9"])``)."""


def setting(kind: Kind, doc: str, default: Any = REQUIRED, *, example: str = "") -> Any:
    """A key of a `section`, as a field's default: ``timeout: float | None = setting(...)``."""
    return Setting(kind, doc, default, example)


_Record = TypeVar("_Record", bound=tuple[Any, ...])


def section(cls: type[_Record]) -> type[_Record]:
    """Make a `NamedTuple` whose field defaults are `setting`\\ s the schema of a table.

    The settings move to ``cls.SETTINGS``; the fields get plain defaults (None for
    one without a fixed default), so the record can be built by hand too. Fields
    without a setting are not keys of the table: the reader fills them (a
    stage's name is its table's name).
    """
    defaults: dict[str, Any] = dict(cls._field_defaults)  # type: ignore[attr-defined]
    settings = {name: value for name, value in defaults.items() if isinstance(value, Setting)}
    for name, value in settings.items():
        fixed = value.default is not REQUIRED and not callable(value.default)
        defaults[name] = value.default if fixed else None
    fields: tuple[str, ...] = cls._fields  # type: ignore[attr-defined]
    cls.__new__.__defaults__ = tuple(defaults[name] for name in fields if name in defaults)
    cls._field_defaults = defaults  # type: ignore[attr-defined]
    cls.SETTINGS = MappingProxyType(settings)  # type: ignore[attr-defined]
    return cls


def read_section(cls: type[_Record], table: Table, scope: Scope, **given: Any) -> _Record:
    """Read ``table`` into a ``cls`` record, key by key in the order they are declared,
    then refuse keys it does not declare. ``given`` fills the fields that are not keys."""
    settings: Mapping[str, Setting] = cls.SETTINGS  # type: ignore[attr-defined]
    values: dict[str, Any] = dict(given)
    for key, declared in settings.items():
        raw = table.raw(key)
        default = declared.default
        if raw is not None:
            values[key] = declared.kind.read(table, key, raw, values, scope)
        elif default is not REQUIRED:
            values[key] = default(scope, values) if callable(default) else default
        # A required key must say something: an empty array is as good as none.
        if default is REQUIRED and values.get(key) in (None, ()):
            example = f" {declared.example}" if declared.example else ""
            raise table.error((), f'missing required key "{key}"{example}')
    table.done()
    return cls(**values)


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
        import json  # only for error messages

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


def close_matches(word: str, candidates: list[str]) -> list[str]:
    import difflib  # only for error messages

    return difflib.get_close_matches(word, candidates, n=1)


# Kinds -------------------------------------------------------------------------


class Text:
    """A non-empty string."""

    def read(
        self, table: Table, key: str, value: Any, values: Mapping[str, Any], scope: Scope
    ) -> str:
        if not isinstance(value, str) or not value.strip():
            raise table.expected(key, "a non-empty string", value)
        return value


class Boolean:
    """true or false."""

    def read(
        self, table: Table, key: str, value: Any, values: Mapping[str, Any], scope: Scope
    ) -> bool:
        if not isinstance(value, bool):
            raise table.expected(key, "true or false", value)
        return value


class Choice:
    """One of a few strings."""

    def __init__(self, *options: str) -> None:
        self.options = options

    def read(
        self, table: Table, key: str, value: Any, values: Mapping[str, Any], scope: Scope
    ) -> str:
        if value not in self.options:
            names = ", ".join(f'"{o}"' for o in self.options)
            raise table.expected(key, f"one of {names}", value)
        return str(value)


class Integer:
    """An integer from ``low`` to ``high``."""

    def __init__(self, low: int, high: int) -> None:
        self.low = low
        self.high = high

    def read(
        self, table: Table, key: str, value: Any, values: Mapping[str, Any], scope: Scope
    ) -> int:
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or not self.low <= value <= self.high
        ):
            raise table.expected(key, f"an integer from {self.low} to {self.high}", value)
        return value


class Number:
    """A number from 0 to ``high``."""

    def __init__(self, high: float) -> None:
        self.high = high

    def read(
        self, table: Table, key: str, value: Any, values: Mapping[str, Any], scope: Scope
    ) -> float:
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not 0 <= value <= self.high
        ):
            raise table.expected(key, f"a number from 0 to {self.high:g}", value)
        return float(value)


class Subtable:
    """A table read into a `section` record."""

    def __init__(self, record: type[tuple[Any, ...]]) -> None:
        self.record = record

    def read(
        self, table: Table, key: str, value: Any, values: Mapping[str, Any], scope: Scope
    ) -> Any:
        sub = table.table(key)
        assert sub is not None  # only called for a key that is present
        return read_section(self.record, sub, scope)


def empty_table(record: type[tuple[Any, ...]], *path: str) -> Callable[[Scope, Any], Any]:
    """The default of an optional table: ``record`` read from an empty one, so that
    the defaults that depend on where the config is are worked out too."""

    def read(scope: Scope, values: Any) -> Any:
        return read_section(record, Table(scope.document, path, {}), scope)

    return read


class Strings:
    """An array of strings."""

    def read(
        self, table: Table, key: str, value: Any, values: Mapping[str, Any], scope: Scope
    ) -> tuple[str, ...]:
        if not isinstance(value, list):
            raise table.expected(key, "an array of strings", value)
        for index, item in enumerate(value):
            if not isinstance(item, str):
                raise table.error((key, index), f"expected a string, got {show(item)}")
        return tuple(value)


class StringTable:
    """A table of strings, keyed by environment variable names unless ``any_names``."""

    def __init__(self, *, any_names: bool = False) -> None:
        self.any_names = any_names

    def read(
        self, table: Table, key: str, value: Any, values: Mapping[str, Any], scope: Scope
    ) -> Mapping[str, str]:
        if not isinstance(value, dict):
            raise table.expected(key, "a table of strings", value)
        for name, item in value.items():
            if not self.any_names and not re.fullmatch(ENV_NAME, name):
                raise table.error((key, name), "expected an environment variable name")
            if not isinstance(item, str):
                raise table.error((key, name), f"expected a string, got {show(item)}")
        return MappingProxyType(dict(value))


class RelativePath:
    """A path, resolved against ``base``: the config's directory (``None``), or the
    path another key of the same table gave (``"cwd"``)."""

    def __init__(self, base: str | None = None) -> None:
        self.base = base

    def read(
        self, table: Table, key: str, value: Any, values: Mapping[str, Any], scope: Scope
    ) -> Path:
        text = Text().read(table, key, value, values, scope)
        base = scope.root if self.base is None else values[self.base]
        return (base / text).resolve()


def from_scope(read: Callable[[Scope], Any]) -> Callable[[Scope, Mapping[str, Any]], Any]:
    """A default that depends on where the config is: ``default=from_scope(lambda s: ...)``."""
    return lambda scope, values: read(scope)
