"""kill -9 of the runner at any point of a run: the next commands settle what it
left, and the next run gives what a clean run in a fresh copy gives.

The oracle is a fresh copy of the project, run with `--force`: whatever state
the killed run left (half-written outs, a cache entry, a version registered but
not deployed, a deploy half done, an analysis cut short), the next run's outs,
its version, what is served and its exit code must equal that copy's, no process
of the killed run may survive, and the database must pass `PRAGMA integrity_check`.
With ``MLCI_DEMO_DRIFT=1`` (as the demo's) every analysis fails: a version whose
analysis the kill cut short must fail the next run as it fails the fresh one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.helpers import Project, mlci_env, pid_alive, versions, wait_dead, wait_for

pytestmark = pytest.mark.slow

# Each command does its work in two halves; with a file hold-STAGE there, it stops
# between them (its out half written) until the file is gone. Its pid goes to pids/.
STEP = """\
import os, sys, time
from pathlib import Path

stage, outs = sys.argv[1], sys.argv[2:]
Path("pids").mkdir(exist_ok=True)
Path("pids", f"{stage}-{os.getpid()}").touch()
seed = os.environ.get("MLCI_PARAM_TRAIN_SEED", "0")
data = sorted(Path("data").glob("*")) if stage == "train" else []
source = b"".join(path.read_bytes() for path in data)

def write(half):
    for out in outs:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab") as file:
            file.write(f"{stage} {half} seed={seed} {len(source)}\\n".encode())

for out in outs:
    Path(out).unlink(missing_ok=True)
write("first")
print(f"{stage}: first half", flush=True)
while Path(f"hold-{stage}").exists():
    print(f"{stage}: holding", flush=True)
    time.sleep(0.05)
write("second")
if stage == "evaluate":
    print("::metric accuracy=0.9", flush=True)
if stage == "monitor":
    drift = os.environ.get("MLCI_DEMO_DRIFT") == "1"
    print(f"::metric accuracy={0.3 if drift else 0.95}", flush=True)
print(f"{stage}: done", flush=True)
"""

PIPELINE = """\
[pipeline]
name = "crashes"
kill_grace = "1s"

[params]
train.seed = 1

[stages.prepare]
command = ["{python}", "step.py", "prepare", "data/a.txt", "data/b.txt"]
deps = ["step.py"]
outs = ["data"]

[stages.train]
command = ["{python}", "step.py", "train", "model.txt"]
needs = ["prepare"]
deps = ["step.py", "data"]
params = ["train"]
outs = ["model.txt"]
artifact = "model.txt"

[stages.evaluate]
command = ["{python}", "step.py", "evaluate"]
needs = ["train"]
deps = ["step.py", "model.txt"]

[deploy]
command = '''
"{python}" step.py deploy served.tmp
cp "$MLCI_MODEL_PATH" served.txt
'''

[monitor]
command = ["{python}", "step.py", "monitor"]
checks = ["accuracy >= 0.5"]
interval = "0.1s"
samples = 2
"""

STAGES = ("prepare", "train", "evaluate", "deploy", "monitor")
OUTS = ("data/a.txt", "data/b.txt", "model.txt", "served.txt")


def make(path: Path) -> Project:
    path.mkdir(parents=True, exist_ok=True)
    project = Project(path)
    project.write(PIPELINE)
    (path / "step.py").write_text(STEP)
    return project


def contents(project: Project) -> dict[str, str]:
    return {
        out: hashlib.sha256((project.path / out).read_bytes()).hexdigest()
        for out in OUTS
        if (project.path / out).exists()
    }


@settings(
    max_examples=int(os.environ.get("CRASH_EXAMPLES", "5")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    killed_in=st.sampled_from(STAGES),
    earlier_run=st.booleans(),
    seed=st.sampled_from(["1", "2"]),
    drift=st.booleans(),
)
# The analysis a kill cuts short, always: of a drifting model over an analysed one,
# and of a healthy one.
@example(killed_in="monitor", earlier_run=True, seed="1", drift=True)
@example(killed_in="monitor", earlier_run=False, seed="2", drift=False)
def test_kill_9_at_any_stage_then_the_next_run_is_as_a_fresh_one(
    tmp_path_factory: pytest.TempPathFactory,
    killed_in: str,
    earlier_run: bool,
    seed: str,
    drift: bool,
) -> None:
    env = mlci_env(MLCI_DEMO_DRIFT="1" if drift else "0")
    project = make(tmp_path_factory.mktemp("project"))
    if earlier_run:  # a cache and a live version to go wrong against, of another model
        earlier = project.mlci("run", "--set", "train.seed=3", env=env)
        assert earlier.returncode == (1 if drift else 0)
    hold = project.path / f"hold-{killed_in}"
    hold.touch()
    runner = project.start("run", "--set", f"train.seed={seed}", "--force", env=env)
    log = project.state_dir / "runs" / str(1 + earlier_run) / f"{killed_in}.log"
    wait_for(
        lambda: log.exists() and b"holding" in log.read_bytes(),
        timeout=120,
        what=f"{killed_in} to hold",
    )
    runner.send_signal(signal.SIGKILL)
    runner.wait(timeout=30)
    stage_pids = [int(p.name.rpartition("-")[2]) for p in (project.path / "pids").iterdir()]
    hold.unlink()
    status = project.status()  # recovery: the run is settled
    assert status["state"] == "interrupted"
    wait_dead(stage_pids, timeout=30)
    assert not any(pid_alive(pid) for pid in stage_pids)
    with sqlite3.connect(project.state_dir / "mlci.db") as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    why = project.mlci("why", "--json", "--set", f"train.seed={seed}", env=env)
    assert why.returncode == 0, why.stderr
    rows = json.loads(why.stdout)
    predicted = {row["stage"]: row["decision"] for row in rows}
    if killed_in == "monitor":  # the kill cut the analysis short: the next run does it
        (monitor,) = (row for row in rows if row["stage"] == "monitor")
        assert monitor["decision"] == "run", monitor
        assert monitor["reasons"] == [
            f"analyses v{1 + earlier_run}: its analysis by run {1 + earlier_run} was cut short"
        ], monitor
    result = project.mlci("run", "--set", f"train.seed={seed}", env=env)
    # What `mlci why` said the run would do, each stage did (unknown: it depends).
    did = {stage["name"]: stage["state"] for stage in project.status()["stages"]}
    for stage, decision in predicted.items():
        if decision != "unknown":
            assert (did[stage] == "cached") == (decision == "cached"), (stage, decision, did)
    fresh = make(tmp_path_factory.mktemp("fresh"))
    forced = fresh.mlci("run", "--set", f"train.seed={seed}", "--force", env=env)
    assert forced.returncode == (1 if drift else 0), forced.stderr.decode()[-2000:]
    assert result.returncode == forced.returncode, result.stdout.decode()[-2000:]
    assert contents(project) == contents(fresh)
    assert (project.path / "served.txt").read_bytes() == (project.path / "model.txt").read_bytes()
    live = [v for v in versions(project).values() if v["status"] == "live"]
    assert len(live) == 1
    model = hashlib.sha256((project.path / "model.txt").read_bytes()).hexdigest()
    assert live[0]["sha256"] == model
    shutil.rmtree(project.path)
    shutil.rmtree(fresh.path)
