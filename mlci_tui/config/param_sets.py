"""``--set NAME=VALUE``: a param's value given on the command line, read as one
TOML value and held to the kind of value the config declares for it.

Loaded only when a ``--set`` is given (`loader.with_params`), not at every start-up.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from mlci_tui.config.params import (
    ParamProblem,
    ParamValue,
    checked_param,
    param_text,
    toml_value,
)
from mlci_tui.config.schema import close_matches, show
from mlci_tui.errors import UsageError


def set_params(declared: Mapping[str, ParamValue], sets: Sequence[str]) -> Mapping[str, ParamValue]:
    """``declared`` with the values ``--set NAME=VALUE`` gives; each value is read as
    TOML and must be a value the config could hold, of the kind it declares (see
    `_set_value`)."""
    params = dict(declared)
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
    return MappingProxyType(params)


def set_argument(name: str, declared: ParamValue, value: ParamValue) -> str:
    """``NAME=VALUE`` that `set_params` reads back as ``value`` for a param declared as
    ``declared``: a string as it is written when that reads back as itself, else
    quoted as TOML."""
    if isinstance(value, str):
        with contextlib.suppress(UsageError):
            if _set_value(name, value, declared) == value:
                return f"{name}={value}"
    return f"{name}={toml_value(value)}"


def _set_value(name: str, raw: str, declared: ParamValue) -> ParamValue:
    """``raw`` read as one TOML value, as a param of ``declared``'s kind; for a string
    param, a TOML string (``"abc"``, ``'abc'``) is what it says, anything else the
    text as written."""
    value = _toml_value(raw)
    if isinstance(declared, str) and not isinstance(value, str):
        value = raw
    conformed = None
    if value is not _NOT_TOML:
        try:
            checked = checked_param(value)
        except ParamProblem as problem:
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
