"""The deployer's log: what a deploy or rollback notes."""

from __future__ import annotations

from pathlib import Path

from mlci_tui.events import CommandNoted
from mlci_tui.registry.deployer import log_events
from mlci_tui.store.logs import LogWriter, read_notes


def test_a_deploy_log_keeps_each_note_as_one_record(tmp_path: Path) -> None:
    # Notes carry text from configs and errors: a newline must not split the
    # record, and a lone surrogate (from a path that is not UTF-8) must not raise.
    log = LogWriter(tmp_path / "deploy.log")
    log_events(log, lambda event: None)(
        CommandNoted("rollback", "cannot start\nin /srv/m\udce9", 1.0)
    )
    log.close()
    assert [note.text for note in read_notes(tmp_path / "deploy.log")] == [
        "cannot start in /srv/m?"
    ]
    assert (tmp_path / "deploy.log").read_bytes() == b""  # notes are never output
