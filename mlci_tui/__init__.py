"""mlci-tui: machine-learning CI/CD in one terminal program."""

from __future__ import annotations

__version__ = "0.1.0"
