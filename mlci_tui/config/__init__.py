"""`config.toml` → validated, immutable records: the schema, declared once.

Each table is a record whose fields are its keys: a `setting` gives each one's
kind, default and meaning, and `schema` reads the file against them. The schema
is strict: unknown keys, wrong types and impossible values are errors, each one
line naming the file, the line of the offending key, the key path and what was
expected::

    config.toml:14: stages.train.timeout: expected a duration like "90s" or "5m", got "5x"

The package, from the bottom up: `positions` (where a key is in the text) and
`schema` (reading a table against its record); `kinds` (the kinds of value
particular to mlci: commands, durations, checks, secrets, URIs, project paths);
`params` (the values stages read, from `[params]` or a params file) and
`param_sets` (the values ``--set`` gives, loaded only then); `tables` (one
record per table); `rules` (what spans tables: needs, outs, the needs reading
another stage's outs makes, cycles, one artifact, what [deploy] and [monitor]
need); `loader` (`Config`, the whole file, and `load_config`). Every other
package imports the names below from here.
"""

from mlci_tui.config.kinds import MIN_SECRET_LENGTH, CommandLine, redacted_uri, uri_password
from mlci_tui.config.loader import (
    Config,
    Edge,
    load_config,
    param_environment,
    with_masked_params,
    with_params,
)
from mlci_tui.config.params import ParamValue, param_text
from mlci_tui.config.rules import RAY_INSTALL, link_above
from mlci_tui.config.tables import (
    BUILTIN_STAGES,
    EXECUTORS,
    AlertsConfig,
    DeployConfig,
    ExecutorsConfig,
    MlflowConfig,
    MonitorConfig,
    PipelineConfig,
    RayConfig,
    RegistryConfig,
    RuntimeEnvConfig,
    StageConfig,
    need_text,
)

__all__ = [
    "BUILTIN_STAGES",
    "EXECUTORS",
    "MIN_SECRET_LENGTH",
    "RAY_INSTALL",
    "AlertsConfig",
    "CommandLine",
    "Config",
    "DeployConfig",
    "Edge",
    "ExecutorsConfig",
    "MlflowConfig",
    "MonitorConfig",
    "ParamValue",
    "PipelineConfig",
    "RayConfig",
    "RegistryConfig",
    "RuntimeEnvConfig",
    "StageConfig",
    "link_above",
    "load_config",
    "need_text",
    "param_environment",
    "param_text",
    "redacted_uri",
    "uri_password",
    "with_masked_params",
    "with_params",
]
