"""`mlci run --junit PATH`: the run as JUnit XML, which GitLab, Jenkins, GitHub
test reporters and most CI systems show as a test report.

One ``<testcase>`` per stage (``classname`` is the pipeline). A failed stage
or gate is a ``<failure>`` holding the message and the log's last lines; a
skipped or cancelled stage is ``<skipped>``; a cached stage passed, and a
suite property says where its result came from (Jenkins' schema allows
properties on suites only). Log text is masked already; control characters,
which XML 1.0 cannot hold, are shown as visible symbols.
"""

from __future__ import annotations

import re
import socket
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

from mlci_tui.states import StageState, Stream
from mlci_tui.store.logs import tail_records
from mlci_tui.store.records import RunRecord, StageRecord, iso_time
from mlci_tui.textsafe import decode, terminal_line, visible_text

TAIL_LINES = 50


def junit_xml(run: RunRecord, log_path: Callable[[str], Path]) -> bytes:
    failed = [s for s in run.stages if s.state is StageState.FAILED]
    skipped = [s for s in run.stages if s.state in (StageState.SKIPPED, StageState.CANCELLED)]
    total = _seconds(run.duration_s())
    counts = {
        "tests": str(len(run.stages)),
        "failures": str(len(failed)),
        "errors": "0",
        "skipped": str(len(skipped)),
        "time": total,
    }
    suites = ET.Element("testsuites", {"name": "mlci", **counts})
    suite = ET.SubElement(
        suites,
        "testsuite",
        {
            "name": _safe(run.pipeline),
            **counts,
            "timestamp": iso_time(run.started_at) or "",
            "hostname": _safe(run.host or socket.gethostname()),
            "id": str(run.id),
        },
    )
    properties = ET.SubElement(suite, "properties")
    ET.SubElement(properties, "property", name="mlci.run", value=str(run.id))
    ET.SubElement(properties, "property", name="mlci.state", value=run.state.value)
    for stage in run.stages:
        if stage.state is StageState.CACHED and stage.cached_from_stage is not None:
            source = f"run {stage.cached_from_run}, stage {stage.cached_from_stage}"
            ET.SubElement(
                properties, "property", name=f"mlci.cached.{_safe(stage.name)}", value=source
            )
    for stage in run.stages:
        _testcase(suite, run, stage, log_path)
    ET.indent(suites)
    return ET.tostring(suites, encoding="utf-8", xml_declaration=True) + b"\n"


def _testcase(
    suite: ET.Element, run: RunRecord, stage: StageRecord, log_path: Callable[[str], Path]
) -> None:
    case = ET.SubElement(
        suite,
        "testcase",
        classname=_safe(run.pipeline),
        name=_safe(stage.name),
        time=_seconds(stage.duration_s()),
    )
    if stage.state is StageState.FAILED:
        message = stage.message or (f"gate {stage.failed_gate}" if stage.failed_gate else "failed")
        kind = "gate" if stage.failed_gate else "exit"
        failure = ET.SubElement(case, "failure", message=_safe(message), type=kind)
        failure.text = _tail(log_path(stage.name))
    elif stage.state in (StageState.SKIPPED, StageState.CANCELLED):
        ET.SubElement(case, "skipped", message=_safe(stage.message or stage.state.value))
    elif stage.state is StageState.CACHED:
        out = ET.SubElement(case, "system-out")
        out.text = f"cached: from run {stage.cached_from_run}, stage {stage.cached_from_stage}"


def _tail(path: Path) -> str:
    records = [r for r in tail_records(path, TAIL_LINES, max_bytes=1 << 20) if r.content]
    lines = []
    for record in records[-TAIL_LINES:]:
        text = decode(record.content)
        # A line of output shows as a terminal would show it (after its last \r).
        line = _NOT_XML.sub("\ufffd", terminal_line(text, keep_color=False))
        lines.append(("-- " if record.stream is Stream.MESSAGE else "") + line)
    return "\n".join(lines)


def _safe(text: str) -> str:
    """Text XML 1.0 can hold, with escapes and control characters made visible."""
    return _NOT_XML.sub("\ufffd", visible_text(text))


_NOT_XML = re.compile("[\ufffe\uffff]")
"""What is left after `visible_text` that XML 1.0 cannot hold: two noncharacters."""


def _seconds(value: float | None) -> str:
    return f"{value or 0.0:.3f}"
