"""`mlci init`: a commented `config.toml` for a typical pipeline and the small
scripts it calls, copied from `starter/`, so that `mlci run` passes at once."""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
from pathlib import Path

from mlci_tui.commands.common import relative
from mlci_tui.errors import UsageError

STARTER = Path(__file__).parent / "starter"
"""The project `mlci init` writes, file for file."""


def starter_files() -> list[Path]:
    """The files of the starter project, relative to it, config first."""
    found = sorted(
        path.relative_to(STARTER)
        for path in STARTER.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    )
    config = Path("config.toml")
    return [config, *(path for path in found if path != config)]


def handle_init(args: argparse.Namespace) -> int:
    target = Path(args.directory)
    files = starter_files()
    try:
        _check(target, files)
    except OSError as error:  # a name too long, a directory that cannot be read
        raise _refusal(error, target) from None
    made: list[Path] = []  # the directories init made, each after its parent
    written: list[Path] = []
    try:
        for name in files:
            path = target / name
            missing = [d for d in (path.parent, *path.parent.parents) if not os.path.lexists(d)]
            path.parent.mkdir(parents=True, exist_ok=True)
            made += reversed(missing)
            # "x": a file that appeared since the check is not overwritten either.
            with open(path, "xb") as out:
                written.append(path)
                out.write((STARTER / name).read_bytes())
    except OSError as error:
        for path in written:
            path.unlink(missing_ok=True)
        for directory in reversed(made):
            # Empty now unless something else put a file there: that stays, with its directory.
            with contextlib.suppress(OSError):
                directory.rmdir()
        raise _refusal(error, target) from None
    where = "" if target == Path(".") else f" in {relative(target)}"
    print(f"wrote {len(files)} files{where}: {', '.join(str(name) for name in files)}")
    print(
        f"next: {_cd(target)}mlci run (or mlci, to open the dashboard; mlci dag draws the stages)"
    )
    return 0


def _check(target: Path, files: list[Path]) -> None:
    """Every file is checked before any is written: a refusal changes nothing."""
    if target.exists() and not target.is_dir():
        raise UsageError(f"init: {relative(target)} is not a directory; nothing was written")
    for name in files:
        path = target / name
        if os.path.lexists(path):
            raise UsageError(f"init: {relative(path)} exists already; nothing was written")
        for parent in _parents(target, name):
            if os.path.lexists(parent) and not parent.is_dir():
                raise UsageError(
                    f"init: {relative(parent)} is not a directory, and {relative(path)} would"
                    " be in it; nothing was written"
                )


def _refusal(error: OSError, target: Path) -> UsageError:
    why = error.strerror or type(error).__name__
    return UsageError(
        f"init: {relative(Path(error.filename or target))}: {why}; nothing was written"
    )


def _cd(target: Path) -> str:
    """The hint's ``cd DIR && ``, quoted to be pasted into a shell."""
    if target == Path("."):
        return ""
    shown = relative(target)
    # `cd -weird` would read an option.
    return f"cd {shlex.quote('./' + shown if shown.startswith('-') else shown)} && "


def _parents(target: Path, name: Path) -> list[Path]:
    """The directories ``target / name`` needs, below ``target``."""
    return [target / parent for parent in name.parents if parent != Path(".")]
