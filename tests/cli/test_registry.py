"""The model registry: versions, deploys, rollbacks, the audit trail, monitoring
and alerts — with real processes, a real store and real files."""

from __future__ import annotations

import contextlib
import hashlib
import json
import signal
import socket
import sqlite3
import time
from pathlib import Path

import psutil
import pytest

from tests.helpers import (
    Project,
    demo_project,
    history,
    mlci_env,
    notes_of,
    run,
    served,
    setup,
    start_held_rollback,
    statuses,
    two_versions,
    versions,
    wait_dead,
    wait_for,
)


def test_a_passing_run_registers_deploys_and_monitors_a_version(project: Project) -> None:
    setup(project)
    assert run(project, seed=1) == 0
    v1 = versions(project)["v1"]
    stored = project.state_dir / "versions" / "v1" / "model.txt"
    assert stored.read_text() == "model 1\n"
    assert v1["sha256"] == hashlib.sha256(stored.read_bytes()).hexdigest()
    assert v1["size_bytes"] == len("model 1\n")
    assert v1["status"] == "live" and v1["run_id"] == 1
    assert v1["metrics"] == [
        {"stage": "evaluate", "name": "accuracy", "value": 0.9},
        {"stage": "evaluate", "name": "f1", "value": 0.8},
    ]
    assert v1["created_at"].endswith("+00:00") and v1["git_commit"] is None
    assert served(project) == "model 1\n"
    pointer = json.loads((project.state_dir / "current.json").read_text())
    assert pointer["version"] == 1 and pointer["sha256"] == v1["sha256"]
    assert (project.state_dir / "current").resolve() == stored.resolve()
    stages = {s["name"]: s["state"] for s in project.status()["stages"]}
    assert stages == {
        "train": "passed",
        "evaluate": "passed",
        "deploy": "passed",
        "monitor": "passed",
    }
    deploy_notes = notes_of(project.state_dir / "runs" / "1" / "deploy.log")
    assert "registered v1" in deploy_notes and "v1 is live\n" in deploy_notes
    monitor_log = (project.state_dir / "runs" / "1" / "monitor.log").read_bytes()
    assert monitor_log.count(b"::metric accuracy=0.95") == 3


def test_numbers_count_up_and_the_table_shows_newest_first(project: Project) -> None:
    setup(project)
    for seed in (1, 2, 3):
        assert run(project, seed) == 0
    assert statuses(project) == {"v3": "live", "v2": "previous", "v1": "previous"}
    table = project.mlci("versions").stdout.decode().splitlines()
    assert [line.split()[0] for line in table] == ["VERSION", "v3", "v2", "v1"]
    assert "ACCURACY" in table[0] and "0.9" in table[1] and "superseded by v3" in table[2]
    assert served(project) == "model 3\n"


def test_a_failed_deploy_leaves_the_live_version_and_is_recorded(project: Project) -> None:
    setup(project)
    assert run(project, seed=1) == 0
    (project.path / "fail-deploy").touch()
    assert run(project, seed=2) == 1
    assert statuses(project) == {"v2": "failed", "v1": "live"}
    assert served(project) == "model 1\n"
    assert json.loads((project.state_dir / "current.json").read_text())["version"] == 1
    last = history(project)[0]
    assert (last["kind"], last["to"], last["outcome"]) == ("deploy", "v2", "failed")
    assert last["message"] == "the deploy command failed (exit code 3)"
    alerts = (project.path / "alerts.txt").read_text()
    assert "deploy_failed|v2|deploy of v2 failed" in alerts and "run_failed||" in alerts


def test_a_deploy_that_hangs_times_out_and_changes_nothing(project: Project) -> None:
    setup(project, timeout="1s")
    assert run(project, seed=1) == 0
    (project.path / "hang-deploy").touch()
    assert run(project, seed=2) == 1
    assert statuses(project) == {"v2": "failed", "v1": "live"}
    assert history(project)[0]["message"] == "the deploy command timed out after 1.00s"
    assert served(project) == "model 1\n"


def test_rollback_defaults_to_the_last_healthy_version(project: Project) -> None:
    setup(project)
    for seed in (1, 2, 3):
        run(project, seed)
    result = project.mlci("rollback", "--reason", "v3 looks off")
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().endswith("rolled back from v3 to v2\n")
    assert statuses(project) == {"v3": "rolled_back", "v2": "live", "v1": "previous"}
    assert served(project) == "model 2\n"
    # Again: v3 was rolled back, so it is no target; v1 is.
    assert project.mlci("rollback").returncode == 0
    assert statuses(project) == {"v3": "rolled_back", "v2": "rolled_back", "v1": "live"}
    result = project.mlci("rollback")
    assert result.returncode == 1
    assert result.stderr == (
        b"mlci: no earlier healthy version to roll back to from v1"
        b" (name one: mlci rollback VERSION)\n"
    )


def test_rollback_refusals_change_nothing(project: Project) -> None:
    two_versions(project)
    before = (statuses(project), history(project), served(project))
    for args, code, message in (
        (["rollback", "v2"], 1, b"mlci: v2 is already live\n"),
        (["rollback", "v9"], 1, b"mlci: no version 'v9' (versions: v1 to v2)\n"),
        (
            ["deploy", "banana"],
            2,
            b"mlci deploy: argument VERSION: expected a version like v3, got 'banana'"
            b" (see mlci deploy --help)\n",
        ),
    ):
        result = project.mlci(*args)
        assert (result.returncode, result.stderr) == (code, message)
    assert (statuses(project), history(project), served(project)) == before


def test_a_tampered_artifact_is_refused(project: Project) -> None:
    two_versions(project)
    (project.state_dir / "versions" / "v1" / "model.txt").write_text("model 666\n")
    result = project.mlci("rollback", "v1")
    assert result.returncode == 1
    assert b"refused: the artifact of v1 was modified in the store (sha256" in result.stderr
    assert statuses(project)["v2"] == "live" and served(project) == "model 2\n"
    assert history(project)[0]["outcome"] == "failed"


def test_two_rollbacks_at_once_exactly_one_runs(project: Project) -> None:
    first = start_held_rollback(project)
    second = project.mlci("rollback", "v1")
    assert second.returncode == 1
    err = second.stderr.decode()
    assert err.startswith("mlci: a rollback to v1 is in progress (by ")
    assert err.endswith("one deploy or rollback runs at a time\n")
    (project.path / "go").touch()
    assert first.wait(timeout=60) == 0
    assert statuses(project)["v1"] == "live"
    assert (project.path / "deploys.txt").read_text().count("v1 from v2") == 1


def test_a_deploy_interrupted_by_a_crash_is_recovered_and_never_blocks(project: Project) -> None:
    deploying = start_held_rollback(project)
    deploying.send_signal(signal.SIGKILL)
    deploying.wait(timeout=30)
    # The next command finds the dead deployment, records it and frees the lock.
    trail = history(project)
    assert trail[0]["outcome"] == "interrupted" and trail[0]["to"] == "v1"
    assert statuses(project)["v2"] == "live" and served(project) == "model 2\n"
    (project.path / "hold-deploy").unlink()
    assert project.mlci("rollback", "v1").returncode == 0
    assert statuses(project)["v1"] == "live"


def test_a_crash_after_the_pointer_moved_is_completed_by_recovery(project: Project) -> None:
    two_versions(project)
    # Replay the window between moving the pointer and recording it: a running
    # deployment whose process is gone, and a pointer that names it.
    db = sqlite3.connect(project.state_dir / "mlci.db")
    with db:
        cursor = db.execute(
            "INSERT INTO deployments (kind, from_version, to_version, user, started_at, outcome,"
            " pid, host) VALUES ('rollback', 2, 1, 'someone', ?, 'running', 999999, ?)",
            (time.time(), socket.gethostname()),
        )
        deployment_id = cursor.lastrowid
    db.close()
    pointer = json.loads((project.state_dir / "current.json").read_text())
    v1 = project.state_dir / "versions" / "v1" / "model.txt"
    pointer.update(version=1, artifact=str(v1), deployment_id=deployment_id)
    (project.state_dir / "current.json").write_text(json.dumps(pointer))
    assert history(project)[0]["outcome"] == "succeeded"
    assert statuses(project) == {"v2": "rolled_back", "v1": "live"}
    assert (project.state_dir / "current").resolve() == v1.resolve()


def test_drift_makes_the_monitor_roll_back_by_itself(project: Project) -> None:
    two_versions(project)
    (project.path / "quality").write_text("0.61")
    assert run(project, seed=3) == 1
    status = project.status()
    assert status["state"] == "rolled_back" and status["exit_code"] == 1
    monitor = next(s for s in status["stages"] if s["name"] == "monitor")
    assert monitor["state"] == "failed"
    assert monitor["message"] == "v3 failed its analysis: accuracy 0.61 < 0.85; rolled back to v2"
    v3 = versions(project)["v3"]
    assert v3["status"] == "rolled_back"
    assert v3["description"] == "auto-rolled back: accuracy 0.61 < 0.85"
    assert statuses(project)["v2"] == "live" and served(project) == "model 2\n"
    last = history(project)[0]
    assert (last["kind"], last["from"], last["to"], last["outcome"]) == (
        "auto_rollback",
        "v3",
        "v2",
        "succeeded",
    )
    assert last["reason"] == "accuracy 0.61 < 0.85"
    assert (
        "auto_rollback|v2|rolled back from v3 to v2: accuracy 0.61 < 0.85"
        in (project.path / "alerts.txt").read_text()
    )


def test_ask_leaves_a_pending_decision_that_rollback_answers(project: Project) -> None:
    two_versions(project, policy='"ask"')
    (project.path / "quality").write_text("0.5")
    assert run(project, seed=3) == 1
    assert project.status()["state"] == "failed"
    assert statuses(project)["v3"] == "live"  # nobody decided yet
    pending = json.loads(project.mlci("alerts", "--json").stdout)["pending_decisions"]
    assert len(pending) == 1
    assert (pending[0]["version"], pending[0]["target"], pending[0]["state"]) == (
        "v3",
        "v2",
        "pending",
    )
    assert "decision_pending|v3|" in (project.path / "alerts.txt").read_text()
    assert b"PENDING  v3 failed its analysis" in project.mlci("alerts").stdout
    assert project.mlci("rollback").returncode == 0
    assert statuses(project)["v2"] == "live"
    assert json.loads(project.mlci("alerts", "--json").stdout)["pending_decisions"] == []


def test_ask_can_be_dismissed(project: Project) -> None:
    two_versions(project, policy='"ask"')
    (project.path / "quality").write_text("0.5")
    run(project, seed=3)
    assert project.mlci("alerts", "--dismiss").stdout == b"dismissed 1 pending decision\n"
    assert json.loads(project.mlci("alerts", "--json").stdout)["pending_decisions"] == []
    assert statuses(project)["v3"] == "live"


def test_auto_rollback_off_only_alerts(project: Project) -> None:
    two_versions(project, policy="false")
    (project.path / "quality").write_text("0.5")
    assert run(project, seed=3) == 1
    assert statuses(project)["v3"] == "live"
    assert (
        "analysis_failed|v3|v3 failed its analysis: accuracy 0.5 < 0.85; auto_rollback is off"
        in (project.path / "alerts.txt").read_text()
    )


def test_pruning_keeps_the_live_and_the_known_good_version(project: Project) -> None:
    setup(project, keep=1)
    for seed in (1, 2, 3):
        assert run(project, seed) == 0
    found = versions(project)
    assert [found[v]["pruned"] for v in ("v1", "v2", "v3")] == [True, False, False]
    assert not (project.state_dir / "versions" / "v1").exists()
    assert (project.state_dir / "versions" / "v2" / "model.txt").exists()
    assert found["v1"]["sha256"] and found["v1"]["metrics"]  # the row stays
    result = project.mlci("rollback", "v1")
    assert result.returncode == 1
    assert b"the artifact of v1 was pruned (keep_versions = 1)" in result.stderr
    assert statuses(project)["v3"] == "live"


def test_a_failing_alert_command_is_recorded_not_fatal(project: Project) -> None:
    setup(project)
    (project.path / "fail-alert").touch()
    (project.path / "fail-deploy").touch()
    assert run(project, seed=1) == 1
    alerts = json.loads(project.mlci("alerts", "--json").stdout)["alerts"]
    assert {a["kind"] for a in alerts} == {"deploy_failed", "run_failed"}
    assert all(a["delivery"].startswith("alert command failed (exit code 1)") for a in alerts)


def test_the_audit_trail(project: Project) -> None:
    two_versions(project)
    project.mlci("rollback", "--reason", "customer complaint")
    project.mlci("deploy", "v2", "--force", "--reason", "fixed upstream")
    trail = history(project)
    assert [(d["kind"], d["from"], d["to"], d["outcome"]) for d in trail] == [
        ("deploy", "v1", "v2", "succeeded"),
        ("rollback", "v2", "v1", "succeeded"),
        ("deploy", "v1", "v2", "succeeded"),
        ("deploy", None, "v1", "succeeded"),
    ]
    assert [d["reason"] for d in trail] == [
        "fixed upstream",
        "customer complaint",
        "run 2",
        "run 1",
    ]
    assert all(d["user"] and d["duration_s"] >= 0 and d["ended_at"] for d in trail)
    table = project.mlci("history").stdout.decode().splitlines()
    assert table[0].split() == [
        "#",
        "WHEN",
        "KIND",
        "FROM",
        "TO",
        "WHO",
        "OUTCOME",
        "DURATION",
        "WHY",
    ]
    assert "customer complaint" in table[2]


def test_monitor_once_counts_failures_across_invocations(project: Project) -> None:
    two_versions(project)
    assert project.mlci("monitor", "--once").returncode == 0
    (project.path / "quality").write_text("0.4")
    first = project.mlci("monitor", "--once")
    assert first.returncode == 1 and b"1 of 2 failures in a row" in first.stdout
    assert statuses(project)["v2"] == "live"
    second = project.mlci("monitor", "--once")
    assert second.returncode == 1
    assert statuses(project) == {"v2": "rolled_back", "v1": "live"}
    assert b"rolling back to v1" in second.stdout


def test_monitor_runs_until_ctrl_c(project: Project) -> None:
    setup(project)
    run(project, seed=1)
    watcher = project.start("monitor")
    wait_for(lambda: (project.state_dir / "mlci.db").exists() and _samples(project) >= 6)
    watcher.send_signal(signal.SIGINT)
    assert watcher.wait(timeout=30) == 130


def _samples(project: Project) -> int:
    db = sqlite3.connect(project.state_dir / "mlci.db")
    try:
        return db.execute("SELECT COUNT(*) FROM monitor_samples").fetchone()[0]
    finally:
        db.close()


def test_the_demo_story_from_a_fresh_clone(tmp_path: Path) -> None:
    """The README's story: a run, a cached one, a retrained one, a rollback, then
    drift rolled back by itself."""
    project = demo_project(tmp_path)
    assert project.mlci("run").returncode == 0
    assert project.mlci("run").returncode == 0
    assert statuses(project) == {"v1": "live"}
    assert project.mlci("run", "--set", "train.seed=1").returncode == 0
    assert statuses(project) == {"v2": "live", "v1": "previous"}
    assert project.mlci("rollback").returncode == 0
    assert statuses(project) == {"v2": "rolled_back", "v1": "live"}
    assert history(project)[0]["kind"] == "rollback"
    drift = project.mlci("run", "--set", "train.seed=2", env=mlci_env(MLCI_DEMO_DRIFT="1"))
    assert drift.returncode == 1
    assert statuses(project) == {"v3": "rolled_back", "v2": "rolled_back", "v1": "live"}
    assert versions(project)["v3"]["description"].startswith("auto-rolled back: accuracy ")
    assert project.status()["state"] == "rolled_back"
    assert (tmp_path / "build" / "serving" / "VERSION").read_text() == "v1\n"


@pytest.mark.parametrize("command", ["versions", "history", "alerts"])
def test_registry_commands_without_a_store(project: Project, command: str) -> None:
    setup(project)
    result = project.mlci(command)
    assert result.returncode == 1
    assert result.stderr == b"mlci: no runs yet in .mlci (start one with `mlci run`)\n"


def test_leftover_deploy_process_is_stopped_by_recovery(project: Project) -> None:
    deploying = start_held_rollback(project)
    children = psutil.Process(deploying.pid).children(recursive=True)
    deploying.send_signal(signal.SIGKILL)
    deploying.wait(timeout=30)
    project.mlci("history")
    wait_dead(c.pid for c in children)


def test_a_deploy_command_that_is_killed_changes_nothing(project: Project) -> None:
    setup(project)
    for seed in (1, 2):
        assert run(project, seed) == 0
    config = project.config_path.read_text()
    project.config_path.write_text(
        config.replace("[deploy]\ncommand = '''", "[deploy]\ncommand = '''\nkill -9 $$\n", 1)
    )
    result = project.mlci("rollback", "v1")
    assert result.returncode == 1
    assert result.stderr.decode() == "mlci: the deploy command failed (killed by SIGKILL)\n"
    assert statuses(project) == {"v2": "live", "v1": "previous"}
    assert served(project) == "model 2\n"
    assert history(project)[0]["outcome"] == "failed"


def test_secrets_never_reach_the_dashboard_or_an_alert(project: Project) -> None:
    secret = "s3cret-token-value"
    setup(project)
    config = project.config_path.read_text().replace(
        'name = "tiny"', 'name = "tiny"\nsecrets = ["API_TOKEN"]'
    )
    config = config.replace(
        "command = \"echo '::metric accuracy=0.9 f1=0.8'\"",
        "command = \"echo '::metric accuracy=0.9 f1=0.8'; echo token $API_TOKEN\"",
    )
    project.config_path.write_text(config)
    env = mlci_env(API_TOKEN=secret)
    for seed in (1, 2):
        assert run(project, seed, API_TOKEN=secret) == 0
    result = project.mlci("rollback", "--reason", f"leaked {secret} here", env=env)
    assert result.returncode == 0, result.stderr
    assert history(project)[0]["reason"] == "leaked *** here"
    alerts = (project.path / "alerts.txt").read_text()
    assert "rollback|v1|rolled back from v2 to v1: leaked *** here" in alerts
    assert secret not in alerts
    everything = b"".join(p.read_bytes() for p in project.state_dir.rglob("*") if p.is_file())
    assert secret.encode() not in everything


def test_a_version_production_left_is_deployed_again_only_with_force(project: Project) -> None:
    two_versions(project)
    assert project.mlci("rollback", "v1").returncode == 0  # v2 is now rolled back
    before = history(project)
    refused = project.mlci("deploy", "v2")
    assert refused.returncode == 1
    assert refused.stderr.decode() == (
        "mlci: v2 was rolled back (rolled back to v1); to deploy it again anyway:"
        " mlci deploy v2 --force\n"
    )
    assert history(project) == before and served(project) == "model 1\n"
    assert project.mlci("deploy", "v2", "--force").returncode == 0
    assert statuses(project)["v2"] == "live"


def test_a_version_whose_deploy_failed_is_deployed_again_only_with_force(
    project: Project,
) -> None:
    setup(project)
    assert run(project, 1) == 0
    (project.path / "fail-deploy").touch()
    assert run(project, 2) == 1
    assert statuses(project) == {"v2": "failed", "v1": "live"}
    (project.path / "fail-deploy").unlink()  # the deploy command would work now...
    before = history(project)
    refused = project.mlci("deploy", "v2")
    assert refused.returncode == 1
    assert refused.stderr.decode() == (
        "mlci: v2 failed (deploy failed: the deploy command failed (exit code 3));"
        " to deploy it again anyway: mlci deploy v2 --force\n"
    )
    assert history(project) == before and served(project) == "model 1\n"
    assert project.mlci("deploy", "v2", "--force").returncode == 0  # ...when it is meant
    assert statuses(project)["v2"] == "live"


def test_a_manual_deploy_is_analysed_like_a_run_deploy(project: Project) -> None:
    two_versions(project)  # v2 live, v1 previous (healthy)
    assert project.mlci("deploy", "v1", "--no-analysis").returncode == 0
    assert statuses(project) == {"v2": "previous", "v1": "live"}
    (project.path / "quality").write_text("0.5")
    result = project.mlci("deploy", "v2")
    assert result.returncode == 1
    assert (
        "v2 failed its analysis: accuracy 0.5 < 0.85; rolled back to v1" in result.stderr.decode()
    )
    assert statuses(project) == {"v2": "rolled_back", "v1": "live"}
    assert [d["kind"] for d in history(project)[:2]] == ["auto_rollback", "deploy"]


def test_a_deploy_that_cannot_register_its_artifact_says_why_in_its_log(
    project: Project,
) -> None:
    # The artifact is a directory with a link out of it, which the registry refuses.
    project.write(
        """
[stages.train]
command = "mkdir -p model && echo weights > model/w && ln -sf /etc/hostname model/out"
artifact = "model"

[deploy]
command = "true"
"""
    )
    assert project.mlci("run").returncode == 1
    deploy = project.stage("deploy")
    assert deploy["state"] == "failed"
    assert deploy["message"].startswith("its artifact could not be registered: ")
    logs = project.mlci("logs", "deploy")
    assert logs.returncode == 0, logs.stderr
    assert logs.stderr.count(f"mlci: {deploy['message']}\n".encode()) == 1, logs.stderr


def test_people_read_rolled_back_and_json_keeps_the_enum(project: Project) -> None:
    two_versions(project)
    (project.path / "quality").write_text("0.61")
    assert run(project, seed=3) == 1
    texts = {
        command: project.mlci(*command.split()).stdout.decode()
        for command in ("versions", "status", "history", "report")
    }
    assert "rolled back" in texts["versions"] and "rolled back" in texts["status"]
    assert "auto rollback" in texts["history"]
    for command, text in texts.items():
        assert "rolled_back" not in text and "auto_rollback" not in text, (command, text)
    assert versions(project)["v3"]["status"] == "rolled_back"
    assert project.status()["state"] == "rolled_back"
    assert history(project)[0]["kind"] == "auto_rollback"


def test_the_alerts_text_gives_each_alert_its_id_and_state(project: Project) -> None:
    setup(project)
    (project.path / "fail-deploy").touch()
    assert run(project, seed=1) == 1  # a failed deploy and a failed run: two alerts
    listed = json.loads(project.mlci("alerts", "--json").stdout)["alerts"]
    assert len(listed) == 2

    def rows() -> dict[int, list[str]]:
        lines = project.mlci("alerts").stdout.decode().splitlines()
        assert lines[0].split()[:5] == ["ID", "WHEN", "STATE", "KIND", "MESSAGE"]
        return {int(line.split()[0]): line.split() for line in lines[1:]}

    # An ID the text shows is one `--ack` takes, and the text then says so.
    assert {alert["id"]: "new" for alert in listed} == {i: r[3] for i, r in rows().items()}
    first = min(rows())
    assert project.mlci("alerts", "--ack", str(first)).returncode == 0
    assert {i: r[3] for i, r in rows().items()} == {
        alert["id"]: "acknowledged" if alert["id"] == first else "new" for alert in listed
    }


@pytest.mark.parametrize(
    "command, artifact",
    [("mkdir art && echo x > art/f && mkfifo art/pipe", "art"), ("mkfifo m.bin", "m.bin")],
    ids=["a_pipe_inside", "a_pipe"],
)
def test_an_artifact_that_is_or_holds_a_pipe_fails_registration_without_waiting(
    project: Project, command: str, artifact: str
) -> None:
    """Found by a red team: hashing the artifact opened the FIFO and waited for a
    writer forever. It is refused, in one line, and the run ends."""
    project.write(
        f'[stages.a]\ncommand = "{command}"\ndeps = ["config.toml"]\nartifact = "{artifact}"\n'
    )
    result = project.mlci("run", timeout=60)
    assert result.returncode != 0
    assert b"its artifact could not be registered: " in result.stdout + result.stderr
    assert b"is neither a file, a directory nor a link" in result.stdout + result.stderr
    assert project.mlci("versions", "--json").stdout.strip() == b"[]"


def _decided_by(project: Project) -> list[tuple[str, str | None]]:
    with contextlib.closing(sqlite3.connect(project.state_dir / "mlci.db")) as db:
        return db.execute("SELECT state, decided_by FROM decisions ORDER BY id").fetchall()


def test_mlci_actor_is_who_the_trail_decisions_and_acknowledgements_name(
    project: Project,
) -> None:
    setup(project, policy='"ask"')
    assert run(project, seed=1) == 0
    (project.path / "quality").write_text("0.5")
    assert run(project, seed=2) == 1  # v2 failed its analysis: a decision waits
    (project.path / "quality").unlink()
    login = history(project)[0]["user"]
    actor = mlci_env(MLCI_ACTOR="web:3fa2c1d0")
    assert project.mlci("rollback", "v1", env=actor).returncode == 0
    assert _decided_by(project) == [("approved", "web:3fa2c1d0")]
    assert project.mlci("deploy", "v2", "--force", env=actor).returncode == 0
    assert project.mlci("alerts", "--ack", env=actor).returncode == 0
    trail = history(project)
    assert [(d["kind"], d["to"], d["user"]) for d in trail] == [
        ("deploy", "v2", "web:3fa2c1d0"),
        ("rollback", "v1", "web:3fa2c1d0"),
        ("deploy", "v2", login),
        ("deploy", "v1", login),
    ]
    alerts = json.loads(project.mlci("alerts", "--json").stdout)["alerts"]
    assert alerts and {a["acknowledged_by"] for a in alerts} == {"web:3fa2c1d0"}
    table = project.mlci("history").stdout.decode().splitlines()
    # WHEN is two words: WHO is the seventh.
    assert table[1].split()[6] == "web:3fa2c1d0" and table[3].split()[6] == login
    # Empty, it is no actor: the login name is.
    assert project.mlci("rollback", "v1", env=mlci_env(MLCI_ACTOR=" ")).returncode == 0
    assert history(project)[0]["user"] == login


def test_a_hostile_mlci_actor_reaches_the_trail_visible_and_cut(project: Project) -> None:
    two_versions(project)
    hostile = "\x1b]0;pwned\x07web\x1b[2J:\u202e" + "x" * 200
    assert project.mlci("rollback", env=mlci_env(MLCI_ACTOR=hostile)).returncode == 0
    user = history(project)[0]["user"]
    assert user == ("web:<U+202E>" + "x" * 200)[:64]
    shown = project.mlci("history").stdout
    assert b"\x1b" not in shown and user.encode() in shown
