"""One module per group of `mlci` commands; each handler takes the parsed
arguments and returns the exit status. Imports are local to the handlers so
that every command loads only what it uses."""
