"""The live-version pointer: which artifact production serves.

``current.json`` under the store names the live version, its sha256 and its
artifact; ``current`` is a symlink to that artifact for serving code. Both
are replaced atomically and durably — written to a temporary name, flushed,
renamed over the old one, and the directory flushed — so a crash leaves
either the old pointer or the new one, never a torn one. ``current.json`` is
the truth; the symlink is re-derived from it.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from mlci_tui.registry.artifacts import sync_directory
from mlci_tui.store.paths import FILE_MODE

POINTER_NAME = "current.json"
LINK_NAME = "current"


@dataclass(frozen=True)
class Pointer:
    version: int
    sha256: str
    artifact: str
    """Absolute path of the stored artifact."""
    deployed_at: float
    deployment_id: int


def read_pointer(state_dir: Path) -> Pointer | None:
    try:
        data = json.loads((state_dir / POINTER_NAME).read_text())
        return Pointer(**data)
    except (OSError, ValueError, TypeError):
        return None


def write_pointer(state_dir: Path, pointer: Pointer) -> None:
    """Move the live pointer to ``pointer``, atomically and durably."""
    temporary = state_dir / f".{POINTER_NAME}.{os.getpid()}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, FILE_MODE)
    with open(fd, "w") as file:
        json.dump(asdict(pointer), file, indent=2)
        file.write("\n")
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, state_dir / POINTER_NAME)
    sync_directory(state_dir)
    link_artifact(state_dir, Path(pointer.artifact))


def link_artifact(state_dir: Path, artifact: Path) -> None:
    """Point the ``current`` symlink at ``artifact`` (relative, so the store can move)."""
    link = state_dir / LINK_NAME
    temporary = state_dir / f".{LINK_NAME}.{os.getpid()}.tmp"
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    os.symlink(os.path.relpath(artifact, state_dir), temporary)
    os.replace(temporary, link)
    sync_directory(state_dir)
