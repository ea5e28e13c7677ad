"""`mlci` (or `mlci tui`): the dashboard. The only command that imports Textual."""

from __future__ import annotations

import argparse

from mlci_tui.commands.common import load


def handle_tui(args: argparse.Namespace) -> int:
    from mlci_tui.tui.app import make_app

    config = load(args)
    # `mlci` alone (no command) has no options of the dashboard's.
    app = make_app(config, read_only=getattr(args, "read_only", False))
    app.run()
    return app.return_code or 0
