"""Property test of the config loader: whatever TOML document it is given, it
returns a valid config or raises one ConfigError, a single line naming the
file, and nothing else."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlci_tui.config import Config, load_config
from mlci_tui.errors import ConfigError

KNOWN_KEYS = [
    "pipeline",
    "stages",
    "deploy",
    "monitor",
    "alerts",
    "registry",
    "name",
    "state_dir",
    "max_parallel",
    "secrets",
    "kill_grace",
    "env",
    "command",
    "needs",
    "cwd",
    "timeout",
    "retries",
    "artifact",
    "gates",
    "checks",
    "interval",
    "samples",
    "failures_before_rollback",
    "auto_rollback",
    "keep_versions",
    "key_metrics",
]


STAGE_NAMES = ["test", "train", "eval", "a", "b", "my stage", "x" * 70, "deploy"]


keys = st.sampled_from(KNOWN_KEYS + STAGE_NAMES) | st.text(min_size=1, max_size=8)


scalars = (
    st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False)
    | st.sampled_from(["5m", "90s", "0s", "5x", "true", "accuracy >= 0.9", "acc >> 1", "ask", ""])
    | st.text(max_size=20)
)


values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=5),
    max_leaves=20,
)


stage = st.fixed_dictionaries(
    {"command": st.sampled_from(["true", "echo hi"]) | values},
    optional={
        "needs": st.lists(st.sampled_from(STAGE_NAMES), max_size=3) | values,
        "timeout": values,
        "retries": values,
        "gates": st.lists(st.sampled_from(["accuracy >= 0.9", "loss < 1", "f1 >> 2"])) | values,
        "artifact": values,
        "extra": values,
    },
)


documents = st.fixed_dictionaries(
    {},
    optional={
        "pipeline": st.dictionaries(keys, values, max_size=4),
        "stages": st.dictionaries(st.sampled_from(STAGE_NAMES), stage, max_size=4) | values,
        "deploy": st.dictionaries(keys, values, max_size=3),
        "monitor": st.dictionaries(keys, values, max_size=4),
        "registry": st.dictionaries(keys, values, max_size=2),
        "surprise": values,
    },
)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def toml_document(document: dict[str, Any]) -> str:
    lines = []
    for key, value in document.items():
        if isinstance(value, dict) and key == "stages":
            for name, table in value.items():
                lines.append(f"[stages.{json.dumps(name)}]")
                if isinstance(table, dict):
                    lines += [f"{json.dumps(k)} = {toml_value(v)}" for k, v in table.items()]
                else:
                    lines[-1] = f"[stages]\n{json.dumps(name)} = {toml_value(table)}"
        elif isinstance(value, dict):
            lines.append(f"[{key}]")
            lines += [f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()]
        else:
            lines.insert(0, f"{key} = {toml_value(value)}")
    return "\n".join(lines) + "\n"


def check(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        config = load_config(path, environ={"TOKEN": "s3cret"})
    except ConfigError as error:
        message = str(error)
        assert message.startswith(str(path))
        assert "\n" not in message and "\r" not in message
        assert "Traceback" not in message
        return
    assert isinstance(config, Config)
    assert config.stages


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(documents)
def test_any_structured_document_loads_or_fails_with_one_line(tmp_path: Path, document) -> None:
    check(tmp_path / "config.toml", toml_document(document))


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.text(alphabet=st.sampled_from(list("[]{}=\"'.,#\n abc123\\\x00\x1b")), max_size=120))
def test_any_text_at_all_loads_or_fails_with_one_line(tmp_path: Path, text: str) -> None:
    check(tmp_path / "config.toml", text)
