"""The architecture, held by tests: imports only point down (the contracts in
pyproject.toml, checked by import-linter), no two modules share a file name, the
code is ruff-clean, and its type hints hold (mypy)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT


def test_every_import_points_down_and_no_two_modules_import_each_other(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from importlinter.cli import lint_imports

    status = lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True)
    report = capsys.readouterr().out
    assert status == 0, report
    assert "Contracts: 6 kept, 0 broken." in report


def test_no_two_modules_share_a_file_name() -> None:
    """Every name says where it lives: a module is found by its file name alone
    (`stage_cache.py`, not a second `cache.py`)."""
    seen: dict[str, list[str]] = {}
    for path in sorted((ROOT / "mlci_tui").rglob("*.py")):
        if path.name != "__init__.py":
            seen.setdefault(path.name, []).append(str(path.relative_to(ROOT)))
    assert {name: paths for name, paths in seen.items() if len(paths) > 1} == {}


@pytest.mark.parametrize("check", [["check"], ["format", "--check"]], ids=["lint", "format"])
def test_the_code_is_ruff_clean(check: list[str]) -> None:
    ruff = Path(sys.executable).parent / "ruff"
    result = subprocess.run(
        [str(ruff), *check, "--no-cache", "mlci_tui", "tests", "benchmarks", "demo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_type_hints_hold(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path), "mlci_tui"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_dashboard_test_waits_for_a_fixed_time() -> None:
    """A test waits for the state it asserts (`tests.helpers`: `until`, `settle`,
    `shown`), never for a number of seconds, which a loaded machine outlasts."""
    import re

    fixed = re.compile(r"pilot\.pause\(\s*(?:0*[1-9][0-9.]*|0*\.[0-9]*[1-9])")
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in sorted((ROOT / "tests").rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if fixed.search(line)
    ]
    assert found == []
