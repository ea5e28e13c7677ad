"""Where a stage's command runs. Each executor is one module; the engine only
knows the `StageExecutor` interface in `base`."""
