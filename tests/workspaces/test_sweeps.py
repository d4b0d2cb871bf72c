"""The set-based sweeps: the same outcome as one row per transaction, in a number of statements
that does not grow with the fleet.

Each outcome test runs the per-row sweep (tests/support/per_row_sweeps.py, the code before the
sweeps went set-based) on a fleet inside a savepoint, rolls it back, runs the set-based sweep on
the same fleet and compares every row, every event and every queued backend call, with the
clock held still so both write the same times.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from orgs.models import Org
from tests.support import per_row_sweeps
from tests.support.sweep_fleet import last_event_id, outcome, rows, watching
from workspaces import dispatch, tasks
from workspaces.dispatch import core
from workspaces.dispatch.sweeps import LAST_RUNS, health, provisioning
from workspaces.models import Status, StructureEvent, Workspace

Sweep = Callable[[], list[str]]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> datetime:
    now = timezone.now()
    monkeypatch.setattr(timezone, "now", lambda: now)
    return now


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every backend call queued, one at a time (core) or by the batch (the task's message)."""
    calls: list[tuple[str, int]] = []
    monkeypatch.setattr(
        core, "enqueue_generation", lambda pk, generation: calls.append((str(pk), generation))
    )
    monkeypatch.setattr(
        tasks.reconcile_workspaces,
        "delay",
        lambda batch: calls.extend((str(pk), generation) for pk, generation in batch),
    )
    return calls


def _by_workspace(calls: list[tuple[str, int]]) -> dict[str, list[int]]:
    names = {str(pk): name for pk, name in Workspace.objects.values_list("pk", "name")}
    found: dict[str, list[int]] = {}
    for pk, generation in calls:
        found.setdefault(names[pk], []).append(generation)
    return found


def _same_as_per_row(
    set_based: Sweep, per_row: Sweep, queued: list[tuple[str, int]], capture: Any
) -> list[str]:
    since = last_event_id()
    undo = transaction.savepoint_create()
    expected_acted = per_row()
    expected = outcome(since)
    expected_calls = _by_workspace(queued)
    transaction.savepoint_rollback(undo)
    queued.clear()
    with capture(execute=True):
        acted = set_based()
    assert sorted(acted) == sorted(expected_acted)
    assert outcome(since) == expected
    assert _by_workspace(queued) == expected_calls
    return acted


def _statements(sweep: Sweep) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        sweep()
    return [query["sql"] for query in captured.captured_queries]


# --- liveness -------------------------------------------------------------------------------------


def test_the_liveness_sweep_does_what_the_per_row_sweep_did(
    org: Org,
    recording: dict[str, Any],
    clock: datetime,
    queued: list[tuple[str, int]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    rows(org, recording, "silent", 30, silent=True)
    rows(org, recording, "silent-degraded", 10, status=Status.DEGRADED, silent=True)
    rows(org, recording, "looping", 3, silent=True, restarts=5)  # the limit: held offline
    rows(org, recording, "nearly-looping", 2, silent=True, restarts=4)
    rows(org, recording, "fresh", 10)
    rows(org, recording, "booting", 5, status=Status.PROVISIONING, silent=True)
    watching()
    acted = _same_as_per_row(
        dispatch.liveness_sweep,
        per_row_sweeps.liveness_sweep,
        queued,
        django_capture_on_commit_callbacks,
    )
    assert len(acted) == 45
    statuses = dict(Workspace.objects.values_list("name", "status"))
    assert statuses["looping-0000"] == Status.OFFLINE
    assert statuses["nearly-looping-0000"] == Status.PROVISIONING
    assert statuses["fresh-0000"] == Status.ONLINE


def test_the_liveness_sweep_is_the_same_statements_for_20_or_200_silent_workspaces(
    org: Org, recording: dict[str, Any]
) -> None:
    watching()
    rows(org, recording, "small", 20, silent=True)
    rows(org, recording, "small-looping", 1, silent=True, restarts=5)
    small = _statements(dispatch.liveness_sweep)
    rows(org, recording, "large", 200, silent=True)
    rows(org, recording, "large-looping", 1, silent=True, restarts=5)
    large = _statements(dispatch.liveness_sweep)
    assert Workspace.objects.filter(status=Status.PROVISIONING).count() == 220
    assert len(small) == len(large) <= 20, "\n".join(large)
    print(f"liveness sweep: {len(large)} statements")
    assert LAST_RUNS["liveness"].acted and LAST_RUNS["liveness"].duration_ms > 0


def test_a_liveness_sweep_with_nothing_silent_is_a_few_statements(
    org: Org, recording: dict[str, Any]
) -> None:
    watching()
    rows(org, recording, "fresh", 50)
    assert len(_statements(dispatch.liveness_sweep)) <= 10


# --- provision timeout ----------------------------------------------------------------------------


def test_the_provision_timeout_sweep_does_what_the_per_row_sweep_did(
    org: Org,
    recording: dict[str, Any],
    clock: datetime,
    queued: list[tuple[str, int]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    rows(org, recording, "stuck", 20, status=Status.PROVISIONING, stuck=True)
    bare = rows(org, recording, "bare", 3, status=Status.PROVISIONING, stuck=True)
    Workspace.objects.filter(pk__in=[w.pk for w in bare]).update(instance_id="")
    rows(org, recording, "booting", 5, status=Status.PROVISIONING)
    rows(org, recording, "online", 5, stuck=True)
    acted = _same_as_per_row(
        dispatch.provision_timeout_sweep,
        per_row_sweeps.provision_timeout_sweep,
        queued,
        django_capture_on_commit_callbacks,
    )
    assert len(acted) == 23


def test_the_provision_timeout_sweep_is_the_same_statements_for_20_or_200_timeouts(
    org: Org, recording: dict[str, Any]
) -> None:
    rows(org, recording, "small", 20, status=Status.PROVISIONING, stuck=True)
    small = _statements(dispatch.provision_timeout_sweep)
    rows(org, recording, "large", 200, status=Status.PROVISIONING, stuck=True)
    large = _statements(dispatch.provision_timeout_sweep)
    assert Workspace.objects.filter(status=Status.FAILED).count() == 220
    assert len(small) == len(large) <= 15, "\n".join(large)


def test_the_provision_timeout_sweep_reads_a_bounded_number_of_consoles(
    org: Org, recording: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(provisioning, "TAILS_PER_RUN", 3)
    read: list[str] = []
    backend = recording["local"]
    monkeypatch.setattr(
        backend, "console", lambda instance, tail=200: read.append(instance.instance_id) or "x"
    )
    rows(org, recording, "stuck", 10, status=Status.PROVISIONING, stuck=True)
    assert len(dispatch.provision_timeout_sweep()) == 10
    assert len(read) == 3
    # Which three were read is the database's choice (the candidates are read unsorted): three
    # events say why, the other seven have an empty console.
    consoles = sorted(
        e.payload["console"]
        for e in StructureEvent.objects.filter(workspace__name__startswith="stuck-")
        if "console" in e.payload
    )
    assert consoles == [""] * 7 + ["x"] * 3
    assert LAST_RUNS["provision-timeout"].counts["tails read"] == 3


# --- health ---------------------------------------------------------------------------------------


def _health_fleet(org: Org, recording: dict[str, Any], prefix: str, size: int) -> None:
    rows(org, recording, f"{prefix}-running", size)
    rows(org, recording, f"{prefix}-dead", 3, running=False)
    rows(org, recording, f"{prefix}-dead-booting", 2, status=Status.PROVISIONING, running=False)
    # Restarted since its instance was recorded: judged only once reconcile records the next.
    moved_on = rows(org, recording, f"{prefix}-moved-on", 2, running=False)
    Workspace.objects.filter(pk__in=[w.pk for w in moved_on]).update(generation=4)
    rows(org, recording, f"{prefix}-stopped", 1, status=Status.OFFLINE, running=False)


def test_the_health_sweep_does_what_the_per_row_sweep_did(
    org: Org,
    recording: dict[str, Any],
    clock: datetime,
    queued: list[tuple[str, int]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    _health_fleet(org, recording, "fleet", 20)
    rows(org, recording, "looping", 1, running=False, restarts=5)
    acted = _same_as_per_row(
        dispatch.health_sweep,
        per_row_sweeps.health_sweep,
        queued,
        django_capture_on_commit_callbacks,
    )
    assert len(acted) == 6


def test_the_health_sweep_is_the_same_statements_for_20_or_200_instances(
    org: Org, recording: dict[str, Any]
) -> None:
    _health_fleet(org, recording, "small", 20)
    small = _statements(dispatch.health_sweep)
    _health_fleet(org, recording, "large", 200)
    large = _statements(dispatch.health_sweep)
    assert len(small) == len(large), "\n".join(large)


def test_a_backend_that_cannot_list_is_asked_about_each_instance(
    org: Org, recording: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = recording["local"]
    monkeypatch.setattr(backend, "running_instances", lambda: None)
    asked: list[str] = []
    real = backend.is_running
    monkeypatch.setattr(
        backend, "is_running", lambda instance: asked.append(instance.instance_id) or real(instance)
    )
    rows(org, recording, "running", 5)
    dead = rows(org, recording, "dead", 2, running=False)
    assert sorted(dispatch.health_sweep()) == sorted(str(w.pk) for w in dead)
    assert len(asked) == 7


def test_an_instance_started_after_the_listing_is_left_alone(
    org: Org, recording: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first listing is older than the rows read after it; the second, taken after them,
    # holds the instances started in between.
    late = rows(org, recording, "late", 3)
    dead = rows(org, recording, "dead", 1, running=False)
    backend = recording["local"]
    listings = [[], None]

    def listing() -> list[str]:
        if listings[0] is not None:
            first, listings[0] = listings[0], None
            return first
        return list(backend.running)

    monkeypatch.setattr(backend, "running_instances", listing)
    assert dispatch.health_sweep() == [str(dead[0].pk)]
    assert {w.status for w in Workspace.objects.filter(pk__in=[w.pk for w in late])} == {
        Status.ONLINE
    }


def test_the_health_sweep_reads_a_bounded_number_of_consoles(
    org: Org, recording: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(health, "TAILS_PER_RUN", 2)
    read: list[str] = []
    backend = recording["local"]
    monkeypatch.setattr(
        backend, "console", lambda instance, tail=200: read.append(instance.instance_id) or "x"
    )
    rows(org, recording, "dead", 5, running=False)
    assert len(dispatch.health_sweep()) == 5
    assert len(read) == 2
    assert LAST_RUNS["health"].counts["tails read"] == 2


# --- orphans --------------------------------------------------------------------------------------


def test_the_orphan_sweep_is_the_same_statements_for_20_or_200_owned_instances(
    org: Org, recording: dict[str, Any]
) -> None:
    running = recording["local"].running
    rows(org, recording, "small", 20)
    running.update({"rec-stray-1": None, "rec-stray-2": None})
    small = _statements(lambda: dispatch.orphan_sweep(grace=0))
    assert "rec-stray-1" not in running
    rows(org, recording, "large", 200)
    running.update({"rec-stray-3": None, "rec-stray-4": None})
    large = _statements(lambda: dispatch.orphan_sweep(grace=0))
    assert "rec-stray-3" not in running and "rec-large-0000" in running
    assert len(small) == len(large), "\n".join(large)
    assert not any(" IN (" in sql and "rec-large" in sql for sql in large)


# --- batches --------------------------------------------------------------------------------------


def test_restarts_are_queued_as_one_message_per_batch(
    org: Org,
    recording: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    messages: list[list[Any]] = []
    monkeypatch.setattr(tasks.reconcile_workspaces, "delay", messages.append)
    single: list[Any] = []
    monkeypatch.setattr(tasks.reconcile_workspace, "delay", lambda *args: single.append(args))
    watching()
    rows(org, recording, "silent", 150, silent=True)
    with django_capture_on_commit_callbacks(execute=True):
        assert len(dispatch.liveness_sweep()) == 150
    # Two calls a workspace (the stop of heartbeat_lost, the start of auto_restart), 100 a message.
    assert [len(message) for message in messages] == [100, 100, 100]
    assert single == []


def test_a_batch_runs_every_call_and_the_restarted_workspaces_start(
    org: Org, recording: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    watching()
    silent = rows(org, recording, "silent", 5, silent=True)
    recording["local"].running.clear()
    with django_capture_on_commit_callbacks(execute=True):
        dispatch.liveness_sweep()
    started = {spec.workspace_id for spec in recording["local"].running.values()}
    assert started == {str(w.pk) for w in silent}
    reconciled = Workspace.objects.values_list("reconciled_generation", "generation")
    assert {(r, g) for r, g in reconciled} == {(5, 5)}


def test_a_call_of_a_batch_that_must_wait_goes_on_as_its_own_task(
    org: Org,
    recording: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from workspaces.dispatch import batch

    watching()
    silent = rows(org, recording, "silent", 3, silent=True)
    busy = str(silent[0].pk)
    real, seen = batch.reconcile, []

    def lease_held_once(*, workspace_id: str, generation: int, final_attempt: bool) -> str:
        seen.append((workspace_id, generation, final_attempt))
        if workspace_id == busy and generation == 5 and seen.count(seen[-1]) == 1:
            raise dispatch.RetryLater("another backend call for this workspace is running")
        return real(workspace_id=workspace_id, generation=generation, final_attempt=False)

    monkeypatch.setattr(batch, "reconcile", lease_held_once)
    singles: list[Any] = []
    monkeypatch.setattr(
        tasks.reconcile_workspace,
        "apply",
        lambda args, retries: (
            singles.append((args, retries)) or tasks.reconcile_workspace.run(*args)
        ),
    )
    recording["local"].running.clear()
    with django_capture_on_commit_callbacks(execute=True):
        dispatch.liveness_sweep()
    # The others ran in the batch; the one that had to wait went on as a single-call task.
    assert singles == [([busy, 5], 1)]
    started = {spec.workspace_id for spec in recording["local"].running.values()}
    assert started == {str(w.pk) for w in silent}


def test_a_silent_workspace_on_a_backend_no_longer_configured_ends_failed_with_the_reason(
    org: Org, recording: dict[str, Any], settings: Any
) -> None:
    watching()
    gone = rows(org, recording, "gone", 1, silent=True)[0]
    stuck = rows(org, recording, "stuck", 1, status=Status.PROVISIONING, stuck=True)[0]
    Workspace.objects.filter(pk__in=[gone.pk, stuck.pk]).update(backend="docker")
    settings.MOLECULE_BACKENDS = ["local"]
    assert dispatch.liveness_sweep() == [str(gone.pk)]
    assert dispatch.provision_timeout_sweep() == [str(stuck.pk)]
    causes = [e.payload.get("cause") for e in gone.events.order_by("pk")]
    assert causes == ["heartbeat_lost", "auto_restart", "provision_failed"]
    assert Workspace.objects.get(pk=gone.pk).status == Status.FAILED
    assert Workspace.objects.get(pk=stuck.pk).status == Status.FAILED
