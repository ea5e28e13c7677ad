"""An experiment's directory deps are the files in its workspace.

The workspace lives under the state dir (``.mlci/experiments/ID``); a directory
dep there must not be taken for a path inside the state dir, whose files a dep
never takes in — else every directory dep is empty and a changed one is cached."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import Project


def test_a_changed_directory_dep_reruns_the_stage_in_an_experiment(tmp_path: Path) -> None:
    project = Project(tmp_path)
    project.write('[stages.read]\ncommand = "cat data/x.txt"\ndeps = ["data"]\n')
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x.txt").write_text("first-content\n")
    done = project.mlci("exp", "run", "--name", "one", "-j", "1")
    assert done.returncode == 0, done.stderr
    assert b"first-content" in done.stdout

    (tmp_path / "data" / "x.txt").write_text("second-content\n")
    done = project.mlci("exp", "run", "--name", "two", "-j", "1")
    assert done.returncode == 0, done.stderr
    assert b"runs: dep data changed" in done.stdout, done.stdout.decode()
    assert b"second-content" in done.stdout, done.stdout.decode()
