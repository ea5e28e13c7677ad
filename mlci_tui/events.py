"""What the engine reports, as plain frozen objects.

The store recorder, the CLI printer and tests all subscribe to the same
stream. Events are named in the past tense: each says what has happened.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import NamedTuple

from mlci_tui.states import RunState, StageState, Stream

_EMPTY: Mapping[str, float] = MappingProxyType({})
"""The default metrics: empty, and immutable, since it is shared."""


class RunStarted(NamedTuple):
    stages: tuple[str, ...]
    time: float


class ExternalJob(NamedTuple):
    """A job an executor started outside this machine's process tree."""

    kind: str
    """The executor that started it (``ray``); it is the one that can stop it."""
    id: str
    address: str
    """Where the job's system listens (a Ray dashboard's URL)."""


class StageStarted(NamedTuple):
    stage: str
    attempt: int
    max_attempts: int
    pid: int | None
    pgid: int | None
    process_tag: str | None
    time: float
    job: ExternalJob | None = None


class CommandOutput(NamedTuple):
    """Lines a stage printed, masked, as one block: the lines joined by newlines,
    without the last line's newline.

    When ``partial`` the last line has not ended yet: more of it follows in a
    later event (a very long line, or a line flushed early so viewers see it).
    A block, not a list of lines, because every consumer can handle a whole
    chunk in a few C-level bytes operations, and a flood of output is millions
    of lines.
    """

    stage: str
    stream: Stream
    data: bytes
    time: float
    partial: bool = False


class StagePlanned(NamedTuple):
    """Whether a stage runs or is cached, and why, decided as it became ready."""

    stage: str
    cache_key: str | None
    reasons: tuple[str, ...]
    time: float


class StoreName(NamedTuple):
    """A run store whose run made a result in a cache several stores share."""

    id: str
    """The random id it got when it was made (`Store.store_id`)."""
    path: str | None
    """Its state_dir, where the entry says (earlier entries do not)."""
    host: str | None

    @property
    def text(self) -> str:
        if self.path is None:
            return f"another store (id {self.id[:8]})"
        return f"the store {self.path}" + (f" on {self.host}" if self.host else "")


class StageCached(NamedTuple):
    """A stage reuses the result of stage ``from_stage`` of run ``from_run``."""

    stage: str
    from_run: int | None
    from_stage: str
    same_store: bool
    """Whether that run is in this store (its log is copied after ``text``)."""
    text: str
    """The note that starts the stage's log: where its result comes from."""
    time: float
    from_store: StoreName | None = None
    """The store of that run, when it is another one (sharing the cache)."""


class CommandNoted(NamedTuple):
    """A note from mlci about a stage: a retry, a timeout, a failed gate."""

    stage: str
    text: str
    time: float


class CommandSampled(NamedTuple):
    stage: str
    cpu_percent: float
    rss_bytes: int
    peak_rss_bytes: int
    time: float


class CommandMetrics(NamedTuple):
    stage: str
    metrics: Mapping[str, float]
    """The newest value of each metric in this batch."""
    time: float
    points: tuple[tuple[str, int, float], ...] = ()
    """Every point of the batch kept for the series: ``(name, step, value)``."""


class StageFinished(NamedTuple):
    stage: str
    state: StageState
    attempt: int
    exit_code: int | None
    started_at: float | None
    ended_at: float
    peak_rss_bytes: int | None = None
    cpu_seconds: float | None = None
    failed_gate: str | None = None
    message: str | None = None
    metrics: Mapping[str, float] = _EMPTY

    @property
    def duration_s(self) -> float | None:
        return None if self.started_at is None else max(0.0, self.ended_at - self.started_at)


class RunNoted(NamedTuple):
    """A note about the whole run, such as a cancel request."""

    text: str
    time: float


class RunFinished(NamedTuple):
    state: RunState
    exit_code: int
    time: float
    message: str | None = None


Event = (
    RunStarted
    | StagePlanned
    | StageCached
    | StageStarted
    | CommandOutput
    | CommandNoted
    | CommandSampled
    | CommandMetrics
    | StageFinished
    | RunNoted
    | RunFinished
)
Subscriber = Callable[[Event], None]
