"""`mlci run --set`: a quoted string reaches the command without its quotes, and a
value the config could not hold is refused in one line before anything runs."""

from __future__ import annotations

from tests.helpers import Project

PIPELINE = """
[params]
name = "first"
seed = 0
layers = [8, 4]

[stages.show]
command = '''
printf '%s|%s|%s' "$MLCI_PARAM_NAME" $MLCI_PARAM_SEED "$MLCI_PARAM_LAYERS" >shown'''
params = ["name", "seed", "layers"]
"""


def test_set_reads_a_quoted_string_as_toml_does(project: Project) -> None:
    project.write(PIPELINE)
    for value, shown in (('"abc"', "abc"), ("'a b'", "a b"), ("abc", "abc"), ('"x', '"x')):
        result = project.mlci("run", "--set", f"name={value}", "--set", "layers=[1]")
        assert result.returncode == 0, result.stderr
        assert (project.path / "shown").read_text() == f"{shown}|0|[1]"


def test_set_refuses_what_the_config_could_not_hold_in_one_line(project: Project) -> None:
    project.write(PIPELINE)
    for value, message in (
        ("seed=12345678901234567890123", "expected an integer of 64 bits"),
        ('layers=[8, "a"]', "expected a number like the array's first item"),
        ("layers=[8, 4.5]", "expected an array of integers, as the config has ([8, 4])"),
    ):
        result = project.mlci("run", "--set", value)
        assert result.returncode == 2
        assert result.stdout == b""
        lines = result.stderr.decode().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"mlci: --set {value}: {message}")
    assert not (project.state_dir / "runs").exists()
