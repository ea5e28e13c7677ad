"""Mirroring the run store into a team's MLflow (`[mlflow]`).

`items` says what the store holds that a mirror should (runs, versions, the
audit rows of deploys and rollbacks, the alias) and what of it a mirror
lacks; `mlflow_push` sends it, in the `mlci mlflow sync` process only, the one
place that imports MLflow; `trigger` starts that process after a run, a
deploy or a rollback, bounded in time, so MLflow never holds production up.
"""
