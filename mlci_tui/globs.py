"""Glob deps as paths: what a pattern covers, and what it may cover. Pure: no I/O.

A glob is matched the way the shell's ``**`` globbing does, part by part: ``*``,
``?`` and ``[…]`` within one name, ``**`` over any number of names, and a hidden
name (one starting with a dot) only by a pattern part that starts with a dot, even
under ``**``, and a last ``**`` that matches no name only a directory. A glob
covers a file when it matches the file or a directory that holds it. The dep walk
(`pipeline.outs`) lists what a glob covers with `covers`; the stage graph (`dag`)
asks with `may_cover` whether a glob can read an out.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple


class Glob(NamedTuple):
    """A dep written as a pattern: its literal leading directory, then the pattern's
    parts (``src/**/*.py`` → ``src``, ``("**", "*.py")``)."""

    base: Path
    pattern: tuple[str, ...]

    def __str__(self) -> str:
        return os.path.join(self.base, *self.pattern)


def covers(pattern: Sequence[str], parts: Sequence[str]) -> bool:
    """Whether the glob covers the file ``parts`` (relative to its base): it matches the
    file, or one of the directories that hold it."""
    if any(matches(pattern, parts[:depth]) for depth in range(1, len(parts))):
        return True
    if pattern and pattern[-1] == "**":
        # A last ** that matches no name matches a directory only, as in the shell:
        # for the file itself it takes one name at least.
        pattern = (*pattern, "*")
    return matches(pattern, parts)


def matches(pattern: Sequence[str], parts: Sequence[str]) -> bool:
    """Whether the glob matches the path ``parts`` (relative to its base) itself."""
    if not pattern:
        return not parts
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        for skipped in range(len(parts) + 1):
            if skipped and _hidden(parts[skipped - 1]):
                return False
            if matches(rest, parts[skipped:]):
                return True
        return False
    return bool(parts) and _name_matches(head, parts[0]) and matches(rest, parts[1:])


def may_cover(pattern: Sequence[str], parts: Sequence[str]) -> bool:
    """Whether the glob covers the path ``parts`` (relative to its base) or could cover
    something under it, were it a directory: ``data/**/*.csv`` may cover what the out
    ``data/sub`` holds, ``data/*.csv`` cannot. What a pattern part could match below
    ``parts`` is taken to exist: an out's content is not known before it is made."""
    if covers(pattern, parts):
        return True
    # Whether ``parts`` can be the start of a path the whole pattern matches: by
    # positions in the pattern and the path, each pair tried once.
    tried: set[tuple[int, int]] = set()
    stack = [(0, 0)]
    while stack:
        at, depth = stack.pop()
        if (at, depth) in tried:
            continue
        tried.add((at, depth))
        if depth == len(parts):
            # Nothing of ``parts`` is left: what remains of the pattern is matched
            # below it (an empty rest matched ``parts`` itself, which `covers` said no to).
            if at < len(pattern):
                return True
            continue
        if at == len(pattern):
            continue
        head = pattern[at]
        if head == "**":
            stack.append((at + 1, depth))  # ** matches no name here
            if not _hidden(parts[depth]):
                stack.append((at, depth + 1))  # ** takes this name too
        elif _name_matches(head, parts[depth]):
            stack.append((at + 1, depth + 1))
    return False


def _name_matches(pattern: str, name: str) -> bool:
    if _hidden(name) and not pattern.startswith("."):
        return False
    return fnmatch.fnmatchcase(name, pattern)


def _hidden(name: str) -> bool:
    return name.startswith(".")
