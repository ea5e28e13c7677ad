"""Where everything lives under `state_dir`: one place for the store's layout.

::

    mlci.db                    SQLite (WAL): runs, stages, versions, the audit trail
    runs/N/STAGE.log           what each stage of run N printed (see `logs`)
    runs/N/STAGE.metrics.json  the stage's $MLCI_METRICS_FILE
    versions/vN/ARTIFACT       each version's artifact, as registered
    deployments/ID.log         the output of a deploy or rollback outside a run
    current.json, current      the live version (see `registry.pointer`)
"""

from __future__ import annotations

from pathlib import Path

DB_NAME = "mlci.db"


def db_path(state_dir: Path) -> Path:
    return state_dir / DB_NAME


def run_dir(state_dir: Path, run_id: int) -> Path:
    return state_dir / "runs" / str(run_id)


def log_path(state_dir: Path, run_id: int, stage: str) -> Path:
    return run_dir(state_dir, run_id) / f"{stage}.log"


def metrics_path(state_dir: Path, run_id: int, stage: str) -> Path:
    return run_dir(state_dir, run_id) / f"{stage}.metrics.json"


def version_dir(state_dir: Path, number: int) -> Path:
    return state_dir / "versions" / f"v{number}"


def deployment_log(state_dir: Path, deployment_id: int) -> Path:
    return state_dir / "deployments" / f"{deployment_id}.log"
