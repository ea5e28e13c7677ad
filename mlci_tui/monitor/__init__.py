"""Watching the live model: checks of its metrics, automatic rollback, alerts."""
