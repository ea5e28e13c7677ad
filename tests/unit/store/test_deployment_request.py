"""A deploy or rollback is one `DeploymentRequest`: the deploy lock records it as the
running row, and a request the lock refuses is a row of the audit trail of its own."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlci_tui.states import DeployKind, DeployOutcome
from mlci_tui.store import Store
from mlci_tui.store.deployment_request import DeploymentRequest
from mlci_tui.store.deployments import DeploymentBusy
from mlci_tui.store.records import DeploymentRecord

numbers = st.integers(1, 2**62)
texts = st.text(max_size=20)
requests = st.builds(
    DeploymentRequest,
    kind=st.sampled_from(list(DeployKind)),
    from_version=st.none() | numbers,
    to_version=numbers,
    user=st.none() | texts,
    reason=st.none() | texts,
    run_id=st.none() | numbers,
    host=texts,
    pid=st.integers(1, 2**31),
    pid_started=st.none() | st.floats(0, 2e9),
    process_tag=texts,
    # With nothing live, a request only from a version is refused before the lock.
    only_from=st.none(),
)


def _asked(record: DeploymentRecord) -> tuple[object, ...]:
    return (
        record.kind,
        record.from_version,
        record.to_version,
        record.user,
        record.reason,
        record.run_id,
        record.host,
        record.pid,
    )


def _of(request: DeploymentRequest) -> tuple[object, ...]:
    return (
        request.kind,
        request.from_version,
        request.to_version,
        request.user,
        request.reason,
        request.run_id,
        request.host,
        request.pid,
    )


@settings(max_examples=40, deadline=None)
@given(requests, requests)
def test_the_running_row_and_a_refused_row_are_their_requests(
    held: DeploymentRequest, refused: DeploymentRequest
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        store = Store.open(Path(folder) / ".mlci")
        try:
            running = store.deployments.begin(held, started_at=10.0, is_stale=lambda d: False)
            assert _asked(running) == _of(held)
            assert (running.outcome, running.started_at) == (DeployOutcome.RUNNING, 10.0)
            # What recovery needs to tell the process and stop its commands.
            assert (running.pid_started, running.process_tag) == (
                held.pid_started,
                held.process_tag,
            )
            with pytest.raises(DeploymentBusy) as busy:
                store.deployments.begin(refused, started_at=20.0, is_stale=lambda d: False)
            assert busy.value.running == running
            store.deployments.record_refused(refused, at=30.0, message="refused: busy")
            row = store.deployments.all()[0]
            assert _asked(row) == _of(refused)
            assert (row.outcome, row.started_at, row.ended_at, row.message) == (
                DeployOutcome.FAILED,
                30.0,
                30.0,
                "refused: busy",
            )
            # It never ran: nothing for recovery to recognise or stop.
            assert (row.pid_started, row.process_tag) == (None, None)
            assert store.deployments.running() == [running]
        finally:
            store.close()
