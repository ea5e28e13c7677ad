"""Watching the live model: samples of its metrics, and the rollback policy when they fail."""
