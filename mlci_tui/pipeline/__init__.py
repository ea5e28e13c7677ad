"""The engine: a DAG of stages → commands on executors → events → the store."""
