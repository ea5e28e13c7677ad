"""One module per group of `mlci` commands; each handler, named after the words
of its command (`handle_run`, `handle_cache_gc`, `handle_mlflow_sync`), takes
the parsed arguments and returns the exit status. Imports are local to the
handlers so that every command loads only what it uses."""
