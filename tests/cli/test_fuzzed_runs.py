"""The output fuzzer, through real `mlci` processes: a stage prints what Hypothesis
chose (any bytes, metric lines with any names and values) and writes it as its
metrics file; under GitHub Actions, with a JUnit file and a job summary. Each run
ends passed or failed (its gates), never interrupted; `mlci metrics` holds
exactly the oracle's values; `diff`, `report` and the JUnit file hold up. Fewer
examples than in-process: each is a few `mlci` processes."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any

import junitparser
import xmlschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlci_tui.states import Stream
from tests.helpers import Project, mlci_env
from tests.metric_fuzz import Printed, dump, examples, printed

JUNIT_SCHEMA = xmlschema.XMLSchema(Path(__file__).parents[1] / "junit.xsd")

CONFIG = """
[stages.train]
command = '''
cat out.bin
cat err.bin >&2
cp metrics.json "$MLCI_METRICS_FILE"
'''
gates = ["accuracy >= 0.9"]
"""


def strict(text: bytes) -> Any:
    """JSON as any strict reader takes it: no NaN, no Infinity, every number finite."""

    def refuse(name: str) -> float:
        raise AssertionError(f"{name} is not JSON")

    def finite(text: str) -> float:
        value = float(text)
        assert math.isfinite(value), text
        return value

    return json.loads(text, parse_constant=refuse, parse_float=finite)


def on_stdout(run: Printed) -> Printed:
    """Metric lines on stdout only: mlci reads the two pipes at once, so the order of
    lines across them, which numbers a series' unstepped points, is not the oracle's."""
    noise = [line for line in run.streams[Stream.STDERR] if isinstance(line, bytes)]
    run.streams[Stream.STDERR] = noise
    return run


@settings(
    max_examples=examples(8),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.tuples(printed.map(on_stdout), printed.map(on_stdout)))
def test_what_two_real_runs_print_and_write_never_breaks_a_run_or_a_report(
    runs: tuple[Printed, Printed],
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        project = Project(Path(folder))
        project.write(CONFIG)
        summary = project.path / "summary.md"
        env = mlci_env(GITHUB_ACTIONS="true", GITHUB_STEP_SUMMARY=str(summary))
        for number, run in enumerate(runs, start=1):
            (project.path / "out.bin").write_bytes(run.bytes_of(Stream.STDOUT))
            (project.path / "err.bin").write_bytes(run.bytes_of(Stream.STDERR))
            document = run.raw_file if run.raw_file is not None else dump(run.file).encode()
            (project.path / "metrics.json").write_bytes(document)
            junit = project.path / f"junit-{number}.xml"
            result = project.mlci("run", "--force", "--junit", str(junit), env=env)
            assert result.returncode in (0, 1), result.stderr
            assert b"internal error" not in result.stderr
            state = project.status()["state"]
            expected = run.expected()
            accuracy = expected.get("accuracy", [(0, math.nan)])[-1][1]
            assert state == ("passed" if accuracy >= 0.9 else "failed")
            JUNIT_SCHEMA.validate(str(junit))
            assert len(junitparser.JUnitXml.fromfile(str(junit))) == 1

            found = project.mlci("metrics", "--run", str(number), "--json")
            assert found.returncode == (0 if expected else 1), found.stderr
            series = strict(found.stdout)["stages"].get("train", {})
            assert {
                n: [(p["step"], p["value"]) for p in ps] for n, ps in series.items()
            } == expected
            report = project.mlci("report", "--run", str(number), "--json")
            assert report.returncode == 0, report.stderr
            strict(report.stdout)
        assert summary.read_text(encoding="utf-8").count("## ") == 2  # one report per run
        diff = project.mlci("diff", "1", "2", "--json")
        assert diff.returncode == 0, diff.stderr
        strict(diff.stdout)
        assert project.mlci("diff", "1", "2", "--md").returncode == 0
