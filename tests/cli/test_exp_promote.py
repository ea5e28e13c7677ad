"""`mlci exp promote`: an experiment's artifact, from the cache, registered as a
version and deployed through the registry — with real processes and stores."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.helpers import Project, experiment, history, statuses, sweep_project, versions


def promoted(project: Project, *args: str) -> subprocess.CompletedProcess[bytes]:
    return project.mlci("exp", "promote", *args)


def test_promote_registers_the_artifact_and_deploys_it(tmp_path: Path) -> None:
    project = sweep_project(tmp_path / "work", deploy=True)
    number = experiment(project, "train.lr=0.3", name="fast")
    result = promoted(project, str(number), "--reason", "best of the sweep")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"registered v1 from experiment #{number} fast".encode())
    v1 = versions(project)["v1"]
    assert v1["status"] == "live" and v1["experiment_id"] == number
    assert v1["params"] == {"train.lr": 0.3, "train.depth": 3, "train.optimizer": "adam"}
    assert {(m["stage"], m["name"]): m["value"] for m in v1["metrics"]} == {
        ("evaluate", "accuracy"): 0.69,
        ("evaluate", "lr"): 0.3,
    }
    # The artifact is what a forced run with those params makes.
    fresh = sweep_project(tmp_path / "fresh")
    assert fresh.mlci("run", "--set", "train.lr=0.3", "--force").returncode == 0
    model = (tmp_path / "fresh" / "build" / "model.txt").read_bytes()
    assert (project.path / "served.txt").read_bytes() == model
    last = history(project)[0]
    assert (last["kind"], last["to"], last["outcome"]) == ("deploy", "v1", "succeeded")
    assert last["reason"] == f"experiment #{number} fast: best of the sweep"
    table = project.mlci("versions").stdout.decode()
    assert f"from experiment #{number}" in table.splitlines()[1]


def test_a_failing_analysis_rolls_back_as_after_a_run(tmp_path: Path) -> None:
    project = sweep_project(tmp_path, deploy=True)
    assert project.mlci("run").returncode == 0  # v1, live and healthy
    number = experiment(project, "train.lr=0.3")
    (project.path / "quality").write_text("0.5")
    result = promoted(project, str(number))
    assert result.returncode == 1
    assert b"v2 failed its analysis: accuracy 0.5 < 0.85; rolled back to v1" in result.stderr
    assert statuses(project) == {"v2": "rolled_back", "v1": "live"}
    assert [d["kind"] for d in history(project)[:2]] == ["auto_rollback", "deploy"]
    assert history(project)[1]["reason"] == f"experiment #{number} try"


def test_an_artifact_a_version_has_deploys_that_version(tmp_path: Path) -> None:
    project = sweep_project(tmp_path, deploy=True)
    assert project.mlci("run").returncode == 0  # v1: the config's params
    same = experiment(project, "train.lr=0.02", name="same")
    result = promoted(project, str(same))
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"artifact unchanged: v1 is live; nothing deployed\n"
    other = experiment(project, "train.lr=0.3", name="other")
    assert promoted(project, str(other)).returncode == 0  # v2 live, v1 previous
    again = promoted(project, str(same))
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith(b"artifact unchanged: same as v1; deploys it\n")
    assert statuses(project) == {"v2": "previous", "v1": "live"}
    assert set(versions(project)) == {"v1", "v2"}


def test_refusals_change_nothing(tmp_path: Path) -> None:
    project = sweep_project(tmp_path / "deploys", deploy=True)
    failed = project.mlci("exp", "run", "--set", "train.lr=0.7", "--name", "bad")
    assert failed.returncode == 1  # its gate: accuracy 0.29 < 0.5
    result = promoted(project, "1")
    assert (result.returncode, result.stderr) == (
        2,
        b"mlci: experiment #1 bad failed: only an experiment that passed can be promoted\n",
    )
    assert versions(project) == {} and history(project) == []

    plain = sweep_project(tmp_path / "plain")
    number = experiment(plain, "train.lr=0.3")
    result = promoted(plain, str(number))
    assert (result.returncode, result.stderr) == (
        2,
        b"mlci: no [deploy] table in the config: nothing knows how to deploy\n",
    )
    assert versions(plain) == {}
