"""Writing params into a params file (`[pipeline] params_file`) in place.

Only the values change: every other line, comment, blank and the order of keys
stay as they were. A value is replaced where it is written on one line
(``lr = 0.02  # why``); one written otherwise (an array over several lines, an
inline table) is not rewritten, and the whole edit is refused rather than done
by halves. What is written is read back and must hold exactly the params asked
for and everything else as it was: else the edit is refused too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlci_tui.config.params import ParamValue, toml_value
from mlci_tui.config.positions import key_lines

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]


def edited_params(text: str, changes: Mapping[str, ParamValue]) -> str | None:
    """``text`` (a params file) with each param in ``changes`` set to its value; None
    when that cannot be done by changing only those values."""
    try:
        data = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError):
        return None
    lines = text.splitlines(keepends=True)
    where = key_lines(text)
    expected = _copy(data)
    for name, value in changes.items():
        path = tuple(name.split("."))
        number = where.get(path)
        if number is None or not _set(expected, path, value):
            return None
        line = _with_value(lines[number - 1], path, value)
        if line is None:
            return None
        lines[number - 1] = line
    result = "".join(lines)
    try:
        again = tomllib.loads(result)
    except (tomllib.TOMLDecodeError, RecursionError):
        return None
    return result if _typed(again) == _typed(expected) else None


def _with_value(line: str, path: tuple[str, ...], value: ParamValue) -> str | None:
    """``line``, which defines the last keys of ``path`` alone, with ``value`` in place
    of the value written there; None if it is not such a line."""
    body = line.rstrip("\r\n")
    ending = line[len(body) :]
    # Where the value ends: before the first "#" that leaves a whole definition (one
    # inside a string leaves none), else at the line's end.
    cuts = [index for index, char in enumerate(body) if char == "#"] + [len(body)]
    end = next((cut for cut in cuts if _keys(body[:cut]) is not None), None)
    if end is None:
        return None
    keys = _keys(body[:end])
    if keys is None or keys != path[len(path) - len(keys) :]:
        return None
    # Where it starts: after the first "=" that ends those keys.
    equals = [index for index, char in enumerate(body[:end]) if char == "="]
    start = next((at for at in equals if _keys(body[:at] + "= 0") == keys), None)
    if start is None:
        return None
    start += 1
    start += len(body[start:end]) - len(body[start:end].lstrip(" \t"))
    end = len(body[:end].rstrip(" \t"))
    return body[:start] + toml_value(value) + body[end:] + ending


def _keys(text: str) -> tuple[str, ...] | None:
    """The key path ``text`` defines, if it is one key's definition alone."""
    try:
        data: Any = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError):
        return None
    keys: list[str] = []
    while isinstance(data, dict):
        if len(data) != 1:
            return None
        ((key, data),) = data.items()
        keys.append(key)
    return tuple(keys) or None


def _set(data: dict[str, Any], path: tuple[str, ...], value: ParamValue) -> bool:
    """Set ``path`` in ``data`` to ``value``; False if it holds no value there."""
    for key in path[:-1]:
        data = data.get(key)  # type: ignore[assignment]
        if not isinstance(data, dict):
            return False
    if path[-1] not in data or isinstance(data[path[-1]], dict):
        return False
    data[path[-1]] = _plain(value)
    return True


def _plain(value: ParamValue) -> Any:
    """A param's value as `tomllib` gives it (arrays as lists)."""
    return [_plain(item) for item in value] if isinstance(value, tuple) else value


def _copy(data: Any) -> Any:
    if isinstance(data, dict):
        return {key: _copy(item) for key, item in data.items()}
    if isinstance(data, list):
        return [_copy(item) for item in data]
    return data


def _typed(data: Any) -> Any:
    """``data`` with each value's type beside it: 1, 1.0 and true are three values."""
    if isinstance(data, dict):
        return {key: _typed(item) for key, item in data.items()}
    if isinstance(data, list):
        return [_typed(item) for item in data]
    return (type(data).__name__, data)
