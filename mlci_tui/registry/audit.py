"""Who did it: the name recorded for deploys, rollbacks and answered decisions.

A module of its own, without the deployer's imports, so that a command that
only answers a decision (`mlci alerts --dismiss`) stays quick to start.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping


def current_user(environ: Mapping[str, str]) -> str:
    user = environ.get("USER") or environ.get("LOGNAME")
    if user:
        return user
    import getpass  # only needed when the environment does not say

    with contextlib.suppress(Exception):
        return getpass.getuser()
    return "unknown"
