"""Deploy: publish a model version for the serving process.

mlci runs this for every deploy and rollback, with the version to publish in
``MLCI_MODEL_VERSION`` and its stored artifact in ``MLCI_MODEL_PATH``. The
demo "serving process" reads ``build/serving/model.json``; a real deploy
would upload the file, restart a service or switch a traffic split here.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from model import LogisticRegression

SERVING_DIR = Path("build/serving")


def main() -> int:
    version = os.environ["MLCI_MODEL_VERSION"]
    source = Path(os.environ["MLCI_MODEL_PATH"])
    previous = os.environ.get("MLCI_PREVIOUS_VERSION") or "nothing"
    print(f"deploying {version} (replacing {previous}) from {source}")
    try:
        # A smoke test before anything changes: the file must load as a model.
        LogisticRegression.load(source)
    except (OSError, ValueError) as exc:
        print(f"deploy: {version} does not load: {exc}", file=sys.stderr)
        return 1
    SERVING_DIR.mkdir(parents=True, exist_ok=True)
    # Copy then rename, so the serving process never reads a half-written model.
    staging = SERVING_DIR / f".model.{os.getpid()}.json"
    shutil.copyfile(source, staging)
    os.replace(staging, SERVING_DIR / "model.json")
    (SERVING_DIR / "VERSION").write_text(version + "\n")
    print(f"{version} is now served from {SERVING_DIR / 'model.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
