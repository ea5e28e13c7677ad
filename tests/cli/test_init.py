"""`mlci init`: a pipeline that passes at once, and a refusal that changes nothing."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from mlci_tui.commands.init import STARTER, starter_files
from tests.helpers import ROOT, Project, run_python, run_stages, stage_states, why_rows

STAGES = ["test", "train", "evaluate", "deploy", "monitor"]


def init(cwd: Path, *args: str):
    return run_python("-m", "mlci_tui", "init", *args, cwd=cwd)


def tree(root: Path) -> dict[str, tuple[bytes, int] | str]:
    """Every path under ``root``: a file's bytes and mtime, a link's target, ``dir``."""
    found: dict[str, tuple[bytes, int] | str] = {}
    for path in sorted(root.rglob("*")):
        name = str(path.relative_to(root))
        if path.is_symlink():
            found[name] = f"-> {os.readlink(path)}"
        elif path.is_dir():
            found[name] = "dir"
        else:
            found[name] = (path.read_bytes(), path.stat().st_mtime_ns)
    return found


def test_init_writes_a_pipeline_that_passes_then_is_cached_whole(tmp_path: Path) -> None:
    result = init(tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    written = {str(path.relative_to(tmp_path)) for path in tmp_path.rglob("*") if path.is_file()}
    assert written == {str(path) for path in starter_files()}
    for name in starter_files():
        assert (tmp_path / name).read_bytes() == (STARTER / name).read_bytes()

    project = Project(tmp_path)
    valid = project.mlci("validate")
    assert valid.returncode == 0, valid.stderr
    first = run_stages(project)
    assert stage_states(first) == dict.fromkeys(STAGES, "passed")
    assert project.mlci("versions").returncode == 0
    second = run_stages(project)
    assert stage_states(second) == dict.fromkeys(STAGES, "cached")
    assert {row["stage"]: row["decision"] for row in why_rows(project).values()} == dict.fromkeys(
        STAGES, "cached"
    )
    # A param the config declares changes the model: a newcomer's first --set shows it.
    third = run_stages(project, "--set", "train.seed=1")
    assert stage_states(third) == {
        "test": "cached",
        "train": "passed",
        "evaluate": "passed",
        "deploy": "passed",
        "monitor": "passed",
    }


def test_init_dir_makes_the_directory_and_writes_there(tmp_path: Path) -> None:
    result = init(tmp_path, "new/project")
    assert result.returncode == 0, result.stderr
    assert "cd new/project && mlci run" in result.stdout
    target = tmp_path / "new" / "project"
    assert sorted(p.relative_to(target) for p in target.rglob("*") if p.is_file()) == sorted(
        starter_files()
    )
    valid = Project(target).mlci("validate")
    assert valid.returncode == 0, valid.stderr
    assert list(tmp_path.iterdir()) == [tmp_path / "new"]


def test_init_twice_refuses_and_changes_nothing(tmp_path: Path) -> None:
    assert init(tmp_path).returncode == 0
    before = tree(tmp_path)
    again = init(tmp_path)
    assert again.returncode == 2
    assert again.stdout == ""
    assert again.stderr == "mlci: init: config.toml exists already; nothing was written\n"
    assert tree(tmp_path) == before


@pytest.mark.parametrize("name", starter_files(), ids=str)
@pytest.mark.parametrize("kind", ["file", "dangling link"])
def test_any_file_init_would_write_stops_it_before_it_writes_one(
    tmp_path: Path, name: Path, kind: str
) -> None:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "file":
        path.write_text("mine\n")
    else:
        path.symlink_to(tmp_path / "elsewhere")
    before = tree(tmp_path)
    result = init(tmp_path)
    assert result.returncode == 2
    assert result.stderr == f"mlci: init: {name} exists already; nothing was written\n"
    assert tree(tmp_path) == before


def test_init_refuses_a_file_where_it_needs_a_directory(tmp_path: Path) -> None:
    (tmp_path / "src").write_text("mine\n")
    before = tree(tmp_path)
    result = init(tmp_path)
    assert result.returncode == 2
    assert result.stderr == (
        "mlci: init: src is not a directory, and src/deploy.py would be in it;"
        " nothing was written\n"
    )
    assert tree(tmp_path) == before
    file = init(tmp_path, "src")
    assert (file.returncode, file.stderr) == (
        2,
        "mlci: init: src is not a directory; nothing was written\n",
    )


def test_the_readme_shows_the_config_init_writes() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Starting from `mlci init`") :]
    block = section[section.index("```toml\n") + len("```toml\n") :]
    assert block[: block.index("```")] == (STARTER / "config.toml").read_text()


@pytest.mark.parametrize("name", ["my dir; touch INJECTED", "-weird", "it's", "$(touch X)"])
def test_the_hint_names_dir_as_a_shell_reads_it(tmp_path: Path, name: str) -> None:
    result = init(tmp_path, "--", name)
    assert result.returncode == 0, result.stderr
    hint = result.stdout.splitlines()[-1]
    command = hint.removeprefix("next: ").split(" && ")[0]
    # The shell's own reading: cd into it, from where init ran, and say where that is.
    done = subprocess.run(
        ["sh", "-c", f"{command} && pwd -P"], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str((tmp_path / name).resolve())
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_a_name_too_long_is_refused_in_one_line(tmp_path: Path) -> None:
    result = init(tmp_path, "x" * 300)
    assert result.returncode == 2
    assert result.stderr == f"mlci: init: {'x' * 300}: File name too long; nothing was written\n"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("where", ["before", "after"])
def test_init_takes_no_config_and_says_so(tmp_path: Path, where: str) -> None:
    args = ["--config", "sub/c.toml"]
    argv = [*args, "init"] if where == "before" else ["init", *args]
    result = run_python("-m", "mlci_tui", *argv, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == (
        "mlci: init writes DIR/config.toml and takes no --config; name DIR: mlci init DIR"
        " (see mlci --help)\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_a_disk_that_fills_leaves_no_directory_init_made(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "small"
    mount.mkdir()
    # One page: config.toml fits, the first script does not.
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4k", "tmpfs", str(mount)], check=True)
    try:
        (mount / "mine").mkdir()
        result = init(tmp_path, "small/mine/p")
        assert result.returncode == 2
        assert result.stderr.endswith(": No space left on device; nothing was written\n")
        assert [p.name for p in mount.rglob("*")] == ["mine"]
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
