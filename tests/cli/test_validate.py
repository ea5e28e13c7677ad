"""`mlci validate`: every broken config gives one line naming file, line and key, and exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import (
    BAD,
    BAD_CONFIGS,
    RAY_CONFIG,
    ROOT,
    assert_one_line_error,
    expected_error,
    run_python,
    validate,
)


@pytest.mark.parametrize("path", BAD_CONFIGS, ids=[p.stem for p in BAD_CONFIGS])
def test_broken_config_gives_one_line_and_exit_2(path: Path) -> None:
    assert_one_line_error(validate(path.name, cwd=BAD), expected_error(path))


def test_missing_file(tmp_path: Path) -> None:
    assert_one_line_error(
        validate("nowhere.toml", tmp_path), "nowhere.toml: no such file (pass --config PATH)"
    )


def test_directory(tmp_path: Path) -> None:
    (tmp_path / "conf.toml").mkdir()
    assert_one_line_error(
        validate("conf.toml", tmp_path), "conf.toml: is a directory, expected a TOML file"
    )


def test_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_bytes(b'[stages.a]\ncommand = "caf\xe9"\n')
    assert_one_line_error(
        validate("config.toml", tmp_path), "config.toml:2: not valid UTF-8 (byte 0xe9)"
    )


def test_huge_file(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("# padding\n" * 500_000)
    assert_one_line_error(
        validate("config.toml", tmp_path), "config.toml: larger than 1024 KiB; is this a config?"
    )


def test_symlink_loop(tmp_path: Path) -> None:
    (tmp_path / "a.toml").symlink_to(tmp_path / "b.toml")
    (tmp_path / "b.toml").symlink_to(tmp_path / "a.toml")
    assert_one_line_error(
        validate("a.toml", tmp_path), "a.toml: cannot read the file: symbolic link loop"
    )


def test_validate_prints_the_order(tmp_path: Path) -> None:
    result = validate(ROOT / "config.toml", tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "is valid: pipeline pump-failure, 4 stages" in lines[0]
    names = [line.split()[1] for line in lines[1:5]]
    assert names == ["test", "prepare", "train", "evaluate"]
    assert lines[5].split() == [
        "then,",
        "when",
        "every",
        "stage",
        "passed:",
        "deploy",
        "→",
        "monitor",
    ]


def test_ray_stage_without_ray_names_the_install_command(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "config.toml").write_text(RAY_CONFIG)
    # As if the extra were not installed, whether or not it is here.
    script = (
        "import sys; sys.modules['ray'] = None; from mlci_tui.cli import main;"
        " sys.exit(main(['validate', '--config', 'config.toml']))"
    )
    result = run_python("-c", script, cwd=tmp_path)
    assert_one_line_error(
        result,
        "config.toml:3: pipeline.executor: the Ray executor needs Ray, which is not installed"
        " (pip install -e '.[ray]')",
    )
