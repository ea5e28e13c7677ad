"""The promises that broke under hostile input and careless operators: huge
numbers, huge graphs, a store others could read. Each test reproduces what
broke; `docs/reliability.md` lists them."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import stat
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlci_tui import dag
from mlci_tui.store import Store
from mlci_tui.store.connection import BUSY_TIMEOUT_S
from tests.helpers import (
    PYTHON,
    Output,
    Project,
    history,
    hold_monitor,
    mlci_env,
    pid_alive,
    read_pids,
    readonly_store,
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

HUGE = "99999999999999999999999"


def reversed_chain(count: int) -> str:
    """``s0`` needs ``s1``, which needs ``s2``, ...: written against the run order."""
    return "".join(
        f'[stages.s{i}]\ncommand = "true"\n' + (f'needs = ["s{i + 1}"]\n' if i + 1 < count else "")
        for i in range(count)
    )


def test_a_long_chain_written_in_reverse_validates_and_orders(project: Project) -> None:
    project.write(reversed_chain(1500))
    result = project.mlci("validate")
    assert result.returncode == 0, result.stderr
    needs = {f"s{i}": [f"s{i + 1}"] if i + 1 < 10_000 else [] for i in range(10_000)}
    assert dag.find_cycle(needs) is None
    order = dag.topological_order(needs)
    assert order[0] == "s9999" and order[-1] == "s0"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["deploy", f"v{HUGE}"],
            f"mlci deploy: argument VERSION: expected a version like v3, got 'v{HUGE}'",
        ),
        (
            ["rollback", HUGE],
            f"mlci rollback: argument VERSION: expected a version like v3, got '{HUGE}'",
        ),
        (["deploy", "v-1"], "mlci deploy: argument VERSION: expected a version like v3, got 'v-1'"),
        (
            ["versions", "--limit", HUGE],
            f"mlci versions: argument --limit: expected a positive number, got '{HUGE}'",
        ),
        (
            ["status", "--run", HUGE],
            f"mlci status: argument --run: expected a run number, got '{HUGE}'",
        ),
        (
            ["alerts", "--ack", HUGE],
            f"mlci alerts: argument --ack: expected an alert number, got '{HUGE}'",
        ),
    ],
)
def test_every_numeric_argument_is_bounded(
    project: Project, args: list[str], expected: str
) -> None:
    setup(project)
    result = project.mlci(*args)
    assert result.returncode == 2
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith(expected), lines


def test_the_store_is_its_owner_alone(project: Project) -> None:
    two_versions(project)
    state = project.state_dir
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    loose = []
    for path in [state, *state.rglob("*")]:
        if path.is_symlink():
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            loose.append(f"{path.relative_to(state)} {mode:o}")
    assert not loose
    files = {p.name for p in state.rglob("*") if p.is_file()}
    assert {"mlci.db", "current.json"} <= files and any(n.endswith(".log") for n in files)


def test_durations_past_what_a_timer_holds_are_refused(project: Project) -> None:
    project.write('[alerts]\ncommand = "true"\ntimeout = 1e300\n[stages.a]\ncommand = "true"\n')
    result = project.mlci("validate")
    assert result.returncode == 2
    assert "alerts.timeout: expected a duration" in result.stderr.decode()
    assert "at most 30 days" in result.stderr.decode()


def test_a_run_whose_version_cannot_be_registered_fails_with_the_reason(
    project: Project,
) -> None:
    # The stage passes, but its artifact holds a link to nothing: it cannot be copied.
    project.write(
        '[stages.train]\ncommand = "mkdir -p build/model && ln -sf /nowhere build/model/x"\n'
        'artifact = "build/model"\n'
    )
    result = project.mlci("run")
    assert result.returncode == 1
    out = result.stdout.decode()
    assert "its artifact could not be registered" in out
    status = project.mlci("status", "--json")
    assert status.returncode == 1
    run = json.loads(status.stdout)
    assert run["state"] == "failed"
    assert "its artifact could not be registered" in run["message"]
    assert project.mlci("versions", "--json").stdout.strip() == b"[]"


def test_file_names_that_are_not_utf8_are_stored_and_hashed_as_bytes(project: Project) -> None:
    project.write(
        '[stages.train]\ncommand = "mkdir -p build/model && printf x > build/model/$(printf'
        ' \'caf\\\\351.bin\')"\nartifact = "build/model"\n'
    )
    result = project.mlci("run")
    assert result.returncode == 0, result.stderr
    stored = project.state_dir / "versions" / "v1" / "model"
    assert os.listdir(os.fsencode(stored)) == [b"caf\xe9.bin"]
    assert json.loads(project.mlci("versions", "--json").stdout)[0]["sha256"]


def test_a_deploy_refused_inside_a_run_fails_the_deploy_stage_and_the_run(
    project: Project,
) -> None:
    rolling_back = start_held_rollback(project)
    try:
        (project.path / "seed").write_text("3")
        result = project.mlci("run")
    finally:
        (project.path / "go").touch()
        rolling_back.wait(timeout=60)
    out = result.stdout.decode()
    assert result.returncode == 1, result.stderr
    assert "deploy refused: a rollback to v1 is in progress" in out
    assert "version v3 registered" in out and "not deployed" in out
    run = json.loads(project.mlci("status", "--json").stdout)
    assert run["state"] == "failed"
    stages = {s["name"]: s for s in run["stages"]}
    assert stages["deploy"]["state"] == "failed"
    refused = [d for d in history(project) if d["to"] == "v3"]
    assert len(refused) == 1 and refused[0]["outcome"] == "failed"
    assert refused[0]["message"].startswith("refused: a rollback to v1 is in progress")
    assert "run_failed" in (project.path / "alerts.txt").read_text()


RLO = "\u202e"


def test_direction_controls_and_concealed_text_never_reach_a_terminal(
    project: Project,
) -> None:
    project.write(
        f'[pipeline]\nname = "churn{RLO}ledom"\n'
        "[stages.evil]\n"
        "command = \"printf 'safe\\\\342\\\\200\\\\256txt.exe\\\\n"
        "\\\\033[8mhidden\\\\033[0m\\\\n'\"\n"
    )
    shown = subprocess.run(
        project.in_terminal("run"), cwd=project.path, capture_output=True, timeout=60
    ).stdout
    assert b"safe<U+202E>txt.exe" in shown
    assert b"churn<U+202E>ledom" in shown
    assert RLO.encode() not in shown
    assert b"\x1b[8m" not in shown and b"hidden" in shown
    # Into a pipe, and in the log, the bytes stay as printed.
    assert project.log("evil") == "safe\u202etxt.exe\n\x1b[8mhidden\x1b[0m\n".encode()


def test_a_reason_with_direction_controls_is_shown_as_symbols(project: Project) -> None:
    two_versions(project)
    assert project.mlci("rollback", "v1", "--reason", f"oops{RLO}sdrawkcab").returncode == 0
    for command in ("history", "versions"):
        out = project.mlci(command).stdout.decode()
        assert "oops<U+202E>sdrawkcab" in out and RLO not in out, command


def test_a_secret_never_appears_in_metric_names_or_any_url_encoding(project: Project) -> None:
    secret = "p@ss/w0rd!x"  # printed percent-encoded, as in a URL
    encodings = [
        urllib.parse.quote(secret),  # p%40ss/w0rd%21x: "/" kept
        urllib.parse.quote(secret, safe="").lower(),  # p%40ss%2fw0rd%21x
        urllib.parse.quote_plus(secret, safe="/"),
    ]
    printed = "; ".join(f"echo 'url {e}'" for e in encodings)
    project.write(
        f"""
[pipeline]
secrets = ["API_TOKEN", "DB_PASSWORD"]
[stages.train]
command = '''
mkdir -p build && echo model > build/model.txt
{printed}
echo "::metric ok=1"
printf '{{"%s_f1": 0.5, "ok": 1}}' "$API_TOKEN" > "$MLCI_METRICS_FILE"
'''
artifact = "build/model.txt"
gates = ["ok >= 1"]
[deploy]
command = "true"
[monitor]
command = 'printf "{{\\"%s\\": 0.9}}" "$API_TOKEN" > "$MLCI_METRICS_FILE"; echo "::metric ok=1"'
checks = ["ok >= 1"]
interval = "0.1s"
samples = 1
"""
    )
    token = "tok3nS3cretValue"  # a valid metric name, as many tokens are
    env = mlci_env(API_TOKEN=token, DB_PASSWORD=secret)
    result = project.mlci("run", env=env)
    assert result.returncode == 0, result.stderr
    everything = result.stdout + result.stderr
    for command in (["status", "--json"], ["versions", "--json"], ["versions"], ["history"]):
        everything += project.mlci(*command, env=env).stdout
    everything += project.mlci("logs", "train", env=env).stdout
    for path in project.state_dir.rglob("*"):
        if path.is_file():
            everything += path.read_bytes()
    for form in [token, secret, *encodings, urllib.parse.quote(secret, safe="")]:
        assert form.encode() not in everything, form
    assert everything.count(b"url ***") >= 3
    version = json.loads(project.mlci("versions", "--json", env=env).stdout)[0]
    assert {(m["stage"], m["name"]) for m in version["metrics"]} == {
        ("train", "***_f1"),
        ("train", "ok"),
    }
    assert {(m["stage"], m["name"]) for m in version["live_metrics"]} == {
        ("monitor", "***"),
        ("monitor", "ok"),
    }


def test_the_alert_timeout_stops_a_command_that_waits_on_its_own_session(
    project: Project,
) -> None:
    project.write(
        '[alerts]\ntimeout = "2s"\ncommand = "setsid sleep 25 & echo $! > alert-pid; wait"\n'
        '[stages.a]\ncommand = "exit 1"\n'
    )
    result = project.mlci("run", timeout=20)  # the hang was the sleep's 25 s
    assert result.returncode == 1
    wait_dead(read_pids(project.path / "alert-pid"))
    assert "alert command timed out after 2.00s" in project.mlci("alerts").stdout.decode()


def test_a_log_deleted_during_the_run_is_said_to_be_missing(project: Project) -> None:
    project.write(
        '[stages.a]\ncommand = "echo one; while [ ! -e go ]; do sleep 0.05; done; echo two"\n'
    )
    runner = project.start("run")
    log = project.state_dir / "runs" / "1" / "a.log"
    wait_for(lambda: project.printed("a", b"one"))
    follower = project.start("logs", "a", "-f")
    assert follower.stdout is not None and follower.stderr is not None
    followed, errors = Output(follower.stdout.fileno()), Output(follower.stderr.fileno())
    followed.wait_for(b"one\n")  # following, the log open: then it goes
    log.unlink()
    (project.path / "go").touch()
    assert runner.wait(timeout=60) == 0
    follower.wait(timeout=30)
    missing = f"mlci: the log of stage a of run 1 is missing: {log}\n"
    assert follower.returncode == 1 and errors.end().decode() == missing
    result = project.mlci("logs", "a")
    assert result.returncode == 1 and result.stderr.decode() == missing


@pytest.fixture
def readonly_project(project: Project, tmp_path: Path) -> Iterator[Project]:
    with readonly_store(project, tmp_path / "mount"):
        yield project


def test_a_read_only_store_is_read_and_writes_say_why_not(readonly_project: Project) -> None:
    project = readonly_project
    status = project.mlci("status")
    assert status.returncode == 0 and b"passed" in status.stdout, status.stderr
    for command in (["versions"], ["history"], ["logs", "train"], ["alerts"]):
        result = project.mlci(*command)
        assert result.returncode == 0 and not result.stderr, (command, result.stderr)
    assert "v2" in project.mlci("versions").stdout.decode()
    for command, line in (
        (["run"], "the run store is read-only; nothing can be recorded"),
        (["rollback"], "the run store is read-only here, and this needs to write it"),
        (["alerts", "--ack"], "the run store is read-only here, and this needs to write it"),
    ):
        result = project.mlci(*command)
        assert result.returncode == 2, command
        lines = result.stderr.decode().splitlines()
        assert len(lines) == 1 and lines[0].endswith(line), (command, lines)


# The registry's races: kill points and concurrent deploys, rollbacks and monitors.


def test_the_version_being_deployed_is_never_pruned(project: Project) -> None:
    setup(project, keep=3)
    for seed in (1, 2, 3):
        assert run(project, seed) == 0
    (project.path / "hold-deploy").touch()
    deploying = project.start("deploy", "v1", "--no-analysis")
    wait_for((project.path / "deploy-started").exists)
    (project.path / "hold-deploy").unlink()
    assert run(project, 4) == 1  # registers v4; its own deploy is refused
    (project.path / "go").touch()
    assert deploying.wait(timeout=60) == 0
    assert statuses(project)["v1"] == "live"
    assert (project.state_dir / "versions" / "v1" / "model.txt").read_text() == "model 1\n"
    assert (project.state_dir / "current").resolve().read_text() == "model 1\n"
    assert not versions(project)["v1"]["pruned"]


def test_an_analysis_never_rolls_back_a_version_it_did_not_deploy(project: Project) -> None:
    two_versions(project)  # v2 live, v1 previous
    hold_monitor(project)
    (project.path / "hold-monitor").touch()
    (project.path / "seed").write_text("3")
    running = project.start("run")
    wait_for((project.path / "monitor-started").exists)
    (project.path / "hold-monitor").unlink()
    assert project.mlci("rollback", "--reason", "by hand").returncode == 0  # v3 -> v2
    (project.path / "quality").write_text("0.5")  # v3's samples fail from now on
    (project.path / "go-monitor").touch()
    out, _ = running.communicate(timeout=60)
    assert b"production moved to v2" in out and b"superseded" in out, out
    assert statuses(project) == {"v1": "previous", "v2": "live", "v3": "rolled_back"}
    assert [d["kind"] for d in history(project)] == ["rollback", "deploy", "deploy", "deploy"]


def test_a_version_that_failed_its_analysis_is_never_known_good(project: Project) -> None:
    two_versions(project, policy='"ask"')
    (project.path / "quality").write_text("0.5")
    assert run(project, seed=3) == 1  # v3 fails: a decision is pending
    (project.path / "quality").write_text("0.95")
    assert run(project, seed=4) == 0  # v4 is live; v3 becomes "previous"
    pending = json.loads(project.mlci("alerts", "--json").stdout)["pending_decisions"]
    assert pending == []  # the decision about v3 was superseded by v4's deploy
    result = project.mlci("rollback")
    assert result.returncode == 0, result.stderr
    assert statuses(project)["v2"] == "live"  # not v3


def test_a_failed_automatic_rollback_is_tried_again_while_the_failures_go_on(
    project: Project,
) -> None:
    two_versions(project)  # v2 live, v1 previous; auto_rollback = true; 2 failures
    (project.path / "quality").write_text("0.5")
    (project.path / "fail-deploy").touch()  # the first rollback's deploy breaks
    assert project.mlci("monitor", "--once").returncode == 1
    second = project.mlci("monitor", "--once")
    assert b"the rollback to v1 failed" in second.stdout + second.stderr
    assert statuses(project)["v2"] == "live"
    (project.path / "fail-deploy").unlink()  # it was transient
    third = project.mlci("monitor", "--once")
    assert b"trying the rollback again" in third.stdout, third.stdout
    assert statuses(project) == {"v1": "live", "v2": "rolled_back"}


def killed_while_registering(project: Project, *, copied: bool) -> Path:
    """What kill -9 of the runner leaves between recording v1 and moving its copy into
    place: a run marked running whose runner is gone, the version row, and (when
    ``copied``) the finished copy under its staging name. Returns the staging path."""
    project.write(
        '[stages.train]\ncommand = "mkdir -p build && echo model > build/model.txt;'
        ' touch started; sleep 300"\nartifact = "build/model.txt"\n'
    )
    runner = project.start("run")
    wait_for((project.path / "started").exists)
    os.killpg(runner.pid, signal.SIGKILL)
    runner.wait(timeout=30)
    staging = project.state_dir / "versions" / f".staging-{runner.pid}-0123abcd"
    staging.mkdir(parents=True)
    if copied:
        (staging / "model.txt").write_text("model\n")
    store = Store.open(project.state_dir, create=False)
    try:
        store.versions.add(
            run_id=1,
            created_at=time.time(),
            artifact_name="model.txt",
            source_path=str(project.path / "build" / "model.txt"),
            is_dir=False,
            sha256=hashlib.sha256(b"model\n").hexdigest(),
            size_bytes=6,
            metrics={},
            git_commit=None,
            git_dirty=None,
        )
    finally:
        store.close()
    return staging


def test_a_copy_left_by_a_killed_runner_is_moved_into_place(project: Project) -> None:
    staging = killed_while_registering(project, copied=True)
    assert project.mlci("status").returncode == 1  # the run is interrupted
    assert (project.state_dir / "versions" / "v1" / "model.txt").read_text() == "model\n"
    assert not staging.exists()
    assert statuses(project) == {"v1": "registered"}


def test_a_version_whose_copy_was_lost_fails_and_stale_copies_are_swept(
    project: Project,
) -> None:
    staging = killed_while_registering(project, copied=False)
    leaked = project.state_dir / "versions" / ".staging-999999999-feed"
    (leaked / "model").mkdir(parents=True)
    assert project.mlci("status").returncode == 1
    version = versions(project)["v1"]
    assert version["status"] == "failed"
    assert "never reached the store" in version["description"]
    assert not staging.exists() and not leaked.exists()


def test_a_pointer_that_cannot_be_written_after_the_command_ran_is_said_so(
    project: Project,
) -> None:
    two_versions(project)  # v2 live
    # The deploy command succeeds, then the pointer's write fails for real: its
    # temporary file's name is taken by a directory (EISDIR).
    text = project.config_path.read_text()
    project.write(
        text.replace(
            'cp "$MLCI_MODEL_PATH" served.txt',
            'cp "$MLCI_MODEL_PATH" served.txt\nmkdir "$MLCI_STATE_DIR/.current.json.$PPID.tmp"',
        )
    )
    result = project.mlci("rollback", "v1")
    assert result.returncode == 1
    assert served(project) == "model 1\n"  # serving moved ...
    assert statuses(project)["v2"] == "live"  # ... the store could not say so
    last = history(project)[0]
    assert last["outcome"] == "pointer_failed"
    assert "serving may be on v1 while the store still says v2" in last["message"]
    assert "mlci deploy v1 --force" in last["message"]
    status = project.mlci("status")
    assert "warning: deployment 3: the deploy command ran, but the live pointer" in (
        status.stderr.decode()
    )
    assert "deploy_failed|v1|" in (project.path / "alerts.txt").read_text()


def test_a_deploy_without_room_for_its_records_is_refused_before_it_runs(
    project: Project, tmp_path: Path
) -> None:
    if os.geteuid() != 0:
        pytest.skip("a small file system needs root to mount")
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], check=True)
    try:
        setup(project)
        text = project.config_path.read_text()
        project.write(text.replace("[pipeline]\n", f'[pipeline]\nstate_dir = "{mount}/.mlci"\n'))
        for seed in (1, 2):
            assert run(project, seed) == 0
        free = os.statvfs(mount).f_bavail * os.statvfs(mount).f_frsize
        (mount / "filler").write_bytes(b"x" * (free - (512 << 10)))  # leave 512 KiB
        result = project.mlci("rollback", "v1")
        assert result.returncode == 1
        assert "free in" in result.stderr.decode() and "refused" in result.stderr.decode()
        assert served(project) == "model 2\n"  # the command never ran
        assert statuses(project)["v2"] == "live"
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


ESCAPES = {
    "env_i": "setsid env -i sh -c 'echo $$ > {pids}; exec sleep 300' &",
    "unset_tag": "setsid sh -c 'unset MLCI_PROCESS_TAG; echo $$ > {pids}; exec sleep 301' &",
    "double_fork_empty_env": (
        '{python} -c "import os\nif os.fork() == 0:\n os.setsid()\n'
        " if os.fork() == 0:\n  open('{pids}', 'w').write(str(os.getpid()))\n"
        "  os.execve('/bin/sleep', ['sleep', '302'], {{}})\n os._exit(0)\nos.wait()\n\""
    ),
}


@pytest.mark.parametrize("escape", list(ESCAPES))
def test_no_process_outlives_its_stage_whatever_it_did_to_its_environment(
    project: Project, escape: str
) -> None:
    pids = project.path / "pids"
    command = ESCAPES[escape].format(pids=pids, python=PYTHON)
    project.write(f"[stages.a]\ncommand = {json.dumps(command)}\n")
    result = project.mlci("run")
    assert result.returncode == 0, result.stdout
    wait_dead(read_pids(pids))


def test_an_untagged_orphan_of_one_of_two_parallel_stages_ends_with_the_run(
    project: Project,
) -> None:
    pids = project.path / "pids"
    project.write(
        f"[pipeline]\nmax_parallel = 2\n"
        f"[stages.a]\ncommand = {json.dumps(ESCAPES['env_i'].format(pids=pids))}\n"
        '[stages.b]\ncommand = "sleep 1"\n'
    )
    assert project.mlci("run").returncode == 0
    wait_dead(read_pids(pids))


def test_recovery_stops_the_monitor_command_of_a_killed_runner(project: Project) -> None:
    two_versions(project)
    text = project.config_path.read_text()
    start = text.index("[monitor]\ncommand = ") + len("[monitor]\n")
    end = text.index("\n", start) + 1
    project.write(text[:start] + 'command = "echo $$ > monitor-pid; sleep 300"\n' + text[end:])
    (project.path / "seed").write_text("3")
    runner = project.start("run")
    wait_for((project.path / "monitor-pid").exists)
    os.kill(runner.pid, signal.SIGKILL)  # the runner alone: its monitor command goes on
    runner.wait(timeout=30)
    monitor = read_pids(project.path / "monitor-pid")
    assert all(pid_alive(pid) for pid in monitor)
    assert project.mlci("status").returncode == 1  # interrupted
    wait_dead(monitor)


def test_a_damaged_index_gives_one_line_with_the_integrity_verdict(project: Project) -> None:
    project.write('[stages.a]\ncommand = "echo hi"\n')
    assert project.mlci("run").returncode == 0
    db_path = project.state_dir / "mlci.db"
    db = sqlite3.connect(db_path)
    root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'runs_by_state'")
    page = root.fetchone()[0]
    size = db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    with open(db_path, "r+b") as file:  # one damaged page: the index of runs by state
        file.seek((page - 1) * size)
        file.write(b"\xff" * size)
    verdict = f"PRAGMA integrity_check: *** in database main *** Page {page}:"
    result = project.mlci("run")
    lines = result.stderr.decode().splitlines()
    assert result.returncode == 2 and len(lines) == 1, lines
    assert (
        lines[0].startswith(f"mlci: {db_path}: the database is damaged (") and verdict in lines[0]
    )
    logs = project.mlci("logs", "a")
    assert logs.stdout == b"hi\n" and verdict in logs.stderr.decode()
    assert b"Traceback" not in result.stderr + logs.stderr


@pytest.mark.slow
def test_a_store_locked_past_the_busy_timeout_mid_run_loses_nothing(project: Project) -> None:
    project.write(
        '[stages.a]\ncommand = "echo one; sleep 1; echo two"\n'
        '[stages.b]\ncommand = "echo three"\nneeds = ["a"]\n'
    )
    runner = project.start("run")
    wait_for(lambda: project.printed("a", b"one"))
    holder = sqlite3.connect(project.state_dir / "mlci.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    # b starts once a's end is in the runner's queue of writes: from then on at least
    # one write waits on this lock. It is held past the busy timeout from then: that
    # span is what is tested, not a wait for something to happen.
    wait_for(lambda: project.printed("b", b"three"), what="b to run while the store is locked")
    time.sleep(BUSY_TIMEOUT_S + 3)
    holder.execute("ROLLBACK")
    holder.close()
    out, _ = runner.communicate(timeout=120)
    assert runner.returncode == 0, out
    assert b"passed" in out and b"logs: .mlci/runs/1" in out
    status = project.status()
    assert status["state"] == "passed"
    assert {s["name"]: s["state"] for s in status["stages"]} == {"a": "passed", "b": "passed"}
    assert project.log("b") == b"three\n"


def stored(project: Project, *, skip: str | None = None) -> bytes:
    """Every run file of the store, and every row of its tables but ``skip``'s."""
    found = b"".join(
        path.read_bytes() for path in (project.state_dir / "runs").rglob("*") if path.is_file()
    )
    with sqlite3.connect(project.state_dir / "mlci.db") as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            if table != skip:
                found += repr(db.execute(f"SELECT * FROM {table}").fetchall()).encode()
    return found


def test_a_secret_written_into_a_gate_or_a_dep_name_is_masked_wherever_it_is_said(
    project: Project,
) -> None:
    """A gate's text, a failure's reason and the cache's reasons come from the config
    and the file names, not from the stage's output: masked all the same."""
    token = "Sup3rS3cretVal"
    (project.path / f"d_{token}").mkdir()
    (project.path / f"d_{token}" / "f").write_text("1\n")
    project.write(
        f"""
[pipeline]
secrets = ["TOKEN"]
[stages.s]
command = "true"
gates = ["k_{token} >= 5"]
[stages.t]
command = "true"
deps = ["d_{token}"]
"""
    )
    env = mlci_env(TOKEN=token)
    everything = b""
    for args in (["validate"], ["run"], ["why"], ["status", "--json"], ["status"]):
        result = project.mlci(*args, env=env)
        everything += result.stdout + result.stderr
    (project.path / f"d_{token}" / "f").write_text("2\n")
    for args in (["why"], ["run"], ["status", "--json"]):
        result = project.mlci(*args, env=env)
        everything += result.stdout + result.stderr
    # The store's tables but the one that knows files by their paths: a file named
    # with a secret is remembered by its name (the README says so).
    everything += stored(project, skip="file_hashes")
    assert b"k_***" in everything and b"d_***" in everything
    assert token.encode() not in everything


def test_a_secret_written_into_a_monitor_check_is_masked_in_its_findings(
    project: Project,
) -> None:
    """Found by a red team: a check's finding quotes the check, and was stored, logged
    and alerted in clear."""
    token = "Zq7SecretVal"
    project.write(
        f"""
[pipeline]
secrets = ["TOKEN"]
[stages.train]
command = "mkdir -p build && echo model > build/model.txt"
artifact = "build/model.txt"
[deploy]
command = "true"
[monitor]
command = "echo '::metric acc=0.9'"
checks = ["{token}_lat <= 1", "acc >= 0.5"]
interval = "0.1s"
samples = 1
auto_rollback = false
[alerts]
command = 'echo "$MLCI_ALERT_MESSAGE" >> alerts.txt'
"""
    )
    env = mlci_env(TOKEN=token)
    result = project.mlci("run", env=env)
    assert result.returncode != 0
    everything = result.stdout + result.stderr + (project.path / "alerts.txt").read_bytes()
    for args in (["status", "--json"], ["versions", "--json"], ["logs", "monitor"]):
        shown = project.mlci(*args, env=env)
        everything += shown.stdout + shown.stderr
    everything += stored(project)
    assert b"***_lat was not reported" in everything
    assert token.encode() not in everything


def test_a_secret_in_the_pipeline_name_is_masked_everywhere_it_is_shown(
    project: Project,
) -> None:
    """The name is masked once, where the config is read: the store never holds it."""
    token = "s3cr3t-token-value"
    project.write(
        f'[pipeline]\nname = "sec-{token}"\nsecrets = ["API_TOKEN"]\n[stages.a]\ncommand = "true"\n'
    )
    env = mlci_env(API_TOKEN=token)
    result = project.mlci("run", env=env)
    assert result.returncode == 0, result.stderr
    everything = result.stdout + result.stderr
    assert b"sec-***" in result.stdout
    for command in (["status"], ["status", "--json"], ["report", "--md"], ["validate"], ["dag"]):
        shown = project.mlci(*command, env=env)
        assert b"sec-" in shown.stdout, command  # `report --md` escapes the stars
        everything += shown.stdout + shown.stderr
    for path in project.state_dir.rglob("*"):
        if path.is_file():
            everything += path.read_bytes()
    assert token.encode() not in everything
