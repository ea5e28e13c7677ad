"""The MLflow mirror, against a real MLflow: a SQLite tracking store in tmp_path,
and one `mlflow server` on loopback that is down at first and comes up later."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import threading
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import pytest

from mlci_tui.store.paths import db_path
from tests.helpers import (
    PYTHON,
    Project,
    demo_project,
    mlci_env,
    require_extra,
    run,
    setup,
    wait_for,
)

require_extra("mlflow-skinny", "pip install -e '.[mlflow,test]'")

from mlflow.tracking import MlflowClient  # noqa: E402 (installed, it must import)

TELEMETRY_OFF = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}

SERIES_PIPELINE = """
[pipeline]
name = "tiny"

[params]
train.lr = 0.05

[stages.prepare]
command = "mkdir -p build && cp data.txt build/data.txt"
deps = ["data.txt"]
outs = ["build/data.txt"]

[stages.train]
command = '''
for i in 0 1 2; do echo "::metric step=$((i * 10)) loss=0.$((9 - i))"; done
echo "model $MLCI_PARAM_TRAIN_LR" > build/model.txt
echo "trained with lr $MLCI_PARAM_TRAIN_LR"
'''
needs = ["prepare"]
params = ["train.lr"]
artifact = "build/model.txt"
"""


@pytest.fixture(autouse=True)
def _no_telemetry(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in TELEMETRY_OFF.items():
        monkeypatch.setenv(name, value)


def with_mlflow(project: Project, uri: str, **keys: str) -> None:
    table = {"tracking_uri": uri, "experiment": "exp", "model_name": "tiny-model", **keys}
    lines = "".join(f"{key} = {json.dumps(value)}\n" for key, value in table.items())
    with open(project.config_path, "a") as config:
        config.write(f"\n[mlflow]\n{lines}")


def sqlite_uri(project: Project) -> str:
    return f"sqlite:///{project.path / 'mlflow.db'}"


def client(uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def mlflow_runs(mlflow: MlflowClient) -> dict[int, Any]:
    """The active MLflow runs mlci made, by mlci run id."""
    experiment = mlflow.get_experiment_by_name("exp")
    found = mlflow.search_runs([experiment.experiment_id], max_results=1000)
    return {int(r.data.tags["mlci.run_id"]): r for r in found if "mlci.run_id" in r.data.tags}


def model_versions(mlflow: MlflowClient) -> dict[str, Any]:
    """The model versions mlci made, by mlci version (``v2``)."""
    found = mlflow.search_model_versions("name = 'tiny-model'")
    return {v.tags["mlci.version"]: v for v in found}


def alias_target(mlflow: MlflowClient, alias: str = "production") -> str | None:
    """The mlci version the alias points at."""
    model = mlflow.get_registered_model("tiny-model")
    number = model.aliases.get(alias)
    if number is None:
        return None
    return str(mlflow.get_model_version("tiny-model", str(number)).tags["mlci.version"])


def everything(mlflow: MlflowClient) -> dict[str, Any]:
    """All that MLflow holds of the mirror, with the times it was last changed."""
    experiment = mlflow.get_experiment_by_name("exp")
    runs = mlflow.search_runs([experiment.experiment_id], run_view_type=3, max_results=1000)
    model = mlflow.get_registered_model("tiny-model")
    return {
        "runs": sorted(
            (
                r.info.run_id,
                r.info.lifecycle_stage,
                r.info.status,
                r.info.end_time,
                sorted(r.data.tags.items()),
                sorted(r.data.params.items()),
                sorted(
                    (
                        key,
                        [
                            (m.step, m.value, m.timestamp)
                            for m in mlflow.get_metric_history(r.info.run_id, key)
                        ],
                    )
                    for key in r.data.metrics
                ),
            )
            for r in runs
        ),
        "versions": sorted(
            (v.version, v.last_updated_timestamp, sorted(v.tags.items()))
            for v in mlflow.search_model_versions("name = 'tiny-model'")
        ),
        "model": (model.last_updated_timestamp, sorted(model.aliases.items())),
    }


def alert_kinds(project: Project) -> list[str]:
    result = project.mlci("alerts", "--json")
    assert result.returncode == 0, result.stderr
    return [alert["kind"] for alert in json.loads(result.stdout)["alerts"]]


def mirror_status(project: Project) -> dict[str, Any]:
    result = project.mlci("mlflow", "status", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def git_project(project: Project) -> str:
    """The project as a git work tree with everything committed; the commit."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=project.path, check=True, capture_output=True, text=True
        ).stdout.strip()

    git("init", "-q")
    (project.path / ".gitignore").write_text("build/\n.mlci/\nmlflow.db\nmlruns/\n")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "start")
    return git("rev-parse", "HEAD")


def test_a_run_arrives_with_its_params_series_tags_and_logs(project: Project) -> None:
    project.write(SERIES_PIPELINE)
    (project.path / "data.txt").write_text("rows\n")
    with_mlflow(project, "sqlite:///mlflow.db")
    commit = git_project(project)
    # From another directory: the relative database is beside the config, not here.
    elsewhere = project.path / "elsewhere"
    elsewhere.mkdir()
    first = subprocess.run(
        [PYTHON, "-m", "mlci_tui", "run", "--config", str(project.config_path)],
        cwd=elsewhere,
        env=mlci_env(),
        capture_output=True,
        timeout=120,
    )
    assert first.returncode == 0, first.stderr
    assert first.stdout.endswith(b"\nmlflow: sent run 1, v1\n")
    assert (project.path / "mlflow.db").is_file() and not list(elsewhere.iterdir())
    second = project.mlci("run", "--set", "train.lr=0.01")
    assert second.returncode == 0, second.stderr

    mlflow = client(sqlite_uri(project))
    runs = mlflow_runs(mlflow)
    assert sorted(runs) == [1, 2]
    latest = runs[2]
    assert latest.info.run_name == "run 2" and latest.info.status == "FINISHED"
    assert latest.data.params == {"train.lr": "0.01"}
    assert runs[1].data.params == {"train.lr": "0.05"}
    history = mlflow.get_metric_history(latest.info.run_id, "train/loss")
    assert [(m.step, m.value) for m in history] == [(0, 0.9), (10, 0.8), (20, 0.7)]
    tags = latest.data.tags
    assert tags["mlci.run_id"] == "2" and tags["mlci.state"] == "passed"
    assert tags["mlci.cached_stages"] == "prepare"
    assert tags["mlci.stage.prepare"] == "cached (from run 1)"
    assert tags["mlci.stage.train"] == "passed"
    assert tags["mlflow.source.git.commit"] == commit and tags["mlci.git_dirty"] == "false"
    assert runs[1].data.tags["mlci.cached_stages"] == "none"
    logs = mlflow.download_artifacts(latest.info.run_id, "logs", str(project.path / "got"))
    assert (Path(logs) / "train.log").read_bytes() == project.log("train")
    assert b"trained with lr 0.01" in project.log("train")
    params = json.loads(
        Path(mlflow.download_artifacts(latest.info.run_id, "params.json")).read_text()
    )
    assert params == {"train.lr": 0.01}

    versions = model_versions(mlflow)
    assert sorted(versions) == ["v1", "v2"]
    v2 = versions["v2"]
    assert v2.run_id == latest.info.run_id
    assert v2.tags["mlci.run_id"] == "2" and v2.tags["mlci.status"] == "registered"
    stored = project.state_dir / "versions" / "v2" / "model.txt"
    assert v2.tags["mlci.sha256"] == hashlib.sha256(stored.read_bytes()).hexdigest()
    model = mlflow.download_artifacts(latest.info.run_id, "model/model.txt", str(project.path))
    assert Path(model).read_text() == "model 0.01\n"
    # Nothing was deployed (no [deploy]): the alias points nowhere.
    assert alias_target(mlflow) is None
    assert mirror_status(project)["behind"] == []


EXTREMES = """
[pipeline]
name = "tiny"

[stages.train]
command = '''
echo "::metric step=0 x=-1.7976931348623157e308 y=-0"
echo "::metric step=999999999999999999 x=1.7976931348623157e308 y=5e-324"
echo "::metric x=1e309 y=nan"
echo "{\\"z\\": 1$(printf '0%.0s' $(seq 400)), \\"w\\": 2.5}" > "$MLCI_METRICS_FILE"
'''
"""


def test_values_across_the_float64_range_and_steps_to_10_18_are_mirrored_exactly(
    project: Project,
) -> None:
    project.write(EXTREMES)
    with_mlflow(project, "sqlite:///mlflow.db")
    result = project.mlci("run")
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith(b"\nmlflow: sent run 1\n"), result.stdout
    mlflow = client(sqlite_uri(project))
    run_id = mlflow_runs(mlflow)[1].info.run_id
    history = {
        name: [(m.step, m.value) for m in mlflow.get_metric_history(run_id, f"train/{name}")]
        for name in ("x", "y", "z", "w")
    }
    assert history == {
        "x": [(0, -1.7976931348623157e308), (999999999999999999, 1.7976931348623157e308)],
        "y": [(0, -0.0), (999999999999999999, 5e-324)],
        "z": [],
        "w": [(0, 2.5)],
    }


DEMO_MLFLOW = """
[mlflow]
tracking_uri = "sqlite:///mlflow.db"
experiment = "pump-failure"
model_name = "pump-failure"
alias = "production"
"""


def test_the_demo_with_the_four_lines_mirrors_its_run_and_live_version(tmp_path: Path) -> None:
    demo = demo_project(tmp_path)
    with open(demo.config_path, "a") as config:
        config.write(DEMO_MLFLOW)
    result = demo.mlci("run", timeout=300)
    assert result.returncode == 0, result.stderr
    assert b"mlflow: sent run 1, v1, deploy #1, alias production \xe2\x86\x92 v1\n" in result.stdout
    mlflow = client(sqlite_uri(demo))
    model = mlflow.get_registered_model("pump-failure")
    live = mlflow.get_model_version("pump-failure", model.aliases["production"])
    assert live.tags["mlci.version"] == "v1" and live.tags["mlci.status"] == "live"
    (run,) = mlflow.search_runs([mlflow.get_experiment_by_name("pump-failure").experiment_id])
    assert run.data.tags["mlci.run_id"] == "1" and "evaluate/accuracy" in run.data.metrics


def test_deploys_and_rollbacks_move_the_alias_and_leave_their_audit_rows(project: Project) -> None:
    setup(project)
    with_mlflow(project, "sqlite:///mlflow.db", alias="champion")
    for seed in (1, 2):
        assert run(project, seed) == 0
    mlflow = client(sqlite_uri(project))
    assert alias_target(mlflow, "champion") == "v2"

    rolled = project.mlci("rollback", "v1", "--reason", "v2 <b>looks</b> off")
    assert rolled.returncode == 0, rolled.stderr
    assert b"alias champion \xe2\x86\x92 v1" in rolled.stdout
    assert alias_target(mlflow, "champion") == "v1"
    versions = model_versions(mlflow)
    audit = "rollback v2 -> v1; by "
    for name in ("v1", "v2"):
        rows = [v for k, v in versions[name].tags.items() if k.startswith("mlci.audit.")]
        assert any(row.startswith(audit) and "why: v2 <b>looks</b> off" in row for row in rows)
    assert versions["v2"].tags["mlci.status"] == "rolled_back"
    assert versions["v1"].tags["mlci.status"] == "live"

    # The monitor finds v3 bad and rolls back by itself: the alias follows.
    (project.path / "quality").write_text("0.61")
    assert run(project, 3) == 1
    versions = model_versions(mlflow)
    assert alias_target(mlflow, "champion") == "v1"
    auto = [
        v for k, v in versions["v3"].tags.items() if k.startswith("mlci.audit.") and "auto" in v
    ]
    assert len(auto) == 1 and auto[0].startswith("auto_rollback v3 -> v1;")
    assert "why: accuracy 0.61 < 0.85" in auto[0]
    assert versions["v3"].tags["mlci.status"] == "rolled_back"
    assert mlflow_runs(mlflow)[3].data.tags["mlci.state"] == "rolled_back"
    assert mlflow_runs(mlflow)[3].info.status == "FAILED"
    assert "mlflow_sync_failed" not in alert_kinds(project)


def test_a_second_sync_changes_nothing_and_a_half_sent_run_is_sent_again(
    project: Project,
) -> None:
    setup(project)
    with_mlflow(project, "sqlite:///mlflow.db")
    for seed in (1, 2):
        assert run(project, seed) == 0
    mlflow = client(sqlite_uri(project))
    before = everything(mlflow)
    for _ in range(2):
        again = project.mlci("mlflow", "sync")
        assert (again.returncode, again.stdout) == (0, b"mlflow: up to date\n"), again.stderr
        assert everything(mlflow) == before

    # A sync that died after making run 1 but before marking it complete.
    half = mlflow_runs(mlflow)[1]
    mlflow.delete_tag(half.info.run_id, "mlci.complete")
    mlflow.log_metric(half.info.run_id, "evaluate/accuracy", 0.1, step=99)
    resent = project.mlci("mlflow", "sync")
    assert resent.returncode == 0 and resent.stdout == b"mlflow: sent run 1\n", resent.stderr
    runs = mlflow_runs(mlflow)
    assert sorted(runs) == [1, 2] and runs[1].info.run_id != half.info.run_id
    assert runs[1].data.tags["mlci.complete"] == "true"
    points = mlflow.get_metric_history(runs[1].info.run_id, "evaluate/accuracy")
    assert [(m.step, m.value) for m in points] == [(0, 0.9)]
    assert mlflow.get_run(half.info.run_id).info.lifecycle_stage == "deleted"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.slow
def test_an_unreachable_server_leaves_production_working_and_sync_catches_up(
    project: Project, tmp_path: Path
) -> None:
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    setup(project)
    with_mlflow(project, uri, timeout="90s")
    for seed in (1, 2):
        assert run(project, seed) == 0
    rolled = project.mlci("rollback", "v1")
    assert rolled.returncode == 0, rolled.stderr
    assert b"mlflow: not mirrored to " + uri.encode() + b": cannot reach" in rolled.stdout
    status = project.status()
    assert status["state"] == "passed"
    # One outage, one alert, however many syncs failed during it.
    assert alert_kinds(project).count("mlflow_sync_failed") == 1
    assert "mlflow_sync_failed|" in (project.path / "alerts.txt").read_text()
    behind = mirror_status(project)
    assert behind["last_sync"]["outcome"] == "failed"
    assert behind["behind"][:3] == ["run 1", "run 2", "v1"]

    server_dir = tmp_path / "server"
    server_dir.mkdir()
    server = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            f"sqlite:///{server_dir / 'server.db'}",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        cwd=server_dir,
        env={**os.environ, **TELEMETRY_OFF},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(lambda: _healthy(uri), timeout=120, what="mlflow server")
        synced = project.mlci("mlflow", "sync")
        assert synced.returncode == 0, synced.stderr
        assert synced.stdout.startswith(b"mlflow: sent run 1, run 2, v1, v2, deploy #1")
        mlflow = client(uri)
        assert sorted(mlflow_runs(mlflow)) == [1, 2]
        assert alias_target(mlflow) == "v1"
        assert mirror_status(project)["behind"] == []
        artifact = mlflow.download_artifacts(
            model_versions(mlflow)["v2"].run_id, "model/model.txt", str(tmp_path)
        )
        assert Path(artifact).read_text() == "model 2\n"
        before = everything(mlflow)
        again = project.mlci("mlflow", "sync")
        assert again.stdout == b"mlflow: up to date\n" and everything(mlflow) == before
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)


def _healthy(uri: str) -> bool:
    try:
        with urllib.request.urlopen(f"{uri}/health", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def test_a_sync_past_its_timeout_is_stopped_and_recorded(project: Project) -> None:
    setup(project)
    with_mlflow(project, "sqlite:///mlflow.db", timeout="0.1s")
    assert run(project, 1) == 0
    assert project.status()["state"] == "passed"
    assert alert_kinds(project) == ["mlflow_sync_failed"]
    last = mirror_status(project)["last_sync"]
    assert last["outcome"] == "failed" and "timed out after 0.10s" in last["message"]
    assert not syncs_of(project), "a sync outlived its timeout"
    caught_up = project.mlci("mlflow", "sync")
    assert caught_up.returncode == 0, caught_up.stderr
    assert alias_target(client(sqlite_uri(project))) == "v1"


def syncs_of(project: Project) -> list[psutil.Process]:
    """`mlci mlflow sync` processes of this project still alive."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        line = process.info["cmdline"] or []
        if str(project.config_path) in line and "sync" in line:
            found.append(process)
    return found


def test_the_commands_that_show_the_store_never_import_mlflow(project: Project) -> None:
    setup(project)
    with_mlflow(project, "sqlite:///mlflow.db")
    assert run(project, 1) == 0
    for args in (["--help"], ["status"], ["versions"], ["mlflow", "status"], ["history"]):
        shown = subprocess.run(
            [
                PYTHON,
                "-X",
                "importtime",
                "-m",
                "mlci_tui",
                *args,
                "--config",
                str(project.config_path),
            ],
            cwd=project.path,
            env=mlci_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert shown.returncode == 0, shown.stderr
        imported = [line.split("|")[-1].strip() for line in shown.stderr.splitlines()]
        assert "mlci_tui.cli" in imported
        assert not [name for name in imported if name.split(".")[0] in ("mlflow", "sqlalchemy")]


def test_without_an_mlflow_table_the_commands_say_what_is_missing(project: Project) -> None:
    setup(project)
    for action in ("sync", "status"):
        result = project.mlci("mlflow", action)
        assert result.returncode == 2
        assert (
            result.stderr == b"mlci: config.toml: no [mlflow] table: nothing says where to"
            b" mirror (see the README's MLflow section)\n"
        )


def test_a_database_password_in_the_uri_reaches_no_file_and_no_screen(project: Project) -> None:
    setup(project)
    with_mlflow(project, f"postgresql://ci:s3cret%2Fpw@127.0.0.1:{free_port()}/mlflow")
    ran = project.mlci("run")
    assert ran.returncode == 0, ran.stderr
    shown = [ran, project.mlci("mlflow", "status"), project.mlci("mlflow", "status", "--json")]
    shown += [project.mlci("alerts"), project.mlci("mlflow", "sync")]
    assert b"postgresql://ci:***@127.0.0.1:" in shown[1].stdout
    # Every file but the config, which is where the user wrote it.
    files = [p for p in project.path.rglob("*") if p.is_file() and p != project.config_path]
    assert db_path(project.state_dir) in files
    written = [p.read_bytes() for p in files]
    for text in [*(r.stdout + r.stderr for r in shown), *written]:
        assert b"s3cret" not in text
    assert alert_kinds(project) == ["mlflow_sync_failed"]


class SilentServer:
    """A tracking server that takes connections and never answers: a sync that
    reaches it waits there, holding the state it is in."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.uri = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                self.connections.append(self.socket.accept()[0])

    def close(self) -> None:
        self.socket.close()
        for connection in self.connections:
            connection.close()


def test_a_sync_killed_outright_is_marked_interrupted_and_alerted_once(project: Project) -> None:
    setup(project)
    assert run(project, 1) == 0
    server = SilentServer()
    try:
        with_mlflow(project, server.uri)
        sync = project.start("mlflow", "sync", env=mlci_env(MLFLOW_HTTP_REQUEST_TIMEOUT="600"))
        wait_for(lambda: server.connections, timeout=120, what="the sync at the server")
        # Alive, it holds the sync lock: whoever looks leaves it running.
        assert mirror_status(project)["last_sync"]["outcome"] == "running"
        assert project.mlci("status").returncode == 0
        assert mirror_status(project)["last_sync"]["outcome"] == "running"
        os.kill(sync.pid, signal.SIGKILL)
        sync.wait(30)
    finally:
        server.close()
    last = mirror_status(project)["last_sync"]
    assert last["outcome"] == "interrupted" and last["ended_at"] is not None
    assert last["message"] == "the sync stopped before it ended (its process is gone: killed?)"
    shown = project.mlci("mlflow", "status").stdout.decode()
    assert "last sync: interrupted at " in shown and "its process is gone" in shown
    for command in (["status"], ["mlflow", "status"], ["versions"]):
        assert project.mlci(*command).returncode == 0
    # One alert, stored and sent, however many commands looked after.
    assert alert_kinds(project) == ["mlflow_sync_failed"]
    sent = (project.path / "alerts.txt").read_text().splitlines()
    assert [line for line in sent if line.startswith("mlflow_sync_failed|")] == [
        "mlflow_sync_failed||the sync stopped before it ended (its process is gone: killed?);"
        " `mlci mlflow sync` sends it later"
    ]


def test_a_sync_stopped_at_its_timeout_mid_sync_leaves_one_failed_sync_and_one_alert(
    project: Project,
) -> None:
    setup(project)
    server = SilentServer()
    try:
        with_mlflow(project, server.uri, timeout="5s")
        assert run(project, 1, MLFLOW_HTTP_REQUEST_TIMEOUT="600") == 0
        assert server.connections, "the sync never reached the server"
    finally:
        server.close()
    with contextlib.closing(sqlite3.connect(db_path(project.state_dir))) as db:
        syncs = db.execute("SELECT outcome, message FROM mirror_syncs").fetchall()
    # The row the sync made, ended by the runner that stopped it: no second one.
    assert len(syncs) == 1 and syncs[0][0] == "failed" and "timed out after 5" in syncs[0][1]
    assert alert_kinds(project) == ["mlflow_sync_failed"]
