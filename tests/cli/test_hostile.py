"""The promises that broke under hostile input and careless operators: huge
numbers, huge graphs, a store others could read. Each test reproduces what
broke; `docs/reliability.md` lists them."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlci_tui import dag
from tests.helpers import (
    Project,
    history,
    mlci_env,
    read_pids,
    readonly_store,
    setup,
    start_held_rollback,
    two_versions,
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
    assert set(version["metrics"]) == {"***_f1", "ok"}
    assert set(version["live_metrics"]) == {"***", "ok"}


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
    time.sleep(0.5)
    log.unlink()
    (project.path / "go").touch()
    assert runner.wait(timeout=60) == 0
    _, err = follower.communicate(timeout=30)
    missing = f"mlci: the log of stage a of run 1 is missing: {log}\n"
    assert follower.returncode == 1 and err.decode() == missing
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
