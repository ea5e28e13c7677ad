"""Pytest setup for the demo tests."""

from __future__ import annotations

import sys
from pathlib import Path

# The demo scripts import siblings as top-level modules (`from model import ...`); so do the tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
