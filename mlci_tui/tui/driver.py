"""The terminal driver: Textual's own, leaving the screen as it found it.

tmux (3.3a) copies what the alternate screen shows onto the
normal screen when a program leaves it after the window was resized: the
dashboard's last frame stayed in the shell. Clearing the alternate screen
first leaves nothing to copy; `vim` does the same.
"""

from __future__ import annotations

from textual.driver import Driver

CLEAR = "\x1b[H\x1b[2J"


def clearing(base: type[Driver]) -> type[Driver]:
    """``base`` with the alternate screen cleared before the application mode ends."""

    class ClearingDriver(base):  # type: ignore[valid-type,misc]
        def stop_application_mode(self) -> None:
            self.write(CLEAR)
            super().stop_application_mode()

    return ClearingDriver
