"""`--set NAME=VALUE` against the config's own reader as the oracle: the value is
what ``NAME = VALUE`` in the config would be, when that is of the kind the config
has; for a string param, a TOML string is what it says and anything else is the
text as written; everything else is refused in one line."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlci_tui.config import load_config, with_params
from mlci_tui.errors import ConfigError, UsageError

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]

INT64 = st.integers(-(2**63), 2**63 - 1)
NO_NUL = st.characters(blacklist_categories=("Cs",), blacklist_characters="\0")
scalars = st.booleans() | INT64 | st.floats(allow_nan=False, allow_infinity=False) | st.text(NO_NUL)
# What a config may declare: a scalar, or an array of one kind of them.
declared_values = scalars | st.one_of(
    st.lists(st.booleans(), max_size=3),
    st.lists(INT64, max_size=3),
    st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=3),
    st.lists(st.text(NO_NUL, max_size=5), max_size=3),
)
# What a person may write after `=`: any TOML value (big integers, NaN, mixed and
# nested arrays), TOML's other string forms, and words that are not TOML at all.
any_values = st.recursive(
    st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children, max_size=3),
    max_leaves=6,
)
texts = (
    any_values.map(lambda value: toml_text(value))
    | st.text(NO_NUL, max_size=12).map(lambda text: f"'{text}'")
    | st.text(NO_NUL, max_size=12)
)


def toml_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return repr(value) if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, str):
        # A TOML basic string: control characters (DEL too) escaped, the rest as is.
        escaped = "".join(
            f"\\u{ord(char):04x}" if ord(char) < 0x20 or ord(char) == 0x7F else char
            for char in value.replace("\\", "\\\\").replace('"', '\\"')
        )
        return f'"{escaped}"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_text(item) for item in value) + "]"
    return str(value)


class Refused:
    """What the config's reader makes of a value it refuses."""


def read_as_config(directory: Path, text: str) -> Any:
    """The value ``p = TEXT`` has in a config, or `Refused` (also when TEXT says more
    than one value: ``1\nq = 2``)."""
    path = directory / "read.toml"
    path.write_text(f'[params]\np = {text}\n[stages.s]\ncommand = "true"\n')
    try:
        params = load_config(path, environ={}).params
    except ConfigError:
        return Refused
    return params["p"] if list(params) == ["p"] else Refused


def is_toml_string(text: str) -> bool:
    """Whether TOML reads ``p = TEXT`` as one string, whatever the config's rules say."""
    try:
        document = tomllib.loads(f"p = {text}")
    except tomllib.TOMLDecodeError:
        return False
    return list(document) == ["p"] and isinstance(document["p"], str)


def of_kind(declared: Any, value: Any) -> Any:
    """``value`` as a value of ``declared``'s kind, or `Refused`: bool, int and str as
    they are, a number for a float (as a float), an array of the declared items' kind."""
    if isinstance(declared, tuple):
        if not isinstance(value, tuple):
            return Refused
        if not declared:
            return value
        like = next((item for item in declared if isinstance(item, float)), declared[0])
        items = [of_kind(like, item) for item in value]
        return Refused if Refused in items else tuple(items)
    if isinstance(declared, float):
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        return float(value) if numeric else Refused
    return value if type(value) is type(declared) else Refused


def config_with(directory: Path, declared: Any):
    path = directory / "config.toml"
    path.write_text(f'[params]\np = {toml_text(declared)}\n[stages.s]\ncommand = "true"\n')
    config = load_config(path, environ={})
    assert config.params["p"] == (tuple(declared) if isinstance(declared, list) else declared)
    return config


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(declared=declared_values, text=texts)
def test_set_gives_what_the_config_would_hold_or_one_line(
    tmp_path_factory: pytest.TempPathFactory, declared: Any, text: str
) -> None:
    directory = tmp_path_factory.mktemp("params")
    config = config_with(directory, declared)
    declared = config.params["p"]
    read = read_as_config(directory, text)
    if isinstance(declared, str):
        expected = read if is_toml_string(text) else text
    else:
        expected = Refused if read is Refused else of_kind(declared, read)
    try:
        value = with_params(config, [f"p={text}"]).params["p"]
    except UsageError as error:
        assert expected is Refused, (expected, str(error))
        assert str(error).startswith(f"--set p={text}: expected ")
        return
    assert expected is not Refused, value
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    ("declared", "given", "value"),
    [
        ('"x"', '"abc"', "abc"),
        ('"x"', "'abc'", "abc"),
        ('"x"', "abc", "abc"),
        ('"x"', "'it''s'", "'it''s'"),  # not one TOML string: as written
        ('"x"', '"a" # why', "a"),
        ('"x"', "42", "42"),
        ("0.5", "1", 1.0),
        ("[0.5]", "[1, 2]", (1.0, 2.0)),
        ("[]", '["a"]', ("a",)),
    ],
)
def test_set_reads_the_value_as_toml(tmp_path: Path, declared: str, given: str, value) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f'[params]\np = {declared}\n[stages.s]\ncommand = "true"\n')
    assert with_params(load_config(path, environ={}), [f"p={given}"]).params["p"] == value


@pytest.mark.parametrize(
    ("declared", "given", "message"),
    [
        ("[8, 4]", '[8, "a"]', 'expected a number like the array\'s first item, got "a"'),
        ("[8, 4]", "[8, 4.5]", "expected an array of integers, as the config has ([8, 4])"),
        ("[[1], [2]]", "[[1], [2.5]]", "expected an array of arrays of integers, as the config"),
        ("[]", '[1, "a"]', 'expected a number like the array\'s first item, got "a"'),
        ("0", "12345678901234567890123", "expected an integer of 64 bits, got an integer of 23"),
        ("0.5", "12345678901234567890123", "expected an integer of 64 bits, got an integer of"),
        ("0", "1\nx = 2", "expected an integer, as the config has (0)"),
        ('"x"', '"a\\u0000b"', "expected a string without a NUL character"),
    ],
)
def test_set_refuses_what_the_config_would_refuse(
    tmp_path: Path, declared: str, given: str, message: str
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f'[params]\np = {declared}\n[stages.s]\ncommand = "true"\n')
    with pytest.raises(UsageError) as caught:
        with_params(load_config(path, environ={}), [f"p={given}"])
    assert str(caught.value).startswith(f"--set p={given}: {message}")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("12345678901234567890123", "params.p: expected an integer of 64 bits, got an integer"),
        ("-9223372036854775809", "params.p: expected an integer of 64 bits"),
        ('[1, "a"]', 'params.p[1]: expected a number like the array\'s first item, got "a"'),
        ("[[1], [true]]", "params.p[1]: expected a number like the array's first item, got true"),
        ("[[1], 2]", "params.p[1]: expected an array like the array's first item, got 2"),
    ],
)
def test_the_config_refuses_params_beyond_int64_and_mixed_arrays(
    tmp_path: Path, value: str, message: str
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f'[params]\np = {value}\n[stages.s]\ncommand = "true"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert str(caught.value).startswith(f"{path}:2: {message}")
    path.write_text('[params]\np = 9223372036854775807\n[stages.s]\ncommand = "true"\n')
    assert load_config(path, environ={}).params["p"] == 2**63 - 1


@pytest.mark.parametrize("declared", ["[1, 2.5]", "[2.5, 1]", "[[1], [2.5]]", "0.5", "[1, 2]"])
def test_set_with_the_config_s_own_value_is_the_config_s_value(
    tmp_path: Path, declared: str
) -> None:
    """`--set p=VALUE` with the value the config has changes nothing: the same value of
    the same types, so the same cache key and the same `$MLCI_PARAM_P`. Integers and
    floats are one kind in an array: where they mix, every one is a float, whether the
    config or `--set` gives them."""
    path = tmp_path / "config.toml"
    path.write_text(f'[params]\np = {declared}\n[stages.s]\ncommand = "true"\n')
    config = load_config(path, environ={})
    value = with_params(config, [f"p={declared}"]).params["p"]
    assert repr(value) == repr(config.params["p"])
