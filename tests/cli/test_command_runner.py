"""One command runner: a stage, the deploy and monitor commands and the alert command
all get the same environment and are stopped the same way, leaving nothing behind."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from tests.helpers import Project, mlci_env, pid_alive, read_pids, wait_dead

# Every command writes its environment to a file named after it; the pipeline,
# each table and the runner's own environment each add a variable of their own.
EVERY_COMMAND = """
[pipeline]
name = "envs"
env = { FROM_PIPELINE = "p" }

[stages.train]
command = "env > train.env; mkdir -p build; echo model > build/model.txt"
env = { FROM_TABLE = "train" }
artifact = "build/model.txt"

[stages.evaluate]
command = "echo '::metric accuracy=0.9'"
needs = ["train"]

[deploy]
command = "env > deploy.env"
env = { FROM_TABLE = "deploy" }

[monitor]
command = "env > monitor.env; echo '::metric accuracy=0.5'"
env = { FROM_TABLE = "monitor" }
checks = ["accuracy >= 0.85"]
interval = "0.1s"
samples = 1
failures_before_rollback = 1
auto_rollback = false

[alerts]
command = "env > alerts.env"
env = { FROM_TABLE = "alerts" }
"""


def environments(project: Project) -> dict[str, dict[str, str]]:
    found = {}
    for name in ("train", "deploy", "monitor", "alerts"):
        lines = (project.path / f"{name}.env").read_text().splitlines()
        found[name] = dict(line.split("=", 1) for line in lines if "=" in line)
    return found


def test_every_command_gets_the_one_environment_recipe(project: Project) -> None:
    project.write(EVERY_COMMAND)
    env = mlci_env(FROM_RUNNER="r")
    env.pop("PYTHONUNBUFFERED", None)
    result = project.mlci("run", env=env)
    # The monitor's check fails on purpose: it makes an alert, so the alert command runs.
    assert result.returncode == 1, result.stdout + result.stderr
    found = environments(project)
    in_a_venv = sys.prefix != sys.base_prefix
    tags = set()
    for name, variables in found.items():
        assert variables["FROM_RUNNER"] == "r", name
        assert variables["FROM_PIPELINE"] == "p", name
        assert variables["FROM_TABLE"] == name, name
        assert variables["MLCI_PIPELINE"] == "envs", name
        assert variables["MLCI_STATE_DIR"] == str(project.state_dir), name
        assert variables["PYTHONUNBUFFERED"] == "1", name
        if in_a_venv:
            assert variables["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)
        tags.add(variables["MLCI_PROCESS_TAG"])
    assert len(tags) == 4  # each command has a tag of its own, for the sweep
    assert found["train"]["MLCI_STAGE"] == "train"
    assert found["deploy"]["MLCI_MODEL_VERSION"] == "v1"
    assert found["monitor"]["MLCI_MODEL_VERSION"] == "v1"
    assert found["alerts"]["MLCI_ALERT_KIND"] == "run_failed"  # the last of the run's alerts
    assert found["train"]["MLCI_RUN_ID"] == found["deploy"]["MLCI_RUN_ID"] == "1"


def alert_on_failure(project: Project, command: str, timeout: str = "300s") -> None:
    project.write(
        f"""
[stages.broken]
command = "exit 3"

[alerts]
command = '''{command}'''
timeout = "{timeout}"
"""
    )


def delivery(project: Project) -> str:
    alerts = json.loads(project.mlci("alerts", "--json").stdout)["alerts"]
    assert [a["kind"] for a in alerts] == ["run_failed"]
    return alerts[0]["delivery"]


@pytest.mark.parametrize(
    "command",
    [
        # The sleep keeps the command's stderr open long after the command exited:
        # waiting for that pipe to close would hold `mlci run` for the whole timeout.
        "sleep 600 & echo $! > sleep.pid",
        # This one leaves the command's process group too: only its tag finds it.
        "setsid sleep 600 > /dev/null 2>&1 & echo $! > sleep.pid",
    ],
    ids=["backgrounded", "left-its-group"],
)
def test_what_an_alert_command_leaves_running_is_stopped_and_never_holds_the_run(
    project: Project, command: str
) -> None:
    alert_on_failure(project, command)
    result = project.mlci("run", timeout=60)
    assert result.returncode == 1
    assert delivery(project) == "sent"
    wait_dead(read_pids(project.path / "sleep.pid"))


def test_an_alert_command_that_hangs_is_stopped_at_its_timeout(project: Project) -> None:
    alert_on_failure(project, "echo $$ > sleep.pid; exec sleep 600", timeout="1s")
    result = project.mlci("run", timeout=60)
    assert result.returncode == 1
    assert delivery(project) == "alert command timed out after 1.00s"
    pids = read_pids(project.path / "sleep.pid")
    wait_dead(pids)
    assert not any(pid_alive(pid) for pid in pids)
