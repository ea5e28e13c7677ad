"""`mlci logs` without a stage: the whole run's output, interleaved and labelled as
`mlci run` printed it — checked against what `mlci run` printed, run by run."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlci_tui.states import Stream
from mlci_tui.store.run_log import RunLog, stage_labels
from mlci_tui.textsafe import decode, terminal_line
from tests.helpers import HOSTILE, PROGRAMS, PYTHON, Project

SIDE_BY_SIDE = """
[pipeline]
max_parallel = 2
[stages.a]
command = "echo a1; touch ao; while [ ! -e bo ]; do sleep 0.02; done; echo a2"
[stages.bee]
command = "while [ ! -e ao ]; do sleep 0.02; done; sleep 0.2; echo b1 >&2; sleep 0.2; touch bo"
[stages.last]
command = "echo done; exit 3"
needs = ["a", "bee"]
"""
LIFECYCLE = ("-- started", "-- passed in", "-- failed in", "-- skipped", "-- cached")
"""What `mlci run` says of a stage from its events, not from its log."""


def output_lines(out: bytes) -> list[bytes]:
    """The labelled lines of `mlci run`'s output, without its lifecycle notes."""
    return [
        line
        for line in out.split(b"\n")
        if line.startswith(b"[")
        and not line.partition(b"] ")[2].lstrip().startswith(tuple(n.encode() for n in LIFECYCLE))
    ]


def test_logs_without_a_stage_prints_the_run_as_mlci_run_printed_it(project: Project) -> None:
    project.write(SIDE_BY_SIDE)
    ran = project.mlci("run")
    assert ran.returncode == 1, ran.stderr
    expected = output_lines(ran.stdout)
    assert [line.split()[-1] for line in expected] == [b"a1", b"b1", b"a2", b"done", b"3"]
    assert expected[-1] == b"[last] -- exit code 3"
    for args in (["logs"], ["logs", "--run", "1"], ["logs", "-f"]):
        result = project.mlci(*args)
        assert result.returncode == 0, result.stderr
        assert result.stdout.split(b"\n")[:-1] == expected, args
        assert result.stderr == b""


def test_the_whole_runs_log_follows_a_running_run(project: Project) -> None:
    hold = "echo before; while [ ! -e go ]; do sleep 0.05; done; echo after"
    project.write(
        f'[stages.held]\ncommand = "{hold}"\n'
        '[stages.next]\ncommand = "echo next"\nneeds = ["held"]\n'
    )
    runner = project.start("run")
    try:
        while not project.printed("held", b"before"):
            assert runner.poll() is None, runner.communicate()
        follower = project.start("logs", "-f")
        (project.path / "go").write_text("")
        out, err = follower.communicate(timeout=60)
        assert follower.returncode == 0, err
        assert out.splitlines() == [b"[held] before", b"[held] after", b"[next] next"]
    finally:
        (project.path / "go").write_text("")
        assert runner.wait(60) == 0


def test_a_stage_s_hostile_output_reaches_a_terminal_made_safe(project: Project) -> None:
    project.write('[stages.loud]\ncommand = "cat hostile"\n')
    (project.path / "hostile").write_bytes(HOSTILE)
    ran = project.mlci("run")
    assert ran.returncode == 0
    piped = project.mlci("logs")
    # Into a pipe, the bytes as `mlci run` printed them.
    assert piped.stdout.split(b"\n")[:-1] == output_lines(ran.stdout)
    assert HOSTILE.split(b"\n")[0] in piped.stdout
    shown = subprocess.run(project.in_terminal("logs"), capture_output=True, timeout=60, check=True)
    assert b"\x1b]" not in shown.stdout and b"\x1b[8m" not in shown.stdout
    assert b"[loud]" in shown.stdout


def _line_by_line(project: Project, names: list[str]) -> bytes:
    """The whole run's log as `mlci logs` printed it line by line before it printed
    stretches of lines: each `RunLog` line after its label, a note as ``-- …``."""
    log = RunLog([(name, project.state_dir / "runs" / "1" / f"{name}.log") for name in names])
    log.update()
    labels = {
        name: (label.text + label.pad).encode() for name, label in stage_labels(names).items()
    }
    printed = b""
    for number in range(len(log)):
        record, stage = log.line(number), log.stage_at(number)
        assert record is not None and stage is not None
        content = record.content
        if record.stream is Stream.MESSAGE:
            content = terminal_line(decode(b"-- " + content), keep_color=False).encode()
        printed += labels[stage] + content + b"\n"
    log.close()
    return printed


_PIECE = st.sampled_from([b"a", b"\n", b"\r", b"", b"\x1b[31m", b"\xff", b"-- x", b"[b] y", b"  "])
_OUTPUT = st.lists(_PIECE, max_size=12).map(b"".join)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(outputs=st.lists(st.tuples(_OUTPUT, _OUTPUT), min_size=1, max_size=3), fail=st.booleans())
def test_the_whole_run_log_in_stretches_is_the_run_log_line_by_line(
    project: Project, outputs: list[tuple[bytes, bytes]], fail: bool
) -> None:
    """Printed a stretch of lines at a time (a C-level replace puts the labels), the
    whole run's log is what printing `RunLog` line by line gives: stdout and stderr,
    lines without an end, empty ones, a failure's note after them."""
    shutil.rmtree(project.state_dir, ignore_errors=True)
    names = [f"s{n}" for n in range(len(outputs))]
    config = "[pipeline]\nmax_parallel = 2\n"
    for name, (out, err) in zip(names, outputs, strict=True):
        command = [PYTHON, str(PROGRAMS / "raw.py"), out.hex()]
        shell = f"{shlex.join(command)}; {shlex.join(command[:2])} {err.hex()} >&2"
        config += f"[stages.{name}]\ncommand = {json.dumps(shell)}\n"
        if fail and name == names[-1]:
            config = config.replace(json.dumps(shell), json.dumps(shell + "; exit 3"))
    project.write(config)
    project.mlci("run")
    result = project.mlci("logs")
    assert result.returncode == 0, result.stderr
    assert result.stdout == _line_by_line(project, names)
