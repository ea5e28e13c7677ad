"""The whole run's log against an oracle: every stage's lines (its file's bytes split
on newlines, its notes between them: `test_log_index.reference`) sorted by the time
of their first byte, the stage listed first first on a tie — whether the files were
read whole or as they grew; and its search and matches against a scan of that list."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from mlci_tui.states import Stream
from mlci_tui.store import logs
from mlci_tui.store.logs import LogRecord, LogWriter
from mlci_tui.store.run_log import RunLog, stage_labels
from tests.unit.store.test_log_index import reference

STAGES = ("prep", "train", "evaluate")

# What a stage writes: (stage, a time step of 0 to 2 ms, content, ends its line?,
# its stream, or a note of mlci's instead).
writes = st.lists(
    st.tuples(
        st.sampled_from(range(len(STAGES))),
        st.integers(0, 2),
        st.text("ab x\n", max_size=6).map(str.encode),
        st.booleans(),
        st.sampled_from([Stream.STDOUT, Stream.STDERR, Stream.MESSAGE]),
    ),
    max_size=40,
)


def write(directory: Path, events: list, start: float) -> float:
    """Append ``events`` to the stages' logs, times rising from ``start``."""
    time = start
    for stage, step, content, ends, stream in events:
        # Whole milliseconds: a notes file keeps times to the microsecond.
        time = round(time + step / 1000, 3)
        writer = LogWriter(directory / f"{STAGES[stage]}.log")
        if stream is Stream.MESSAGE:
            writer.note(content.decode(), time)
        else:
            writer.output(stream, content, time, partial=not ends)
        writer.close()
    return time


def oracle(directory: Path) -> list[tuple[str, LogRecord, bytes]]:
    """Every stage's lines, in the order the run's log must show them, each with its
    whole content."""
    placed = []
    for position, name in enumerate(STAGES):
        for number, (line, whole) in enumerate(reference(directory / f"{name}.log")):
            placed.append((line.time, position, number, name, line, whole))
    return [(name, line, whole) for *_, name, line, whole in sorted(placed, key=lambda p: p[:3])]


def shown(log: RunLog) -> list[tuple[str, LogRecord]]:
    found = []
    for number in range(len(log)):
        record, stage = log.line(number), log.stage_at(number)
        assert record is not None and stage is not None
        found.append((stage, record))
    return found


def logs_of(directory: Path) -> list[tuple[str, Path]]:
    return [(name, directory / f"{name}.log") for name in STAGES]


@settings(max_examples=150, deadline=None)
@given(first=writes, then=writes, needle=st.sampled_from(["a", "B", "ab", "x a", "zz"]))
def test_the_run_log_interleaves_by_time_read_whole_or_as_it_grows(
    tmp_path_factory, first: list, then: list, needle: str
) -> None:
    directory = tmp_path_factory.mktemp("run")
    growing = RunLog(logs_of(directory))
    last = write(directory, first, 1000.0)
    growing.update()
    assert shown(growing) == [placed[:2] for placed in oracle(directory)]
    # What comes later comes later in time: 1 s on.
    write(directory, then, last + 1.0)
    growing.update()
    whole = RunLog(logs_of(directory))
    whole.update()
    expected = oracle(directory)
    assert shown(growing) == [placed[:2] for placed in expected]
    assert shown(whole) == [placed[:2] for placed in expected]
    # A match is within one line, as in a stage's own log (`LogIndex.matches`).
    target = needle.lower().encode()
    hits = [n for n, (*_, whole) in enumerate(expected) if target in whole.lower()]
    for log in (growing, whole):
        found = log.matches(needle)
        assert found is not None and list(found) == hits
        for start in range(-1, len(expected) + 1):
            after = next((n for n in hits if n > start), None)
            before = next((n for n in reversed(hits) if n < start), None)
            assert log.search(needle, start) == after
            assert log.search(needle, start, forward=False) == before
    growing.close()
    whole.close()


def test_stage_labels_line_the_lines_up_as_mlci_run_prints_them() -> None:
    labels = stage_labels(["test", "evaluate", "a"])
    assert [label.text + label.pad for label in labels.values()] == [
        "[test]     ",
        "[evaluate] ",
        "[a]        ",
    ]
    assert len({label.color for label in labels.values()}) == 3


def test_a_line_whose_entry_is_still_to_be_written_waits_for_its_time(tmp_path: Path) -> None:
    """A reader can come between a chunk's bytes and its entry: the line is placed
    once its time is known, where a reading of the whole files places it."""
    prep, train = tmp_path / "prep.log", tmp_path / "train.log"
    for path, time in ((prep, 1.0), (train, 2.0)):
        writer = LogWriter(path)
        writer.output(Stream.STDOUT, path.stem.encode(), time)
        writer.close()
    with prep.open("ab") as file:
        file.write(b"late\n")  # its entry (time 3.0) not written yet
    growing = RunLog([("prep", prep), ("train", train)])
    growing.update()
    assert [line.content for _, line in shown(growing)] == [b"prep", b"train"]
    with logs.index_path(prep).open("ab") as file:
        file.write(logs.ENTRY.pack(prep.stat().st_size << 2, 3.0))
    growing.update()
    whole = RunLog([("prep", prep), ("train", train)])
    whole.update()
    assert shown(growing) == shown(whole)
    assert [line.content for _, line in shown(whole)] == [b"prep", b"train", b"late"]
