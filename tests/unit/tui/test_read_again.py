"""ReadAgain: one read at a time, and a request made meanwhile is never lost."""

from __future__ import annotations

from mlci_tui.tui.read_again import ReadAgain


def test_requests_while_a_read_is_in_flight_make_exactly_one_more_read() -> None:
    started: list[int] = []
    reads = ReadAgain(lambda: started.append(len(started)))
    reads.request()
    assert started == [0] and reads.running
    reads.request()
    reads.request()
    assert started == [0]  # one at a time
    reads.done()
    assert started == [0, 1] and reads.running  # the one owed, once
    reads.done()
    assert started == [0, 1] and not reads.running
    reads.request()
    assert started == [0, 1, 2]
