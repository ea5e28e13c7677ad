"""The dashboard's tier: runs it starts must print plain lines, as on a terminal."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _outside_github_actions(monkeypatch: pytest.MonkeyPatch) -> None:
    # A run the dashboard starts inherits this environment; under CI it would
    # print GitHub's groups instead of plain lines.
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
