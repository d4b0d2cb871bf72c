"""Reconcile: backend calls outside any transaction, one at a time per workspace, never lost.

These use the recording backends (tests/support/fakes.py) with hooks that hold a call open or
look at the database connection while the backend works, so what happens *during* a slow
backend call can be checked without timing anything.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from orgs.models import Org
from workspaces import dispatch
from workspaces.backends import Instance, InstanceSpec
from workspaces.models import Status, Workspace

pytestmark = pytest.mark.django_db
# Tests with threads need real commits: another connection must see the rows.
threaded = pytest.mark.django_db(transaction=True)


class Hooks:
    """Wraps a recording backend: notes whether each call ran inside a transaction, and can
    hold ``start`` until released."""

    def __init__(self, backend: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        self.in_transaction: list[tuple[str, bool]] = []
        self.hold = threading.Event()
        self.hold.set()
        self.started = threading.Event()
        for name in ("start", "stop", "remove_storage", "console"):
            monkeypatch.setattr(backend, name, self._wrap(name, getattr(backend, name)))

    def _wrap(self, name: str, call: Any) -> Any:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            self.in_transaction.append((name, connection.in_atomic_block))
            if name == "start":
                self.started.set()
                assert self.hold.wait(20), "the test never released the start"
            return call(*args, **kwargs)

        return wrapped


@pytest.fixture
def hooks(recording: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Hooks:
    return Hooks(recording["local"], monkeypatch)


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """The backend calls the verbs queue, held instead of run (as on a worker that is slow to
    pick them up); a test runs them itself, in the threads it wants."""
    from workspaces import tasks

    held: list[tuple[str, int]] = []
    monkeypatch.setattr(
        tasks.reconcile_workspace, "delay", lambda *args: held.append((args[0], args[1]))
    )
    return held


def _reconcile(call: tuple[str, int]) -> Any:
    return lambda: dispatch.reconcile(workspace_id=call[0], generation=call[1])


def _in_thread(target: Any) -> threading.Thread:
    def run() -> None:
        try:
            target()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@threaded
def test_no_backend_call_runs_inside_a_database_transaction(
    org: Org, hooks: Hooks, recording: dict[str, Any], settings: Any
) -> None:
    workspace = dispatch.create_workspace(org=org, name="PM", actor="test")  # start
    dispatch.restart(workspace_id=workspace.pk, actor="test")  # stop, start
    dispatch.console(workspace_id=workspace.pk)  # what the workspace page shows
    # The sweeps: an instance that died (health reads its console), a start that never
    # registered (the timeout reads it too), an instance nobody owns (the orphan sweep stops it).
    recording["local"].running.clear()
    dispatch.health_sweep()
    settings.MOLECULE_PROVISION_TIMEOUT = 0
    dispatch.provision_timeout_sweep()
    recording["local"].running["rec-stray"] = recording["local"].specs[0]
    dispatch.orphan_sweep(grace=0)
    dispatch.delete(workspace_id=workspace.pk, actor="test")  # stop, remove storage
    calls = {name for name, _ in hooks.in_transaction}
    assert {"start", "stop", "remove_storage", "console"} <= calls
    assert [c for c in hooks.in_transaction if c[1]] == []


@threaded
def test_a_slow_backend_call_holds_no_lock_on_the_workspace(
    org: Org, hooks: Hooks, queued: list[tuple[str, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("workspaces.dispatch.edits.VERB_LOCK_WAIT", 0.5)
    workspace = dispatch.create_workspace(org=org, name="PM", actor="test")
    hooks.hold.clear()
    thread = _in_thread(_reconcile(queued[0]))
    try:
        assert hooks.started.wait(20)
        # While the backend works, the row is free: an edit (which waits at most 0.5 s for the
        # row, as a verb does) goes through instead of answering "busy".
        dispatch.edit_workspace(workspace_id=workspace.pk, actor="test", role="Lead")
    finally:
        hooks.hold.set()
        thread.join()
    workspace.refresh_from_db()
    assert workspace.role == "Lead"
    assert workspace.instance_id  # and the start was still recorded


@threaded
def test_a_verb_during_a_slow_start_wins_and_nothing_is_left_running(
    org: Org, hooks: Hooks, queued: list[tuple[str, int]], recording: dict[str, Any]
) -> None:
    workspace = dispatch.create_workspace(org=org, name="PM", actor="test")
    hooks.hold.clear()
    thread = _in_thread(_reconcile(queued[0]))
    assert hooks.started.wait(20)
    dispatch.stop(workspace_id=workspace.pk, actor="test")
    hooks.hold.set()
    thread.join()
    assert _reconcile(queued[1])() in ("idle", "stopped")
    workspace.refresh_from_db()
    assert workspace.status == Status.OFFLINE
    assert workspace.instance_id == ""
    # The instance the superseded start made was stopped by that reconcile itself.
    assert recording["local"].running == {}
    assert workspace.reconciled_generation == workspace.generation


@threaded
def test_reconciles_of_one_workspace_take_turns(
    org: Org, hooks: Hooks, queued: list[tuple[str, int]], recording: dict[str, Any]
) -> None:
    workspace = dispatch.create_workspace(org=org, name="PM", actor="test")
    hooks.hold.clear()
    first = _in_thread(_reconcile(queued[0]))
    assert hooks.started.wait(20)
    dispatch.restart(workspace_id=workspace.pk, actor="test")
    hooks.started.clear()
    second = _in_thread(_reconcile(queued[1]))  # waits for the first one's lease
    assert not hooks.started.wait(0.5)  # it has not called the backend meanwhile
    hooks.hold.set()
    first.join()
    second.join()
    workspace.refresh_from_db()
    assert list(recording["local"].running) == [workspace.instance_id]
    assert workspace.instance_generation == workspace.generation


def test_a_lost_backend_call_is_queued_again_by_the_reconcile_sweep(
    org: Org, recording: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=False):
        workspace = dispatch.create_workspace(org=org, name="PM", actor="test")
    # The task never ran (the worker died, the broker lost it): nothing started.
    assert recording["local"].running == {}
    assert dispatch.reconcile_sweep(grace=60) == []  # not before the grace period
    Workspace.objects.filter(pk=workspace.pk).update(
        updated_at=timezone.now() - timedelta(seconds=61)
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert dispatch.reconcile_sweep(grace=60) == [str(workspace.pk)]
    workspace.refresh_from_db()
    assert workspace.instance_id in recording["local"].running
    assert workspace.reconciled_generation == workspace.generation
    # Settled: the sweep leaves it alone from now on.
    Workspace.objects.filter(pk=workspace.pk).update(
        updated_at=timezone.now() - timedelta(seconds=61)
    )
    assert dispatch.reconcile_sweep(grace=60) == []


def test_a_task_delivered_twice_starts_one_instance(
    org: Org, recording: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=False) as task:
        workspace = dispatch.create_workspace(org=org, name="PM", actor="test")
    task[0]()
    task[0]()  # a redelivery after the worker acked late
    workspace.refresh_from_db()
    assert list(recording["local"].running) == [workspace.instance_id]
    assert dispatch.reconcile(workspace_id=workspace.pk, generation=1) == "done"


def test_the_lease_of_a_worker_that_died_expires(
    org: Org, recording: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=False):
        workspace = dispatch.create_workspace(org=org, name="PM", actor="test")
    past = timezone.now() - timedelta(seconds=1)
    Workspace.objects.filter(pk=workspace.pk).update(lease_owner="dead-worker", lease_until=past)
    assert dispatch.reconcile(workspace_id=workspace.pk, generation=1) == "started"
    workspace.refresh_from_db()
    assert (workspace.lease_owner, workspace.lease_until) == ("", None)


def test_a_live_lease_makes_a_reconcile_ask_to_be_retried(
    org: Org,
    recording: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    monkeypatch.setattr("workspaces.dispatch.reconciler.LEASE_WAIT", 0.3)
    with django_capture_on_commit_callbacks(execute=False):
        workspace = dispatch.create_workspace(org=org, name="PM", actor="test")
    soon = timezone.now() + timedelta(minutes=5)
    Workspace.objects.filter(pk=workspace.pk).update(lease_owner="busy-worker", lease_until=soon)
    with pytest.raises(dispatch.RetryLater, match="another backend call"):
        dispatch.reconcile(workspace_id=workspace.pk, generation=1)
    assert recording["local"].running == {}


def test_a_start_that_fails_after_the_row_moved_on_leaves_nothing_behind(
    org: Org,
    recording: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    # The verb happens while the backend is starting: the start's result is not wanted.
    with django_capture_on_commit_callbacks(execute=False):
        workspace = dispatch.create_workspace(org=org, name="PM", actor="test")
    backend = recording["local"]
    real_start = backend.start

    def start_then_pause(spec: InstanceSpec) -> Instance:
        instance = real_start(spec)
        with django_capture_on_commit_callbacks(execute=False):
            dispatch.pause(workspace_id=workspace.pk, actor="test")
        return instance

    monkeypatch.setattr(backend, "start", start_then_pause)
    assert dispatch.reconcile(workspace_id=workspace.pk, generation=1) == "stale"
    assert backend.running == {}


def test_a_verb_is_recorded_and_answered_while_the_broker_is_down(
    org: Org,
    recording: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from workspaces import tasks

    def broker_down(*args: Any) -> None:
        # Stands in for the broker: what kombu raises when it cannot connect.
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(tasks.reconcile_workspace, "delay", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        workspace = dispatch.create_workspace(org=org, name="PM", actor="test")
    assert Workspace.objects.get(pk=workspace.pk).status == Status.PROVISIONING
    assert "reconcile sweep will queue it again" in caplog.text
    monkeypatch.undo()  # the broker is back
    Workspace.objects.filter(pk=workspace.pk).update(
        updated_at=timezone.now() - timedelta(seconds=61)
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert dispatch.reconcile_sweep(grace=60) == [str(workspace.pk)]
    assert Workspace.objects.get(pk=workspace.pk).instance_id in recording["local"].running


@threaded
def test_a_lease_is_renewed_while_a_long_backend_call_runs(
    org: Org, hooks: Hooks, queued: list[tuple[str, int]], settings: Any
) -> None:
    settings.MOLECULE_RECONCILE_LEASE = 0.6  # renewed every 0.2 s
    workspace = dispatch.create_workspace(org=org, name="PM", actor="test")
    hooks.hold.clear()
    thread = _in_thread(_reconcile(queued[0]))
    try:
        assert hooks.started.wait(20)
        first = Workspace.objects.get(pk=workspace.pk).lease_until

        def renewed() -> bool:
            return Workspace.objects.get(pk=workspace.pk).lease_until > first

        deadline = timezone.now() + timedelta(seconds=10)
        while not renewed() and timezone.now() < deadline:
            threading.Event().wait(0.1)
        assert renewed(), "the lease was not renewed while the call ran"
    finally:
        hooks.hold.set()
        thread.join()
    workspace.refresh_from_db()
    assert (workspace.lease_owner, workspace.lease_until) == ("", None)


def test_recording_survives_a_short_database_outage(
    org: Org,
    recording: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from django.db import OperationalError

    from workspaces.dispatch import reconciler

    with django_capture_on_commit_callbacks(execute=False):
        workspace = dispatch.create_workspace(org=org, name="PM", actor="test")
    real, failures = reconciler._record, [OperationalError("the server closed the connection")] * 2

    def flaky(*args: Any, **kwargs: Any) -> str:
        if failures:
            raise failures.pop()
        return real(*args, **kwargs)

    monkeypatch.setattr(reconciler, "_record", flaky)
    monkeypatch.setattr(reconciler, "RECORD_BACKOFF", 0.01)
    monkeypatch.setattr(reconciler.connection, "close", lambda: None)  # keep the test's own
    assert dispatch.reconcile(workspace_id=workspace.pk, generation=1) == "started"
    workspace.refresh_from_db()
    assert workspace.instance_id in recording["local"].running


def test_a_call_whose_outcome_cannot_be_recorded_leaves_nothing_and_heals(
    org: Org,
    recording: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from django.db import OperationalError

    from workspaces.dispatch import reconciler

    with django_capture_on_commit_callbacks(execute=False):
        workspace = dispatch.create_workspace(org=org, name="PM", actor="test")

    def database_gone(*args: Any, **kwargs: Any) -> str:
        raise OperationalError("the database system is shutting down")

    monkeypatch.setattr(reconciler, "_record", database_gone)
    monkeypatch.setattr(reconciler, "_release_after_crash", lambda *args: None)  # gone too
    monkeypatch.setattr(reconciler, "RECORD_BACKOFF", 0.01)
    monkeypatch.setattr(reconciler.connection, "close", lambda: None)
    with pytest.raises(OperationalError):
        dispatch.reconcile(workspace_id=workspace.pk, generation=1)
    # What it started and could not record was stopped again: no agent without a row.
    assert recording["local"].running == {}
    monkeypatch.undo()
    # The lease it could not release is short; once it expired the sweep queues the call again.
    row = Workspace.objects.get(pk=workspace.pk)
    assert row.lease_owner and row.lease_until < timezone.now() + timedelta(
        seconds=settings.MOLECULE_RECONCILE_LEASE + 1
    )
    Workspace.objects.filter(pk=workspace.pk).update(
        lease_until=timezone.now() - timedelta(seconds=1),
        updated_at=timezone.now() - timedelta(seconds=61),
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert dispatch.reconcile_sweep(grace=60) == [str(workspace.pk)]
    workspace.refresh_from_db()
    assert workspace.instance_id in recording["local"].running
