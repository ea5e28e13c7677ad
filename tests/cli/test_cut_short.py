"""A post-deploy analysis cut short by kill -9 of its runner: the version it left
live is analysed by the next run (what `mlci why` predicts of it is held by the
kill -9 oracle, tests/cli/test_crashes.py), its description never says
a run passed that did not, and it is never a healthy rollback target."""

from __future__ import annotations

import signal

import pytest

from tests.helpers import (
    Project,
    history,
    hold_monitor,
    run,
    served,
    setup,
    statuses,
    versions,
    wait_for,
)

pytestmark = pytest.mark.slow


def kill_during_monitor(project: Project, seed: int) -> None:
    """A run of ``seed`` whose runner is killed in its monitor's first sample; then
    the run is settled (`mlci status` recovers it)."""
    hold_monitor(project)
    (project.path / "seed").write_text(str(seed))
    (project.path / "hold-monitor").touch()
    runner = project.start("run")
    wait_for((project.path / "monitor-started").exists, timeout=60, what="monitor to start")
    runner.send_signal(signal.SIGKILL)
    runner.wait(timeout=30)
    for flag in ("hold-monitor", "monitor-started"):
        (project.path / flag).unlink()
    assert project.status()["state"] == "interrupted"


def test_a_version_records_the_run_that_deployed_it_never_that_it_passed(
    project: Project,
) -> None:
    setup(project)
    kill_during_monitor(project, seed=1)
    v1 = versions(project)["v1"]
    assert v1["status"] == "live"
    assert v1["description"] == "deployed by run 1"
    assert history(project)[0]["reason"] == "run 1"
    shown = project.mlci("history").stdout.decode() + project.mlci("versions").stdout.decode()
    assert "passed" not in shown, shown


@pytest.mark.parametrize("quality", ["0.95", "0.5"])
def test_the_next_run_analyses_the_version_a_kill_left_unanalysed(
    project: Project, quality: str
) -> None:
    setup(project)
    assert run(project, seed=1) == 0  # v1, analysed and healthy
    kill_during_monitor(project, seed=2)  # v2 live, its analysis cut short
    assert statuses(project) == {"v2": "live", "v1": "previous"}
    (project.path / "quality").write_text(quality)
    healthy = quality == "0.95"
    result = project.mlci("run")
    assert result.returncode == (0 if healthy else 1), result.stdout.decode()
    assert b"analyses v2: its analysis by run 2 was cut short" in result.stdout
    stages = {s["name"]: s["state"] for s in project.status()["stages"]}
    assert stages["deploy"] == "cached"
    assert stages["monitor"] == ("passed" if healthy else "failed")
    if healthy:
        assert statuses(project) == {"v2": "live", "v1": "previous"}
        # Analysed now: the next run has nothing to analyse.
        assert project.mlci("run").returncode == 0
        assert project.stage("monitor")["state"] == "cached"
    else:
        assert project.status()["state"] == "rolled_back"
        assert statuses(project) == {"v2": "rolled_back", "v1": "live"}
        assert served(project) == "model 1\n"


@pytest.mark.parametrize("how", ["mlci rollback", "automatic"])
def test_a_version_whose_analysis_was_cut_short_is_no_rollback_target(
    project: Project, how: str
) -> None:
    setup(project)
    assert run(project, seed=1) == 0  # v1, analysed and healthy
    kill_during_monitor(project, seed=2)  # v2 live, never analysed
    if how == "mlci rollback":
        assert run(project, seed=3) == 0  # v3 replaces v2, analysed and healthy
        assert statuses(project) == {"v3": "live", "v2": "previous", "v1": "previous"}
        rollback = project.mlci("rollback")
        assert rollback.returncode == 0, rollback.stderr
    else:
        (project.path / "quality").write_text("0.5")
        assert run(project, seed=3) == 1  # v3 fails its analysis: rolled back
        assert project.status()["state"] == "rolled_back"
    assert statuses(project) == {"v3": "rolled_back", "v2": "previous", "v1": "live"}
    assert served(project) == "model 1\n"
