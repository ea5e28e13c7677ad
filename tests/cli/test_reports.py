"""Metric series, `mlci metrics`, `mlci diff`, `mlci report`, and what CI systems
read: GitHub's job summary and annotations, JUnit XML, GitLab's sections. Real
runs of `mlci`, a real store; JUnit checked by junitparser and an XML schema."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import socket
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import junitparser
import pytest
import xmlschema

from mlci_tui.commands.report_file import ReportFile
from mlci_tui.config import load_config
from mlci_tui.store import Store
from tests.helpers import (
    PYTHON,
    ROOT,
    Project,
    check_github_markup,
    github_commands,
    gitlab_sections,
    mlci_env,
    notes_of,
    run,
    setup,
)

JUNIT_SCHEMA = Path(__file__).parents[1] / "junit.xsd"

SERIES = """
[stages.train]
command = '''
echo "::metric step=5 loss=0.5"
echo "::metric step=10 loss=0.25 acc=0.8"
echo "::metric lr=0.1"
echo "::metric lr=0.05"
echo "::metric lr=0.01"
echo "::metric step=-1 loss=9"
echo '{"final": 1.5}' > "$MLCI_METRICS_FILE"
'''
"""

# A model is its learning rate; accuracy is 1 - lr, so params and metrics move together.
MODEL = """
[pipeline]
name = "tiny"

[params]
train.lr = 0.1

[stages.train]
command = '''
mkdir -p build && echo "$MLCI_PARAM_TRAIN_LR" > build/model.txt
for step in 1 2 3; do echo "::metric step=$step loss=0.$((4 - step))"; done
'''
params = ["train.lr"]
artifact = "build/model.txt"

[stages.evaluate]
command = "{python} evaluate.py"
needs = ["train"]
params = ["train.lr"]
gates = ["accuracy >= 0.85"]

[deploy]
command = "cp $MLCI_MODEL_PATH served.txt"
"""


def metrics_json(project: Project, *args: str) -> dict:
    result = project.mlci("metrics", "--json", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_every_metric_line_is_a_point_with_an_explicit_or_counted_step(project: Project) -> None:
    project.write(SERIES)
    assert project.mlci("run").returncode == 0
    document = metrics_json(project)
    assert list(document) == ["run_id", "stages"]
    series = document["stages"]["train"]
    # The README says so.
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert '`metrics --json` each series under its stage (`"stages": {"evaluate":' in readme
    assert [(p["step"], p["value"]) for p in series["loss"]] == [(5, 0.5), (10, 0.25)]
    assert [(p["step"], p["value"]) for p in series["acc"]] == [(10, 0.8)]
    # Without a step, a point's step is the count of that metric's points before it.
    assert [(p["step"], p["value"]) for p in series["lr"]] == [(0, 0.1), (1, 0.05), (2, 0.01)]
    assert [(p["step"], p["value"]) for p in series["final"]] == [(0, 1.5)]
    assert all(p["time"] > 0 for points in series.values() for p in points)
    # status keeps the last values; a step below 0 is a malformed line, noted.
    assert project.stage("train")["metrics"] == {"loss": 0.25, "acc": 0.8, "lr": 0.01, "final": 1.5}
    log = notes_of(project.state_dir / "runs" / "1" / "train.log")
    assert "ignored a malformed metric line: 'step=-1 loss=9'" in log


RETRIED = """
[stages.train]
retries = 1
command = '''
if [ -e tried ]; then echo "::metric step=1 loss=0.2"; exit 0; fi
touch tried
echo "::metric step=1 loss=0.9 extra=1"
echo "::metric step=2 loss=0.8"
exit 1
'''
"""


def test_a_retried_stage_keeps_the_series_and_values_of_its_last_attempt(
    project: Project,
) -> None:
    project.write(RETRIED)
    assert project.mlci("run").returncode == 0
    series = metrics_json(project)["stages"]["train"]
    points = {name: [(p["step"], p["value"]) for p in values] for name, values in series.items()}
    assert points == {"loss": [(1, 0.2)]}
    assert project.stage("train")["metrics"] == {"loss": 0.2}


def test_metrics_as_csv_and_as_a_table(project: Project) -> None:
    project.write(SERIES)
    assert project.mlci("run").returncode == 0
    result = project.mlci("metrics", "--csv", "--stage", "train")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout.decode())))
    assert [(r["metric"], r["step"], float(r["value"])) for r in rows] == [
        ("loss", "5", 0.5),
        ("loss", "10", 0.25),
        ("acc", "10", 0.8),
        ("lr", "0", 0.1),
        ("lr", "1", 0.05),
        ("lr", "2", 0.01),
        ("final", "0", 1.5),
    ]
    assert {r["run"] for r in rows} == {"1"} and {r["stage"] for r in rows} == {"train"}
    table = project.mlci("metrics").stdout.decode().splitlines()
    assert table[0].split() == [
        "STAGE",
        "METRIC",
        "POINTS",
        "STEPS",
        "LAST",
        "MIN",
        "MAX",
        "SERIES",
    ]
    assert table[3].split()[:7] == ["train", "lr", "3", "0–2", "0.01", "0.01", "0.1"]
    bad = project.mlci("metrics", "--stage", "nope")
    assert bad.returncode == 2
    assert bad.stderr.decode() == "mlci: run 1 has no stage 'nope' (stages: train)\n"
    near = project.mlci("metrics", "--stage", "trian")
    assert near.returncode == 2
    assert near.stderr.decode() == "mlci: run 1 has no stage 'trian'; did you mean \"train\"?\n"


def test_a_number_param_equal_to_a_secret_and_a_carriage_return_stay_hidden_and_shown(
    project: Project,
) -> None:
    project.write(
        '[pipeline]\nsecrets = ["TOKEN"]\n[params]\np.num = 987654\np.note = "a\\rb"\n'
        '[stages.a]\ncommand = "echo \\"$MLCI_PARAM_P_NUM\\""\nparams = ["p"]\n'
    )
    env = mlci_env(TOKEN="987654")
    assert project.mlci("run", env=env).returncode == 0
    assert project.mlci("run", "--set", "p.num=1", "--set", "p.note=c", env=env).returncode == 0
    text = project.mlci("diff", "1", "2", env=env).stdout.decode()
    assert "987654" not in text
    rows = {line.split()[0]: line.split()[1:] for line in text.splitlines()[3:6] if line}
    assert rows["p.num"] == ["***", "→", "1"]
    assert rows["p.note"] == ["a␍b", "→", "c"]  # the whole value, its \r shown
    md = project.mlci("diff", "1", "2", "--md", env=env).stdout.decode()
    assert "987654" not in md and "| p.note | a␍b | c |" in md
    assert not any(
        b"987654" in path.read_bytes() for path in project.state_dir.rglob("*") if path.is_file()
    )
    # Params are records: a secret among them is masked for the stage too; a secret
    # reaches a stage through its environment.
    assert project.log("a", 1) == b"***\n"


@pytest.mark.slow
def test_a_stage_printing_a_quarter_million_points_costs_the_store_a_bounded_series(
    project: Project,
) -> None:
    project.write(
        "[stages.flood]\n"
        f"command = '''{PYTHON} -c \"import sys; sys.stdout.write(''.join("
        "'::metric step=%d loss=%d\\\\n' % (i, i) for i in range(250000)))\"'''\n"
    )
    assert project.mlci("run", timeout=300).returncode == 0
    points = metrics_json(project)["stages"]["flood"]["loss"]
    assert len(points) == 100_000 + 150_000 // 10
    assert points[99_999]["step"] == 99_999 and points[100_000]["step"] == 100_000
    assert points[-1]["step"] == 249_990
    assert project.stage("flood")["metrics"] == {"loss": 249_999.0}
    log = notes_of(project.state_dir / "runs" / "1" / "flood.log")
    assert "metric loss: 100000 points kept; from here on every 10th is kept" in log


EVALUATE = """
import os
print("::metric accuracy=%g" % (1 - float(os.environ["MLCI_PARAM_TRAIN_LR"])))
"""


def two_models(project: Project) -> None:
    project.write(MODEL)
    (project.path / "evaluate.py").write_text(EVALUATE)
    assert project.mlci("run").returncode == 0
    assert project.mlci("run", "--set", "train.lr=0.12").returncode == 0


def test_diff_of_two_runs_as_text_json_and_markdown(project: Project) -> None:
    two_models(project)
    text = project.mlci("diff", "1", "2")
    assert text.returncode == 0, text.stderr
    lines = text.stdout.decode().splitlines()
    # Old → new in the title, in that order in every table, and Δ = new − old.
    assert lines[0] == "v1 (run 1) → v2 (run 2)"
    assert lines[lines.index("") + 1].split() == ["PARAM", "V1", "(RUN", "1)", "V2", "(RUN", "2)"]
    assert re.fullmatch(r"artifact: sha256 [0-9a-f]{12} → [0-9a-f]{12}", lines[1])
    assert ["train.lr", "0.1", "→", "0.12"] in [line.split() for line in lines]
    accuracy = next(line.split() for line in lines if line.startswith("accuracy"))
    assert accuracy == [
        "accuracy",
        "0.9",
        "0.88",
        "-0.02",
        "-2.22%",
        "pass",
        "(accuracy",
        ">=",
        "0.85)",
    ]
    loss = next(line.split() for line in lines if line.startswith("loss"))
    assert loss[:5] == ["loss", "0.1", "0.1", "+0", "+0.00%"]
    data = json.loads(project.mlci("diff", "1", "2", "--json").stdout)
    assert (data["old"]["run"], data["new"]["run"]) == (1, 2)
    assert data["params"] == [{"name": "train.lr", "old": 0.1, "new": 0.12, "changed": True}]
    row = next(m for m in data["metrics"] if m["name"] == "accuracy")
    assert row["gate"] == "pass" and row["gates"] == ["accuracy >= 0.85"]
    assert row["delta"] == pytest.approx(-0.02) and row["delta_percent"] == pytest.approx(-2.222)
    assert not data["same_artifact"]
    assert [(s["name"], s["old_state"], s["new_state"]) for s in data["stages"]] == [
        ("train", "passed", "passed"),
        ("evaluate", "passed", "passed"),
        ("deploy", "passed", "passed"),
    ]
    md = project.mlci("diff", "1", "2", "--md").stdout.decode()
    assert "### v1 (run 1) → v2 (run 2)" in md
    assert "| metric | v1 (run 1) | v2 (run 2) | Δ | Δ% | gate |" in md
    assert "| train.lr | 0.1 | 0.12 |" in md
    assert "| accuracy | 0.9 | 0.88 | -0.02 | -2.22% | pass (accuracy \\>= 0.85) |" in md


def test_a_diff_keeps_evaluates_and_the_monitors_accuracy_apart(project: Project) -> None:
    """Evaluate reports accuracy 0.9 for every model; the monitor measures the second
    one at 0.645 live, and it is rolled back. Both accuracies are in the diff."""
    setup(project)
    assert run(project, 1) == 0
    (project.path / "quality").write_text("0.645")
    run(project, 2)
    assert project.status()["state"] == "rolled_back"
    lines = project.mlci("diff", "1", "2").stdout.decode().splitlines()
    rows = {line.split()[0]: line.split()[1:3] for line in lines if "accuracy" in line}
    assert rows == {"evaluate.accuracy": ["0.9", "0.9"], "monitor.accuracy": ["0.95", "0.645"]}
    # The monitor's check decided the rollback: its GATE says what broke it.
    (monitor_line,) = [line for line in lines if line.startswith("monitor.accuracy")]
    assert monitor_line.endswith("fail (accuracy 0.645 < 0.85)"), monitor_line
    assert any(line.split()[:3] == ["f1", "0.8", "0.8"] for line in lines)  # one stage: bare
    data = json.loads(project.mlci("diff", "1", "2", "--json").stdout)
    shown = {(m["stage"], m["name"]): (m["old"], m["new"]) for m in data["metrics"]}
    assert shown == {
        ("evaluate", "accuracy"): (0.9, 0.9),
        ("evaluate", "f1"): (0.8, 0.8),
        ("monitor", "accuracy"): (0.95, 0.645),
    }
    # The versions, as the registry kept them: each metric with its stage.
    versions = json.loads(project.mlci("versions", "--json").stdout)
    assert versions[0]["metrics"] == [
        {"stage": "evaluate", "name": "accuracy", "value": 0.9},
        {"stage": "evaluate", "name": "f1", "value": 0.8},
    ]
    assert versions[0]["live_metrics"] == [{"stage": "monitor", "name": "accuracy", "value": 0.645}]
    report = project.mlci("report", "--run", "2").stdout.decode()
    assert "monitor.accuracy" in report and "evaluate.accuracy" in report
    assert "fail (accuracy 0.645 < 0.85)" in report


def test_version_columns_are_the_gated_metrics_and_a_gate_may_check_a_stage_it_needs(
    project: Project,
) -> None:
    setup(project)
    config = project.config_path.read_text()
    config = config.replace('needs = ["train"]\n', 'needs = ["train"]\ngates = ["f1 >= 0.5"]\n', 1)
    config = config.replace(
        'checks = ["accuracy >= 0.85"]', 'checks = ["accuracy >= 0.85", "latency_ms <= 50"]'
    )
    config = config.replace("accuracy=$(cat quality", "latency_ms=3 accuracy=$(cat quality")
    project.config_path.write_text(config)
    assert run(project, 1) == 0
    # No key_metrics: the gated ones; latency_ms is the monitor's alone, and every
    # version's column of it would be empty.
    header = project.mlci("versions").stdout.decode().splitlines()[0].split()
    assert header == ["VERSION", "CREATED", "STATUS", "F1", "LIVE", "RUN", "DESCRIPTION"]
    # Named by stage, and as a gate on a stage it needs.
    config = config.replace(
        "[registry]\n", '[registry]\nkey_metrics = ["f1", "evaluate.accuracy"]\n'
    )
    project.config_path.write_text(config.replace('"f1 >= 0.5"', '"train.loss <= 0.5"'))
    (project.path / "loss").write_text("1.334")
    project.config_path.write_text(
        project.config_path.read_text().replace(
            '> build/model.txt"', '> build/model.txt; echo ::metric loss=$(cat loss)"'
        )
    )
    header = project.mlci("versions").stdout.decode().splitlines()[0].split()
    assert header[3:5] == ["F1", "ACCURACY"]
    assert run(project, 2) == 1
    evaluate = project.stage("evaluate")
    assert evaluate["message"] == "train.loss 1.334 > 0.5"
    assert evaluate["failed_gate"] == "train.loss <= 0.5"


def test_diff_of_versions_and_its_defaults(project: Project) -> None:
    two_models(project)
    by_version = json.loads(project.mlci("diff", "v1", "v2", "--json").stdout)
    by_run = json.loads(project.mlci("diff", "1", "2", "--json").stdout)
    assert by_version == by_run  # a version is shown with the run that built it
    # No arguments: the latest run against the live version; here the latest run made
    # it live, so against the version live before it.
    assert json.loads(project.mlci("diff", "--json").stdout) == by_run
    # One: it against the live version, on the NEW side, as the help and README say.
    one = json.loads(project.mlci("diff", "v1", "--json").stdout)
    assert (one["old"]["version"], one["new"]["version"]) == ("v2", "v1")
    assert project.mlci("diff", "v1").stdout.decode().startswith("v2 (run 2) → v1 (run 1)\n")
    said = " ".join(project.mlci("diff", "--help").stdout.decode().split())
    assert "With one argument it is NEW, and the live version is OLD" in said
    row = next(
        line for line in (ROOT / "README.md").read_text().splitlines() if "| `mlci diff" in line
    )
    assert "With one argument it is the NEW side and the live version the OLD one" in row
    assert "`OLD` is compared with the live" not in row
    # A run that failed its gate: the gate column says so.
    assert project.mlci("run", "--set", "train.lr=0.3").returncode == 1
    failed = json.loads(project.mlci("diff", "--json").stdout)
    assert next(m for m in failed["metrics"] if m["name"] == "accuracy")["gate"] == "fail"
    assert failed["new"]["version"] is None and failed["new"]["state"] == "failed"
    for args, message, code in [
        (["v9"], "mlci: no version v9", 1),
        (["7", "1"], "mlci: no run 7", 1),
        (["x1"], "mlci: expected a run (12) or a version (v3), got 'x1'", 2),
    ]:
        result = project.mlci("diff", *args)
        assert result.returncode == code, args
        assert result.stderr.decode().strip() == message


def test_diff_without_a_live_version_says_what_to_name(project: Project) -> None:
    project.write(SERIES)
    assert project.mlci("run").returncode == 0
    result = project.mlci("diff")
    assert result.returncode == 1
    assert result.stderr.decode().startswith("mlci: no version is live to compare with")
    assert project.mlci("diff", "1", "1").returncode == 0


def test_report_markdown_has_the_stages_the_metrics_against_live_and_the_version(
    project: Project,
) -> None:
    two_models(project)
    assert project.mlci("run", "--set", "train.lr=0.3").returncode == 1
    md = project.mlci("report", "--md").stdout.decode()
    assert md.startswith("## tiny · run 3 · failed\n")
    assert "| evaluate | failed |" in md
    assert "| evaluate | failed | " in md and " | accuracy 0.7 \\< 0.85 |" in md
    assert "### v2 (run 2) → run 3" in md
    assert "| accuracy | 0.88 | 0.7 | -0.18 | -20.45% | fail (accuracy 0.7 \\< 0.85) |" in md
    assert re.search(r"\| train · loss \| 3 \| 0\.1 \| [▁-█]{3} \|", md)
    passed = project.mlci("report", "--md", "--run", "2").stdout.decode()
    assert re.search(r"- registered v2 \(sha256 [0-9a-f]{12}, now live\)", passed)
    assert "- deploy v1 → v2: succeeded (run 2)" in passed
    data = json.loads(project.mlci("report", "--json", "--run", "2").stdout)
    assert data["version"]["version"] == "v2" and data["run"]["run_id"] == 2
    assert data["deployments"][0]["to"] == "v2"
    assert {(s["stage"], s["metric"], s["points"]) for s in data["series"]} == {
        ("train", "loss", 3),
        ("evaluate", "accuracy", 1),
    }
    text = project.mlci("report", "--run", "2").stdout.decode()
    assert "registered v2" in text and "v1 (run 1) → v2 (run 2)" in text
    first = project.mlci("report", "--md", "--run", "1").stdout.decode()
    assert "### " not in first  # nothing was live before run 1: no diff


def test_a_report_larger_than_the_cap_is_cut_at_a_line_with_a_note(project: Project) -> None:
    from mlci_tui.commands.reports import REPORT_LIMIT, report_markdown

    stages = "".join(f'[stages.s{i:03d}]\ncommand = "true"\n' for i in range(120))
    project.write(stages)
    assert project.mlci("run").returncode == 0
    config = load_config(project.config_path)
    with Store.open(project.state_dir, create=False) as store:
        run = store.runs.latest()
        assert run is not None
        whole = report_markdown(store, config, run)
        cut = report_markdown(store, config, run, limit=2048)
    assert len(whole.encode()) < REPORT_LIMIT and "Cut to fit" not in whole
    assert len(cut.encode()) <= 2048
    body, note = cut.split("\n\n*Cut to fit 2 KiB")
    assert note == "; the whole report: `mlci report --run 1`.*\n"
    assert whole.startswith(body + "\n")  # cut between lines, never inside one


def test_under_github_actions_the_report_goes_to_the_job_summary(project: Project) -> None:
    two_models(project)
    summary = project.path / "summary.md"
    env = mlci_env(GITHUB_ACTIONS="true", GITHUB_STEP_SUMMARY=str(summary))
    assert project.mlci("run", "--set", "train.lr=0.3", env=env).returncode == 1
    assert project.mlci("run", env=env).returncode == 0
    text = summary.read_text()
    assert text.count("## tiny · run ") == 2  # appended, as GitHub expects
    assert "## tiny · run 3 · failed" in text and "## tiny · run 4 · passed" in text


def test_a_summary_that_cannot_be_written_at_the_end_fails_the_command_not_the_run(
    project: Project,
) -> None:
    project.write('[stages.a]\ncommand = "rm -r out"\n')
    (project.path / "out").mkdir()
    summary = project.path / "out" / "summary.md"
    env = mlci_env(GITHUB_ACTIONS="true", GITHUB_STEP_SUMMARY=str(summary))
    result = project.mlci("run", env=env)
    assert result.returncode == 1
    assert result.stderr.decode() == (
        f"mlci: cannot write GITHUB_STEP_SUMMARY={summary}: No such file or directory\n"
    )
    assert project.status()["state"] == "passed"  # the run itself is recorded as it was


def test_github_annotates_at_most_ten_failures(project: Project) -> None:
    project.write("".join(f'[stages.s{i:02d}]\ncommand = "exit 1"\n' for i in range(12)))
    result = project.mlci("run", env=mlci_env(GITHUB_ACTIONS="true"))
    assert result.returncode == 1
    errors = [line for line in result.stdout.decode().splitlines() if line.startswith("::error")]
    assert len(errors) == 10
    assert errors[0] == "::error title=stage s00 failed::exit code 1"


JUNIT = """
[pipeline]
name = "junit-demo"
secrets = ["TOKEN"]

[stages.lint]
command = "echo lint ok"

[stages.prepare]
command = "mkdir -p build && cp data.txt build/data.txt"
deps = ["data.txt"]
outs = ["build/data.txt"]

[stages.evaluate]
command = '''
for i in $(seq 1 80); do echo "line $i"; done
printf 'token %s \\033[31mred\\033[0m bell\\a\\n' "$TOKEN"
printf 'nonchar \\357\\277\\276 end\\n'
echo "::metric accuracy=0.5"
'''
needs = ["prepare"]
gates = ["accuracy >= 0.9"]

[stages.report]
command = "echo never"
needs = ["evaluate"]
"""


def test_junit_has_a_case_per_stage_a_failed_gate_a_skipped_and_a_cached_stage(
    project: Project,
) -> None:
    project.write(JUNIT)
    (project.path / "data.txt").write_text("rows\n")
    env = mlci_env(TOKEN="s3cr3t-value")
    assert project.mlci("run", env=env).returncode == 1
    path = project.path / "reports" / "junit.xml"  # its directory is made
    assert project.mlci("run", "--junit", str(path), env=env).returncode == 1
    xmlschema.XMLSchema(JUNIT_SCHEMA).validate(str(path))
    raw = path.read_bytes()
    assert b"s3cr3t" not in raw and b"\x1b" not in raw and b"\x07" not in raw
    xml = junitparser.JUnitXml.fromfile(str(path))
    suite = next(iter(xml))
    assert (suite.name, suite.tests, suite.failures, suite.skipped, suite.errors) == (
        "junit-demo",
        4,
        1,
        1,
        0,
    )
    cases = {case.name: case for case in suite}
    assert list(cases) == ["lint", "prepare", "evaluate", "report"]
    assert all(case.classname == "junit-demo" for case in cases.values())
    assert cases["lint"].is_passed and cases["prepare"].is_passed
    [failure] = cases["evaluate"].result
    assert isinstance(failure, junitparser.Failure)
    assert failure.message == "accuracy 0.5 < 0.9"
    assert failure.type == "gate"
    lines = failure.text.splitlines()
    assert len(lines) == 50 and lines[-1] == "::metric accuracy=0.5"
    assert lines[-3] == "token *** red bell␇"  # masked, escapes dropped, controls shown
    assert lines[-2] == "nonchar \ufffd end"  # U+FFFE, which XML cannot hold
    assert lines[0] == "line 34"
    [skipped] = cases["report"].result
    assert isinstance(skipped, junitparser.Skipped)
    properties = {p.name: p.value for p in suite.properties()}
    assert properties["mlci.cached.prepare"] == "run 1, stage prepare"
    assert "mlci.cached.lint" not in properties
    assert cases["prepare"].system_out == "cached: from run 1, stage prepare"


# A stage that leaves a mark of each run: whether a refused command ran anything.
MARKED = '[pipeline]\ncache_dir = "../shared-cache"\n[stages.a]\ncommand = "echo ran >> ran.txt"\n'


def refused(project: Project, path: str) -> list[tuple[str, str]]:
    """What `mlci run` said, as ``--junit PATH`` and as ``$GITHUB_STEP_SUMMARY``, for
    each of which it must refuse, before anything runs, in one line and exit 2."""
    said = []
    github = mlci_env(GITHUB_ACTIONS="true", GITHUB_STEP_SUMMARY=path)
    for args, environ, what in (
        (["--junit", path], mlci_env(), f"--junit {path}"),
        ([], github, f"GITHUB_STEP_SUMMARY={path}"),
    ):
        result = project.mlci("run", *args, env=environ)
        lines = result.stderr.decode().splitlines()
        assert result.returncode == 2 and len(lines) == 1, (path, result.stderr)
        prefix = f"mlci: {what}: "
        assert lines[0].startswith(prefix), lines
        said.append((what, lines[0].removeprefix(prefix)))
    return said


def test_a_report_path_in_the_store_the_cache_or_the_config_is_refused_before_anything_runs(
    project: Project,
) -> None:
    project.write(MARKED)
    assert project.mlci("run").returncode == 0
    db = project.state_dir / "mlci.db"
    kept = {path: path.read_bytes() for path in (db, project.config_path)}
    cache = (project.path / "../shared-cache").resolve()
    cache.mkdir(exist_ok=True)
    (project.path / "store").symlink_to(".mlci")
    (project.path / "db-link").symlink_to(".mlci/mlci.db")
    os.link(db, project.path / "db-hard")
    os.link(project.config_path, project.path / "config-hard")
    store = "in the state directory .mlci (the run store)"
    for path, why in [
        (".mlci/mlci.db", f"is {store}"),
        (".mlci/mlci.db-wal", f"is {store}"),
        (".mlci/report.xml", f"is {store}"),
        (".mlci", f"is {store}"),
        ("build/../.mlci/mlci.db", f"is {store}"),
        (str(db), f"is {store}"),
        ("store/mlci.db", f"leads to .mlci/mlci.db, {store}"),
        ("db-link", f"leads to .mlci/mlci.db, {store}"),
        ("db-hard", f"is a hard link to .mlci/mlci.db, {store}"),
        ("../shared-cache/x.xml", "is in the cache ../shared-cache"),
        ("config.toml", "is the pipeline's config"),
        ("./config.toml", "is the pipeline's config"),
        ("config-hard", "is the pipeline's config (a hard link to it)"),
    ]:
        said = refused(project, path)
        assert [why for _, why in said] == [why, why], path
    assert (project.path / "ran.txt").read_text() == "ran\n"  # only the first run ran
    assert all(path.read_bytes() == data for path, data in kept.items())
    assert project.status()["state"] == "passed"


def test_a_report_that_could_not_be_written_is_refused_before_anything_runs(
    project: Project, tmp_path: Path
) -> None:
    project.write(MARKED)
    (project.path / "file").write_text("")
    (project.path / "dangling.xml").symlink_to(project.path / "nowhere" / "j.xml")
    os.mkfifo(project.path / "pipe")
    with socket.socket(socket.AF_UNIX) as listening:
        listening.bind(str(project.path / "sock"))
        for path, why in [
            ("file/j.xml", f"{project.path / 'file'} is not a directory"),
            (".", "is a directory"),
            (
                "dangling.xml",
                f"links to {project.path / 'nowhere' / 'j.xml'}, whose directory does not exist",
            ),
            ("pipe", "is a pipe that nothing reads"),
            ("sock", "is a socket, not a file"),
            ("/dev/full", "cannot write: No space left on device"),
        ]:
            assert [why for _, why in refused(project, path)] == [why, why], path
    result = project.mlci("run", "--junit", "")
    assert (result.returncode, result.stderr) == (2, b"mlci: --junit: expected a file name\n")
    both = mlci_env(GITHUB_ACTIONS="true", GITHUB_STEP_SUMMARY=str(project.path / "r.xml"))
    result = project.mlci("run", "--junit", "./r.xml", env=both)
    assert (result.returncode, result.stderr.decode()) == (
        2,
        f"mlci: GITHUB_STEP_SUMMARY={project.path / 'r.xml'}: is the --junit file too;"
        " each report needs its own\n",
    )
    # The job summary is GitHub's file, made by GitHub: its directory is never made.
    missing = project.path / "nowhere" / "summary.md"
    result = project.mlci(
        "run", env=mlci_env(GITHUB_ACTIONS="true", GITHUB_STEP_SUMMARY=str(missing))
    )
    assert result.returncode == 2
    assert result.stderr.decode() == (
        f"mlci: GITHUB_STEP_SUMMARY={missing}: its directory {missing.parent} does not exist\n"
    )
    with read_only(tmp_path / "mount") as mount:
        why = "cannot write: Read-only file system" if os.geteuid() == 0 else "cannot write"
        for path in (mount / "report.xml", mount / "new.xml"):
            for _, said in refused(project, str(path)):
                assert said.startswith(why if path.exists() else f"cannot write in {mount}"), said
    assert not (project.path / "nowhere").exists()
    assert not project.state_dir.exists() and not (project.path / "ran.txt").exists()


@contextlib.contextmanager
def read_only(mount: Path) -> Iterator[Path]:
    """A directory holding ``report.xml``, which cannot be written: on a file system
    mounted read-only (as root, whom no permission stops), or without write access."""
    mount.mkdir()
    root = os.geteuid() == 0
    if root:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], check=True)
    (mount / "report.xml").write_text("")
    if root:
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
    else:
        subprocess.run(["chmod", "-R", "a-w", str(mount)], check=True)
    try:
        yield mount
    finally:
        if root:
            subprocess.run(["umount", "-l", str(mount)], check=False)
        else:
            subprocess.run(["chmod", "-R", "u+w", str(mount)], check=False)


def test_junit_through_a_link_or_to_a_device_or_a_pipe_replaces_none_and_never_hangs(
    project: Project,
) -> None:
    project.write('[pipeline]\nname = "junit-demo"\n[stages.a]\ncommand = "true"\n')
    (project.path / "out").mkdir()
    link = project.path / "junit.xml"
    link.symlink_to(project.path / "out" / "real.xml")
    assert project.mlci("run", "--junit", str(link)).returncode == 0
    assert link.is_symlink() and b"<testsuites" in (project.path / "out" / "real.xml").read_bytes()
    assert project.mlci("run", "--junit", "/dev/null").returncode == 0
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)  # still the device
    fifo = project.path / "pipe"
    os.mkfifo(fifo)
    for args, env in (
        (["--junit", str(fifo)], mlci_env()),
        ([], mlci_env(GITHUB_ACTIONS="true", GITHUB_STEP_SUMMARY=str(fifo))),
    ):
        reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE)
        assert project.mlci("run", *args, env=env).returncode == 0
        received = reader.communicate(timeout=30)[0].decode()
        assert received.startswith("<?xml" if args else "## junit-demo")
        assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_a_pipe_whose_reader_stops_reading_is_given_up_on_not_waited_for() -> None:
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    report = ReportFile(Path("pipe"), "--junit pipe", append=False, fd=write_end)
    try:
        with pytest.raises(OSError, match=r"nothing read it for 0\.2s"):
            report.write(b"x" * (4 << 20), timeout=0.2)  # more than a pipe holds
        with pytest.raises(OSError):
            os.fstat(write_end)  # closed, so the reader sees the end
    finally:
        os.close(read_end)


def test_gitlab_sections_are_printed_when_each_stage_ends_and_collapsed_when_it_passed(
    project: Project,
) -> None:
    project.write(
        '[stages.good]\ncommand = "echo fine"\n'
        '[stages.bad]\ncommand = "echo broken; exit 3"\nneeds = ["good"]\n'
        '[stages.after]\ncommand = "true"\nneeds = ["bad"]\n'
    )
    result = project.mlci("run", env=mlci_env(GITLAB_CI="true"))
    assert result.returncode == 1
    out = result.stdout.decode()
    good = re.search(
        r"\x1b\[0Ksection_start:(\d+):mlci_good\[collapsed=true\]\r\x1b\[0Kgood: passed in .*\n"
        r"fine\n\x1b\[0Ksection_end:(\d+):mlci_good\r\x1b\[0K\n",
        out,
    )
    assert good is not None and int(good[1]) <= int(good[2])
    bad = re.search(
        r"\x1b\[0Ksection_start:\d+:mlci_bad\r\x1b\[0Kbad: failed in .*: exit code 3\n"
        # The log replayed, with mlci's note of why it failed.
        r"broken\n-- exit code 3\n\x1b\[0Ksection_end:\d+:mlci_bad\r\x1b\[0K\n",
        out,
    )
    assert bad is not None
    assert "-- after: skipped" in out and "section_start:" not in out.split("-- after")[1]
    assert out.index("-- good: started") < good.start()


# A stage that tries every way to speak to the CI system, ending inside a marker.
HOSTILE_CI = r"""
[stages.evil]
command = '''
printf '::endgroup::\n::error title=stage evil failed::forged\n  ::stop-commands::x\n::x::\n'
printf 'a\r::warning::after a carriage return\nb ##[error]anywhere in a line\n'
printf '\302\240::add-mask::after a no-break space\n::ERROR::shouted\n'
printf 'section_end:1:mlci_evil\r\033[0K\nx section_start:1:forged\r\033[0K\n'
printf 'section_end:1:mlci_evil\r'
exit 1
'''

[stages.side]
command = "printf '##[endgroup]\\n::error::side\\n'"

[stages.after]
command = "true"
needs = ["evil"]
"""


def test_nothing_a_stage_prints_is_read_as_the_ci_systems_markup(project: Project) -> None:
    project.write(HOSTILE_CI)
    github = project.mlci("run", env=mlci_env(GITHUB_ACTIONS="true"))
    assert github.returncode == 1
    groups = check_github_markup(github.stdout, {"evil": True, "side": False, "after": False})
    assert sorted(groups) == ["evil", "side"]
    assert b"::error title=stage evil failed::exit code 1\n" in github.stdout
    gitlab = project.mlci("run", env=mlci_env(GITLAB_CI="true"))
    assert gitlab.returncode == 1
    edges = gitlab_sections(gitlab.stdout)
    assert sorted(edges) == sorted(
        (e, f"mlci_{s}") for s in ("evil", "side") for e in ("start", "end")
    )
    assert [edge for edge, _ in edges] == ["start", "end"] * 2  # none nested, none cut short
    assert [name for _, name in edges[::2]] == [name for _, name in edges[1::2]]
    # `mlci logs` in a job's log too; elsewhere, the bytes as the stage printed them.
    logs = project.mlci("logs", "evil", env=mlci_env(GITHUB_ACTIONS="true"))
    assert check_github_markup(logs.stdout, {}) == []
    assert [c.name for c in github_commands(logs.stdout)] == ["stop-commands", "resume"]
    logs = project.mlci("logs", "evil", "-f", env=mlci_env(GITLAB_CI="true"))
    assert gitlab_sections(logs.stdout) == []
    assert project.log("evil").count(b"\r\x1b[0K") == 2
    assert logs.stdout.replace(b"\r\x1b[K", b"\r\x1b[0K") == project.log("evil")


DOTTED = """
[stages.a]
command = "echo ::metric b.c=5 c=2"
[stages."a.b"]
command = "echo ::metric c=5"
needs = ["a"]
[stages.z]
command = "mkdir -p out && echo m > out/m && echo ::metric c=1"
needs = ["a.b"]
artifact = "out/m"
gates = ["a.b.c >= 4", "a.c >= 2"]
[registry]
key_metrics = KEYS
"""


@pytest.mark.parametrize(
    ("keys", "header", "values"),
    [
        # Both name a.b's c (a bare name: the first gated): one column.
        ('["a.b.c", "c"]', ["C"], ["5"]),
        ('["c", "a.b.c", "a.c"]', ["A.B.C", "A.C"], ["5", "2"]),
        ('["a.c", "z.c", "a.c", "a.b.c"]', ["A.C", "Z.C", "A.B.C"], ["2", "1", "5"]),
    ],
)
def test_a_metric_named_twice_in_key_metrics_is_one_column(
    project: Project, keys: str, header: list[str], values: list[str]
) -> None:
    project.write(DOTTED.replace("KEYS", keys))
    assert project.mlci("run").returncode == 0
    shown = project.mlci("versions").stdout.decode().splitlines()
    assert shown[0].split()[3:-3] == header
    # v1, the date, the time, registered, then the columns, then LIVE "-" and "run 1".
    assert shown[1].split()[4:-3] == values


def test_a_run_whose_artifact_stage_was_cached_has_that_versions_artifact(
    project: Project,
) -> None:
    project.write(
        """
[params]
prep.note = "a"
[stages.prep]
command = "mkdir -p data && echo rows > data/clean.csv"
outs = ["data/clean.csv"]
params = ["prep.note"]
[stages.train]
command = "mkdir -p build && cat data/clean.csv > build/model.txt"
deps = ["data/clean.csv"]
artifact = "build/model.txt"
"""
    )
    assert project.mlci("run").returncode == 0
    assert project.mlci("run", "--set", "prep.note=b").returncode == 0
    assert {s["name"]: s["state"] for s in project.status()["stages"]} == {
        "prep": "passed",
        "train": "cached",
    }
    # No version of its own: its artifact is v1's file.
    assert [v["run_id"] for v in json.loads(project.mlci("versions", "--json").stdout)] == [1]
    diff = json.loads(project.mlci("diff", "1", "2", "--json").stdout)
    assert diff["same_artifact"] is True
    text = project.mlci("diff", "1", "2").stdout.decode().splitlines()
    sha = json.loads(project.mlci("versions", "--json").stdout)[0]["sha256"]
    assert text[1] == f"artifact: the same (sha256 {sha[:12]})"
    # A third run cached from the second, which ran nothing of train: still v1's.
    assert project.mlci("run", "--set", "prep.note=b").returncode == 0
    assert json.loads(project.mlci("diff", "1", "3", "--json").stdout)["same_artifact"] is True
