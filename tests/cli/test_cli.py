"""`mlci` as a user runs it: real processes, a real store, real files."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from mlci_tui.cli import build_parser
from tests.helpers import (
    FLOOD_STAGES,
    PROGRAMS,
    PYTHON,
    Project,
    demo_project,
    flood_config,
    flood_output,
    mlci_env,
    pid_alive,
    read_pids,
    run,
    run_python,
    setup,
    versions,
    wait_dead,
    wait_for,
)


def test_demo_pipeline_passes_and_prints_a_summary(tmp_path: Path) -> None:
    project = demo_project(tmp_path)
    result = project.mlci("run")
    out = result.stdout.decode()
    assert result.returncode == 0, out + result.stderr.decode()
    assert "[train]    epoch 40/40" in out
    assert "[test]     9 passed" in out
    summary = out[out.index("STAGE") :].splitlines()
    assert [line.split()[:2] for line in summary[1:5]] == [
        ["test", "passed"],
        ["prepare", "passed"],
        ["train", "passed"],
        ["evaluate", "passed"],
    ]
    assert "pump-failure · run 1 · passed" in out
    assert (tmp_path / "build" / "model.json").exists()
    status = project.status()
    assert status["state"] == "passed"
    evaluate = next(s for s in status["stages"] if s["name"] == "evaluate")
    assert evaluate["metrics"]["accuracy"] >= 0.9 and "f1" in evaluate["metrics"]


def test_run_streams_prefixed_lines_and_exit_1_on_failure(project: Project) -> None:
    project.write(
        """
[stages.hello]
command = "echo one; echo two >&2"
[stages.broken]
command = "echo oops; exit 4"
needs = ["hello"]
"""
    )
    result = project.mlci("run")
    out = result.stdout.decode()
    assert result.returncode == 1
    assert "[hello]  one\n" in out and "[hello]  two\n" in out
    assert "[broken] oops\n" in out
    assert "[broken] -- failed in" in out and "exit code 4" in out
    row = next(line for line in out.splitlines() if line.startswith("broken "))
    assert row.split()[:2] == ["broken", "failed"] and " 4  exit code 4" in row


def test_run_only_a_stage_and_its_needs(project: Project) -> None:
    project.write(
        """
[stages.a]
command = "true"
[stages.b]
command = "true"
needs = ["a"]
[stages.c]
command = "true"
"""
    )
    assert project.mlci("run", "--stage", "b").returncode == 0
    assert [s["name"] for s in project.status()["stages"]] == ["a", "b"]
    result = project.mlci("run", "--stage", "nope")
    assert result.returncode == 2
    assert result.stderr.decode() == "mlci: --stage nope: no such stage (stages: a, b, c)\n"


def test_github_actions_groups_and_errors(project: Project) -> None:
    project.write(
        """
[pipeline]
max_parallel = 1
[stages.first]
command = "echo hello"
[stages.second]
command = "echo bad; exit 2"
needs = ["first"]
"""
    )
    result = project.mlci("run", env=mlci_env(GITHUB_ACTIONS="true"))
    out = result.stdout.decode()
    assert result.returncode == 1
    # Each stage's output between stop-commands and their resume, with a fresh token.
    group = r"::group::{}\n::stop-commands::(\w+)\n{}\n-- {} in .*{}\n::\1::\n::endgroup::\n"
    first = re.search(group.format("first", "hello", "passed", ""), out)
    # A failed stage's log ends with mlci's note of why.
    second = re.search(
        group.format("second", "bad\n-- exit code 2", "failed", ": exit code 2"), out
    )
    assert first is not None and second is not None and first[1] != second[1]
    assert out[second.end() :].startswith("::error title=stage second failed::exit code 2\n")


def test_github_actions_parallel_stages_are_replayed_whole(project: Project) -> None:
    project.write(
        f"""
[pipeline]
max_parallel = 2
[stages.a]
command = ["{PYTHON}", "{PROGRAMS}/lines.py", "300", "a"]
[stages.b]
command = ["{PYTHON}", "{PROGRAMS}/lines.py", "300", "b"]
"""
    )
    out = project.mlci("run", env=mlci_env(GITHUB_ACTIONS="true")).stdout.decode()
    for name in "ab":
        start = out.index(f"::group::{name}\n")
        body = out[start : out.index("::endgroup::", start)]
        assert body.count(f"\n{name} ") == 300


def test_colour_only_on_a_terminal_and_never_with_no_color(project: Project) -> None:
    project.write("[stages.hi]\ncommand = \"printf '\\\\033[32mgreen\\\\033[0m\\\\n'\"\n")
    piped = project.mlci("run").stdout
    assert b"[hi] \x1b[32mgreen\x1b[0m\n" in piped  # a pipe gets the bytes as printed
    assert b"\x1b[36m[hi]" not in piped
    for env, coloured in ((mlci_env(), True), (mlci_env(NO_COLOR="1"), False)):
        tty = subprocess.run(
            project.in_terminal("run"), env=env, capture_output=True, timeout=60
        ).stdout
        assert (b"\x1b[36m[hi]\x1b[0m" in tty) is coloured
        assert (b"\x1b[32mgreen" in tty) is coloured
        assert b"green" in tty


def test_status_json_shape(project: Project) -> None:
    project.write(
        """
[stages.ok]
command = "echo '::metric score=3'"
[stages.bad]
command = "exit 1"
[stages.skipped]
command = "true"
needs = ["bad"]
"""
    )
    project.mlci("run")
    status = project.status()
    assert status["run_id"] == 1 and status["state"] == "failed"
    stages = {s["name"]: s for s in status["stages"]}
    assert {n: s["state"] for n, s in stages.items()} == {
        "ok": "passed",
        "bad": "failed",
        "skipped": "skipped",
    }
    ok = stages["ok"]
    assert ok["exit_code"] == 0 and ok["metrics"] == {"score": 3.0}
    # Too short to sample, and below the runner's own peak: unknown, never the runner's.
    assert ok["duration_s"] >= 0 and ok["peak_rss_bytes"] is None
    assert stages["skipped"]["exit_code"] is None and stages["skipped"]["duration_s"] is None
    project.mlci("run")
    assert project.status()["run_id"] == 2
    assert project.status("--run", "1")["run_id"] == 1
    human = project.mlci("status").stdout.decode()
    assert "run 2 · failed" in human and "skipped" in human


def test_status_without_runs(project: Project) -> None:
    project.write('[stages.a]\ncommand = "true"\n')
    result = project.mlci("status")
    assert result.returncode == 1
    assert result.stderr.decode() == "mlci: no runs yet in .mlci (start one with `mlci run`)\n"
    assert not project.state_dir.exists()


def test_logs_print_exactly_what_was_printed(project: Project) -> None:
    raw = b"bin \x00\xff\xfe\x1b]0;t\x07 [bold]x[/]\r\nno newline at end"
    project.write(
        f"""
[stages.odd]
command = ["{PYTHON}", "{PROGRAMS}/raw.py", "{raw.hex()}"]
"""
    )
    assert project.mlci("run").returncode == 0
    assert project.log("odd") == raw
    result = project.mlci("logs", "nope")
    assert result.returncode == 2 and b"has no stage 'nope' (stages: odd)" in result.stderr


def test_a_10_mb_line_is_kept_whole(project: Project) -> None:
    project.write(
        f"""
[stages.big]
command = ["{PYTHON}", "-c", "import sys; sys.stdout.write('x' * 10_000_000 + '\\\\nafter\\\\n')"]
"""
    )
    assert project.mlci("run").returncode == 0
    assert project.log("big") == b"x" * 10_000_000 + b"\nafter\n"


def test_eight_parallel_stages_of_200000_lines_lose_nothing(project: Project) -> None:
    project.write(flood_config())
    result = project.mlci("run", timeout=300)
    assert result.returncode == 0, result.stderr
    for i in range(FLOOD_STAGES):
        assert project.log(f"s{i}") == flood_output(f"s{i}")


def test_secrets_masked_everywhere_in_all_three_forms(project: Project) -> None:
    secret = "tok/en+s3cret value"
    import base64
    import urllib.parse

    b64 = base64.b64encode(secret.encode()).decode()
    url = urllib.parse.quote(secret, safe="")
    project.write(
        f"""
[pipeline]
secrets = ["API_TOKEN"]
[stages.leak]
command = 'echo "plain $API_TOKEN"; echo "b64 {b64}" >&2; echo "url {url}"'
[stages.drip]
command = ["{PYTHON}", "{PROGRAMS}/drip.py", "a {secret} z"]
[stages.fail]
command = 'echo "::metric x=1"; exit 1'
gates = []
"""
    )
    env = mlci_env(API_TOKEN=secret)
    result = project.mlci("run", env=env)
    everything = result.stdout + result.stderr
    for stage in ("leak", "drip"):
        everything += project.mlci("logs", stage, env=env).stdout
    everything += project.mlci("status", "--json", env=env).stdout
    for path in project.state_dir.rglob("*"):
        if path.is_file():
            everything += path.read_bytes()
    for form in (secret, b64, b64.rstrip("="), url):
        assert form.encode() not in everything
    assert b"plain ***" in everything and b"b64 ***" in everything and b"url ***" in everything
    assert project.mlci("logs", "drip", env=env).stdout == b"a *** z\n"


def test_cancel_with_sigint_exits_130_and_leaves_no_process(project: Project) -> None:
    project.write(
        f"""
[pipeline]
kill_grace = "2s"
[stages.long]
command = ["{PYTHON}", "{PROGRAMS}/spawn.py", "pids"]
[stages.daemon]
command = ["{PYTHON}", "{PROGRAMS}/spawn.py", "daemon-pids", "--setsid"]
[stages.never]
command = "true"
needs = ["long"]
"""
    )
    runner = project.start("run")
    wait_for(lambda: (project.path / "pids").exists() and (project.path / "daemon-pids").exists())
    runner.send_signal(signal.SIGINT)
    out, _ = runner.communicate(timeout=60)
    assert runner.returncode == 130
    assert b"mlci: SIGINT: cancelling the run" in out
    pids = read_pids(project.path / "pids") + read_pids(project.path / "daemon-pids")
    assert not [pid for pid in pids if pid_alive(pid)]
    status = project.status()
    assert status["state"] == "cancelled"
    assert {s["name"]: s["state"] for s in status["stages"]} == {
        "long": "cancelled",
        "daemon": "cancelled",
        "never": "cancelled",
    }


def test_sigterm_cancels_too(project: Project) -> None:
    project.write('[stages.sleepy]\ncommand = "echo ready; sleep 300"\n')
    runner = project.start("run")
    wait_for(lambda: project.printed("sleepy", b"ready"))
    runner.send_signal(signal.SIGTERM)
    runner.communicate(timeout=60)
    assert runner.returncode == 130
    assert project.status()["state"] == "cancelled"


@pytest.mark.parametrize(
    ("signum", "command", "state", "code"),
    [(signal.SIGTERM, "sleep 30", "cancelled", 130), (signal.SIGHUP, "sleep 1", "passed", 0)],
)
def test_a_signal_in_the_instant_the_run_starts_never_leaves_it_running(
    tmp_path: Path, signum: int, command: str, state: str, code: int
) -> None:
    """SIGTERM cancels and a hang-up is let pass from the moment the run's row can
    exist: the row is read raw, with no command's recovery to mend it afterwards."""
    for trial in range(12):
        project = Project(tmp_path / str(trial))
        project.path.mkdir()
        project.write(f'[stages.one]\ncommand = "{command}"\n')
        runner = project.start("run")
        made = project.state_dir / "runs" / "1"
        wait_for(made.exists, what="the run's directory")
        runner.send_signal(signum)
        runner.communicate(timeout=60)
        db = sqlite3.connect(project.state_dir / "mlci.db")
        rows = db.execute("SELECT state FROM runs").fetchall()
        db.close()
        assert rows == [(state,)], f"trial {trial}: {rows}"
        # A hang-up that comes only after the run is recorded (a loaded machine) may
        # end the process as any program's: the run went on and passed all the same.
        late = signum == signal.SIGHUP and runner.returncode == -signal.SIGHUP
        assert runner.returncode == code or late, f"trial {trial}: {runner.returncode}"


def test_a_running_stage_is_sampled_for_cpu_and_memory(project: Project) -> None:
    project.write(
        f"""
[stages.hungry]
command = ["{PYTHON}", "{PROGRAMS}/hungry.py", "80", "go"]
timeout = "60s"
"""
    )
    runner = project.start("run")

    def sample() -> dict | None:
        result = project.mlci("status", "--json")
        if result.returncode != 0:
            return None
        stage = json.loads(result.stdout)["stages"][0]
        return stage if (stage["rss_bytes"] or 0) > 80_000_000 else None

    sampled = wait_for(sample, what="a sample of the held memory in the store")
    assert sampled["state"] == "running" and sampled["cpu_percent"] > 0
    assert "cpu " in project.mlci("status").stdout.decode()
    (project.path / "go").touch()
    runner.communicate(timeout=60)
    final = project.stage("hungry")
    assert final["state"] == "passed"
    assert final["peak_rss_bytes"] > 80_000_000 and final["cpu_seconds"] > 0
    assert final["rss_bytes"] is None  # live figures are cleared once the stage ends


def test_sighup_does_not_stop_a_run(project: Project) -> None:
    project.write('[stages.s]\ncommand = "echo ready; sleep 1; echo done"\n')
    runner = project.start("run")
    wait_for(lambda: project.printed("s", b"ready"))
    runner.send_signal(signal.SIGHUP)
    runner.communicate(timeout=60)
    assert runner.returncode == 0
    assert project.log("s") == b"ready\ndone\n"


def test_runner_killed_with_sigkill_is_recovered_by_the_next_command(project: Project) -> None:
    project.write(
        f"""
[stages.long]
command = 'echo before-kill; {PYTHON} {PROGRAMS}/spawn.py pids'
[stages.later]
command = "true"
needs = ["long"]
"""
    )
    runner = project.start("run")
    wait_for(lambda: project.printed("long", b"spawned"))
    pids = read_pids(project.path / "pids")
    runner.send_signal(signal.SIGKILL)
    runner.communicate(timeout=30)
    assert all(pid_alive(pid) for pid in pids)  # orphans, until someone cleans up
    status = project.status()  # the next command that opens the store
    assert status["state"] == "interrupted"
    assert {s["name"]: s["state"] for s in status["stages"]} == {
        "long": "cancelled",
        "later": "cancelled",
    }
    assert "stopped without finishing" in status["message"]
    wait_dead(pids)
    assert project.log("long").startswith(b"before-kill\nspawned ")
    # The logs say it where the output ends, once however many commands look.
    project.status()
    logs = project.mlci("logs", "long")
    assert logs.stderr.decode().count("mlci: the runner stopped unexpectedly") == 1
    assert b"stopped" not in logs.stdout  # the stage's own bytes, nothing added
    whole = project.mlci("logs").stdout.decode().splitlines()
    assert whole[-1].endswith("-- the runner stopped unexpectedly"), whole
    assert "[later]" not in "".join(whole)  # it never started: no log, no note


def test_a_run_of_another_host_is_not_marked_interrupted(project: Project) -> None:
    project.write('[stages.a]\ncommand = "true"\n')
    project.mlci("run")
    db = sqlite3.connect(project.state_dir / "mlci.db")
    with db:
        db.execute("UPDATE runs SET state = 'running', host = 'elsewhere', pid = 999999")
    db.close()
    assert project.status()["state"] == "running"
    assert socket.gethostname() != "elsewhere"


def test_logs_follow_a_run_in_another_process(project: Project) -> None:
    project.write(
        """
[stages.slow]
command = "for i in 1 2 3 4 5; do echo line $i; sleep 0.2; done; printf tail"
"""
    )
    runner = project.start("run")
    log = project.state_dir / "runs" / "1" / "slow.log"
    wait_for(log.exists)
    follower = project.start("logs", "slow", "-f")
    out, err = follower.communicate(timeout=60)
    assert follower.returncode == 0, err
    assert out == b"line 1\nline 2\nline 3\nline 4\nline 5\ntail"
    runner.communicate(timeout=60)


def test_a_line_reaches_the_log_file_while_the_stage_still_runs(project: Project) -> None:
    project.write(
        """
[stages.waiting]
command = "echo first-line; while [ ! -e go ]; do sleep 0.05; done; echo second"
timeout = "60s"
"""
    )
    runner = project.start("run")
    wait_for(lambda: project.printed("waiting", b"first-line"))
    assert project.stage("waiting")["state"] == "running"
    (project.path / "go").touch()
    runner.communicate(timeout=60)
    assert runner.returncode == 0
    assert project.log("waiting") == b"first-line\nsecond\n"


def test_a_partial_line_reaches_viewers_without_a_newline(project: Project) -> None:
    project.write(
        """
[stages.progress]
command = "printf 'progress 50%%'; while [ ! -e go ]; do sleep 0.05; done; printf ' done\\n'"
timeout = "60s"
"""
    )
    runner = project.start("run")
    wait_for(lambda: project.printed("progress", b"progress 50%"))
    (project.path / "go").touch()
    runner.communicate(timeout=60)
    assert project.log("progress") == b"progress 50% done\n"


def waits_on_the_store(pid: int) -> bool:
    """Whether process ``pid`` has the store's database open and every thread of it
    asleep: a runner before its run is recorded sleeps only in SQLite's busy handler,
    waiting for a lock (Linux: the kernel says where each thread sleeps)."""
    with contextlib.suppress(psutil.Error, OSError):
        process = psutil.Process(pid)
        if not any(Path(f.path).name == "mlci.db" for f in process.open_files()):
            return False
        tasks = Path(f"/proc/{pid}/task")
        return all("nanosleep" in (task / "wchan").read_text() for task in tasks.iterdir())
    return False


def test_locked_database_makes_commands_wait_not_fail(project: Project) -> None:
    project.write('[stages.a]\ncommand = "true"\n')
    project.mlci("run")
    db = sqlite3.connect(project.state_dir / "mlci.db", isolation_level=None)
    db.execute("BEGIN EXCLUSIVE")
    runner = project.start("run")
    wait_for(
        lambda: waits_on_the_store(runner.pid) or runner.poll() is not None,
        what="the runner to wait on the lock",
    )
    assert runner.poll() is None, runner.communicate()
    db.execute("COMMIT")
    db.close()
    runner.communicate(timeout=60)
    assert runner.returncode == 0
    assert project.status()["run_id"] == 2


def test_damaged_database_is_named_in_one_line(project: Project) -> None:
    project.write('[stages.a]\ncommand = "echo kept"\n')
    project.mlci("run")
    db_path = project.state_dir / "mlci.db"
    for suffix in ("-wal", "-shm"):
        Path(str(db_path) + suffix).unlink(missing_ok=True)
    db_path.write_bytes(b"this is not sqlite" * 100)
    result = project.mlci("status")
    assert result.returncode == 2
    err = result.stderr.decode()
    assert err.count("\n") == 1 and str(db_path) in err and "damaged" in err
    assert (project.state_dir / "runs" / "1" / "a.log").read_bytes().endswith(b"kept\n")


def test_a_newer_schema_is_refused(project: Project) -> None:
    project.write('[stages.a]\ncommand = "true"\n')
    project.mlci("run")
    db = sqlite3.connect(project.state_dir / "mlci.db")
    db.execute("PRAGMA user_version = 99")
    db.close()
    result = project.mlci("status")
    assert result.returncode == 2
    assert b"written by a newer mlci (schema 99" in result.stderr


def test_usage_errors_are_one_line(project: Project) -> None:
    project.write('[stages.a]\ncommand = "true"\n')
    result = project.mlci("status", "--run", "abc")
    assert result.returncode == 2
    assert result.stderr.decode().count("\n") == 1
    assert project.mlci("run").returncode == 0
    missing = project.mlci("status", "--run", "5")
    assert (missing.returncode, missing.stderr) == (1, b"mlci: no run 5\n")


def test_an_older_store_is_migrated_and_keeps_its_runs(project: Project) -> None:
    from mlci_tui.store.db import MIGRATIONS

    project.state_dir.mkdir()
    db = sqlite3.connect(project.state_dir / "mlci.db")
    for migration in MIGRATIONS[:2]:  # the schema before stages recorded external jobs
        db.executescript(migration)
    db.execute("PRAGMA user_version = 2")
    db.execute(
        "INSERT INTO runs (pipeline, state, started_at, exit_code) VALUES ('old', 'passed', 1, 0)"
    )
    db.execute("INSERT INTO stages (run_id, name, position, state) VALUES (1, 'a', 0, 'passed')")
    db.commit()
    db.close()
    project.write('[stages.a]\ncommand = "true"\n')
    old = project.status("--run", "1")
    assert (old["pipeline"], old["state"]) == ("old", "passed")
    assert old["stages"][0]["job"] is None
    assert project.mlci("run").returncode == 0
    db = sqlite3.connect(project.state_dir / "mlci.db")
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    db.close()


def test_a_store_whose_versions_kept_metrics_by_name_alone_finds_their_stages(
    project: Project,
) -> None:
    """Before a metric was its stage and its name, a version kept ``{name: value}``:
    the migration finds each name's stage among its run's, never the monitor's."""
    from mlci_tui.store.db import MIGRATIONS

    setup(project)
    assert run(project, 1) == 0
    db = sqlite3.connect(project.state_dir / "mlci.db")
    db.execute("""UPDATE versions SET metrics = '{"accuracy": 0.9, "f1": 0.8}'""")
    before = next(n for n, text in enumerate(MIGRATIONS) if "json_group_array" in text)
    # As the store was then: without what the migrations after it added.
    db.executescript(
        "DROP INDEX runs_by_kind; ALTER TABLE runs DROP COLUMN kind; DROP TABLE experiments;"
        " ALTER TABLE versions DROP COLUMN experiment_id;"
    )
    db.execute(f"PRAGMA user_version = {before}")
    db.commit()
    db.close()
    [version] = json.loads(project.mlci("versions", "--json").stdout)
    assert version["metrics"] == [
        {"stage": "evaluate", "name": "accuracy", "value": 0.9},
        {"stage": "evaluate", "name": "f1", "value": 0.8},
    ]
    assert version["live_metrics"] == [{"stage": "monitor", "name": "accuracy", "value": 0.95}]


def test_help_and_version() -> None:
    result = run_python("-m", "mlci_tui", "--help")
    assert result.returncode == 0 and "run" in result.stdout and "logs" in result.stdout
    version = run_python("-m", "mlci_tui", "--version")
    assert version.stdout.startswith("mlci-tui ")


def test_headless_commands_never_import_textual(project: Project) -> None:
    project.write('[stages.a]\ncommand = "true"\n')
    for args in (["validate"], ["run"], ["status"], ["logs", "a"], ["--help"]):
        argv = ["-X", "importtime", "-m", "mlci_tui", *args]
        if args != ["--help"]:
            argv += ["--config", str(project.config_path)]
        result = run_python(*argv, cwd=project.path)
        assert result.returncode == 0, result.stderr
        imported = [line.split("|")[-1].strip() for line in result.stderr.splitlines()]
        assert "mlci_tui.cli" in imported  # the check itself works
        assert not [m for m in imported if m.split(".")[0] in ("textual", "rich")], args


def _parsers(
    parser: argparse.ArgumentParser, words: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every parser of `mlci`'s, as the words that reach it and the parser."""
    yield words, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, command in action.choices.items():
                yield from _parsers(command, (*words, name))


def test_every_command_names_its_handler() -> None:
    """``mlci cache gc`` runs `handle_cache_gc`, defined in the module of `commands`
    that its parser names."""
    commands = {words: p for words, p in _parsers(build_parser()) if p._subparsers is None}
    assert ("mlflow", "sync") in commands and ("cache", "gc") in commands
    for words, parser in commands.items():
        handler = parser.get_default("handler")
        module = importlib.import_module(handler.__module__)
        function = getattr(module, handler.__qualname__)
        assert module.__name__.startswith("mlci_tui.commands."), words
        assert function.__module__ == module.__name__, words
        assert function.__name__ == "handle_" + "_".join(words), words


def test_help_loads_no_command_nor_the_config_or_the_store() -> None:
    """Every parser's ``--help``, in one process: parsing the arguments imports only
    the parser, so that `mlci --help` starts fast."""
    everyone = [list(words) for words, _ in _parsers(build_parser())]
    assert len(everyone) > 20
    code = (
        "import contextlib, io, sys\n"
        "from mlci_tui.cli import main\n"
        f"for words in {everyone!r}:\n"
        "    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "        main([*words, '--help'])\n"
        "print(sorted(n for n in sys.modules if n.startswith('mlci_tui')))\n"
    )
    result = run_python("-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['mlci_tui', 'mlci_tui.cli', 'mlci_tui.errors']"


def test_engine_packages_do_not_import_textual() -> None:
    # The dashboard imports Textual; `mlci serve`'s server imports textual-serve, which
    # imports rich (its guard does not).
    code = (
        "import sys, pkgutil, importlib, mlci_tui\n"
        "for m in pkgutil.walk_packages(mlci_tui.__path__, 'mlci_tui.'):\n"
        "    if not m.name.startswith(\n"
        "        ('mlci_tui.tui', 'mlci_tui.__main__', 'mlci_tui.web.server')\n"
        "    ):\n"
        "        importlib.import_module(m.name)\n"
        "print(sorted(n for n in sys.modules if n.split('.')[0] in ('textual', 'rich')))\n"
    )
    result = run_python("-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_runner_reports_its_pid_and_host(project: Project) -> None:
    project.write('[stages.a]\ncommand = "true"\n')
    project.mlci("run")
    status = project.status()
    assert status["host"] == socket.gethostname() and isinstance(status["pid"], int)


def test_recovery_finds_stage_processes_whose_tag_never_reached_the_store(
    project: Project,
) -> None:
    project.write(f'[stages.long]\ncommand = ["{PYTHON}", "{PROGRAMS}/spawn.py", "pids"]\n')
    runner = project.start("run")
    wait_for((project.path / "pids").exists)
    runner.send_signal(signal.SIGKILL)
    runner.communicate(timeout=30)
    # As if the runner died before its writes landed: no tag, no group recorded.
    db = sqlite3.connect(project.state_dir / "mlci.db")
    with db:
        db.execute("UPDATE stages SET process_tag = NULL, pgid = NULL, pid = NULL")
    db.close()
    pids = read_pids(project.path / "pids")
    assert project.status()["state"] == "interrupted"
    wait_dead(pids)


def test_a_terminal_that_stops_reading_does_not_stall_the_run(project: Project) -> None:
    project.write(
        f"""
[stages.flood]
command = ["{PYTHON}", "{PROGRAMS}/lines.py", "400000"]
[stages.stuck]
command = "sleep 300"
timeout = "1s"
"""
    )
    runner = project.start("run")  # its stdout is a pipe that nobody reads yet

    def finished() -> bool:
        result = project.mlci("status", "--json")  # exit 1 once it failed, as it will
        return bool(result.stdout) and json.loads(result.stdout)["state"] != "running"

    wait_for(finished, timeout=60, what="the run to end while its output is unread")
    out, _ = runner.communicate(timeout=60)
    assert runner.returncode == 1
    assert b"were not shown here because the terminal was not reading" in out
    assert project.log("flood").count(b"\n") == 400_000


def test_stages_do_not_inherit_an_ignored_sighup(project: Project) -> None:
    project.write('[stages.s]\ncommand = "grep SigIgn /proc/self/status"\n')
    assert project.mlci("run").returncode == 0
    mask = int(project.log("s").split()[1], 16)
    assert not mask & 1 << (signal.SIGHUP - 1)


def test_a_run_number_out_of_range_is_a_usage_error(project: Project) -> None:
    project.write('[stages.a]\ncommand = "true"\n')
    result = project.mlci("status", "--run", "99999999999999999999")
    assert result.returncode == 2
    assert result.stderr.decode().count("\n") == 1
    assert "expected a run number" in result.stderr.decode()


def test_a_secret_that_is_not_utf8(project: Project) -> None:
    project.write(
        """
[pipeline]
secrets = ["TOKEN"]
[stages.s]
command = 'printf "[%s]\\n" "$TOKEN"'
"""
    )
    result = project.mlci("run", env=mlci_env(TOKEN="abc\udcffdef"))
    assert result.returncode == 0, result.stderr
    assert project.log("s") == b"[***]\n"


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 1 MiB file system (tmpfs), for a disk that fills up for real."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; the simulated full disk below still runs")
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_disk_that_fills_up_stops_the_run_clearly_and_keeps_the_store(
    project: Project, small_disk: Path
) -> None:
    project.write(
        f"""
[pipeline]
state_dir = "{small_disk}/.mlci"
[stages.big]
command = ["{PYTHON}", "{PROGRAMS}/lines.py", "100000"]
[stages.after]
command = "true"
needs = ["big"]
"""
    )
    result = project.mlci("run")
    out, err = result.stdout.decode(), result.stderr.decode()
    assert result.returncode in (1, 2)
    assert "No space left on device; stopping the run" in out
    assert "Traceback" not in out + err
    assert err.count("\n") <= 1  # at most one line: the final write could not land
    db = sqlite3.connect(small_disk / ".mlci" / "mlci.db")
    assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    db.close()
    log = (small_disk / ".mlci" / "runs" / "1" / "big.log").read_bytes()
    assert b"line 0000000" in log  # what was written is readable
    # The store is still full: the run cannot be marked interrupted, and status says
    # its runner is gone rather than showing it running as if it might still end.
    status = project.mlci("status")
    assert status.returncode == 1 and b"run 1" in status.stdout
    assert b"run 1's runner is gone" in status.stderr
    document = project.mlci("status", "--json")
    assert document.returncode == 1
    assert json.loads(document.stdout)["runner_gone"] is True


def test_a_truncated_database_is_named_and_the_logs_stay_readable(project: Project) -> None:
    project.write('[stages.a]\ncommand = "echo kept in the log"\n')
    project.mlci("run")
    db_path = project.state_dir / "mlci.db"
    db = sqlite3.connect(db_path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    data = db_path.read_bytes()
    db_path.write_bytes(data[: len(data) // 3])
    result = project.mlci("status")
    err = result.stderr.decode()
    assert result.returncode == 2 and err.count("\n") == 1
    assert str(db_path) in err and "Traceback" not in err
    assert b"kept in the log" in (project.state_dir / "runs" / "1" / "a.log").read_bytes()


def test_a_mirror_without_mlflow_installed_fails_nothing_and_says_what_to_install(
    project: Project, tmp_path: Path
) -> None:
    setup(project)
    with open(project.config_path, "a") as config:
        config.write('\n[mlflow]\ntracking_uri = "sqlite:///mlflow.db"\n')
    # An `mlflow` that cannot be imported, as on a machine without the extra.
    missing = tmp_path / "no-mlflow" / "mlflow"
    missing.mkdir(parents=True)
    (missing / "__init__.py").write_text("raise ImportError(\"No module named 'mlflow'\")\n")
    env = mlci_env(PYTHONPATH=f"{missing.parent}{os.pathsep}{mlci_env()['PYTHONPATH']}")
    result = project.mlci("run", env=env)
    assert result.returncode == 0, result.stderr
    said = f"mlflow: not mirrored to sqlite:///{project.path / 'mlflow.db'}: MLflow is not"
    assert (said + " installed where mlci runs: pip install -e '.[mlflow]'\n").encode() in (
        result.stdout
    )
    assert versions(project)["v1"]["status"] == "live"
    alerts = json.loads(project.mlci("alerts", "--json").stdout)["alerts"]
    assert [a["kind"] for a in alerts] == ["mlflow_sync_failed"]
    synced = project.mlci("mlflow", "sync", env=env)
    assert synced.returncode == 1 and synced.stderr.startswith(b"mlci: " + said.encode())


SPIN = (
    "import time\n"
    "while time.process_time() < 0.4: pass\n"
    "print('spent', flush=True)\n"
    "while True: sum(range(10_000))\n"
)


@pytest.mark.parametrize(
    "command",
    [f'["{PYTHON}", "spin.py"]', f'"{PYTHON} spin.py; echo after"'],
    ids=["words", "shell"],
)
def test_a_cancelled_or_timed_out_stage_keeps_the_cpu_time_it_spent(
    project: Project, command: str
) -> None:
    """Each stage spins until its own CPU clock passes 0.4 s, says so, and spins on:
    what the store keeps of it, once it is stopped, is at least that. In a shell the
    program is the shell's child (the shell has more to do after it): stopped, the
    shell dies without having waited for it, so the shell's own accounting holds
    nothing of the program's CPU time; the store still keeps the program's."""
    (project.path / "spin.py").write_text(SPIN)
    project.write(
        f"""
[pipeline]
kill_grace = "1s"
[stages.cancelled]
command = {command}
[stages.timed]
command = {command}
timeout = "5s"
"""
    )
    runner = project.start("run")
    wait_for(lambda: project.printed("cancelled", b"spent"))
    wait_for(lambda: project.stage("timed")["state"] == "failed", timeout=60)
    runner.send_signal(signal.SIGTERM)
    runner.communicate(timeout=60)
    assert runner.returncode == 130
    stages = {s["name"]: s for s in project.status()["stages"]}
    assert stages["cancelled"]["state"] == "cancelled"
    assert "timed out" in stages["timed"]["message"]
    for stage in stages.values():
        assert stage["cpu_seconds"] is not None and stage["cpu_seconds"] >= 0.4, stage
    assert re.search(r"cancelled\b.*\d+\.\d\ds", project.mlci("status").stdout.decode())


def test_a_note_after_a_line_left_open_starts_its_own_line_on_a_shared_terminal(
    project: Project,
) -> None:
    project.write("[stages.s]\ncommand = \"printf 'no end'; exit 3\"\n")
    assert project.mlci("run").returncode == 1
    assert project.mlci("logs", "s").stdout == b"no end"  # the stage's bytes alone
    shared = subprocess.run(
        [PYTHON, "-m", "mlci_tui", "logs", "s", "--config", str(project.config_path)],
        cwd=project.path,
        env=mlci_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=60,
    )
    assert shared.stdout == b"no end\nmlci: exit code 3\n"


@pytest.mark.parametrize(
    ("table", "reason"),
    [
        ('command = "exit 3"', "exit code 3"),
        ('command = "sleep 30"\ntimeout = "0.5s"', "timed out after"),
        ('command = "echo ::metric loss=2"\ngates = ["loss <= 1"]', "loss 2 > 1"),
        ('command = "true"\nouts = ["made"]', "was not produced"),
    ],
)
def test_a_failed_stage_says_why_in_its_log_whatever_failed_it(
    project: Project, table: str, reason: str
) -> None:
    project.write(f"[stages.s]\n{table}\n")
    assert project.mlci("run").returncode == 1
    stage = project.stage("s")
    assert stage["state"] == "failed" and reason in stage["message"], stage
    # The reason whole, once, as a note of mlci's own: on stderr, beside what the
    # stage printed (stdout stays exactly that).
    logs = project.mlci("logs", "s")
    assert logs.returncode == 0, logs.stderr
    assert logs.stderr.count(f"mlci: {stage['message']}\n".encode()) == 1, logs.stderr
    assert b"mlci:" not in logs.stdout
