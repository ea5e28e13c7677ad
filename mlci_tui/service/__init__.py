"""Use cases: a run, and recovery of everything a dead process left."""
