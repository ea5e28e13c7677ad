"""The lock on a project's outs: one run at a time removes and writes them.

It belongs to the project, not to a run store: it is ``.mlci/outs.lock`` beside
the config whatever ``state_dir`` says, so two configs of one project with
stores of their own, writing the same outs, still take turns. It holds the run
that has it, so that a refusal says who.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

from mlci_tui.config import Config
from mlci_tui.errors import UsageError
from mlci_tui.store.paths import DIR_MODE

OUTS_LOCK = Path(".mlci") / "outs.lock"
"""Where the lock is, from the config's directory."""


def lock_outs(config: Config) -> int:
    """The lock's descriptor, held until it is closed; `UsageError` naming the run
    that holds it."""
    path = config.root / OUTS_LOCK
    try:
        path.parent.mkdir(DIR_MODE, exist_ok=True)
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as error:
        raise UsageError(f"cannot lock the project's outs ({path}): {error.strerror}") from None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(os.pread(descriptor, 4096, 0), config)
        os.close(descriptor)
        raise UsageError(
            f"{holder} is running in this project, and its stages write outs here too:"
            " wait for it to end, or cancel it"
        ) from None
    return descriptor


def claim_outs(descriptor: int, run_id: int, config: Config) -> None:
    """Say in the lock which run holds it."""
    text = json.dumps({"run": run_id, "config": str(config.path)}) + "\n"
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, text.encode(), 0)


def _holder(text: bytes, config: Config) -> str:
    try:
        holder = json.loads(text)
        run, other = int(holder["run"]), str(holder["config"])
    except (ValueError, TypeError, KeyError):
        return "another run"  # still starting, or an earlier mlci's lock
    if other == str(config.path):
        return f"run {run}"
    return f"run {run} of {os.path.relpath(other, config.root)}"
