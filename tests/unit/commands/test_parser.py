"""`mlci`'s parser, made for the command its arguments name (`mlci run` does not make
the 22 others; `mlci --help` makes them without their options), against the parser of
every command as the oracle: any arguments parse to the same namespace, or fail or
print help with the same text and status."""

from __future__ import annotations

import argparse
import contextlib
import io

from hypothesis import given, settings
from hypothesis import strategies as st

from mlci_tui.cli import _named_command, build_parser, parser_for


def _words(parser: argparse.ArgumentParser) -> tuple[set[str], set[str]]:
    """The command names and the option strings of ``parser`` and the parsers under it."""
    commands: set[str] = set()
    options: set[str] = set()
    for action in parser._actions:
        options.update(action.option_strings)
        if isinstance(action, argparse._SubParsersAction):
            for name, command in action.choices.items():
                more_commands, more_options = _words(command)
                commands |= {name, *more_commands}
                options |= more_options
    return commands, options


COMMANDS, OPTIONS = (sorted(words) for words in _words(build_parser()))
VALUES = ["1", "0", "v3", "x", "config.toml", "a=1", "", "--", "--config=c.toml", "-x", "--co"]
# Command words, --config and --help as often as all the rest: what decides which parser is made.
arguments = st.lists(
    st.one_of(
        st.sampled_from(COMMANDS),
        st.sampled_from(["--config", "--help", "-h"]),
        st.sampled_from(OPTIONS + VALUES),
    ),
    max_size=6,
)


def _outcome(parser: argparse.ArgumentParser, argv: list[str]) -> tuple[object, ...]:
    """What parsing does: the namespace (a handler as the function it names), or the
    exit status and what was printed."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            namespace = vars(parser.parse_args(argv))
        except SystemExit as leaving:
            return ("exit", leaving.code, out.getvalue(), err.getvalue())
    handler = namespace.pop("handler", None)
    named = None if handler is None else (handler.__module__, handler.__qualname__)
    return ("parsed", named, sorted(namespace.items()))


@settings(max_examples=300, deadline=None)
@given(arguments)
def test_the_parser_of_the_named_command_parses_as_the_whole_one(argv: list[str]) -> None:
    assert _outcome(parser_for(argv), argv) == _outcome(build_parser(), argv)


@given(st.sampled_from(["run", "validate", "status"]), arguments)
def test_a_command_word_after_the_config_is_the_named_one(command: str, rest: list[str]) -> None:
    for before in (["--config", "c.toml"], ["--config=c.toml"], []):
        assert _named_command([*before, command, *rest]) == command
