"""The headless commands at their edges: exit codes, messages for mistakes,
progress bars on a terminal and in a file, and what peak memory means."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.helpers import PYTHON, Project, run, setup

GATED = """
[stages.train]
command = "echo '::metric loss=0.4 accuracy=0.5'"
gates = ["accuracy >= 0.9"]
[stages.deploy_checks]
command = "true"
needs = ["train"]
"""


def test_status_exits_1_for_a_run_that_did_not_pass_and_shows_its_metrics(
    project: Project,
) -> None:
    project.write(GATED)
    assert project.mlci("run").returncode == 1
    status = project.mlci("status")
    assert status.returncode == 1
    out = status.stdout.decode()
    assert "METRICS" in out
    assert "train  loss 0.4  accuracy 0.5" in out
    assert project.mlci("status", "--json").returncode == 1
    project.write("[stages.train]\ncommand = \"echo '::metric accuracy=0.95'\"\n")
    assert project.mlci("run").returncode == 0
    assert project.mlci("status").returncode == 0
    assert project.mlci("status", "--run", "1").returncode == 1


def test_a_failed_gate_is_printed_once(project: Project) -> None:
    project.write(GATED)
    out = project.mlci("run").stdout.decode()
    assert out.count("-- accuracy 0.5 < 0.9") == 1, out
    assert "[train]         -- failed in" in out


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "--stage", "trian"], 'mlci: --stage trian: no such stage; did you mean "train"?'),
        (["logs", "trian"], "mlci: run 1 has no stage 'trian'; did you mean \"train\"?"),
        (["logs", "deploy_checks"], "mlci: stage deploy_checks of run 1 did not run"),
    ],
    ids=["run-stage", "logs-name", "logs-skipped"],
)
def test_a_mistyped_or_skipped_stage_is_named(
    project: Project, args: list[str], expected: str
) -> None:
    project.write(GATED)
    project.mlci("run")
    result = project.mlci(*args)
    err = result.stderr.decode()
    assert result.returncode == (2 if "no such" in expected or "has no" in expected else 1)
    assert err.startswith(expected) and err.count("\n") == 1
    if "did not run" in expected:
        assert "skipped: train did not pass" in err


def test_versions_limit_and_all_together_are_a_usage_error(project: Project) -> None:
    project.write('[stages.a]\ncommand = "true"\n')
    result = project.mlci("versions", "--all", "--limit", "3")
    assert result.returncode == 2
    assert result.stderr.decode() == (
        "mlci versions: argument --limit: not allowed with argument --all"
        " (see mlci versions --help)\n"
    )


def test_the_summary_names_the_version_and_what_became_of_it(project: Project) -> None:
    setup(project)
    result = project.mlci("run")
    assert result.returncode == 0
    summary = result.stdout.decode().splitlines()
    line = next(text for text in summary if text.startswith("version v1 registered"))
    assert line.endswith(", deployed: it is live")
    (project.path / "fail-deploy").touch()
    (project.path / "seed").write_text("2")
    out = project.mlci("run").stdout.decode()
    assert "version v2 registered" in out
    assert "its deploy failed; the live version did not change" in out


PROGRESS = (
    "import sys, time\n"
    "for i in range(0, 101, 25):\n"
    "    sys.stderr.write(f'\\r{i:3d}%'); sys.stderr.flush(); time.sleep(0.35)\n"
    "sys.stderr.write(' done\\n')\n"
)


def test_a_progress_bar_is_redrawn_in_place_on_a_terminal_and_kept_as_printed_elsewhere(
    project: Project,
) -> None:
    (project.path / "bar.py").write_text(PROGRESS)
    project.write(f'[stages.bar]\ncommand = ["{PYTHON}", "bar.py"]\n')
    shown = subprocess.run(
        project.in_terminal("run"), cwd=project.path, capture_output=True, timeout=60
    ).stdout
    line = shown[shown.index(b"[bar]\x1b[0m  ") : shown.index(b"done")]
    assert b"\r\x1b[2K" in line  # drawn again from the start of the line
    assert b"%" in line and line.count(b"%") == line.count(b"\r\x1b[2K") + 1
    piped = project.mlci("run").stdout
    assert b"[bar] \r  0%\r 25%\r 50%\r 75%\r100% done\n" in piped
    assert project.log("bar", run=2) == b"\r  0%\r 25%\r 50%\r 75%\r100% done\n"


def test_logs_on_a_terminal_end_lines_with_newlines_not_symbols(project: Project) -> None:
    project.write('[stages.a]\ncommand = "echo one; echo two"\n')
    project.mlci("run")
    shown = subprocess.run(
        project.in_terminal("logs", "a"), cwd=project.path, capture_output=True, timeout=60
    ).stdout
    assert shown.replace(b"\r\n", b"\n") == b"one\ntwo\n"
    assert "␊".encode() not in shown


def test_peak_memory_is_the_stage_own_never_the_runner(project: Project) -> None:
    hold = (
        "import time; x = bytearray({mb} << 20); x[::4096] = b'1' * len(x[::4096]); time.sleep({s})"
    )
    project.write(
        f"""
[stages.nothing]
command = "true"
[stages.hold]
command = ["{PYTHON}", "-c", "{hold.format(mb=300, s=1.5)}"]
[stages.slow]
command = ["{PYTHON}", "-c", "{hold.format(mb=200, s=30)}"]
timeout = "2s"
"""
    )
    project.mlci("run")
    stages = {s["name"]: s for s in project.status()["stages"]}
    nothing = stages["nothing"]["peak_rss_bytes"]
    assert nothing is None or nothing < 10 << 20  # the runner alone peaks at 25 MB or more
    assert 290 << 20 < stages["hold"]["peak_rss_bytes"] < 360 << 20
    assert stages["slow"]["message"] == "timed out after 2.00s"
    assert 190 << 20 < stages["slow"]["peak_rss_bytes"] < 260 << 20


def test_alerts_are_acknowledged_by_id_or_all_at_once(project: Project) -> None:
    setup(project)
    (project.path / "fail-deploy").touch()
    for seed in (1, 2):
        run(project, seed)
    alerts = json.loads(project.mlci("alerts", "--json").stdout)["alerts"]
    assert len(alerts) == 4 and all(a["acknowledged_at"] is None for a in alerts)
    first = str(alerts[-1]["id"])
    assert project.mlci("alerts", "--ack", first).stdout == b"acknowledged 1 alert\n"
    unknown = project.mlci("alerts", "--ack", "99")
    assert unknown.returncode == 2
    assert unknown.stderr == b"mlci: --ack 99: no such alert (see mlci alerts)\n"
    assert project.mlci("alerts", "--ack").stdout == b"acknowledged 3 alerts\n"
    alerts = json.loads(project.mlci("alerts", "--json").stdout)["alerts"]
    assert all(a["acknowledged_at"] and a["acknowledged_by"] for a in alerts)
