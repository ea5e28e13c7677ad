"""`python -m mlci_tui` does what the `mlci` command does."""

from __future__ import annotations

from mlci_tui.cli import entry

entry()
