"""`mlci serve`: the dashboard in a browser, behind a token (`mlci_tui.web`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlci_tui.commands.common import load
from mlci_tui.errors import UsageError
from mlci_tui.units import parse_duration

EXTRA_HINT = "pip install 'mlci-tui[serve]' (or, in a checkout, pip install -e '.[serve]')"


def handle_serve(args: argparse.Namespace) -> int:
    config = load(args)  # a config that cannot be used is said before anything listens
    try:
        from mlci_tui.web import guard
        from mlci_tui.web.server import Settings, serve
    except ModuleNotFoundError as error:
        raise UsageError(
            f"mlci serve needs the serve extra ({error.name} is missing): {EXTRA_HINT}"
        ) from None
    try:
        # A bare number is seconds, as `0` (never) is written.
        text = args.idle_timeout.strip()
        idle = parse_duration(float(text) if text.isdigit() else text)
    except ValueError:
        raise UsageError(
            f"--idle-timeout {args.idle_timeout!r}: expected a duration like 1h, 30m or 0 (never)"
        ) from None
    token_file = None if args.token_file is None else Path(args.token_file)
    token = guard.read_token(token_file) if token_file else guard.make_token()
    public = guard.checked_url(args.public_url) if args.public_url else None
    settings = Settings(
        config_path=config.path.resolve(),
        root=config.root,
        title=f"{config.pipeline.name} · mlci",
        host=args.host,
        port=args.port,
        public_url=public,
        read_only=args.read_only,
        max_sessions=args.max_sessions,
        idle_timeout=idle,
        token=token,
        token_file=token_file,
    )
    return serve(settings)
