"""The README's tables of config keys agree with the schema: every key is there,
nothing else is, and each default is the one the schema declares."""

from __future__ import annotations

import re
from collections.abc import Mapping

import pytest

from mlci_tui import config
from mlci_tui.config.schema import REQUIRED, Setting
from tests.helpers import ROOT

TABLES = {
    "[pipeline]": config.PipelineConfig,
    "[stages.NAME]": config.StageConfig,
    "[deploy]": config.DeployConfig,
    "[monitor]": config.MonitorConfig,
    "[alerts]": config.AlertsConfig,
    "[registry]": config.RegistryConfig,
    "[mlflow]": config.MlflowConfig,
    "[executors.ray]": config.RayConfig,
}


def readme_rows(table: str) -> dict[str, str]:
    """Key → the default column, from the README table under ``### `TABLE```."""
    readme = (ROOT / "README.md").read_text()
    start = readme.index(f"### `{table}`")
    section = readme[start : readme.index("\n### ", start + 1)]
    rows: dict[str, str] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not cells[0].startswith("`"):
            continue
        for key in re.findall(r"`([^`]+)`", cells[0]):
            rows[key] = cells[2]
    return rows


def documented(setting: Setting) -> str | None:
    """How the README writes a default; None where any words will do (the default
    depends on where the config is, or on Ray)."""
    default = setting.default
    if default is REQUIRED:
        return "required"
    if callable(default) or default is None or "(default:" in setting.doc:
        return None
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    if isinstance(default, float):
        return f'`"{default:g}s"`'  # the only float defaults are durations
    if isinstance(default, int):
        return f"`{default}`"
    if isinstance(default, str):
        return f'`"{default}"`'
    if default == ():
        return "`[]`"
    if isinstance(default, Mapping) or (isinstance(default, tuple) and not any(default)):
        return "`{}`"
    raise AssertionError(f"no README form for {default!r}")


@pytest.mark.parametrize("table", TABLES, ids=list(TABLES))
def test_the_readme_documents_every_key_and_its_default(table: str) -> None:
    settings: Mapping[str, Setting] = TABLES[table].SETTINGS  # type: ignore[attr-defined]
    rows = readme_rows(table)
    assert set(rows) == set(settings)
    for key, setting in settings.items():
        expected = documented(setting)
        if expected is not None and rows[key]:  # an "as for [deploy]" row says no default
            assert rows[key] == expected, f"{table} {key}"


def test_the_readme_names_the_keys_of_the_ray_runtime_env() -> None:
    readme = (ROOT / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| `runtime_env` |"))
    for key in config.RuntimeEnvConfig.SETTINGS:  # type: ignore[attr-defined]
        assert f"`{key}`" in row
