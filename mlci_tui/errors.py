"""Errors a user can cause; the CLI prints each as one line, never a traceback."""

from __future__ import annotations


class MlciError(Exception):
    """Base of every error meant for a person rather than a debugger."""

    exit_code: int = 1


class ConfigError(MlciError):
    """A config file that cannot be used: unreadable, invalid TOML or off-schema.

    Its text is one line: ``FILE:LINE: KEY.PATH: what was expected``.
    """

    exit_code = 2

    def __init__(
        self, file: str, message: str, *, line: int | None = None, key: str | None = None
    ) -> None:
        self.file = file
        self.line = line
        self.key = key
        self.message = message
        where = f"{file}:{line}" if line is not None else file
        text = f"{where}: {key}: {message}" if key else f"{where}: {message}"
        super().__init__(" ".join(text.split("\n")))


class UsageError(MlciError):
    """A command asked for something that does not exist or cannot be done."""

    exit_code = 2


class StoreError(MlciError):
    """The run store cannot be opened or written."""

    exit_code = 2
