"""The Ray executor against a real local Ray head: submit, stream, stop, recover.

These need the `ray` extra (`pip install -e '.[ray]'`); without it they are
skipped, and `.ci/run` installs it so CI runs them. The head runs on loopback
with its own ports and temp directory, and only its own processes are stopped
at the end: a Ray cluster someone else runs on the machine is left alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from tests.helpers import PYTHON, Project, mlci_env, require_extra, settle, shown, wait_for

require_extra("ray", "pip install -e '.[ray]'")

from ray.job_submission import JobSubmissionClient  # noqa: E402 (installed, it must import)

pytestmark = pytest.mark.slow

TRAIN = """\
import os, time
for epoch in range(1, 7):
    print(f"epoch {epoch}", flush=True)
    print(f"::metric accuracy=0.9{epoch}", flush=True)
    time.sleep(0.8)
print("env", os.environ["MLCI_STAGE"], os.environ.get("SEED"),
      os.environ.get("RUNNER_ONLY"), flush=True)
with open("model.txt", "w") as model:
    model.write("weights")
"""

FOREVER = "import time\nwhile True:\n    print('tick', flush=True)\n    time.sleep(0.3)\n"


class RayHead(NamedTuple):
    address: str
    client: JobSubmissionClient


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop_head(process: subprocess.Popen[bytes], temp_dir: str) -> None:
    import psutil

    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    # Whatever of this head outlived its group: found by its private temp directory.
    leftovers = []
    for candidate in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if any(temp_dir in part for part in candidate.info["cmdline"] or ()):
                leftovers.append(candidate)
    for leftover in leftovers:
        with contextlib.suppress(psutil.Error):
            leftover.kill()
    psutil.wait_procs(leftovers, timeout=10)
    if process.poll() is None:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def ray_head() -> Iterator[RayHead]:
    ray = Path(sys.executable).parent / "ray"
    # Short: Ray puts unix sockets under it, and their paths are limited to 107 bytes.
    temp_dir = tempfile.mkdtemp(prefix="mlci-ray-", dir="/tmp")
    dashboard_port = _free_port()
    address = f"http://127.0.0.1:{dashboard_port}"
    log = open(Path(temp_dir) / "head.log", "wb")  # noqa: SIM115 - closed below
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    process = subprocess.Popen(
        [
            str(ray),
            "start",
            "--head",
            "--block",
            "--port=0",
            "--node-ip-address=127.0.0.1",
            "--dashboard-host=127.0.0.1",
            f"--dashboard-port={dashboard_port}",
            f"--ray-client-server-port={_free_port()}",
            f"--dashboard-agent-listen-port={_free_port()}",
            f"--metrics-export-port={_free_port()}",
            "--num-cpus=2",
            "--disable-usage-stats",
            f"--temp-dir={temp_dir}",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        client = None
        deadline = time.monotonic() + 120
        while client is None:
            if process.poll() is not None or time.monotonic() > deadline:
                log.flush()
                output = (Path(temp_dir) / "head.log").read_text(errors="replace")
                pytest.fail(f"the Ray head did not start:\n{output[-3000:]}")
            try:
                client = JobSubmissionClient(address)
            except Exception:
                time.sleep(0.5)
        yield RayHead(address, client)
    finally:
        _stop_head(process, temp_dir)
        log.close()
        shutil.rmtree(temp_dir, ignore_errors=True)


def ray_config(address: str, stage: str, **options: str) -> str:
    lines = [f"{key} = {value}" for key, value in options.items()]
    return f"""
[pipeline]
name = "ray-tests"
kill_grace = "2s"

[executors.ray]
address = "{address}"
metadata = {{ team = "tests" }}

[stages.prepare]
command = "echo prepared"

[stages.{stage}]
executor = "ray"
needs = ["prepare"]
{chr(10).join(lines)}
"""


def read_lines(
    process: subprocess.Popen[bytes],
) -> tuple[list[tuple[float, bytes]], threading.Thread]:
    """Collect a process's stdout lines with the time each arrived."""
    lines: list[tuple[float, bytes]] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append((time.monotonic(), line))

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return lines, thread


def job_of(project: Project, stage: str) -> dict[str, Any]:
    job = project.stage(stage)["job"]
    assert job is not None, project.stage(stage)
    return job


def notes_of(project: Project, stage: str) -> list[str]:
    """mlci's notes in a stage's log file (`mlci logs` prints only the output)."""
    from mlci_tui.store.logs import read_notes

    return [note.text for note in read_notes(project.state_dir / "runs" / "1" / f"{stage}.log")]


def job_status(ray_head: RayHead, job_id: str) -> str:
    return str(ray_head.client.get_job_status(job_id).value)


def test_a_ray_stage_streams_its_log_passes_its_gate_and_registers_a_version(
    project: Project, ray_head: RayHead
) -> None:
    (project.path / "train.py").write_text(TRAIN)
    project.write(
        ray_config(
            ray_head.address,
            "train",
            command=f'"{PYTHON} train.py"',
            env='{ SEED = "7" }',
            artifact='"model.txt"',
            gates='["accuracy >= 0.9"]',
        )
    )
    # Known to the runner, not part of the config: it must not travel to the cluster.
    runner = project.start("run", env=mlci_env(RUNNER_ONLY="leaked"))
    lines, reader = read_lines(runner)
    assert runner.wait(120) == 0, runner.stderr.read() if runner.stderr else ""
    reader.join(10)
    arrived = {line.split(b"] ", 1)[-1].strip(): at for at, line in lines}
    # Streamed while the job ran, not delivered in one piece at its end. (Ray may
    # start tailing a job's log a little late: the first lines can come together.)
    assert arrived[b"epoch 6"] - arrived[b"epoch 3"] > 1.2, lines

    train = project.stage("train")
    assert train["state"] == "passed"
    assert train["metrics"] == {"accuracy": 0.96}
    job = train["job"]
    assert job["executor"] == "ray" and job["address"] == ray_head.address
    assert job["id"].startswith("mlci-1-train-1-")
    info = ray_head.client.get_job_info(job["id"])
    assert info.status.value == "SUCCEEDED"
    assert info.metadata is not None
    assert info.metadata["team"] == "tests"
    assert (info.metadata["mlci_stage"], info.metadata["mlci_run_id"]) == ("train", "1")

    log = project.log("train")
    assert b"epoch 1\n::metric accuracy=0.91\nepoch 2\n" in log
    assert b"env train 7 None\n" in log
    notes = notes_of(project, "train")
    assert f"running as Ray job {job['id']} on {ray_head.address}" in notes
    assert b"Running entrypoint" not in log  # Ray's own line became that note
    assert project.stage("prepare")["job"] is None

    status = project.mlci("status")
    assert f"ray job {job['id']}".encode() in status.stdout
    versions = project.mlci("versions")
    assert b"v1" in versions.stdout and b"0.96" in versions.stdout


async def test_the_dashboard_shows_where_a_ray_stage_ran(
    project: Project, ray_head: RayHead
) -> None:
    from mlci_tui.config import load_config
    from mlci_tui.tui.app import make_app
    from mlci_tui.tui.widgets.log_view import LogView
    from mlci_tui.tui.widgets.stage_pane import StageList

    project.write(ray_config(ray_head.address, "train", command='"echo trained on ray"'))
    assert project.mlci("run").returncode == 0
    job = job_of(project, "train")
    app = make_app(load_config(project.config_path), poll_interval=0.1)
    async with app.run_test(size=(110, 30)) as pilot:
        stages = app.query_one(StageList)
        await shown(pilot, lambda: stages.panes() and stages.panes()[-1].record is not None)
        stages.select("train")
        await settle(pilot)  # the log of the stage picked shown, with where it ran
        train = stages.panes()[-1]
        title = train.render().plain.splitlines()[0]
        assert "passed" in title and title.rstrip().endswith("on ray")
        log = app.query_one(LogView)
        assert str(log.border_subtitle) == f"ray job {job['id']} · {ray_head.address}"


def test_cancelling_the_run_stops_the_ray_job(project: Project, ray_head: RayHead) -> None:
    (project.path / "forever.py").write_text(FOREVER)
    project.write(ray_config(ray_head.address, "train", command=f'"{PYTHON} forever.py"'))
    runner = project.start("run")
    wait_for(lambda: project.printed("train", b"tick"), timeout=60, what="the job's output")
    job = job_of(project, "train")
    assert job_status(ray_head, job["id"]) == "RUNNING"
    os.killpg(runner.pid, signal.SIGINT)  # Ctrl-C in the runner's terminal
    assert runner.wait(60) == 130
    # The runner reports the stage stopped only once Ray has the job ended.
    assert job_status(ray_head, job["id"]) == "STOPPED"
    train = project.stage("train")
    assert train["state"] == "cancelled"
    assert f"stopping Ray job {job['id']}" in notes_of(project, "train")


def test_a_timeout_stops_the_ray_job_and_fails_the_stage(
    project: Project, ray_head: RayHead
) -> None:
    (project.path / "forever.py").write_text(FOREVER)
    project.write(
        ray_config(ray_head.address, "train", command=f'"{PYTHON} forever.py"', timeout='"8s"')
    )
    result = project.mlci("run")
    assert result.returncode == 1
    train = project.stage("train")
    assert train["state"] == "failed"
    assert train["message"] == "timed out after 8.00s"
    assert job_status(ray_head, train["job"]["id"]) == "STOPPED"


def test_the_job_exit_code_fails_the_stage(project: Project, ray_head: RayHead) -> None:
    project.write(ray_config(ray_head.address, "train", command='"echo partial; exit 3"'))
    result = project.mlci("run")
    assert result.returncode == 1
    train = project.stage("train")
    assert (train["state"], train["exit_code"]) == ("failed", 3)
    assert job_status(ray_head, train["job"]["id"]) == "FAILED"
    assert b"partial\n" in project.log("train")


def test_a_runner_killed_outright_leaves_a_job_that_recovery_stops(
    project: Project, ray_head: RayHead
) -> None:
    (project.path / "forever.py").write_text(FOREVER)
    project.write(ray_config(ray_head.address, "train", command=f'"{PYTHON} forever.py"'))
    runner = project.start("run")
    wait_for(lambda: project.printed("train", b"tick"), timeout=60, what="the job's output")
    job = job_of(project, "train")
    runner.send_signal(signal.SIGKILL)
    runner.wait(10)
    assert job_status(ray_head, job["id"]) == "RUNNING"  # nobody stopped it yet
    status = project.status()  # any reader of the store recovers what the dead runner left
    assert status["state"] == "interrupted"
    assert job_status(ray_head, job["id"]) == "STOPPED"


def test_an_unreachable_cluster_fails_the_stage_with_one_clear_line(project: Project) -> None:
    address = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    project.write(ray_config(address, "train", command='"echo never"'))
    result = project.mlci("run", timeout=180)
    assert result.returncode == 1
    train = project.stage("train")
    assert train["state"] == "failed"
    message = train["message"]
    assert message.startswith(f"cannot reach the Ray cluster at {address}: ")
    assert "\n" not in message
    assert b"Traceback" not in result.stdout + result.stderr
    assert message.encode() in result.stdout


def test_no_address_anywhere_is_a_clear_error(project: Project) -> None:
    project.write(ray_config("", "train", command='"echo never"').replace('address = ""\n', ""))
    env = {k: v for k, v in mlci_env().items() if k != "RAY_ADDRESS"}
    result = project.mlci("run", env=env)
    assert result.returncode == 1
    assert project.stage("train")["message"] == (
        "no Ray cluster to run on: set address in [executors.ray] or $RAY_ADDRESS"
    )


def test_a_ray_stage_is_cached_like_a_local_one(project: Project, ray_head: RayHead) -> None:
    """The key is worked out and the outs are read on the runner's side: a second
    run submits no job, and puts back the out the first one made."""
    (project.path / "train.py").write_text(
        "print('::metric accuracy=0.95')\nopen('model.txt', 'w').write('weights')\n"
    )
    project.write(
        ray_config(
            ray_head.address,
            "train",
            command=f'"{PYTHON} train.py"',
            deps='["train.py"]',
            outs='["model.txt"]',
            artifact='"model.txt"',
        )
    )
    assert project.mlci("run").returncode == 0
    first = project.stage("train")
    assert first["state"] == "passed" and first["job"] is not None
    jobs = len(ray_head.client.list_jobs())
    (project.path / "model.txt").unlink()
    again = project.mlci("run")
    assert again.returncode == 0, again.stdout
    train = project.stage("train")
    assert train["state"] == "cached"
    assert train["cached_from"] == {"run": 1, "stage": "train", "store": None}
    assert train["metrics"] == {"accuracy": 0.95}
    assert train["job"] is None
    assert len(ray_head.client.list_jobs()) == jobs, "a cached stage submits no job"
    assert (project.path / "model.txt").read_text() == "weights"
    # What the job would be given is part of the key: a new env var, a new result.
    config = project.path / "config.toml"
    config.write_text(
        config.read_text() + '\n[executors.ray.runtime_env]\nenv_vars = { MODE = "fast" }\n'
    )
    plan = project.mlci("why", "--json", "train")
    assert plan.returncode == 0, plan.stderr
    (row,) = json.loads(plan.stdout)
    assert (row["decision"], row["reasons"]) == ("run", ["ray runtime_env changed"])
