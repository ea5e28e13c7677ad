"""Deploy: put a model version where the service reads it. mlci runs this for
every deploy and rollback, with the version in $MLCI_MODEL_VERSION and its
stored artifact in $MLCI_MODEL_PATH. A real deploy would upload the file or
restart a service here."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

SERVING = Path("serving")


def main() -> int:
    version = os.environ["MLCI_MODEL_VERSION"]
    source = Path(os.environ["MLCI_MODEL_PATH"])
    SERVING.mkdir(exist_ok=True)
    # Copy, then rename: the service never reads a half-written model.
    staging = SERVING / f".model.{os.getpid()}.json"
    shutil.copyfile(source, staging)
    os.replace(staging, SERVING / "model.json")
    (SERVING / "VERSION").write_text(version + "\n")
    print(f"{version} is live in {SERVING / 'model.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
