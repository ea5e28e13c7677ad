"""ReadAgain: one read at a time, and never a request lost.

A read runs in a worker thread. One asked for while another is in flight may
be asked because of something that read predates (a change in the store, a
log picked on screen), so it is kept, not dropped: when the read in flight
has been applied, one more read runs, however many were asked for meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable


class ReadAgain:
    """Starts ``start`` for `request`, at most one at a time; used on the UI thread."""

    def __init__(self, start: Callable[[], None]) -> None:
        self._start = start
        self._running = False
        self._again = False

    @property
    def running(self) -> bool:
        return self._running

    def request(self) -> None:
        """Start a read now, or once the one in flight is done."""
        if self._running:
            self._again = True
            return
        self._running = True
        self._start()

    def done(self) -> None:
        """The read in flight was applied (or failed): start the one owed, if any."""
        self._running = False
        if self._again:
            self._again = False
            self.request()
