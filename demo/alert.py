"""Alert: tell people what happened.

mlci runs this on a failed run, a failed deploy and every rollback, with
``MLCI_ALERT_KIND``, ``MLCI_ALERT_MESSAGE`` and ``MLCI_ALERT_VERSION`` set.
The demo appends to ``build/alerts.log``; a real one would post to a chat
channel or page someone.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

LOG = Path("build/alerts.log")


def main() -> int:
    kind = os.environ["MLCI_ALERT_KIND"]
    message = os.environ["MLCI_ALERT_MESSAGE"]
    version = os.environ.get("MLCI_ALERT_VERSION") or "-"
    LOG.parent.mkdir(parents=True, exist_ok=True)
    with LOG.open("a") as log:
        log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')}  {kind}  {version}  {message}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
