"""The output fuzzer, in-process: whatever two runs of a stage print (any bytes,
metric lines with any names and values) and write as their metrics file (any
JSON, deep, huge, or no object at all), the sink keeps exactly the values the
oracle says, notes each ignored metric once, and the store, `mlci metrics`,
`diff`, `report`, `versions`, `status` and the JUnit writer all work on the
result, every number they print finite and every JSON strict. Real SQLite, the
commands' own `main`, with MLCI_DEBUG so any internal error is raised."""

from __future__ import annotations

import ast
import contextlib
import csv
import io
import json
import math
import os
import re
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import xmlschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlci_tui.cli import main
from mlci_tui.commands.junit import junit_xml
from mlci_tui.config import load_config
from mlci_tui.events import CommandMetrics, CommandNoted
from mlci_tui.execution.output import MAX_METRIC_NOTES, OutputSink, read_metrics_file
from mlci_tui.masking import SecretMasker
from mlci_tui.metric_keys import MetricKey
from mlci_tui.pipeline.recorder import StoreRecorder, StoreWriter
from mlci_tui.states import DeployKind, DeployOutcome, RunState, StageState, Stream, VersionStatus
from mlci_tui.store import Store
from mlci_tui.store.deployment_request import DeploymentRequest
from tests.metric_fuzz import Printed, dump, examples, printed

JUNIT_SCHEMA = xmlschema.XMLSchema(Path(__file__).parents[2] / "junit.xsd")
T0 = 1_790_000_000.0

CONFIG = """
[pipeline]
name = "fuzz"

[stages.train]
command = "true"
gates = ["accuracy >= 0.9", "loss <= 1.7976931348623157e308", "eval.f1 != 0"]
"""


NOTED_NAME = r"""ignored metric ('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")"""


def feed(run: Printed, emit: Callable[[Any], None], scratch: Path, number: int) -> OutputSink:
    """Run ``number``'s output, cut into reads as it says, through a sink, then its
    metrics file; checked against the oracle."""
    events: list[object] = []
    now = [T0 + number]

    def both(event: Any) -> None:
        events.append(event)
        emit(event)

    sink = OutputSink("train", SecretMasker(()), both, lambda: now[0])
    for stream in (Stream.STDOUT, Stream.STDERR):
        data = run.bytes_of(stream)
        start = 0
        for cut in run.cuts:
            sink.feed(stream, data[start : start + cut])
            start += cut
            if run.stale:
                now[0] += 1
                sink.flush_stale()
        sink.feed(stream, data[start:])
    sink.close()
    metrics_file = scratch / f"metrics-{number}.json"
    metrics_file.write_bytes(run.raw_file if run.raw_file is not None else dump(run.file).encode())
    sink.add_file(read_metrics_file(metrics_file))

    expected = run.expected()
    assert _points(events) == expected
    assert sink.metrics == {name: points[-1][1] for name, points in expected.items()}
    ignored = [e.text for e in events if isinstance(e, CommandNoted) and "ignored metric" in e.text]
    assert len(ignored) <= MAX_METRIC_NOTES
    # One per metric: each names it as Python's repr, whatever quotes the name holds.
    names = [ast.literal_eval(re.match(NOTED_NAME, text)[1]) for text in ignored]
    assert len(names) == len(set(names))
    return sink


@settings(max_examples=examples(400), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(printed)
def test_the_sink_keeps_exactly_the_finite_values_and_notes_each_ignored_metric_once(
    run: Printed,
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        feed(run, lambda event: None, Path(folder), 1)


def record(store: Store, scratch: Path, config_path: Path, number: int, run: Printed) -> None:
    """Run ``number``: its stage's output through the sink into the store, as the
    runner records it, then a version of it (the first one deployed)."""
    run_id = store.runs.create(
        "fuzz",
        [("train", (), 1)],
        started_at=T0 + number,
        pid=os.getpid(),
        pid_started=None,
        host="fuzz-host",
        config_path=str(config_path),
    )
    writer = StoreWriter(store)
    recorder = StoreRecorder(store, writer, run_id)
    sink = feed(run, recorder, scratch, number)
    writer.close()
    recorder.close()

    config = load_config(config_path, environ={})
    failures = [f for gate in config.stages["train"].gates if (f := gate.evaluate(sink.metrics))]
    store.runs.update_stage(
        run_id,
        "train",
        state=StageState.FAILED if failures else StageState.PASSED,
        attempt=1,
        exit_code=0,
        started_at=T0 + number,
        ended_at=T0 + number + 1,
        failed_gate=str(config.stages["train"].gates[0]) if failures else None,
        message="; ".join(failures) or None,
    )
    store.runs.finish(
        run_id,
        RunState.FAILED if failures else RunState.PASSED,
        exit_code=1 if failures else 0,
        ended_at=T0 + number + 1,
    )
    version_number = store.versions.add(
        run_id=run_id,
        created_at=T0 + number,
        artifact_name="model.txt",
        source_path="model.txt",
        is_dir=False,
        sha256=f"{number:x}" * 64,
        size_bytes=1,
        metrics={MetricKey("train", k): v for k, v in sink.metrics.items()},
        git_commit=None,
        git_dirty=None,
    )
    store.samples.add(
        version=version_number,
        passed=not failures,
        metrics=dict(sink.metrics),
        finding=None,
        created_at=T0 + number,
        run_id=run_id,
    )
    if number == 1:
        deployment = store.deployments.begin(
            DeploymentRequest(
                kind=DeployKind.DEPLOY,
                from_version=None,
                to_version=version_number,
                user="fuzz",
                reason=None,
                run_id=run_id,
                pid=os.getpid(),
                pid_started=None,
                host="fuzz-host",
                process_tag="fuzz",
            ),
            started_at=T0 + number,
            is_stale=lambda d: True,
        )
        store.deployments.finish(
            deployment.id,
            DeployOutcome.SUCCEEDED,
            ended_at=T0 + number,
            message="live",
            statuses=[(version_number, VersionStatus.LIVE, "deployed")],
        )


def _points(events: list[object]) -> dict[str, list[tuple[int, float]]]:
    """Each series' points, in order, from the sink's events."""
    series: dict[str, list[tuple[int, float]]] = {}
    for event in events:
        if isinstance(event, CommandMetrics):
            for name, step, value in event.points:
                series.setdefault(name, []).append((step, value))
    return series


@contextlib.contextmanager
def debugging() -> Iterator[None]:
    """An internal error raises instead of being printed as one line."""
    previous = os.environ.get("MLCI_DEBUG")
    os.environ["MLCI_DEBUG"] = "1"
    try:
        yield
    finally:
        if previous is None:
            del os.environ["MLCI_DEBUG"]
        else:
            os.environ["MLCI_DEBUG"] = previous


def mlci(config_path: Path, *args: str) -> tuple[int, str]:
    """`mlci ARGS` in this process: its exit status and what it printed."""
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")  # with a buffer, as stdout has
    err = io.StringIO()
    with debugging(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([*args, "--config", str(config_path)])
    out.flush()
    assert code in (0, 1), (args, code, err.getvalue())
    return code, out.buffer.getvalue().decode()  # type: ignore[attr-defined]


def strict(text: str) -> Any:
    """JSON as any strict reader takes it: no NaN, no Infinity, every number finite."""

    def refuse(name: str) -> float:
        raise AssertionError(f"{name} is not JSON")

    def finite(text: str) -> float:
        value = float(text)
        assert math.isfinite(value), text
        return value

    return json.loads(text, parse_constant=refuse, parse_float=finite)


@settings(
    max_examples=examples(30),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.tuples(printed, printed))
def test_whatever_two_runs_print_and_write_every_reader_of_their_metrics_works(
    runs: tuple[Printed, Printed],
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        config_path = scratch / "config.toml"
        config_path.write_text(CONFIG)
        store = Store.open(scratch / ".mlci", create=True)
        try:
            for number, run in enumerate(runs, start=1):
                record(store, scratch, config_path, number, run)
            stored = store.runs.get(2)
            assert stored is not None
            xml = junit_xml(stored, lambda stage: store.log_path(2, stage))
        finally:
            store.close()
        JUNIT_SCHEMA.validate(ET.fromstring(xml))
        check_readers(config_path, runs)


def check_readers(config_path: Path, runs: tuple[Printed, Printed]) -> None:
    for number, run in enumerate(runs, start=1):
        expected = run.expected()
        code, text = mlci(config_path, "metrics", "--run", str(number), "--json")
        assert code == (0 if expected else 1)
        found = strict(text)["stages"].get("train", {})
        assert {n: [(p["step"], p["value"]) for p in ps] for n, ps in found.items()} == expected
        code, text = mlci(config_path, "metrics", "--run", str(number), "--csv")
        rows = list(csv.DictReader(io.StringIO(text)))
        assert [float(row["value"]) for row in rows] == [
            value for points in expected.values() for _, value in points
        ]
        if expected:
            assert mlci(config_path, "metrics", "--run", str(number))[0] == 0
        for form in ([], ["--json"], ["--md"]):
            code, text = mlci(config_path, "report", "--run", str(number), *form)
            assert code == 0
            if form == ["--json"]:
                strict(text)
    for sides in (["1", "2"], ["v2"]):
        for form in ([], ["--json"], ["--md"]):
            code, text = mlci(config_path, "diff", *sides, *form)
            assert code == 0
            if form == ["--json"]:
                strict(text)
    for command in (["versions", "--json"], ["status", "--json"], ["versions"], ["status"]):
        code, text = mlci(config_path, *command)
        if "--json" in command:
            strict(text)
