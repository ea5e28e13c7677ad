"""The store reader decides what a viewer reads again: everything when the store
changed or another run is asked for, else only the logs of running stages."""

from __future__ import annotations

import time
from pathlib import Path

from mlci_tui.states import RunState, StageState, Stream
from mlci_tui.store import Store
from mlci_tui.store.reader import StoreReader
from tests.helpers import append_log


def append(store: Store, run: int, stage: str, *lines: str) -> None:
    append_log(store.log_path(run, stage), Stream.STDOUT, "\n".join(lines).encode(), time.time())


def two_stage_run(state_dir: Path) -> tuple[Store, int]:
    store = Store.open(state_dir)
    run = store.runs.create(
        "p",
        [("done", (), 1), ("busy", ("done",), 1), ("later", ("busy",), 1)],
        started_at=time.time(),
        pid=1,
        pid_started=None,
        host="elsewhere",
        config_path="config.toml",
    )
    store.runs.update_stage(run, "done", state=StageState.PASSED, started_at=1.0, ended_at=2.0)
    store.runs.update_stage(run, "busy", state=StageState.RUNNING, started_at=2.0)
    append(store, run, "done", "done 1", "done 2")
    append(store, run, "busy", "busy 1")
    return store, run


def test_a_snapshot_holds_the_last_lines_of_every_started_stage(tmp_path: Path) -> None:
    _, run = two_stage_run(tmp_path)
    snapshot = StoreReader(tmp_path, tail_lines=1).snapshot()
    assert snapshot.run is not None and snapshot.run.id == run
    assert {name: [r.content for r in tail] for name, tail in snapshot.tails.items()} == {
        "done": [b"done 2"],
        "busy": [b"busy 1"],
    }  # "later" has not started: nothing to read


def test_while_the_store_is_unchanged_only_running_stages_are_read_again(tmp_path: Path) -> None:
    store, run = two_stage_run(tmp_path)
    reader = StoreReader(tmp_path)
    first = reader.snapshot()
    append(store, run, "busy", "busy 2")
    # Not possible for a real stage (its output is written before its end is
    # stored); it shows that a stage that ended is not read again.
    append(store, run, "done", "done 3")
    assert reader.due()  # the run is running: its logs grow
    second = reader.snapshot()
    assert second.run is first.run  # the database was not read again
    assert [r.content for r in second.tails["busy"]] == [b"busy 1", b"busy 2"]
    assert second.tails["done"] == first.tails["done"]


def test_a_change_in_the_store_or_another_run_is_read_in_full(tmp_path: Path) -> None:
    store, run = two_stage_run(tmp_path)
    reader = StoreReader(tmp_path)
    reader.snapshot()
    store.runs.update_stage(run, "busy", state=StageState.PASSED, ended_at=3.0)
    store.runs.finish(run, RunState.PASSED, exit_code=0, ended_at=3.0)
    assert reader.due()
    finished = reader.snapshot()
    assert finished.run is not None and finished.run.state is RunState.PASSED
    assert not reader.due()  # finished and unchanged: nothing to read
    second = store.runs.create(
        "p", [("x", (), 1)], started_at=4.0, pid=1, pid_started=None, host="h", config_path="c"
    )
    assert reader.due(run)  # pinned to the first run now: a new question
    pinned = reader.snapshot(run)
    assert pinned.run is not None and pinned.run.id == run and pinned.latest_run_id == second


def test_no_store_yet_is_an_empty_snapshot_and_its_creation_is_noticed(tmp_path: Path) -> None:
    reader = StoreReader(tmp_path)
    assert reader.snapshot().run is None
    assert not reader.due()
    two_stage_run(tmp_path)
    assert reader.due()
    assert reader.snapshot().run is not None


def test_an_overview_is_the_run_alone_and_leaves_the_full_read_due(tmp_path: Path) -> None:
    """What a first frame shows: the run and its stages as a snapshot has them, none of
    the slower parts (the logs' last lines), and the full snapshot still due after it."""
    store, run = two_stage_run(tmp_path)
    store.runs.update_stage(run, "busy", state=StageState.PASSED, ended_at=3.0)
    store.runs.finish(run, RunState.PASSED, exit_code=0, ended_at=3.0)
    reader = StoreReader(tmp_path)
    overview = reader.overview()
    full = StoreReader(tmp_path).snapshot()
    assert overview.run == full.run and overview.latest_run_id == full.latest_run_id == run
    assert overview.running is None and not overview.tails and full.tails
    assert reader.due()
    assert reader.snapshot().tails == full.tails
    assert not reader.due()
    pinned = StoreReader(tmp_path).overview(run)
    assert pinned.run == full.run and pinned.latest_run_id == run
    assert StoreReader(tmp_path / "nothing-here").overview() == type(overview)()
