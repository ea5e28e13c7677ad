"""docs/benchmarks.md: the machine, the figures, the targets."""

from __future__ import annotations

import datetime
import re
from collections.abc import Sequence
from pathlib import Path

from benchmarks.harness import Scenario, machine, package_version

EXPLANATIONS = Path(__file__).with_name("explanations.md")
"""Hand-written analysis kept with the suite and appended to the report."""
MISSED = Path(__file__).with_name("missed.md")
"""The profiled cause of each missed target, by its key: `## KEY`, then the text."""


def causes(text: str) -> dict[str, str]:
    """The sections of `missed.md`: each `## KEY` heading's text, joined into one
    paragraph (comments and the file's own heading left out)."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in re.sub(r"<!--.*?-->", "", text, flags=re.DOTALL).splitlines():
        if line.startswith("## "):
            current = found.setdefault(line[3:].strip(), [])
        elif current is not None and line.strip():
            current.append(line.strip())
    return {key: " ".join(words) for key, words in found.items() if words}


def _cell(text: str) -> str:
    """A table cell: a `|` in it (a shell pipe) is not the cell's end."""
    return text.replace("|", "\\|")


def _why_missed(results: Sequence[Scenario]) -> list[str]:
    """A line per missed target: its profiled cause from `missed.md`, or that none is
    written yet (never a guess)."""
    written = causes(MISSED.read_text()) if MISSED.exists() else {}
    missed = [(r, t) for r in results for t in r.targets if not t.met]
    if not missed:
        return []
    lines = ["", "### Why targets were missed", ""]
    for result, target in missed:
        cause = written.get(target.key)
        if cause is None:
            cause = f"no profiled cause written yet (`## {target.key}` in `benchmarks/missed.md`)."
        lines.append(f"- **{result.title}, {target.text}** (`{target.key}`): {cause}")
    return lines


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
        "The limits and moonshots are issue 27's where it names them.",
        "",
        "| scenario | target | measured | limit | moonshot | |",
        "|---|---|---:|---:|---:|---|",
    ]
    for result in results:
        for target in result.targets:
            mark = "met" if target.met else "**missed**"
            hope = "" if target.moonshot is None else f"{target.moonshot:.3g}{target.unit}"
            lines.append(
                f"| {result.title} | {_cell(target.text)} | {target.value:.3g}{target.unit}"
                f" | {target.limit:g}{target.unit} | {hope} | {mark} |"
            )
    lines += _why_missed(results)
    for result in results:
        lines += ["", f"## {result.title}", "", result.description, ""]
        if result.command:
            lines += [f"Measured alone by `{result.command}` ({result.elapsed:.0f} s).", ""]
        if result.about:
            lines += [*[f"- {item}" for item in result.about], ""]
        if result.skipped:
            lines += [f"Skipped: {result.skipped}", ""]
            continue
        lines.append("| " + " | ".join(result.headers) + " |")
        lines.append("|" + "---|" * len(result.headers))
        lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in result.table]
        if result.notes:
            lines += ["", *[f"- {note}" for note in result.notes]]
    if EXPLANATIONS.exists() and not quick:
        lines += ["", EXPLANATIONS.read_text().strip()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
