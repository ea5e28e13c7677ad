"""Fixtures every tier shares; the helpers themselves are in `tests.helpers`."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import Phase, settings

from tests.helpers import Project

# `mutmut run` (README, "Development") asks only whether a test fails; shrinking the
# failing example to its smallest would take most of its time.
settings.register_profile("mutation", phases=[Phase.explicit, Phase.reuse, Phase.generate])


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """An empty pipeline directory: write its config with `Project.write`."""
    return Project(tmp_path)
