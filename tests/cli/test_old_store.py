"""A store an earlier version recorded, its logs in the format before the split log
files (`store/legacy_log.py`): read as that version read it, and never rewritten.

``tests/stores/before_split_logs`` is such a store, made by `mlci run` twice at
commit 7292242 on its ``config.toml``; ``expected/`` holds what that version's
`mlci logs` printed for it, stdout and stderr: the oracle."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mlci_tui.store.logs import index_path
from tests.helpers import Project

STORE = Path(__file__).resolve().parents[1] / "stores" / "before_split_logs"
EXPECTED = sorted(path.stem for path in (STORE / "expected").glob("*.out"))


@pytest.fixture
def old(tmp_path: Path) -> Project:
    shutil.copy(STORE / "config.toml", tmp_path / "config.toml")
    shutil.copytree(STORE / "state", tmp_path / ".mlci")
    return Project(tmp_path)


def _files(state: Path) -> dict[str, bytes]:
    return {str(p.relative_to(state)): p.read_bytes() for p in sorted(state.rglob("*.log"))}


@pytest.mark.parametrize("name", EXPECTED)
def test_mlci_logs_prints_an_old_store_s_logs_as_the_version_that_wrote_them(
    old: Project, name: str
) -> None:
    args = [part if part != "run" else "--run" for part in name.split("_")[1:]]
    before = _files(old.state_dir)
    result = old.mlci("logs", *args)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (STORE / "expected" / f"{name}.out").read_bytes()
    assert result.stderr == (STORE / "expected" / f"{name}.err").read_bytes()
    assert _files(old.state_dir) == before  # read, never rewritten
    assert not list(old.state_dir.rglob("*.idx"))


def test_an_old_store_takes_new_runs_and_its_old_logs_stay_readable(old: Project) -> None:
    (old.path / "tried").touch()
    result = old.mlci("run", "--force")
    assert result.returncode == 0, result.stderr
    assert index_path(old.state_dir / "runs" / "3" / "train.log").exists()
    assert old.mlci("logs", "--run", "3", "flaky").stdout == b"second try\n"
    assert old.mlci("logs", "--run", "1", "flaky").stdout == b"first try\nboom\nsecond try\n"
