"""The config schema, in-process: defaults, order, and one clear line for each mistake."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlci_tui.config import load_config
from mlci_tui.config.positions import key_lines
from mlci_tui.errors import ConfigError
from tests.helpers import BAD, BAD_CONFIGS, RAY_CONFIG, expected_error


@pytest.mark.parametrize("path", BAD_CONFIGS, ids=[p.stem for p in BAD_CONFIGS])
def test_loader_raises_config_error_with_the_same_text(path: Path, monkeypatch) -> None:
    monkeypatch.chdir(BAD)
    with pytest.raises(ConfigError) as caught:
        load_config(path.name, environ={})
    assert str(caught.value) == expected_error(path)


def test_short_secret_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[pipeline]\nsecrets = ["TOKEN"]\n[stages.a]\ncommand = "true"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={"TOKEN": "abc"})
    assert str(caught.value) == (
        f"{path}:2: pipeline.secrets[0]: the value of $TOKEN is shorter than 4 characters;"
        " masking it would garble every log"
    )
    assert load_config(path, environ={"TOKEN": "abcd"}).pipeline.secrets == ("TOKEN",)
    assert load_config(path, environ={}).pipeline.secrets == ("TOKEN",)


def test_valid_config_with_every_key(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        """
[pipeline]
name = "demo"
state_dir = "state"
max_parallel = 3
secrets = ["API_TOKEN"]
kill_grace = "1500ms"
env = { SEED = "1" }

[stages.train]
command = ["python3", "train.py"]
needs = ["data"]
env = { EPOCHS = "3" }
cwd = "src"
timeout = "1h30m"
retries = 2
artifact = "build/model.json"
gates = ["loss <= 0.5", "accuracy>=0.9"]

[stages.data]
command = "make data"
timeout = 90
"""
    )
    config = load_config(path, environ={"API_TOKEN": "s3cret"})
    assert config.order == ["data", "train"]
    assert config.pipeline.name == "demo"
    assert config.pipeline.state_dir == tmp_path / "state"
    assert config.pipeline.max_parallel == 3
    assert config.pipeline.kill_grace == 1.5
    assert config.pipeline.env == {"SEED": "1"}
    train = config.stages["train"]
    assert train.command == ("python3", "train.py")
    assert train.cwd == tmp_path / "src"
    assert train.timeout == 5400
    assert train.retries == 2
    assert train.artifact == tmp_path / "src" / "build" / "model.json"
    assert [str(g) for g in train.gates] == ["loss <= 0.5", "accuracy >= 0.9"]
    assert config.stages["data"].timeout == 90


def test_defaults(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[stages.only]\ncommand = "true"\n')
    config = load_config(path, environ={})
    assert config.pipeline.name == tmp_path.name
    assert config.pipeline.state_dir == tmp_path / ".mlci"
    assert config.pipeline.max_parallel == (os.cpu_count() or 1)
    stage = config.stages["only"]
    assert (stage.cwd, stage.timeout, stage.retries, stage.artifact) == (tmp_path, None, 0, None)


def test_order_is_topological_and_otherwise_as_written(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        """
[stages.report]
command = "true"
needs = ["evaluate", "lint"]
[stages.evaluate]
command = "true"
needs = ["train"]
[stages.lint]
command = "true"
[stages.train]
command = "true"
needs = ["data"]
[stages.data]
command = "true"
"""
    )
    assert load_config(path, environ={}).order == ["lint", "data", "train", "evaluate", "report"]


def test_key_lines_follow_tables_dotted_keys_inline_tables_and_arrays() -> None:
    text = '''# comment
title = "x" # trailing
[a . "b c"]
d.e = 1
s = """
[not.a.table]
k = 1
"""
arr = [
  1,
  [2, 3], { f = 4 },
]
t = { g = { h = 5 }, i = 'lit' }
when = 1979-05-27 07:32:00Z
[[runs]]
n = 1
[[runs]]
n = 2
'''
    lines = key_lines(text)
    assert lines[("title",)] == 2
    assert lines[("a", "b c")] == 3
    assert lines[("a", "b c", "d", "e")] == 4
    assert lines[("a", "b c", "s")] == 5
    assert ("not", "a", "table") not in lines
    assert lines[("a", "b c", "arr", 0)] == 10
    assert lines[("a", "b c", "arr", 2, "f")] == 11
    assert lines[("a", "b c", "t", "g", "h")] == 13
    assert lines[("a", "b c", "when")] == 14
    assert lines[("runs", 0, "n")] == 16
    assert lines[("runs", 1, "n")] == 18


def test_ray_executor_settings(tmp_path: Path, monkeypatch) -> None:
    # Parsing does not need Ray; only the check that it is installed does.
    monkeypatch.setattr("mlci_tui.config.rules.ray_installed", lambda: True)
    (tmp_path / "src").mkdir()
    path = tmp_path / "config.toml"
    path.write_text(RAY_CONFIG)
    config = load_config(path, environ={})
    assert config.pipeline.executor == "ray"
    assert config.stages["test"].executor == "local"
    assert config.stages["train"].executor == "ray"
    ray = config.executors.ray
    assert ray is not None
    assert ray.address == "$RAY_HEAD"
    assert (ray.entrypoint_num_cpus, ray.entrypoint_num_gpus) == (2.0, 0.5)
    assert ray.entrypoint_memory == 1_000_000
    assert ray.metadata == {"team": "forecasting"}
    assert ray.runtime_env.for_ray() == {
        "working_dir": str(tmp_path / "src"),
        "pip": ["numpy==2.1.0"],
        "env_vars": {"OMP_NUM_THREADS": "4"},
    }


@pytest.mark.parametrize(
    ("outs", "artifact"),
    [
        ('["model/model.json"]', "model/model.json"),
        ('["model"]', "model"),
        ('["model/weights.bin"]', "model/weights.bin"),
    ],
)
def test_the_fixes_an_overlapping_artifact_error_names_are_valid(
    tmp_path: Path, outs: str, artifact: str
) -> None:
    # The ways out that artifact_inside_its_out.toml and artifact_holds_its_out.toml name.
    path = tmp_path / "config.toml"
    path.write_text(
        f'[stages.train]\ncommand = "true"\ndeps = ["train.py"]\n'
        f'outs = {outs}\nartifact = "{artifact}"\n'
    )
    stage = load_config(path, environ={}).stages["train"]
    assert stage.artifact == tmp_path / artifact
    assert stage.outs == (tmp_path / artifact,)
