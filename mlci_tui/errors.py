"""Exit codes, and the errors a user can cause: each says how `mlci` exits.

The CLI prints an error as one line and exits with its code; the dashboard
shows it as a notification. A traceback is a bug.
"""

from __future__ import annotations


class ExitCode:
    """How `mlci` and the runs it makes end.

    Plain numbers, not an enum: every command imports this module first, and
    making an enum class costs start-up time.
    """

    PASSED = 0
    """Passed, or nothing wrong."""
    FAILED = 1
    """A stage, deploy or check failed, or what was asked for does not exist."""
    USAGE = 2
    """A config or usage error: nothing was started."""
    CANCELLED = 130
    """Ctrl-C or SIGTERM stopped it (128 + SIGINT, as shells report it)."""


class MlciError(Exception):
    """Base of every error meant for a person rather than a debugger."""

    exit_code: int = ExitCode.FAILED


class ConfigError(MlciError):
    """A config file that cannot be used: unreadable, invalid TOML or off-schema.

    Its text is one line: ``FILE:LINE: KEY.PATH: what was expected``.
    """

    exit_code = ExitCode.USAGE

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

    exit_code = ExitCode.USAGE


class StoreError(MlciError):
    """The run store cannot be opened or written."""

    exit_code = ExitCode.USAGE


class StoreBusy(StoreError):
    """Another process held the database's write lock past the busy timeout."""


class StoreMissing(StoreError):
    """There is no store in the directory yet."""


class NotFound(MlciError):
    """What was asked for does not exist (yet): no runs, no such run."""

    exit_code = ExitCode.FAILED


class Cancelled(MlciError):
    """Ctrl-C or SIGTERM stopped the command."""

    exit_code = ExitCode.CANCELLED


class MirrorError(MlciError):
    """A mirror (MLflow) that could not be brought up to date: never fatal to a run,
    a deploy or a rollback, which are recorded first."""

    exit_code = ExitCode.FAILED


class RegistryError(MlciError):
    """A version that does not exist, cannot be deployed, or is busy."""

    exit_code = ExitCode.FAILED
