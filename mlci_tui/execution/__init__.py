"""Running one command: its environment, its executor, its output."""
