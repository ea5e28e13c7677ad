"""Nothing a stage or the monitor prints or writes as metrics crashes mlci: values
past the float64 range, NaN, infinities and deep nesting are ignored with one note
each, and every report handles -1.7e308 and 1.7e308 in one series. Real runs of
`mlci`, a real store; a gate on its exact threshold; `mlci metrics` when nothing
was found."""

from __future__ import annotations

import csv
import io
import json
import math

import junitparser

from mlci_tui.store.logs import read_notes
from tests.helpers import Project, history, run, setup, statuses

HUGE_INT = "1" + "0" * 400

HOSTILE = f"""
[pipeline]
max_parallel = 2

[stages.big]
command = '''echo '{{"x": {HUGE_INT}, "ok": 1}}' > "$MLCI_METRICS_FILE"'''

[stages.neighbour]
command = "while [ ! -e {{done}} ]; do sleep 0.05; done; echo neighbour done"

[stages.deep]
command = "{{python}} deep.py"
needs = ["big"]

[stages.extremes]
command = '''
echo "::metric x=-1.7e308"
echo "::metric x=1.7e308"
echo "::metric x=5e-324 y=1e309"
touch {{done}}
'''
needs = ["deep"]
"""


# 3000 objects deep, each with "f": 2 beside the next.
DEEP = """
import os
depth = 3000
text = '{"f": 2, "a": ' * depth + "1" + "}" * depth
open(os.environ["MLCI_METRICS_FILE"], "w").write(text)
"""


def hostile(project: Project) -> None:
    done = json.dumps(str(project.path / "done"))[1:-1]
    project.write(HOSTILE.replace("{done}", done))
    (project.path / "deep.py").write_text(DEEP)


def test_a_400_digit_int_deep_nesting_and_extremes_pass_their_stages_and_cancel_nothing(
    project: Project,
) -> None:
    hostile(project)
    result = project.mlci("run")
    assert result.returncode == 0, result.stdout + result.stderr
    assert b"internal error" not in result.stderr
    states = {s["name"]: (s["state"], s["metrics"]) for s in project.status()["stages"]}
    assert states == {
        "big": ("passed", {"ok": 1.0}),
        "neighbour": ("passed", {}),
        "deep": ("passed", {"f": 2.0, "a.f": 2.0, "a.a.f": 2.0, "a.a.a.f": 2.0, "a.a.a.a.f": 2.0}),
        "extremes": ("passed", {"x": 5e-324}),
    }
    out = result.stdout.decode()
    assert "[big]       -- ignored metric 'x': beyond the float64 range (±1.8e308)\n" in out
    assert "-- ignored metric 'a.a.a.a.a': nested deeper than 5 levels\n" in out
    assert "-- ignored metric 'y' = '1e309': beyond the float64 range (±1.8e308)\n" in out
    assert out.count("ignored metric") == 3  # one note each


def test_every_report_of_a_series_from_minus_to_plus_1_7e308_works(project: Project) -> None:
    hostile(project)
    assert project.mlci("run").returncode == 0
    table = project.mlci("metrics", "--stage", "extremes")
    assert table.returncode == 0, table.stderr
    rows = table.stdout.decode().splitlines()
    expected = ["extremes", "x", "3", "0–2", "4.941e-324", "-1.7e+308", "1.7e+308", "▁█▅"]
    assert rows[1].split() == expected
    points = json.loads(project.mlci("metrics", "--json").stdout, parse_constant=refuse)
    assert [p["value"] for p in points["stages"]["extremes"]["x"]] == [-1.7e308, 1.7e308, 5e-324]
    listed = csv.DictReader(io.StringIO(project.mlci("metrics", "--csv").stdout.decode()))
    assert [float(r["value"]) for r in listed if r["stage"] == "extremes"] == [
        -1.7e308,
        1.7e308,
        5e-324,
    ]
    markdown = project.mlci("report", "--md")
    assert markdown.returncode == 0, markdown.stderr
    assert "| extremes · x | 3 | 4.941e-324 | ▁█▅ |" in markdown.stdout.decode()
    report = json.loads(project.mlci("report", "--json").stdout, parse_constant=refuse)
    x = next(s for s in report["series"] if s["metric"] == "x")
    assert (x["min"], x["max"], x["last"]) == (-1.7e308, 1.7e308, 5e-324)
    assert project.mlci("report").returncode == 0


def refuse(name: str) -> float:
    raise AssertionError(f"{name} is not JSON")


TWO_RUNS = """
[stages.train]
command = "echo ::metric x=$(cat value) same=1"
"""


def test_a_difference_past_the_float64_range_is_told_and_never_infinite(project: Project) -> None:
    project.write(TWO_RUNS)
    for value in ("-1.7e308", "1.7e308"):
        (project.path / "value").write_text(value)
        assert project.mlci("run", "--force").returncode == 0
    text = project.mlci("diff", "1", "2")
    assert text.returncode == 0, text.stderr
    assert "+3.4e+308" in text.stdout.decode() and "+200.00%" in text.stdout.decode()
    found = json.loads(project.mlci("diff", "1", "2", "--json").stdout, parse_constant=refuse)
    x = next(m for m in found["metrics"] if m["name"] == "x")
    assert (x["old"], x["new"], x["delta"], x["delta_percent"]) == (-1.7e308, 1.7e308, None, 200.0)
    markdown = project.mlci("diff", "1", "2", "--md").stdout.decode()
    assert "| x | -1.7e+308 | 1.7e+308 | +3.4e+308 | +200.00% |  |" in markdown


def test_junit_of_a_run_with_hostile_metrics_and_a_failed_gate_is_valid(project: Project) -> None:
    project.write(
        TWO_RUNS.replace("same=1", "same=1 nan=nan") + 'gates = ["x >= 1.7976931348623157e308"]\n'
    )
    (project.path / "value").write_text("1.7e308")
    junit = project.path / "junit.xml"
    assert project.mlci("run", "--junit", str(junit)).returncode == 1
    case = next(iter(next(iter(junitparser.JUnitXml.fromfile(str(junit))))))
    assert case.result[0].message == "x 1.7e+308 < 1.7976931348623157e+308"


GATES = """
[stages.evaluate]
command = "echo ::metric accuracy=0.9"
gates = [{gates}]
"""


def test_a_metric_exactly_on_its_threshold_passes_the_gates_that_include_it(
    project: Project,
) -> None:
    passing = ["accuracy >= 0.9", "accuracy <= 0.9", "accuracy == 0.9"]
    project.write(GATES.replace("{gates}", ", ".join(json.dumps(g) for g in passing)))
    assert project.mlci("run").returncode == 0
    for gate, shown in (
        ("accuracy > 0.9", "accuracy 0.9 <= 0.9"),
        ("accuracy < 0.9", "accuracy 0.9 >= 0.9"),
        ("accuracy != 0.9", "accuracy 0.9 == 0.9"),
    ):
        project.write(GATES.replace("{gates}", json.dumps(gate)))
        assert project.mlci("run", "--force").returncode == 1
        assert project.stage("evaluate")["message"] == shown


def test_metrics_of_a_run_without_metrics_finds_nothing_and_exits_1(project: Project) -> None:
    project.write('[stages.quiet]\ncommand = "echo no metrics"\n')
    assert project.mlci("run").returncode == 0
    text = project.mlci("metrics")
    assert (text.returncode, text.stdout) == (1, b"")
    assert text.stderr == b"mlci: run 1 reported no metrics\n"
    stage = project.mlci("metrics", "--stage", "quiet")
    assert stage.stderr == b"mlci: stage quiet of run 1 reported no metrics\n"
    as_json = project.mlci("metrics", "--json")
    assert as_json.returncode == 1 and json.loads(as_json.stdout) == {"run_id": 1, "stages": {}}
    as_csv = project.mlci("metrics", "--csv")
    assert as_csv.returncode == 1
    assert as_csv.stdout == b"run,stage,metric,step,value,time\n"
    missing = project.mlci("metrics", "--run", "7")
    assert (missing.returncode, missing.stderr) == (1, b"mlci: no run 7\n")


# The registry's test pipeline, its monitor writing `quality` to the metrics file.
FILE_MONITOR = (
    "command = '''\n"
    'echo "{\\"accuracy\\": $(cat quality 2>/dev/null || echo 0.95)}" > "$MLCI_METRICS_FILE"\n'
    "'''\n"
)


def notes(project: Project, run_id: int, stage: str) -> str:
    """mlci's own notes in a stage's log, one a line."""
    path = project.state_dir / "runs" / str(run_id) / f"{stage}.log"
    return "".join(note.text + "\n" for note in read_notes(path))


def monitor_writing_a_file(project: Project) -> None:
    setup(project)
    text = project.config_path.read_text()
    start = text.index("[monitor]\ncommand = ") + len("[monitor]\n")
    end = text.index("\n", start) + 1
    project.write(text[:start] + FILE_MONITOR + text[end:])


def test_a_monitor_writing_a_400_digit_int_fails_its_samples_and_production_rolls_back(
    project: Project,
) -> None:
    monitor_writing_a_file(project)
    assert run(project, 1) == 0  # v1, analysed healthy
    (project.path / "quality").write_text(HUGE_INT)
    assert run(project, 2) == 1  # v2 deployed, its analysis fails, v1 is back
    assert statuses(project) == {"v1": "live", "v2": "rolled_back"}
    assert project.status()["state"] == "rolled_back"
    assert [d["kind"] for d in history(project)] == ["auto_rollback", "deploy", "deploy"]
    log = notes(project, 2, "monitor")
    assert log.count("ignored metric 'accuracy': beyond the float64 range (±1.8e308)") == 2
    assert "failed: accuracy was not reported (needed by accuracy >= 0.85)" in log
    once = project.mlci("monitor", "--once")
    assert once.returncode == 1
    said = once.stdout.decode()
    assert "ignored metric 'accuracy': beyond the float64 range (±1.8e308)" in said
    assert "sample of v1: failed: accuracy was not reported" in said, said
    assert once.stderr == b""
    (project.path / "quality").write_text(repr(math.nextafter(0.85, 1)))
    assert project.mlci("monitor", "--once").returncode == 0


def test_monitor_once_with_nan_and_a_deep_file_says_what_it_ignored(project: Project) -> None:
    monitor_writing_a_file(project)
    assert run(project, 1) == 0
    (project.path / "quality").write_text("NaN, " + '"d": ' + "[" * 5000 + "]" * 5000)
    once = project.mlci("monitor", "--once")
    said = once.stdout.decode()
    assert once.returncode == 1, said + once.stderr.decode()
    assert "ignored metric 'accuracy': not a finite number" in said, said
    assert "ignored metric 'd': expected a number, got an array" in said


def test_a_metrics_file_made_a_fifo_or_a_link_to_a_device_never_holds_the_run(
    project: Project,
) -> None:
    project.write(
        "[stages.fifo]\ncommand = 'mkfifo \"$MLCI_METRICS_FILE\"'\n"
        "[stages.zero]\ncommand = 'ln -s /dev/zero \"$MLCI_METRICS_FILE\"'\n"
    )
    result = project.mlci("run", timeout=60)  # the old runner waited on the FIFO forever
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout.decode()
    assert "[fifo] -- the metrics file is a FIFO, not a file: removed unread\n" in out
    assert "the metrics file is a device or socket, not a file: removed unread\n" in out
    assert not list((project.state_dir / "runs" / "1").glob("*.metrics.json"))
