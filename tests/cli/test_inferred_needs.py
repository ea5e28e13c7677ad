"""A stage needs the stages whose outs its deps read, though its config names none:
through real `mlci` runs, the edge orders, skips, selects, keys the cache, and is
shown by `mlci validate`, `mlci why` and `mlci run --dry-run`."""

from __future__ import annotations

import json

from tests.helpers import Project, validate

# `train` is written first and names no stage; its dep `data` holds prepare's out.
PIPELINE = """
[pipeline]
name = "order"
max_parallel = 4

[stages.train]
command = "cat data/*.csv > model.txt"
deps = ["data"]
outs = ["model.txt"]

[stages.prepare]
command = "sleep 0.3; cp raw.csv data/clean.csv"
deps = ["raw.csv"]
outs = ["data/clean.csv"]

[stages.report]
command = "cat data/*.csv > report.txt"
deps = ["data/*.csv"]
outs = ["report.txt"]
"""


def _project(project: Project) -> Project:
    project.write(PIPELINE)
    (project.path / "data").mkdir()
    (project.path / "data" / "notes.csv").write_text("notes\n")
    (project.path / "raw.csv").write_text("first\n")
    return project


def _stages(project: Project) -> dict[str, dict]:
    return {stage["name"]: stage for stage in project.status()["stages"]}


def test_a_stage_reading_a_directory_runs_after_the_stage_writing_into_it(
    project: Project,
) -> None:
    _project(project)
    shown = validate(project.config_path, project.path)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[1:] == [
        "  1. prepare  outs data/clean.csv  cached when unchanged",
        "  2. train    needs prepare (its out data/clean.csv)  outs model.txt"
        "  cached when unchanged",
        "  3. report   needs prepare (its out data/clean.csv)  outs report.txt"
        "  cached when unchanged",
    ]
    assert project.mlci("run").returncode == 0
    assert (project.path / "model.txt").read_text() == "first\nnotes\n"
    assert (project.path / "report.txt").read_text() == "first\nnotes\n"
    stages = _stages(project)
    assert stages["train"]["needs"] == ["prepare"]
    assert stages["train"]["started_at"] >= stages["prepare"]["ended_at"]

    # A new input: the plan says train waits for prepare, and the run reads what
    # prepare writes now, never a cached result of the old data.
    (project.path / "raw.csv").write_text("second\n")
    plan = json.loads(project.mlci("why", "--json").stdout)
    assert [(row["stage"], row["decision"]) for row in plan] == [
        ("prepare", "run"),
        ("train", "unknown"),
        ("report", "unknown"),
    ]
    assert plan[1]["reasons"] == [
        "needs prepare, which runs first: cached if what it makes is the same"
    ]
    dry = project.mlci("run", "--dry-run").stdout.decode()
    assert "train    unknown  needs prepare, which runs first" in dry
    assert project.mlci("run").returncode == 0
    assert (project.path / "model.txt").read_text() == "second\nnotes\n"
    assert (project.path / "report.txt").read_text() == "second\nnotes\n"

    # Back to the first input: everything is the first run's result again.
    (project.path / "raw.csv").write_text("first\n")
    assert project.mlci("run").returncode == 0
    assert {name: s["state"] for name, s in _stages(project).items()} == {
        "prepare": "cached",
        "train": "cached",
        "report": "cached",
    }
    assert (project.path / "model.txt").read_text() == "first\nnotes\n"


def test_a_failed_writer_skips_its_readers_and_a_target_brings_its_writer(
    project: Project,
) -> None:
    _project(project)
    (project.path / "raw.csv").unlink()
    assert project.mlci("run").returncode == 1
    stages = _stages(project)
    assert stages["prepare"]["state"] == "failed"
    assert stages["train"]["state"] == "skipped"
    assert stages["train"]["message"] == "prepare did not pass"
    assert not (project.path / "model.txt").exists()

    (project.path / "raw.csv").write_text("first\n")
    assert project.mlci("run", "--stage", "train").returncode == 0
    assert list(_stages(project)) == ["prepare", "train"]
    assert (project.path / "model.txt").read_text() == "first\nnotes\n"
