"""Fixtures every tier shares; the helpers themselves are in `tests.helpers`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from hypothesis import Phase, settings

from tests.helpers import Project

# `mutmut run` (README, "Development") asks only whether a test fails; shrinking the
# failing example to its smallest would take most of its time.
settings.register_profile("mutation", phases=[Phase.explicit, Phase.reuse, Phase.generate])


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    """An empty pipeline directory: write its config with `Project.write`.

    A run the dashboard started is detached, made to outlive it: if the test
    failed before that run ended, it is stopped here, so that it cannot load the
    tests after it."""
    yield Project(tmp_path)
    _stop_runs_in(tmp_path)


def _stop_runs_in(path: Path) -> None:
    inside = f"{path}{os.sep}"
    left = []
    for process in psutil.process_iter(["cmdline"]):
        if any(inside in part for part in process.info["cmdline"] or ()):
            left.append(process)
    for process in left:
        try:
            for child in process.children(recursive=True):
                child.kill()
            process.kill()
        except psutil.Error:
            pass  # it ended meanwhile
