"""Incremental runs: a stage whose inputs did not change is cached, and `mlci why`
says why each stage runs. Real runs of `mlci`, real files, a real cache."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from mlci_tui.store import Store
from tests.helpers import Project, demo_project, mlci_env, notes_of, run_python, wait_for

PIPELINE = """
[params]
train.lr = 0.05
train.seed = 0
layers = [8, 4]

[stages.prepare]
command = "mkdir -p build && cp data.csv build/clean.csv && echo prepared"
deps = ["data.csv"]
outs = ["build/clean.csv"]

[stages.train]
command = "{python} train.py"
needs = ["prepare"]
deps = ["train.py", "build/clean.csv"]
params = ["train"]
outs = ["build/model.json"]
artifact = "build/model.json"

[stages.evaluate]
command = "{python} evaluate.py"
needs = ["train"]
deps = ["evaluate.py", "build/model.json"]
gates = ["accuracy >= 0.5"]
"""

DEPLOY = """
[deploy]
command = "echo $MLCI_MODEL_VERSION >> deploys.txt"
"""

TRAIN = """
import hashlib, json, os
data = open("build/clean.csv", "rb").read()
params = json.load(open(os.environ["MLCI_PARAMS_FILE"]))
model = {
    "lr": float(os.environ["MLCI_PARAM_TRAIN_LR"]),
    "seed": int(os.environ["MLCI_PARAM_TRAIN_SEED"]),
    "data": hashlib.sha256(data).hexdigest(),
    "params": params,
}
json.dump(model, open("build/model.json", "w"), sort_keys=True)
print("trained with lr", model["lr"])
print("::metric loss=0.25")
"""

EVALUATE = """
import json
model = json.load(open("build/model.json"))
print("::metric accuracy=%.2f" % (0.9 - model["lr"]))
"""


@pytest.fixture
def pipeline(project: Project) -> Project:
    project.write(PIPELINE)
    (project.path / "data.csv").write_text("a,b\n1,2\n")
    (project.path / "train.py").write_text(TRAIN)
    (project.path / "evaluate.py").write_text(EVALUATE)
    return project


def run(project: Project, *args: str) -> dict[str, dict]:
    """`mlci run ARGS`, which must pass; its stages by name, from `status --json`."""
    result = project.mlci("run", *args)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    return {stage["name"]: stage for stage in project.status()["stages"]}


def states(stages: dict[str, dict]) -> dict[str, str]:
    return {name: stage["state"] for name, stage in stages.items()}


def why(project: Project, *args: str) -> dict[str, dict]:
    result = project.mlci("why", "--json", *args)
    assert result.returncode == 0, result.stderr
    return {row["stage"]: row for row in json.loads(result.stdout)}


def test_a_second_run_is_cached_with_its_metrics_and_log(pipeline: Project) -> None:
    first = run(pipeline)
    assert states(first) == {"prepare": "passed", "train": "passed", "evaluate": "passed"}
    assert first["train"]["reasons"] == ["no cache entry"]
    second = run(pipeline)
    assert states(second) == {"prepare": "cached", "train": "cached", "evaluate": "cached"}
    assert second["train"]["cached_from"] == {"run": 1, "stage": "train", "store": None}
    assert second["train"]["cache_key"] == first["train"]["cache_key"]
    assert second["evaluate"]["metrics"] == {"accuracy": 0.85}
    assert second["train"]["metrics"] == {"loss": 0.25}
    assert second["train"]["exit_code"] is None
    log = pipeline.mlci("logs", "train").stdout.decode()
    assert log == "trained with lr 0.05\n::metric loss=0.25\n"
    raw = notes_of(pipeline.state_dir / "runs" / "2" / "train.log")
    assert raw.splitlines()[0] == "cached: same inputs as run 1, stage train"
    # A third run is cached from the run that produced the result, not from the second.
    assert run(pipeline)["train"]["cached_from"] == {"run": 1, "stage": "train", "store": None}
    printed = pipeline.mlci("status").stdout.decode()
    assert "train     cached" in printed and "from run 1" in printed


def test_a_changed_dep_reruns_its_stage_and_what_follows_only(pipeline: Project) -> None:
    run(pipeline)
    (pipeline.path / "evaluate.py").write_text(EVALUATE + "print('again')\n")
    before = why(pipeline)
    assert before["evaluate"]["decision"] == "run"
    [reason] = before["evaluate"]["reasons"]
    assert reason.startswith("dep evaluate.py changed (") and " → " in reason
    assert states(run(pipeline)) == {"prepare": "cached", "train": "cached", "evaluate": "passed"}
    (pipeline.path / "data.csv").write_text("a,b\n3,4\n")
    stages = run(pipeline)
    assert states(stages) == {"prepare": "passed", "train": "passed", "evaluate": "passed"}
    assert stages["prepare"]["reasons"][0].startswith("dep data.csv changed (")
    assert stages["train"]["reasons"] == [
        "dep build/clean.csv changed ("
        + stages["train"]["reasons"][0].split("(", 1)[1].split(")")[0]
        + ")",
        "what prepare produced changed",
    ]


def test_a_changed_param_reruns_train_and_is_recorded(pipeline: Project) -> None:
    run(pipeline)
    assert why(pipeline, "--set", "train.lr=0.01")["train"]["reasons"] == [
        "param train.lr 0.05 → 0.01"
    ]
    stages = run(pipeline, "--set", "train.lr=0.01")
    assert states(stages) == {"prepare": "cached", "train": "passed", "evaluate": "passed"}
    assert stages["evaluate"]["metrics"] == {"accuracy": 0.89}
    status = pipeline.status()
    assert status["params"] == {"layers": [8, 4], "train.lr": 0.01, "train.seed": 0}
    model = json.loads((pipeline.path / "build" / "model.json").read_text())
    assert model["params"] == {"layers": [8, 4], "train.lr": 0.01, "train.seed": 0}
    versions = json.loads(pipeline.mlci("versions", "--json").stdout)
    assert [v["params"] for v in versions] == [
        {"layers": [8, 4], "train.lr": 0.01, "train.seed": 0},
        {"layers": [8, 4], "train.lr": 0.05, "train.seed": 0},
    ]
    # Back to the config's value: the first run's result, and its version, again.
    back = run(pipeline)
    assert states(back) == {"prepare": "cached", "train": "cached", "evaluate": "cached"}
    assert back["train"]["cached_from"] == {"run": 1, "stage": "train", "store": None}


def test_set_names_a_param_that_exists_with_a_value_of_its_kind(pipeline: Project) -> None:
    for args, message in [
        (
            ["--set", "train.lrr=1"],
            'mlci: --set train.lrr: no such param; did you mean "train.lr"?',
        ),
        (["--set", "train.seed=abc"], "mlci: --set train.seed=abc: expected an integer"),
        (["--set", "train.lr"], "mlci: --set train.lr: expected PARAM=VALUE"),
        (["--set", "layers=[8, inf]"], "mlci: --set layers=[8, inf]: expected a finite number"),
        (["--set", "layers=[[1, nan]]"], "mlci: --set layers=[[1, nan]]: expected a finite number"),
        (
            ["--set", "layers=1"],
            "mlci: --set layers=1: expected an array of integers, as the config has ([8, 4])",
        ),
    ]:
        result = pipeline.mlci("run", *args)
        assert result.returncode == 2
        assert result.stderr.decode().startswith(message), result.stderr
        assert result.stdout == b""
    assert not (pipeline.state_dir / "runs" / "1").exists()


def test_a_dep_changed_while_the_stage_ran_is_not_cached(project: Project) -> None:
    project.write(
        """
[stages.grow]
command = "echo more >> input.txt"
deps = ["input.txt"]
"""
    )
    (project.path / "input.txt").write_text("start\n")
    assert states(run(project)) == {"grow": "passed"}
    raw = notes_of(project.state_dir / "runs" / "1" / "grow.log")
    assert "dep input.txt changed while the stage ran: its result is not cached" in raw
    stages = run(project)
    assert states(stages) == {"grow": "passed"}
    assert stages["grow"]["reasons"] == ["no cache entry"]


def test_an_equal_out_restored_while_a_stage_runs_leaves_its_dep_alone(project: Project) -> None:
    # c.txt has a.txt's content and is restored while b reads a.txt: a copy of its
    # own, so a.txt's identity stays as b's entry has it (mlci once linked both to
    # one cache object, moving a.txt's change time under b).
    project.write(
        """
[stages.a]
command = "echo same > a.txt"
deps = ["in.txt"]
outs = ["a.txt"]

[stages.b]
command = "touch b.started; while [ ! -e c.txt ]; do sleep 0.02; done"
needs = ["a"]
deps = ["a.txt"]
timeout = "30s"

[stages.gate]
command = "while [ ! -e b.started ]; do sleep 0.02; done"
always = true
timeout = "30s"

[stages.c]
command = "echo same > c.txt"
needs = ["gate"]
deps = ["in.txt"]
outs = ["c.txt"]
"""
    )
    (project.path / "in.txt").write_text("in\n")
    run(project)
    (project.path / "b.started").unlink()
    (project.path / "c.txt").unlink()
    stages = run(project, "--force", "b")
    assert states(stages) == {"a": "cached", "b": "passed", "gate": "passed", "c": "cached"}
    assert not os.path.samefile(project.path / "a.txt", project.path / "c.txt")
    log = notes_of(project.state_dir / "runs" / "2" / "b.log")
    assert "changed while the stage ran" not in log
    assert run(project)["b"]["state"] == "cached"


def test_a_second_run_is_refused_while_one_writes_outs_here(project: Project) -> None:
    project.write(
        """
[stages.a]
command = "mkdir -p od; echo start-$MLCI_RUN_ID > od/o.txt; sleep 1.5; echo end >> od/o.txt"
deps = ["in.txt"]
outs = ["od"]
"""
    )
    (project.path / "in.txt").write_text("in\n")
    first = project.start("run")
    wait_for(lambda: (project.path / "od" / "o.txt").exists(), what="the first run's out")
    second = project.mlci("run")
    assert second.returncode == 2
    assert second.stderr.decode() == (
        "mlci: run 1 is running in this project, and its stages write outs here too:"
        " wait for it to end, or cancel it\n"
    )
    assert first.wait(30) == 0
    assert (project.path / "od" / "o.txt").read_text() == "start-1\nend\n"
    assert project.status()["run_id"] == 1  # the refused run was never recorded
    assert states(run(project)) == {"a": "cached"}


def test_the_whole_project_as_a_dep_leaves_out_the_store_the_cache_and_own_outs(
    project: Project,
) -> None:
    project.write(
        """
[stages.b]
command = "cat a.txt > p.txt"
deps = ["*"]
outs = ["p.txt"]

[stages.a]
command = "cat a.txt"
needs = ["b"]
deps = ["."]
"""
    )
    (project.path / "a.txt").write_text("1\n")
    (project.path / "inside").mkdir()
    (project.path / "inside" / "store").symlink_to("../.mlci")
    assert states(run(project)) == {"b": "passed", "a": "passed"}
    assert "changed while the stage ran" not in project.log("a").decode()
    assert states(run(project)) == {"b": "cached", "a": "cached"}
    (project.path / "a.txt").write_text("2\n")
    (reason,) = why(project)["b"]["reasons"]
    assert reason.startswith("dep * changed (")
    assert states(run(project)) == {"b": "passed", "a": "passed"}


def test_a_cached_stage_needs_no_free_slot(project: Project) -> None:
    project.write(
        """
[pipeline]
max_parallel = 1

[stages.slow]
command = "while [ ! -e d.txt ]; do sleep 0.02; done"
always = true
timeout = "30s"

[stages.c]
command = "echo c > c.txt"
deps = ["in.txt"]
outs = ["c.txt"]

[stages.d]
command = "echo d > d.txt"
needs = ["c"]
deps = ["c.txt"]
outs = ["d.txt"]
"""
    )
    (project.path / "in.txt").write_text("in\n")
    (project.path / "d.txt").write_text("first\n")
    run(project)
    (project.path / "d.txt").unlink()
    # slow holds the one slot until d.txt is back: only a cached c and d can end it.
    assert states(run(project)) == {"slow": "passed", "c": "cached", "d": "cached"}


def test_outs_are_restored_after_rm(pipeline: Project) -> None:
    run(pipeline)
    model = pipeline.path / "build" / "model.json"
    content = model.read_bytes()
    model.unlink()
    shutil.rmtree(pipeline.path / "build")
    stages = run(pipeline)
    assert states(stages) == {"prepare": "cached", "train": "cached", "evaluate": "cached"}
    assert model.read_bytes() == content
    assert (pipeline.path / "build" / "clean.csv").read_text() == "a,b\n1,2\n"
    raw = notes_of(pipeline.state_dir / "runs" / "2" / "train.log")
    assert "restored from the cache: build/model.json" in raw
    # An out replaced by another file is put back as well.
    model.unlink()
    model.write_text("replaced")
    assert states(run(pipeline))["train"] == "cached"
    assert model.read_bytes() == content


def test_outs_missing_everywhere_make_the_stage_run(pipeline: Project) -> None:
    run(pipeline)
    shutil.rmtree(pipeline.state_dir / "cache" / "objects")
    (pipeline.path / "build" / "model.json").unlink()
    assert why(pipeline)["train"]["reasons"] == [
        "outs missing: build/model.json is neither here nor in the cache"
    ]
    assert states(run(pipeline))["train"] == "passed"


def test_a_damaged_cache_object_is_found_and_the_stage_runs(pipeline: Project) -> None:
    run(pipeline)
    model = pipeline.path / "build" / "model.json"
    content = model.read_bytes()
    # An out written in place changes only itself: the cache's copy is put back.
    with open(model, "r+b") as file:
        file.write(b"X")
    assert states(run(pipeline))["train"] == "cached"
    assert model.read_bytes() == content
    # The cache's copy written in place is noticed before anything is restored.
    sha = hashlib.sha256(content).hexdigest()
    copy = pipeline.state_dir / "cache" / "objects" / sha[:2] / sha[2:]
    copy.chmod(0o644)
    with open(copy, "r+b") as file:
        file.write(b"X")
    model.unlink()
    assert why(pipeline)["train"]["reasons"] == [
        "outs damaged: the cache's copy of build/model.json was changed since it was stored"
    ]
    stages = run(pipeline)
    assert stages["train"]["state"] == "passed"
    assert model.read_bytes() == content


def test_force_runs_everything_or_one_stage(pipeline: Project) -> None:
    run(pipeline)
    everything = run(pipeline, "--force")
    assert states(everything) == {"prepare": "passed", "train": "passed", "evaluate": "passed"}
    assert everything["train"]["reasons"] == ["forced (--force)"]
    one = run(pipeline, "--force", "train")
    # train's outs came out the same, so what follows it stays cached.
    assert states(one) == {"prepare": "cached", "train": "passed", "evaluate": "cached"}
    result = pipeline.mlci("run", "--force", "trian")
    assert result.returncode == 2
    assert b'--force trian: no such stage; did you mean "train"?' in result.stderr


def test_an_unchanged_artifact_registers_and_deploys_nothing(pipeline: Project) -> None:
    pipeline.write(PIPELINE + DEPLOY)
    deploys = pipeline.path / "deploys.txt"
    run(pipeline)
    assert deploys.read_text() == "v1\n"
    result = pipeline.mlci("run")
    assert result.returncode == 0
    out = result.stdout.decode()
    assert "artifact unchanged: v1 is live" in out
    assert states({s["name"]: s for s in pipeline.status()["stages"]}) == {
        "prepare": "cached",
        "train": "cached",
        "evaluate": "cached",
        "deploy": "cached",
    }
    # Forced: train runs again, makes the same model, and still nothing is new.
    run(pipeline, "--force", "train")
    run(pipeline, "--set", "train.seed=1")
    assert deploys.read_text() == "v1\nv2\n"
    # Back to v1's inputs: v1's artifact, which is not live: nothing unless asked.
    out = pipeline.mlci("run").stdout.decode()
    assert "artifact unchanged: same as v1 (previous); v2 stays live" in out
    assert deploys.read_text() == "v1\nv2\n"
    versions = json.loads(pipeline.mlci("versions", "--json").stdout)
    assert [v["version"] for v in versions] == ["v2", "v1"]
    run(pipeline, "--redeploy")
    assert deploys.read_text() == "v1\nv2\nv1\n"
    history = json.loads(pipeline.mlci("history", "--json").stdout)
    assert [(h["to"], h["outcome"]) for h in history][-1] == ("v1", "succeeded")
    assert len(history) == 3
    # v1 is rolled back from: a run with its inputs points at the one way to deploy it.
    assert pipeline.mlci("rollback").returncode == 0
    out = pipeline.mlci("run").stdout.decode()
    assert "same as v1 (rolled back); v2 stays live (mlci deploy v1 --force deploys it)" in out


def test_why_names_every_reason(pipeline: Project) -> None:
    pipeline.write(
        PIPELINE
        + """
[stages.report]
command = "echo report"
needs = ["evaluate"]

[stages.lint]
command = "echo lint"
deps = ["train.py"]
always = true
"""
    )
    first = why(pipeline)
    assert first["prepare"] == {
        "stage": "prepare",
        "decision": "run",
        "reasons": ["no cache entry"],
        "cache_key": first["prepare"]["cache_key"],
        "cached_from": None,
    }
    assert first["train"]["decision"] == "unknown"
    assert first["train"]["reasons"] == [
        "needs prepare, which runs first: cached if what it makes is the same"
    ]
    assert first["lint"]["reasons"] == ["always = true"]
    run(pipeline)
    later = why(pipeline)
    assert later["report"]["reasons"] == ["no deps declared: it always runs"]
    assert later["train"]["decision"] == "cached"
    assert later["train"]["cached_from"] == {"run": 1, "stage": "train", "store": None}
    text = pipeline.mlci("why").stdout.decode().splitlines()
    assert text[0].split() == ["STAGE", "WOULD", "WHY"]
    assert text[2].split() == [
        "train",
        "cached",
        "same",
        "inputs",
        "as",
        "run",
        "1,",
        "stage",
        "train",
    ]
    forced = pipeline.mlci("run", "--dry-run", "--force", "train").stdout.decode()
    assert "forced (--force)" in forced
    assert pipeline.status()["run_id"] == 1, "a dry run runs nothing"
    # As JSON (what the dashboard's run dialog shows): the rows the text has.
    rows = json.loads(pipeline.mlci("run", "--dry-run", "--json", "--force=train").stdout)
    table = [re.split(r"\s{2,}", line.strip()) for line in forced.splitlines()[1:]]
    assert [[r["stage"], r["decision"], "; ".join(r["reasons"])] for r in rows] == table
    unplanned = pipeline.mlci("run", "--json")
    assert (unplanned.returncode, unplanned.stdout) == (2, b"")
    assert (
        unplanned.stderr
        == b"mlci: --json: only with --dry-run (a run prints its output as it comes)\n"
    )
    assert pipeline.status()["run_id"] == 1
    pipeline.write(PIPELINE.replace("echo prepared", "echo ready"))
    assert why(pipeline, "prepare") == {
        "prepare": {
            "stage": "prepare",
            "decision": "run",
            "reasons": ["command changed"],
            "cache_key": why(pipeline)["prepare"]["cache_key"],
            "cached_from": None,
        }
    }
    missing = pipeline.mlci("why", "nope")
    assert missing.returncode == 2


def test_why_after_a_stage_that_runs_says_run_when_the_stage_itself_changed(
    pipeline: Project,
) -> None:
    run(pipeline)
    (pipeline.path / "data.csv").write_text("a,b\n3,4\n")
    plan = why(pipeline)
    assert plan["train"]["decision"] == "unknown"  # only what prepare makes could change it
    assert plan["train"]["reasons"][0].startswith("needs prepare, which runs first")
    (pipeline.path / "evaluate.py").write_text(EVALUATE + "# changed\n")
    pipeline.write(PIPELINE.replace("{python} train.py", "{python} train.py --again"))
    plan = why(pipeline, "--set", "train.lr=0.01")
    assert plan["train"]["decision"] == "run"
    assert plan["train"]["reasons"] == ["command changed", "param train.lr 0.05 → 0.01"]
    assert plan["evaluate"]["decision"] == "run"
    assert plan["evaluate"]["reasons"][0].startswith("dep evaluate.py changed (")
    forced = pipeline.mlci("run", "--dry-run", "--force").stdout.decode().splitlines()[1:]
    assert [line.split()[:2] for line in forced] == [
        ["prepare", "run"],
        ["train", "run"],
        ["evaluate", "run"],
    ]
    stages = run(pipeline, "--set", "train.lr=0.01")
    reasons = stages["train"]["reasons"]
    assert reasons[0] == "command changed" and "param train.lr 0.05 → 0.01" in reasons
    assert states(stages) == {"prepare": "passed", "train": "passed", "evaluate": "passed"}


def test_why_sees_a_directory_artifact_that_is_live_as_the_run_does(project: Project) -> None:
    project.write(
        """
[stages.train]
command = "mkdir -p model && cp in.txt model/w.txt"
deps = ["in.txt"]
outs = ["model"]
artifact = "model"

[deploy]
command = "true"
"""
    )
    (project.path / "in.txt").write_text("in\n")
    run(project)
    assert why(project)["deploy"]["reasons"] == ["artifact unchanged: v1 is live"]
    assert "artifact unchanged: v1 is live" in project.mlci("run").stdout.decode()


def test_a_missing_dep_fails_its_stage_in_one_line(project: Project) -> None:
    project.write('[stages.a]\ncommand = "true"\ndeps = ["absent.txt"]\n')
    result = project.mlci("run")
    assert result.returncode == 1
    stage = project.stage("a")
    assert stage["state"] == "failed"
    assert stage["message"] == "dep absent.txt does not exist"
    assert why(project)["a"]["reasons"] == ["dep absent.txt does not exist"]
    assert why(project)["a"]["decision"] == "fail"


def test_gc_removes_what_nothing_kept_used_but_never_the_live_versions_inputs(
    pipeline: Project,
) -> None:
    keep_one = "\n[registry]\nkeep_versions = 1\n"
    pipeline.write(PIPELINE + DEPLOY + keep_one)
    run(pipeline)  # run 1 builds v1, which goes live
    pipeline.write(PIPELINE + keep_one)  # later versions are only registered
    run(pipeline, "--set", "train.seed=1")  # run 2: v2, pruned once v3 comes
    run(pipeline, "--set", "train.seed=2")  # run 3: v3
    entries = pipeline.state_dir / "cache" / "entries"
    before = sorted(entries.glob("*/*.json"))
    assert len(before) == 7  # prepare once; train and evaluate three times
    dry = pipeline.mlci("cache", "gc", "--keep-runs", "1", "--dry-run")
    assert dry.stdout.decode().startswith("would remove 2 entries and 1 file")
    assert sorted(entries.glob("*/*.json")) == before
    result = pipeline.mlci("cache", "gc", "--keep-runs", "1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().startswith("removed 2 entries and 1 file")
    assert len(list(entries.glob("*/*.json"))) == 5
    shutil.rmtree(pipeline.path / "build")
    # v1 is live: what it was made from stays, outs and all.
    assert states(run(pipeline)) == {"prepare": "cached", "train": "cached", "evaluate": "cached"}
    assert why(pipeline, "--set", "train.seed=2")["train"]["decision"] == "cached"
    assert why(pipeline, "--set", "train.seed=1")["train"]["decision"] == "run"
    again = pipeline.mlci("cache", "gc", "--keep-runs", "1")
    assert again.stdout.decode().startswith("removed 0 entries and 0 files")
    # What a killed writer left half-copied goes; what a live one writes stays.
    dead = subprocess.Popen(["true"])
    dead.wait()
    host = socket.gethostname()
    tmp = pipeline.state_dir / "cache" / "tmp"
    left = {
        "killed": tmp / f"{dead.pid}@{host}-{'a' * 32}",
        "alive": tmp / f"{os.getpid()}@{host}-{'b' * 32}",
        "elsewhere": tmp / f"{dead.pid}@another-host-{'c' * 32}",
    }
    for path in left.values():
        path.write_bytes(b"partial")
    assert pipeline.mlci("cache", "gc").returncode == 0
    assert {name: path.exists() for name, path in left.items()} == {
        "killed": False,
        "alive": True,
        "elsewhere": True,
    }


def test_secrets_never_reach_the_cache(project: Project) -> None:
    secret = "s3cr3t-value-42"
    project.write(
        """
[pipeline]
secrets = ["API_TOKEN"]
env = { TOKEN_COPY = "s3cr3t-value-42" }

[params]
token = "none"

[stages.a]
command = "echo $API_TOKEN; echo done > out.txt"
deps = ["config.toml"]
params = ["token"]
outs = ["out.txt"]
"""
    )
    result = project.mlci("run", "--set", f"token={secret}", env=mlci_env(API_TOKEN=secret))
    assert result.returncode == 0, result.stderr
    assert project.status()["params"] == {"token": "***"}
    for path in project.state_dir.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    encodings = [secret, hashlib.sha256(secret.encode()).hexdigest()]
    entries = list((project.state_dir / "cache" / "entries").glob("*/*.json"))
    assert entries
    for entry in entries:
        text = entry.read_text()
        for form in encodings:
            assert form not in text
    assert "TOKEN_COPY" not in entries[0].read_text()


def test_a_secret_the_config_sets_itself_is_masked_everywhere(project: Project) -> None:
    project.write(
        """
[pipeline]
secrets = ["API_TOKEN", "STAGE_TOKEN"]
env = { API_TOKEN = "pipeline-secret-1" }

[stages.a]
command = "echo tok=$API_TOKEN $STAGE_TOKEN; echo ::metric m_$STAGE_TOKEN=1; echo x > out.txt"
deps = ["config.toml"]
outs = ["out.txt"]
env = { STAGE_TOKEN = "stage-secret-2" }
"""
    )
    result = project.mlci("run", env=mlci_env())
    assert result.returncode == 0, result.stderr
    printed = result.stdout.decode()
    assert "tok=*** ***" in printed
    for secret in ("pipeline-secret-1", "stage-secret-2"):
        assert secret not in printed
        for path in project.state_dir.rglob("*"):
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), path


def test_the_demo_runs_twice_and_the_second_run_is_cached(tmp_path: Path) -> None:
    demo = demo_project(tmp_path)
    first = demo.mlci("run", timeout=300)
    assert first.returncode == 0, first.stdout.decode()[-2000:]
    second = demo.mlci("run")
    assert second.returncode == 0
    stages = {stage["name"]: stage["state"] for stage in demo.status()["stages"]}
    assert set(stages.values()) == {"cached"}, stages
    assert b"artifact unchanged: v1 is live" in second.stdout
    retrain = demo.mlci("run", "--set", "train.seed=1", timeout=300)
    assert retrain.returncode == 0
    stages = {stage["name"]: stage["state"] for stage in demo.status()["stages"]}
    assert stages == {
        "test": "cached",
        "prepare": "cached",
        "train": "passed",
        "evaluate": "passed",
        "deploy": "passed",
        "monitor": "passed",
    }
    versions = json.loads(demo.mlci("versions", "--json").stdout)
    assert [(v["version"], v["status"]) for v in versions] == [("v2", "live"), ("v1", "previous")]
    # Another seed is another model: the diff a newcomer tries first shows a difference.
    diff = json.loads(demo.mlci("diff", "--json").stdout)
    assert (diff["old"]["version"], diff["new"]["version"]) == ("v1", "v2")
    evaluated = {m["name"]: m["delta"] for m in diff["metrics"] if m["stage"] == "evaluate"}
    assert set(evaluated) == {"accuracy", "precision", "recall", "f1"}
    assert any(delta for delta in evaluated.values()), diff["metrics"]
    # Each metric is reported once: one point of each of evaluate's series.
    series = json.loads(demo.mlci("metrics", "--run", "3", "--json").stdout)["stages"]["evaluate"]
    assert {name: len(points) for name, points in series.items()} == dict.fromkeys(evaluated, 1)


def test_a_dep_that_cannot_be_read_fails_its_stage_in_one_line(project: Project) -> None:
    project.write(
        '[stages.a]\ncommand = "true"\ndeps = ["pipe"]\n'
        '[stages.b]\ncommand = "true"\ndeps = ["data"]\n'
    )
    os.mkfifo(project.path / "pipe")
    (project.path / "data").mkdir()
    os.mkfifo(project.path / "data" / "inner-pipe")
    (project.path / "data" / "x.txt").write_text("x")
    result = project.mlci("run", timeout=30)
    assert result.returncode == 1
    assert project.stage("a")["message"] == "dep pipe is neither a file nor a directory"
    # Inside a directory a pipe is passed over: reading it would never end.
    assert project.stage("b")["state"] == "passed"
    assert b"Traceback" not in result.stderr + result.stdout


def test_a_forged_entry_cannot_write_outside_the_project(pipeline: Project) -> None:
    """An entry in a shared cache is read, not trusted: one naming other outs, or a
    manifest leading out of its directory, is no entry."""
    pipeline.write(
        PIPELINE.replace('outs = ["build/clean.csv"]', 'outs = ["build/data"]')
        .replace("cp data.csv build/clean.csv", "mkdir -p build/data && cp data.csv build/data/c")
        .replace('"build/clean.csv"]\nparams', '"build/data/c"]\nparams')
    )
    (pipeline.path / "train.py").write_text(TRAIN.replace("build/clean.csv", "build/data/c"))
    run(pipeline)
    cache = pipeline.state_dir / "cache"
    key = pipeline.stage("prepare")["cache_key"]
    entry_path = cache / "entries" / key[:2] / f"{key[2:]}.json"
    entry = json.loads(entry_path.read_text())
    manifest = json.dumps([["../../escaped.txt", entry["outs"]["build/data"]["sha"], False]])
    sha = hashlib.sha256(manifest.encode()).hexdigest()
    (cache / "objects" / sha[:2]).mkdir(exist_ok=True)
    (cache / "objects" / sha[:2] / sha[2:]).write_text(manifest)
    entry["outs"]["build/data"]["sha"] = sha
    entry_path.write_text(json.dumps(entry))
    shutil.rmtree(pipeline.path / "build")
    stages = run(pipeline)
    assert stages["prepare"]["state"] == "passed"
    assert not (pipeline.path.parent / "escaped.txt").exists()
    # The stage ran and wrote its entry again; now one that names another out.
    entry = json.loads(entry_path.read_text())
    entry["outs"] = {"../outside.txt": entry["outs"]["build/data"]}
    entry_path.write_text(json.dumps(entry))
    assert why(pipeline)["prepare"]["decision"] == "run"
    assert run(pipeline)["prepare"]["state"] == "passed"
    assert not (pipeline.path.parent / "outside.txt").exists()


def test_a_cache_that_cannot_be_written_only_notes_it(pipeline: Project) -> None:
    if os.geteuid() == 0:
        # root writes anywhere: a cache_dir under a file cannot be made by anyone.
        blocker = pipeline.path / "not-a-dir"
        blocker.write_text("")
        pipeline.write(
            PIPELINE.replace("[params]", '[pipeline]\ncache_dir = "not-a-dir/cache"\n\n[params]')
        )
    else:
        (pipeline.path / "ro").mkdir(mode=0o500)
        pipeline.write(
            PIPELINE.replace("[params]", '[pipeline]\ncache_dir = "ro/cache"\n\n[params]')
        )
    stages = run(pipeline)
    assert states(stages) == {"prepare": "passed", "train": "passed", "evaluate": "passed"}
    raw = notes_of(pipeline.state_dir / "runs" / "1" / "train.log")
    assert "\nnot cached: " in "\n" + raw
    assert states(run(pipeline)) == {"prepare": "passed", "train": "passed", "evaluate": "passed"}


def test_a_directory_dep_is_remembered_as_a_whole_and_still_sees_one_file_change(
    project: Project,
) -> None:
    project.write('[stages.a]\ncommand = "echo ran"\ndeps = ["data"]\n')
    data = project.path / "data"
    (data / "sub").mkdir(parents=True)
    old = time.time_ns() - 10_000_000_000
    for index in range(50):
        path = data / ("sub" if index % 2 else "") / f"f{index}.txt"
        path.write_text(str(index))
        os.utime(path, ns=(old, old))
    assert states(run(project)) == {"a": "passed"}
    with Store.open(project.state_dir) as store:
        assert store._query("SELECT COUNT(*) FROM tree_hashes").fetchone()[0] == 1
    assert states(run(project)) == {"a": "cached"}
    # One file, same size, an old time of its own: a different set of stats.
    changed = data / "sub" / "f7.txt"
    changed.write_text("X")
    os.utime(changed, ns=(old + 1, old + 1))
    stages = run(project)
    assert states(stages) == {"a": "passed"}
    assert stages["a"]["reasons"][0].startswith("dep data changed (")
    (data / "new.txt").write_text("n")
    assert states(run(project)) == {"a": "passed"}
    gc = project.mlci("cache", "gc")
    assert gc.returncode == 0
    with Store.open(project.state_dir) as store:
        assert store._query("SELECT COUNT(*) FROM tree_hashes").fetchone()[0] == 0
    assert states(run(project)) == {"a": "cached"}


def test_why_loads_neither_an_executor_nor_the_event_loop_nor_what_only_writers_need(
    project: Project,
) -> None:
    """`mlci why` runs no command and writes nothing to the cache: the local executor
    (asyncio), socket and uuid are left unloaded, and it still sees the stage's deps."""
    project.write('[stages.a]\ncommand = "true"\ndeps = ["data"]\n')
    (project.path / "data").mkdir()
    (project.path / "data" / "f.txt").write_text("1")
    assert states(run(project)) == {"a": "passed"}
    argv = ["-X", "importtime", "-m", "mlci_tui", "why", "--config", str(project.config_path)]
    result = run_python(*argv, cwd=project.path)
    assert result.returncode == 0, result.stderr
    assert re.search(r"^a +cached ", result.stdout, re.MULTILINE), result.stdout
    imported = [line.split("|")[-1].strip() for line in result.stderr.splitlines()]
    assert "mlci_tui.pipeline.stage_cache" in imported  # the check itself works
    unwanted = {"asyncio", "socket", "uuid", "platform", "mlci_tui.execution.executors.local"}
    assert not unwanted & set(imported)


# Found by trying to break it ----------------------------------------------------


def test_a_project_path_with_pattern_characters_is_not_a_glob(tmp_path: Path) -> None:
    project = Project(tmp_path / "p[1]?")
    project.path.mkdir()
    project.write(
        '[stages.a]\ncommand = "cat in.txt data[1].csv > model.txt"\n'
        'deps = ["in.txt", "data[[]1].csv"]\nouts = ["model.txt"]\n'
    )
    (project.path / "in.txt").write_text("one\n")
    (project.path / "data[1].csv").write_text("d\n")
    assert states(run(project)) == {"a": "passed"}
    (project.path / "in.txt").write_text("two, longer\n")
    stages = run(project)
    assert stages["a"]["state"] == "passed"
    assert stages["a"]["reasons"][0].startswith("dep in.txt changed (")
    (project.path / "data[1].csv").write_text("e, longer\n")
    assert run(project)["a"]["reasons"][0].startswith("dep data[[]1].csv changed (")
    project.write('[stages.a]\ncommand = "true"\ndeps = ["*.cvs"]\n')
    assert project.mlci("run").returncode == 1
    assert project.stage("a")["message"] == "dep *.cvs matches no file"


def test_an_entry_naming_a_path_as_its_hash_removes_nothing(pipeline: Project) -> None:
    run(pipeline)
    victim = pipeline.path.parent / "victim.txt"
    victim.write_text("precious")
    key = pipeline.stage("train")["cache_key"]
    entry_path = pipeline.state_dir / "cache" / "entries" / key[:2] / f"{key[2:]}.json"
    entry = json.loads(entry_path.read_text())
    entry["outs"]["build/model.json"]["sha"] = "xx" + str(victim)
    entry_path.write_text(json.dumps(entry))
    (pipeline.path / "build" / "model.json").unlink()
    assert run(pipeline)["train"]["state"] == "passed"
    assert victim.read_text() == "precious"
    broken = pipeline.state_dir / "cache" / "entries" / "zz" / "notahash.json"
    broken.parent.mkdir()
    broken.write_text('{"key": "zznotahash", "outs": [1]}')
    gc = pipeline.mlci("cache", "gc")
    assert gc.returncode == 0, gc.stderr
    assert victim.read_text() == "precious" and broken.exists()


def test_links_empty_directories_and_executables_in_outs_come_back_as_they_were(
    project: Project,
) -> None:
    project.write(
        """
[stages.make]
command = "sh make.sh"
deps = ["make.sh"]
outs = ["out", "latest"]
"""
    )
    (project.path / "make.sh").write_text(
        "mkdir -p out/v1 out/empty\n"
        "echo model > out/v1/model.txt\n"
        "printf '#!/bin/sh\\necho model\\n' > out/run.sh && chmod +x out/run.sh\n"
        "echo model > out/same-bytes.txt\n"
        "ln -s v1 out/current\n"
        "ln -s out/v1/model.txt latest\n"
    )
    assert states(run(project)) == {"make": "passed"}
    out = project.path / "out"
    shutil.rmtree(out)
    (project.path / "latest").unlink()
    assert states(run(project)) == {"make": "cached"}
    assert (out / "empty").is_dir() and not any((out / "empty").iterdir())
    assert os.readlink(out / "current") == "v1" and (out / "current" / "model.txt").exists()
    assert os.readlink(project.path / "latest") == "out/v1/model.txt"
    assert os.access(out / "run.sh", os.X_OK)
    assert not os.access(out / "same-bytes.txt", os.X_OK)
    assert not os.access(out / "v1" / "model.txt", os.X_OK)
    # Nothing left to restore: the next run is cached and touches nothing.
    raw = project.mlci("run").stdout.decode()
    assert "restored" not in raw
    # An out replaced by a link to a directory outside is not written through.
    outside = project.path.parent / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("keep")
    shutil.rmtree(out)
    out.symlink_to(outside)
    assert states(run(project)) == {"make": "cached"}
    assert not out.is_symlink() and (out / "v1" / "model.txt").exists()
    assert (outside / "precious.txt").read_text() == "keep"
    assert sorted(p.name for p in outside.iterdir()) == ["precious.txt"]


def test_an_artifact_not_among_the_outs_never_overwrites_a_cached_copy(project: Project) -> None:
    project.write(
        '[stages.a]\ncommand = "cat in.txt > model.txt"\n'
        'deps = ["in.txt"]\nartifact = "model.txt"\n'
    )
    model = project.path / "model.txt"
    (project.path / "in.txt").write_text("A\n")
    run(project)
    (project.path / "in.txt").write_text("B\n")
    run(project)
    (project.path / "in.txt").write_text("A\n")
    stages = run(project)
    assert stages["a"]["state"] == "cached"
    assert model.read_text() == "A\n"


def test_a_linked_directory_inside_a_dep_is_read_and_a_link_loop_ends(project: Project) -> None:
    project.write('[stages.a]\ncommand = "echo ran"\ndeps = ["data", "data/**/*.csv"]\n')
    (project.path / "ext").mkdir()
    (project.path / "ext" / "x.csv").write_text("1\n")
    (project.path / "data").mkdir()
    (project.path / "data" / "raw").symlink_to("../ext")
    (project.path / "data" / "loop").symlink_to(".")
    (project.path / "data" / "pipe").mkdir()
    os.mkfifo(project.path / "data" / "pipe" / "fifo.csv")
    assert states(run(project)) == {"a": "passed"}
    assert states(run(project)) == {"a": "cached"}
    (project.path / "ext" / "x.csv").write_text("2, longer\n")
    assert states(run(project)) == {"a": "passed"}


def test_a_file_name_that_is_not_utf8_is_a_dep_like_any(project: Project) -> None:
    project.write('[stages.a]\ncommand = "echo ran"\ndeps = ["data"]\n')
    (project.path / "data").mkdir()
    name = os.fsencode(project.path / "data") + b"/caf\xe9.txt"
    with open(name, "wb") as file:
        file.write(b"x")
    assert states(run(project)) == {"a": "passed"}
    assert states(run(project)) == {"a": "cached"}
    assert why(project)["a"]["decision"] == "cached"


def test_a_rewrite_that_puts_the_time_back_is_seen(project: Project) -> None:
    project.write('[stages.a]\ncommand = "echo ran"\ndeps = ["in.txt"]\n')
    data = project.path / "in.txt"
    data.write_text("one")
    old = time.time_ns() - 10_000_000_000
    os.utime(data, ns=(old, old))
    run(project)
    # The rewrite must get a later change time than the one recorded (the clock the
    # file system stamps with moves in ticks of some milliseconds).
    probe = project.path / "probe"

    def ticked() -> bool:
        probe.touch()
        return probe.stat().st_ctime_ns > data.stat().st_ctime_ns

    wait_for(ticked, what="the file system's clock to pass in.txt's change time")
    data.write_text("two")
    os.utime(data, ns=(old, old))  # as `touch -d` or `cp -p` would
    assert states(run(project)) == {"a": "passed"}


def test_why_judges_a_directory_dep_by_the_out_a_cached_stage_restores(project: Project) -> None:
    project.write(
        '[stages.make]\ncommand = "mkdir -p out && cp in.txt out/a.txt"\n'
        'deps = ["in.txt"]\nouts = ["out"]\n'
        '[stages.use]\ncommand = "cat out/a.txt"\nneeds = ["make"]\ndeps = ["out"]\n'
    )
    (project.path / "in.txt").write_text("x\n")
    run(project)
    shutil.rmtree(project.path / "out")
    assert {name: row["decision"] for name, row in why(project).items()} == {
        "make": "cached",
        "use": "cached",
    }
    assert states(run(project)) == {"make": "cached", "use": "cached"}
