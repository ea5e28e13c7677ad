"""Untrusted text → Rich `Text`, never markup.

Everything a stage, a metric or an alert says passes through here before it
reaches a widget: escape sequences other than colours are dropped, control
bytes become visible symbols, invalid UTF-8 becomes U+FFFD (`textsafe`), and
the colours left are turned into styles by Rich's ANSI decoder — so no byte
from a stage is ever written to the terminal as it came.
"""

from __future__ import annotations

from rich.text import Text

from mlci_tui.states import DeployOutcome, ExperimentState, RunState, StageState, VersionStatus
from mlci_tui.textsafe import decode, terminal_line, visible_text
from mlci_tui.units import metric_text

GLYPHS = {
    StageState.PENDING: "·",
    StageState.RUNNING: "▶",
    StageState.PASSED: "✓",
    StageState.FAILED: "✗",
    StageState.SKIPPED: "↷",
    StageState.CANCELLED: "■",
    StageState.CACHED: "↺",
}
STATE_STYLES: dict[object, str] = {
    StageState.PENDING: "dim",
    StageState.RUNNING: "bold yellow",
    StageState.PASSED: "green",
    StageState.FAILED: "bold red",
    StageState.SKIPPED: "dim",
    StageState.CANCELLED: "magenta",
    StageState.CACHED: "cyan",
    RunState.RUNNING: "bold yellow",
    RunState.PASSED: "bold green",
    RunState.FAILED: "bold red",
    RunState.CANCELLED: "magenta",
    RunState.INTERRUPTED: "magenta",
    RunState.ROLLED_BACK: "bold magenta",
    VersionStatus.LIVE: "bold green",
    VersionStatus.PREVIOUS: "",
    VersionStatus.REGISTERED: "dim",
    VersionStatus.FAILED: "red",
    VersionStatus.ROLLED_BACK: "magenta",
    DeployOutcome.SUCCEEDED: "green",
    DeployOutcome.FAILED: "red",
    DeployOutcome.RUNNING: "yellow",
    DeployOutcome.INTERRUPTED: "magenta",
    DeployOutcome.POINTER_FAILED: "red",
    # The states are str enums: an experiment's other states are keys above already.
    ExperimentState.QUEUED: "dim",
}


def output_line(data: bytes, *, color: bool = True) -> Text:
    """One line of stage output, made safe, with its ANSI colours as styles."""
    safe = terminal_line(decode(data), keep_color=color).expandtabs(4)
    if "\x1b" not in safe:
        return Text(safe, no_wrap=True, end="")
    text = Text.from_ansi(safe, no_wrap=True, end="")
    return text


def plain(value: object) -> Text:
    """Any untrusted value as plain text: no markup, no escapes, one line."""
    return Text(visible_text(str(value).replace("\n", " ")), end="")


def metric_cell(value: float | None) -> Text:
    """A metric for a table cell: as the headless tables print it, right-aligned."""
    return Text(metric_text(value), justify="right")


def state_text(
    state: StageState | RunState | VersionStatus | DeployOutcome | ExperimentState,
) -> Text:
    return Text(state.text, style=STATE_STYLES.get(state, ""), end="")


def middle_cut(name: str, width: int) -> str:
    """``name`` in at most ``width`` characters, cut in the middle: ``prep…data``."""
    if len(name) <= width:
        return name
    head = width // 2
    tail = width - 1 - head
    return name[:head] + "\u2026" + (name[-tail:] if tail else "")
