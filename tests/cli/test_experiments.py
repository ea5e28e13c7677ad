"""`mlci exp run`, `exp start`, `exp cancel`: grids, workspaces, the queue, dead
workers — with real `mlci` processes and real stores."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlci_tui.service.experiment_queue import split_values
from tests.helpers import PYTHON, Project, mlci_env, pid_alive, wait_for, why_rows

# A stage that waits for a go file outside the project (the project is what the
# experiment sees as it was) after saying it started, then copies its data dep
# into an out and writes into the data file, as a careless stage might.
WAITING = """
[pipeline]
name = "sweep"
secrets = ["EXP_SECRET"]

[params]
train.lr = 0.1
train.tag = "a"

[stages.train]
command = '''
touch "$SYNC/started-$MLCI_PARAM_TRAIN_LR"
while [ ! -e "$SYNC/go" ] && [ ! -e "$SYNC/go-$MLCI_PARAM_TRAIN_LR" ]; do sleep 0.02; done
mkdir -p build
{ cat data.txt; echo "lr=$MLCI_PARAM_TRAIN_LR tag=$MLCI_PARAM_TRAIN_TAG"; } > build/out.txt
echo scribbled >> data.txt
'''
deps = ["data.txt"]
params = ["train"]
outs = ["build/out.txt"]
"""


def waiting_project(project: Project, sync: Path) -> dict[str, str]:
    project.write(WAITING)
    (project.path / "data.txt").write_text("original\n")
    sync.mkdir()
    return mlci_env(SYNC=str(sync), EXP_SECRET="hunter2-secret")


def experiments(project: Project) -> list[sqlite3.Row]:
    if not (project.state_dir / "mlci.db").exists():
        return []
    db = sqlite3.connect(project.state_dir / "mlci.db")
    db.row_factory = sqlite3.Row
    try:
        return db.execute("SELECT * FROM experiments ORDER BY id").fetchall()
    except sqlite3.OperationalError:  # the store is being made: no experiment yet
        return []
    finally:
        db.close()


def runs_of_experiments(project: Project) -> list[sqlite3.Row]:
    db = sqlite3.connect(project.state_dir / "mlci.db")
    db.row_factory = sqlite3.Row
    try:
        return db.execute("SELECT * FROM runs WHERE kind = 'experiment' ORDER BY id").fetchall()
    finally:
        db.close()


def start(project: Project, env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            *(PYTHON, "-m", "mlci_tui", "--config", str(project.config_path)),
            *args,
        ],
        cwd=project.path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


@pytest.mark.parametrize("method", ["overlay", "copy"])
def test_an_experiment_sees_the_project_as_it_started_and_never_writes_it(
    project: Project, tmp_path: Path, method: str
) -> None:
    sync = tmp_path / "sync"
    env = waiting_project(project, sync)
    if method == "copy":
        env["MLCI_EXP_WORKSPACE"] = "copy"
    runner = start(project, env, "exp", "run", "--set", "train.lr=0.5", "--keep")
    wait_for(lambda: (sync / "started-0.5").exists(), what="the experiment's stage to start")
    # Changed in place (same inode) and replaced, while the experiment runs.
    with open(project.path / "data.txt", "r+") as data:
        data.write("CHANGED!\n")
    (project.path / "extra.txt").write_text("new\n")
    (sync / "go").touch()
    out, err = runner.communicate(timeout=120)
    assert runner.returncode == 0, err.decode()
    [row] = experiments(project)
    assert row["state"] == "passed"
    assert row["method"] == ("overlay" if method == "overlay" else row["method"])
    assert row["method"] in (("overlay",) if method == "overlay" else ("reflink", "copy"))
    kept = Path(row["workspace"])
    assert kept == project.state_dir / "experiments" / str(row["id"]) / "project"
    # What it saw: the data as it was; what it wrote stayed in its workspace.
    assert (kept / "build" / "out.txt").read_text() == "original\nlr=0.5 tag=a\n"
    assert (kept / "data.txt").read_text() == "original\nscribbled\n"
    assert not (kept / "extra.txt").exists()
    assert (project.path / "data.txt").read_text() == "CHANGED!\n"
    assert not (project.path / "build").exists()
    assert b"#1 train.lr=0.5 [train]" in out
    assert f"workspace by {row['method']}".encode() in out


def test_a_grid_runs_every_combination_each_in_its_own_workspace(
    project: Project, tmp_path: Path
) -> None:
    sync = tmp_path / "sync"
    env = waiting_project(project, sync)
    (sync).mkdir(exist_ok=True)
    (sync / "go").touch()
    result = subprocess.run(
        [
            *(PYTHON, "-m", "mlci_tui", "--config", str(project.config_path)),
            *("exp", "run", "--set", "train.lr=0.1,0.2", "--set", 'train.tag="x,y",z'),
            *("-j", "2", "--keep"),
        ],
        cwd=project.path,
        env=env,
        capture_output=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr.decode()
    rows = experiments(project)
    assert [json.loads(row["params"]) for row in rows] == [
        {"train.lr": 0.1, "train.tag": "x,y"},
        {"train.lr": 0.1, "train.tag": "z"},
        {"train.lr": 0.2, "train.tag": "x,y"},
        {"train.lr": 0.2, "train.tag": "z"},
    ]
    # Each wrote the same out path, in a workspace of its own: four different files.
    outs = {
        (Path(row["workspace"]) / "build" / "out.txt").read_text().splitlines()[-1] for row in rows
    }
    assert outs == {"lr=0.1 tag=x,y", "lr=0.1 tag=z", "lr=0.2 tag=x,y", "lr=0.2 tag=z"}
    inodes = {(Path(row["workspace"]) / "build" / "out.txt").stat().st_ino for row in rows}
    assert len(inodes) == 4
    # Runs of their own kind: the workspace has none.
    assert len(runs_of_experiments(project)) == 4
    status = project.mlci("status", "--json", env=env)
    assert status.returncode != 0 and b"no runs yet" in status.stderr
    assert (project.path / "data.txt").read_text() == "original\n"


@pytest.mark.parametrize(
    ("sets", "expected"),
    [
        (["train.nope=1,2"], 'no such param; did you mean "train.lr"'),
        (["train.lr=0.1,abc"], "train.lr=abc: expected a number"),
        (["train.lr=0.1,,0.2"], "an empty value"),
        (["train.lr="], "an empty value"),
        (["train.lr=0.1", "train.lr=0.2"], "given twice"),
        (
            [f"train.lr={','.join(map(str, range(100)))}", f"train.tag={','.join('abc')}"],
            "300 experiments: more than 100 at once; add --yes",
        ),
    ],
)
def test_a_bad_grid_is_refused_in_one_line_before_anything_is_queued(
    project: Project, tmp_path: Path, sets: list[str], expected: str
) -> None:
    env = waiting_project(project, tmp_path / "sync")
    arguments = [part for text in sets for part in ("--set", text)]
    result = project.mlci("exp", "run", *arguments, env=env)
    assert result.returncode == 2
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and expected in lines[0], lines
    assert not (project.state_dir / "mlci.db").exists() or experiments(project) == []


def test_a_huge_grid_is_refused_even_with_yes(project: Project, tmp_path: Path) -> None:
    env = waiting_project(project, tmp_path / "sync")
    values = ",".join(map(str, range(101)))
    result = project.mlci(
        "exp",
        "run",
        "--set",
        f"train.lr={values}",
        "--set",
        f"train.tag={values}",
        "--yes",
        env=env,
    )
    assert result.returncode == 2
    assert "10,201 experiments: more than 10,000" in result.stderr.decode()


TOML_VALUES = st.one_of(
    st.integers(-1000, 1000).map(str),
    st.floats(allow_nan=False, allow_infinity=False, width=32).map(repr),
    st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=8).map(json.dumps),
    st.lists(st.integers(-9, 9), max_size=3).map(lambda items: json.dumps(items)),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(TOML_VALUES, min_size=1, max_size=6))
def test_values_joined_by_commas_split_back_into_the_same_values(values: list[str]) -> None:
    assert split_values(",".join(values)) == values


def test_the_queue_is_drained_once_by_two_starts_and_a_killed_worker_leaves_it_runnable(
    project: Project, tmp_path: Path
) -> None:
    sync = tmp_path / "sync"
    env = waiting_project(project, sync)
    queued = project.mlci("exp", "run", "--set", "train.lr=1,2,3,4", "--queue", env=env)
    assert queued.returncode == 0, queued.stderr
    assert b"queued 4 experiments (#1, #2, #3, #4)" in queued.stdout
    assert [row["state"] for row in experiments(project)] == ["queued"] * 4
    first = start(project, env, "exp", "start", "-j", "1")
    second = start(project, env, "exp", "start", "-j", "1")
    wait_for(lambda: len(list(sync.glob("started-*"))) == 2, what="two experiments started")
    running = [row for row in experiments(project) if row["state"] == "running"]
    assert len(running) == 2
    # kill -9 one worker in the middle of its stage.
    victim = running[0]
    wait_for(lambda: experiments(project)[victim["id"] - 1]["run_id"] is not None)
    os.kill(victim["pid"], signal.SIGKILL)
    (sync / "go").touch()
    for drainer in (first, second):
        drainer.communicate(timeout=180)
    rows = experiments(project)
    assert rows[victim["id"] - 1]["state"] == "interrupted", dict(rows[victim["id"] - 1])
    assert "stopped without finishing it" in rows[victim["id"] - 1]["message"]
    assert [row["state"] for row in rows if row["id"] != victim["id"]] == ["passed"] * 3
    # Each experiment ran once: one run each, none run twice.
    assert sorted(row["run_id"] for row in rows) == sorted(
        row["id"] for row in runs_of_experiments(project)
    )
    assert not wait_dead_workspaces(project)
    assert not pid_alive(victim["pid"])


def wait_dead_workspaces(project: Project) -> list[Path]:
    root = project.state_dir / "experiments"
    return [path for path in root.iterdir() if path.is_dir()] if root.exists() else []


def test_cancel_stops_running_and_queued_experiments(project: Project, tmp_path: Path) -> None:
    sync = tmp_path / "sync"
    env = waiting_project(project, sync)
    runner = start(project, env, "exp", "run", "--set", "train.lr=0.1,0.2,0.3", "-j", "1")
    wait_for(lambda: (sync / "started-0.1").exists(), what="the first experiment's stage")
    [worker] = [row["pid"] for row in experiments(project) if row["state"] == "running"]
    cancelled = project.mlci("exp", "cancel", env=env)
    assert cancelled.returncode == 0, cancelled.stderr
    assert b"cancelled #2, #3, which had not started" in cancelled.stdout
    assert b"stopped #1" in cancelled.stdout
    runner.communicate(timeout=60)
    assert runner.returncode == 130
    assert [row["state"] for row in experiments(project)] == ["cancelled"] * 3
    assert not pid_alive(worker)
    assert not (sync / "started-0.2").exists()
    assert not wait_dead_workspaces(project)
    unknown = project.mlci("exp", "cancel", "9", env=env)
    assert unknown.returncode == 2 and b"no experiment 9" in unknown.stderr


def test_a_normal_run_goes_on_beside_an_experiment(project: Project, tmp_path: Path) -> None:
    sync = tmp_path / "sync"
    env = waiting_project(project, sync)
    experiment = start(project, env, "exp", "run", "--set", "train.lr=0.7")
    wait_for(lambda: (sync / "started-0.7").exists(), what="the experiment's stage")
    (sync / "go-0.3").touch()  # the normal run's stage must not wait
    normal = project.mlci("run", "--set", "train.lr=0.3", env=env)
    assert normal.returncode == 0, normal.stderr
    assert experiment.poll() is None  # it waited all along, beside the run
    (sync / "go-0.7").touch()
    experiment.communicate(timeout=120)
    assert experiment.returncode == 0
    assert (project.path / "build" / "out.txt").read_text() == "original\nlr=0.3 tag=a\n"
    assert [row["state"] for row in experiments(project)] == ["passed"]


def test_secrets_are_masked_in_experiment_names_and_params(
    project: Project, tmp_path: Path
) -> None:
    env = waiting_project(project, tmp_path / "sync")
    queued = project.mlci(
        "exp",
        "run",
        "--set",
        'train.tag="hunter2-secret"',
        "--name",
        "x-hunter2-secret",
        "--queue",
        env=env,
    )
    assert queued.returncode == 0, queued.stderr
    [row] = experiments(project)
    text = json.dumps(dict(row))
    assert "hunter2" not in text
    assert row["name"] == "x-***"


BIG = """
[pipeline]
name = "big"

[params]
seed = 1

[stages.use]
command = '''
touch "$SYNC/started"
while [ ! -e "$SYNC/go" ]; do sleep 0.02; done
mkdir -p build
tail -c 16 data/big.bin > build/tail.bin
echo more >> data/big.bin
'''
deps = ["data/big.bin"]
params = ["seed"]
outs = ["build/tail.bin"]
"""


def test_a_large_file_is_shared_from_the_cache_and_never_written_through(
    project: Project, tmp_path: Path
) -> None:
    """Under the overlay a large file is a link to its read-only object in the cache: a
    stage writing it copies it up, the user's file and the object stay as they were,
    and the file's hash is known at its path in the workspace, not read again."""
    import hashlib

    project.write(BIG)
    (project.path / "data").mkdir()
    big = project.path / "data" / "big.bin"
    content = os.urandom(3 << 20)
    big.write_bytes(content)
    sync = tmp_path / "sync"
    sync.mkdir()
    env = mlci_env(SYNC=str(sync))
    runner = start(project, env, "exp", "run", "--keep")
    wait_for(lambda: (sync / "started").exists(), what="the experiment's stage")
    with open(big, "r+b") as data:  # in place: the same inode the snapshot would share
        data.write(b"X" * 16)
    (sync / "go").touch()
    out, err = runner.communicate(timeout=120)
    assert runner.returncode == 0, err.decode()
    [row] = experiments(project)
    assert row["method"] == "overlay"
    assert b"3.0 MiB shared without copying" in out or b"shared without copying" in out, out
    sha = hashlib.sha256(content).hexdigest()
    obj = project.state_dir / "cache" / "objects" / sha[:2] / sha[2:]
    assert hashlib.sha256(obj.read_bytes()).hexdigest() == sha
    assert obj.stat().st_mode & 0o222 == 0
    kept = Path(row["workspace"])
    assert (kept / "build" / "tail.bin").read_bytes() == content[-16:]
    assert (kept / "data" / "big.bin").read_bytes() == content + b"more\n"
    # Kept for a person to look into: no name of it is the cache's object any more.
    assert obj.stat().st_nlink == 1
    assert big.read_bytes()[:16] == b"X" * 16
    db = sqlite3.connect(project.state_dir / "mlci.db")
    remembered = db.execute(
        "SELECT sha256 FROM file_hashes WHERE path = ?",
        (os.fsencode(project.state_dir / "experiments" / "1" / "merged" / "data" / "big.bin"),),
    ).fetchall()
    db.close()
    assert remembered == [(sha,)]


def test_experiments_printing_at_once_never_cut_each_others_lines(project: Project) -> None:
    """Every line the drainer prints starts with its experiment, however the stages
    print: partial lines, floods, lines a CI system would read as a command."""
    project.write(
        """
[params]
n = 1

[stages.noisy]
command = '''
python3 -c "
import os, time
for i in range(3000):
    os.write(1, b'::warning::line %d of $MLCI_PARAM_N' % i + (b'\\\\n' if i % 7 else b''))
    if i % 1500 == 0:  # a line left open long enough to be shown open
        os.write(1, b'::error::open')
        time.sleep(0.8)
        os.write(1, b' closed\\\\n::error::next\\\\n')
"
'''
params = ["n"]
"""
    )
    result = project.mlci("exp", "run", "--set", "n=1,2,3", "-j", "3", timeout=180)
    assert result.returncode == 0, result.stderr
    # The experiments' output, then a blank line and their table.
    output, _, table = result.stdout.decode().partition("\n\n")
    lines = output.splitlines()
    strays = [line for line in lines if not line.startswith(("#1 n=1 ", "#2 n=2 ", "#3 n=3 "))]
    assert not strays, strays[:5]
    assert len(lines) > 3 * 3000 * 6 // 7
    assert table.startswith("ID  NAME")


DEPS = """
[params]
scale = 1

[stages.whole]
command = "mkdir -p out && cat src/*.txt src/sub/* > out/whole.txt"
deps = ["src"]
outs = ["out/whole.txt"]

[stages.globbed]
command = "mkdir -p out && ls src/*.txt > out/names.txt && echo $MLCI_PARAM_SCALE >> out/names.txt"
deps = ["src/*.txt"]
params = ["scale"]
outs = ["out/names.txt"]

[stages.after]
command = "cat out/whole.txt out/names.txt | wc -c > out/count.txt"
deps = ["out/whole.txt", "out/names.txt"]
outs = ["out/count.txt"]

[stages.everything]
command = "ls -R src out"
needs = ["after"]
deps = ["."]
"""


@pytest.mark.parametrize("seed", [1, 2])
def test_mlci_why_in_the_project_predicts_what_an_experiment_runs(
    project: Project, seed: int
) -> None:
    """An oracle for the cache in workspaces: after random changes to the project, each
    experiment's stages have the cache keys and decisions `mlci why` gives for the
    project with the same params — a directory or glob dep is the project's, though
    the workspace lies inside the store."""
    import random

    chooser = random.Random(seed)
    project.write(DEPS)
    (project.path / "src" / "sub").mkdir(parents=True)
    for name in ("a.txt", "b.txt", "sub/c.dat"):
        (project.path / "src" / name).write_text(name)
    assert project.mlci("run").returncode == 0
    for round_ in range(4):
        change = chooser.choice(["edit", "add", "nested", "param", "none"])
        sets: list[str] = []
        if change == "edit":
            (project.path / "src" / "a.txt").write_text(f"edited {round_}")
        elif change == "add":
            (project.path / "src" / f"new{round_}.txt").write_text("new")
        elif change == "nested":
            (project.path / "src" / "sub" / "c.dat").write_text(f"nested {round_}")
        elif change == "param":
            sets = ["--set", f"scale={chooser.randint(2, 9)}"]
        predicted = why_rows(project, *sets)
        result = project.mlci("exp", "run", *sets)
        assert result.returncode == 0, result.stderr
        run = runs_of_experiments(project)[-1]
        db = sqlite3.connect(project.state_dir / "mlci.db")
        stages = {
            name: (state, key)
            for name, state, key in db.execute(
                "SELECT name, state, cache_key FROM stages WHERE run_id = ?", (run["id"],)
            )
        }
        db.close()
        for name, row in predicted.items():
            state, key = stages[name]
            # None: not known before the stages it needs have run.
            assert row["cache_key"] in (key, None), (change, name)
            assert (state == "cached") == (row["decision"] == "cached"), (change, name, state)


def test_ctrl_c_cancels_the_sweep_and_detach_outlives_its_terminal(
    project: Project, tmp_path: Path
) -> None:
    sync = tmp_path / "sync"
    env = waiting_project(project, sync)
    runner = start(project, env, "exp", "run", "--set", "train.lr=0.1,0.2", "-j", "1")
    wait_for(lambda: (sync / "started-0.1").exists(), what="the first experiment's stage")
    runner.send_signal(signal.SIGINT)
    runner.communicate(timeout=60)
    assert runner.returncode == 130
    assert [row["state"] for row in experiments(project)] == ["cancelled", "cancelled"]
    queued = project.mlci("exp", "run", "--set", "train.lr=0.3,0.4", "--queue", env=env)
    assert queued.returncode == 0
    detached = project.mlci("exp", "start", "--detach", "-j", "2", env=env)
    assert detached.returncode == 0, detached.stderr
    assert b"running 2 queued experiments in the background" in detached.stdout
    wait_for(lambda: (sync / "started-0.4").exists(), what="both queued experiments started")
    (sync / "go").touch()
    wait_for(
        lambda: [row["state"] for row in experiments(project)][2:] == ["passed", "passed"],
        timeout=60,
        what="the detached drainer to run the queue",
    )


def test_an_experiment_records_the_code_it_ran(project: Project, tmp_path: Path) -> None:
    env = waiting_project(project, tmp_path / "sync")
    (tmp_path / "sync" / "go").touch()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(project.path)]
    subprocess.run([*git, "init", "-q"], check=True)
    (project.path / ".gitignore").write_text(".mlci/\n")
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "start"], check=True)
    commit = subprocess.run(
        [*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert project.mlci("exp", "run", env=env).returncode == 0
    (project.path / "data.txt").write_text("changed\n")
    assert project.mlci("exp", "run", env=env).returncode == 0
    (project.path / "notes.txt").write_text("untracked\n")
    assert project.mlci("exp", "run", env=env).returncode == 0
    rows = experiments(project)
    assert [row["git_commit"] for row in rows] == [commit] * 3
    clean, dirty, more = (row["code_hash"] for row in rows)
    assert clean is None and dirty and more and dirty != more


@pytest.mark.parametrize("method", ["overlay", "copy"])
def test_a_large_dep_is_not_read_again_for_each_experiment(
    project: Project, tmp_path: Path, method: str
) -> None:
    """What the store knows of a large file survives the workspaces: its hash at the
    workspace's path (cloned or shared), and, under the overlay, the cache object's
    identity once a workspace that linked it is removed."""
    project.write(
        BIG.replace('touch "$SYNC/started"\nwhile [ ! -e "$SYNC/go" ]; do sleep 0.02; done\n', "")
    )
    (project.path / "data").mkdir()
    big = project.path / "data" / "big.bin"
    big.write_bytes(os.urandom(2 << 20))
    os.utime(big, (1, 1))  # long since written: its hash is trusted when remembered
    env = mlci_env(SYNC=str(tmp_path))
    if method == "copy":
        env["MLCI_EXP_WORKSPACE"] = "copy"
    assert project.mlci("why", env=env).returncode == 0  # the project's file hashed once
    for seed in (2, 3):
        result = project.mlci("exp", "run", "--set", f"seed={seed}", env=env)
        assert result.returncode == 0, result.stderr
    db = sqlite3.connect(project.state_dir / "mlci.db")
    remembered = {
        os.fsdecode(path): (device, inode, size, mtime, ctime, sha)
        for path, device, inode, size, mtime, ctime, sha in db.execute(
            "SELECT path, device, inode, size, mtime_ns, ctime_ns, sha256 FROM file_hashes"
        )
    }
    db.close()
    import hashlib

    sha = hashlib.sha256(big.read_bytes()).hexdigest()
    inside = "merged" if method == "overlay" else "project"
    for number in (1, 2):
        path = str(project.state_dir / "experiments" / str(number) / inside / "data" / "big.bin")
        assert remembered[path][-1] == sha, path
    if method == "overlay":
        obj = project.state_dir / "cache" / "objects" / sha[:2] / sha[2:]
        info = obj.stat()
        identity = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
        assert remembered[str(obj)] == (*identity, sha)


LINKS = """
[pipeline]
state_dir = "{state_dir}"
cache_dir = "{cache_dir}"

[stages.use]
command = '''
mkdir -p out && cat outside/data.txt inside.txt > out/both.txt
echo x >> scratch.txt && echo y >> outside/other.txt
'''
deps = ["outside/data.txt", "inside.txt"]
outs = ["out/both.txt"]
"""


@pytest.mark.parametrize("where", ["relative", "absolute"])
def test_stores_outside_the_project_and_links_in_it_keep_their_meaning(
    tmp_path: Path, where: str
) -> None:
    """A state dir and cache dir outside the project (relative or absolute) are the
    shared ones in a workspace; a link into the project points into the workspace (a
    stage writing through it never writes the project); a link out of it still
    points where it did for the project."""
    project = Project(tmp_path / "project")
    project.path.mkdir()
    (tmp_path / "datasets").mkdir()
    (tmp_path / "datasets" / "data.txt").write_text("outside\n")
    if where == "relative":
        state_dir, cache_dir = "../store", "../cache"
    else:
        state_dir, cache_dir = str(tmp_path / "store"), str(tmp_path / "cache")
    project.write(LINKS.format(state_dir=state_dir, cache_dir=cache_dir))
    project.state_dir = tmp_path / "store"
    (project.path / "real.txt").write_text("inside\n")
    (project.path / "real2.txt").write_text("scratch\n")
    os.symlink(project.path / "real.txt", project.path / "inside.txt")  # absolute, inside
    os.symlink(project.path / "real2.txt", project.path / "scratch.txt")
    os.symlink("../datasets", project.path / "outside")  # relative, out of the project
    result = project.mlci("exp", "run", "--keep")
    assert result.returncode == 0, result.stdout + result.stderr
    [row] = experiments(project)
    assert row["state"] == "passed"
    assert (Path(row["workspace"]) / "out" / "both.txt").read_text() == "outside\ninside\n"
    assert (project.path / "real2.txt").read_text() == "scratch\n"
    # Outside the project is outside the workspace too, as for a run.
    assert (tmp_path / "datasets" / "other.txt").read_text() == "y\n"
    assert not (project.path / ".mlci" / "experiments" / "1" / "project" / "store").exists()
    assert len(runs_of_experiments(project)) == 1
    assert list((tmp_path / "cache" / "entries").glob("*/*.json"))


def test_ctrl_c_as_workers_start_cancels_them_without_a_traceback(
    project: Project, tmp_path: Path
) -> None:
    env = waiting_project(project, tmp_path / "sync")
    runner = start(project, env, "exp", "run", "--set", "train.lr=0.1,0.2,0.3", "-j", "3")
    wait_for(
        lambda: [row["state"] for row in experiments(project)].count("running") == 3,
        what="three experiments claimed",
    )
    runner.send_signal(signal.SIGINT)
    _, err = runner.communicate(timeout=60)
    assert runner.returncode == 130
    assert b"Traceback" not in err, err.decode()
    assert [row["state"] for row in experiments(project)] == ["cancelled"] * 3


def test_a_shared_large_dep_is_cached_however_many_experiments_link_it(
    project: Project, tmp_path: Path
) -> None:
    """Links made and removed to a shared large dep while a stage runs (other
    experiments' workspaces, a fresh cache made private) change its ctime: its bytes
    are read again rather than its result thrown away."""
    project.write(
        """
[params]
x = 1

[stages.a]
command = "sleep 0.3; wc -c big.bin > out.txt; echo $MLCI_PARAM_X >> out.txt"
deps = ["big.bin"]
params = ["x"]
outs = ["out.txt"]
"""
    )
    (project.path / "big.bin").write_bytes(os.urandom(3 << 19))
    result = project.mlci("exp", "run", "--set", "x=1,2,3,4", "-j", "4", timeout=180)
    assert result.returncode == 0, result.stderr
    assert b"changed while the stage ran" not in result.stdout, result.stdout.decode()
    again = project.mlci("exp", "run", "--set", "x=1,2,3,4", "-j", "4", timeout=180)
    assert again.stdout.count(b"-- cached") == 4, again.stdout.decode()


def test_no_way_out_of_a_workspace_writes_the_project_or_the_cache(
    tmp_path: Path,
) -> None:
    """An alias of the project, a link to it through another, a link to its parent,
    a path out of the workspace by ``..``: none leads a stage to the project's files,
    nor to the snapshot's (the cache's objects)."""
    import hashlib

    project = Project(tmp_path / "project")
    project.path.mkdir()
    os.symlink(project.path, tmp_path / "alias")
    (project.path / "real.txt").write_text("real\n")
    os.symlink(tmp_path / "alias" / "real.txt", project.path / "via-alias.txt")
    os.symlink("via-alias.txt", project.path / "chained.txt")
    os.symlink("..", project.path / "up")
    (project.path / "big.bin").write_bytes(os.urandom(3 << 19))
    project.write(
        """
[stages.a]
command = '''
echo x >> via-alias.txt; echo x >> chained.txt
test ! -e up
for f in ../project/big.bin ../upper/x ../work/x; do echo x >> $f 2>/dev/null; done
rm -f ../project/big.bin 2>/dev/null
mkdir -p d && mv d e && python3 -c "import os; os.makedirs('f'); os.rename('f', 'g')"
true
'''
"""
    )
    big = (project.path / "big.bin").read_bytes()
    result = project.mlci("exp", "run")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (project.path / "real.txt").read_text() == "real\n"
    sha = hashlib.sha256(big).hexdigest()
    obj = project.state_dir / "cache" / "objects" / sha[:2] / sha[2:]
    assert hashlib.sha256(obj.read_bytes()).hexdigest() == sha
    assert (project.path / "big.bin").read_bytes() == big


def test_a_project_whose_mlci_cannot_hold_workspaces_is_one_line(project: Project) -> None:
    project.write('[pipeline]\nstate_dir = "store"\n\n[stages.a]\ncommand = "true"\n')
    (project.path / ".mlci").write_text("not a directory")
    result = project.mlci("exp", "run")
    assert result.returncode == 2
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and "cannot hold the experiments' workspaces" in lines[0], lines
    assert not (project.path / "store" / "mlci.db").exists()
