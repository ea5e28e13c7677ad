"""Params: values a stage's command reads, known by dotted names (``train.lr``).

They come from the `[params]` table or a params file, each held to the rules of
a param's value (`checked_param`); a stage names those it reads; ``--set`` changes
them (`param_sets`); a command gets each as a variable (`param_variable`) holding
its text (`param_text`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from mlci_tui.config.schema import (
    Document,
    KeyPath,
    Scope,
    Strings,
    Table,
    close_matches,
    load_document,
    show,
)
from mlci_tui.masking import SecretMasker

ParamValue = str | int | float | bool | tuple[Any, ...]
"""A param's value: a TOML string, number or boolean, or an array of them."""
PARAM_SEGMENT = r"[A-Za-z0-9_-]+"
PARAM_VARIABLE = "MLCI_PARAM_"
NO_PARAMS: Mapping[str, ParamValue] = MappingProxyType({})


class Params:
    """The `[params]` table: nested tables of values, known by dotted names (``train.lr``)."""

    def read(
        self, table: Table, key: str, value: Any, values: Mapping[str, Any], scope: Scope
    ) -> Mapping[str, ParamValue]:
        if values["pipeline"].params_file is not None:
            raise table.error(
                key, "params come from [pipeline] params_file or from [params], not both"
            )
        if not isinstance(value, dict):
            raise table.expected(key, "a table", value)
        return _flatten_params(scope.document, value, (key,), 1)


def params_from_file(scope: Scope, values: Mapping[str, Any]) -> Mapping[str, ParamValue]:
    """The default of `[params]`: the params file's, or none."""
    params_file: Path | None = values["pipeline"].params_file
    if params_file is None:
        return NO_PARAMS
    if not params_file.is_file():
        raise scope.document.error(("pipeline", "params_file"), f"{params_file} is not a file")
    document, data = load_document(str(params_file))
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
        return checked_param(value)
    except ParamProblem as problem:
        raise document.error((*where, *problem.where), problem.message) from None


class ParamProblem(Exception):
    """A value TOML can hold that a param cannot: where in it (array indexes), and why."""

    def __init__(self, where: tuple[int, ...], message: str) -> None:
        super().__init__(message)
        self.where = where
        self.message = message


def checked_param(value: Any) -> ParamValue:
    """A value read as TOML as a param holds it (arrays as tuples), held to the rules
    of params: a string (without NUL), a finite number, an integer of 64 bits, a
    boolean, or an array of one kind of them (integers and floats are one kind, all
    floats where they mix; in an array of arrays, the values at every depth)."""
    if isinstance(value, list):
        items: list[ParamValue] = []
        for index, item in enumerate(value):
            try:
                items.append(checked_param(item))
            except ParamProblem as problem:
                raise ParamProblem((index, *problem.where), problem.message) from None
        stranger = _stranger(items)
        if stranger is not None:
            index, item, first = stranger
            raise ParamProblem(
                (index,),
                f"expected {_KIND_WORDS[_kind(first)]} like the array's first item,"
                f" got {_shown(item)}",
            )
        if any(isinstance(leaf, float) for leaf in _leaves(tuple(items))):
            # Numbers that mix are floats, as `--set` reads them: one value, one key.
            return _floats(tuple(items))
        return tuple(items)
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise ParamProblem((), f"expected an integer of 64 bits, got {_shown(value)}")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ParamProblem((), f"expected a finite number, got {show(value)}")
        return value
    if isinstance(value, str):
        if "\0" in value:
            raise ParamProblem((), "expected a string without a NUL character (\\u0000)")
        return value
    raise ParamProblem(
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


def _floats(value: ParamValue) -> ParamValue:
    """``value`` (an array of numbers, at any depth) with every integer a float."""
    if isinstance(value, tuple):
        return tuple(_floats(item) for item in value)
    assert isinstance(value, (int, float)) and not isinstance(value, bool)
    return float(value)


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


class StageParams:
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


def param_text(value: object) -> str:
    """A param as a command (or a person) reads it: strings as they are, the rest as JSON."""
    import json

    if isinstance(value, str):
        return value
    return json.dumps(list(value) if isinstance(value, tuple) else value)


def toml_value(value: ParamValue) -> str:
    """A param's value written as TOML reads it back (a string as a basic string, every
    control character escaped)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + _CONTROL.sub(lambda found: f"\\u{ord(found[0]):04x}", escaped) + '"'


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def masked_params(params: Mapping[str, ParamValue], masker: SecretMasker) -> dict[str, Any]:
    """``params`` with every secret in a value masked, as it is everywhere."""

    def mask(value: Any) -> Any:
        if isinstance(value, str):
            return masker.mask_text(value)
        if isinstance(value, tuple):
            return tuple(mask(item) for item in value)
        # A number can be a secret too (a PIN, an account id): masked, it is text.
        text = param_text(value)
        masked = masker.mask_text(text)
        return value if masked == text else masked

    return {name: mask(v) for name, v in params.items()}
