"""The engine: config → DAG → async executor → events → store."""
