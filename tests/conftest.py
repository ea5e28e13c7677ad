"""Fixtures every tier shares; the helpers themselves are in `tests.helpers`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import Project


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """An empty pipeline directory: write its config with `Project.write`."""
    return Project(tmp_path)
