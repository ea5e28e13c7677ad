"""docs/benchmarks.md: the machine, the figures, the targets."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from pathlib import Path

from benchmarks.harness import Scenario, machine, package_version

EXPLANATIONS = Path(__file__).with_name("explanations.md")
"""Hand-written analysis kept with the suite and appended to the report."""


def write_report(path: Path, results: Sequence[Scenario], *, quick: bool, elapsed: float) -> None:
    info = machine()
    lines = [
        "# Benchmarks",
        "",
        "Written by `python -m benchmarks"
        + (" --quick`; small sizes, for a smoke test, not for quoting." if quick else "`."),
        "Each command ran once to warm up, then the commands alternated (A B A B …),"
        " so drift on the machine hits every side alike. Medians, with min – max.",
        "",
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- machine: {info['cores']} cores, {info['memory']}, {info['os']} ({info['cpu']})",
        f"- Python {info['python']}, {package_version('textual')};"
        " each scenario names its producer and its peers, with their versions",
        f"- the whole suite took {elapsed:.0f} s",
        "",
        "## Targets",
        "",
        "| scenario | target | measured | limit | |",
        "|---|---|---:|---:|---|",
    ]
    for result in results:
        for target in result.targets:
            mark = "met" if target.met else "**missed**"
            lines.append(
                f"| {result.title} | {target.text} | {target.value:.3g}{target.unit}"
                f" | {target.limit:g}{target.unit} | {mark} |"
            )
    for result in results:
        lines += ["", f"## {result.title}", "", result.description, ""]
        if result.about:
            lines += [*[f"- {item}" for item in result.about], ""]
        if result.skipped:
            lines += [f"Skipped: {result.skipped}", ""]
            continue
        lines.append("| " + " | ".join(result.headers) + " |")
        lines.append("|" + "---|" * len(result.headers))
        lines += ["| " + " | ".join(row) + " |" for row in result.table]
        if result.notes:
            lines += ["", *[f"- {note}" for note in result.notes]]
    if EXPLANATIONS.exists() and not quick:
        lines += ["", EXPLANATIONS.read_text().strip()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
