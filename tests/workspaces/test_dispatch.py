"""dispatch: routing, no-backend fallbacks, events, serialization and the sweeps.

These use the in-memory recording backend (tests/support/fakes.py) because they are about
dispatch's behaviour around a backend; tests/workspaces/test_local_fleet.py runs the same paths on
real processes.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from workspaces import bearer_secrets, dispatch
from workspaces.backends import BackendError, Instance, InstanceSpec
from workspaces.lifecycle import TransitionRefused
from workspaces.models import (
    EventType,
    OrphanSuspect,
    Status,
    StructureEvent,
    SweepState,
    Workspace,
)
from workspaces.tiers import tier_settings

pytestmark = pytest.mark.django_db


@pytest.fixture
def run_tasks(django_capture_on_commit_callbacks):
    """Run the on-commit backend tasks of whatever happens inside the block."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def events(workspace: Workspace) -> list[tuple[str, str]]:
    rows = StructureEvent.objects.filter(workspace=workspace).order_by("id")
    return [(e.event_type, e.payload.get("cause", "")) for e in rows]


def online(org, recording, run_tasks, name: str = "PM", **kwargs) -> Workspace:
    with run_tasks():
        workspace = dispatch.create_workspace(org=org, name=name, actor="test", **kwargs)
    Workspace.objects.filter(pk=workspace.pk).update(
        status=Status.ONLINE, last_heartbeat_at=timezone.now()
    )
    workspace.refresh_from_db()
    return workspace


# --- routing ------------------------------------------------------------------------------------


def test_a_new_workspace_goes_to_its_orgs_backend(org, recording, run_tasks):
    org.backend = "docker"
    org.save()
    with run_tasks():
        workspace = dispatch.create_workspace(org=org, name="PM", actor="test")
    assert workspace.backend == "docker"
    assert recording["docker"].calls == [("start", str(workspace.pk))]
    assert recording["local"].calls == []


def test_stop_routes_to_the_backend_the_workspace_runs_on(org, recording, run_tasks):
    workspace = online(org, recording, run_tasks)
    org.backend = "controlplane"  # the org moved on; the workspace did not
    org.save()
    with run_tasks():
        dispatch.stop(workspace_id=workspace.pk, actor="test")
    assert recording["local"].calls[-1] == ("stop", workspace.instance_id)
    assert recording["controlplane"].calls == []


def test_restart_stops_the_old_instance_before_starting_a_new_one(org, recording, run_tasks):
    workspace = online(org, recording, run_tasks)
    old = workspace.instance_id
    with run_tasks():
        dispatch.restart(workspace_id=workspace.pk, actor="test")
    workspace.refresh_from_db()
    assert recording["local"].calls[-2:] == [("stop", old), ("start", str(workspace.pk))]
    assert workspace.instance_id != old
    assert recording["local"].workspaces_running() == [str(workspace.pk)]


def test_restart_reads_tier_and_runtime_from_the_row_at_start_time(org, recording, run_tasks):
    workspace = online(org, recording, run_tasks)
    Workspace.objects.filter(pk=workspace.pk).update(tier=4, runtime="crewai")
    with run_tasks():
        dispatch.restart(workspace_id=workspace.pk, actor="test")
    spec = recording["local"].specs[-1]
    assert (spec.tier.tier, spec.runtime, spec.env["MOLECULE_RUNTIME"]) == (4, "crewai", "crewai")


def test_the_agent_gets_a_fresh_token_whose_hash_alone_is_stored(org, recording, run_tasks):
    workspace = online(org, recording, run_tasks)
    first = recording["local"].specs[-1].token
    with run_tasks():
        dispatch.restart(workspace_id=workspace.pk, actor="test")
    second = recording["local"].specs[-1].token
    workspace.refresh_from_db()
    assert first != second
    assert workspace.token_hash == bearer_secrets.hash_token(second)
    assert second not in str(Workspace.objects.filter(pk=workspace.pk).values().get())


# --- no backend ---------------------------------------------------------------------------------


def test_provision_without_a_backend_marks_the_workspace_failed_with_the_reason(
    org, recording, run_tasks, settings
):
    settings.MOLECULE_BACKENDS = ["local"]
    org.backend = "docker"
    org.save()
    with run_tasks():
        workspace = dispatch.create_workspace(org=org, name="PM", actor="test")
    workspace.refresh_from_db()
    assert workspace.status == Status.FAILED
    failure = StructureEvent.objects.filter(
        workspace=workspace, event_type=EventType.WORKSPACE_PROVISION_FAILED
    ).get()
    assert "No 'docker' backend is configured" in failure.payload["error"]
    assert recording["docker"].calls == [] and recording["local"].calls == []
    with pytest.raises(TransitionRefused):
        dispatch.stop(workspace_id=workspace.pk, actor="test")
    dispatch.provision(workspace_id=workspace.pk, actor="test")  # a retry fails the same way
    workspace.refresh_from_db()
    assert workspace.status == Status.FAILED


def test_stop_without_a_backend_is_a_recorded_no_op(org, recording, run_tasks, settings):
    workspace = online(org, recording, run_tasks)
    calls = list(recording["local"].calls)
    settings.MOLECULE_BACKENDS = ["docker"]
    with run_tasks():
        dispatch.stop(workspace_id=workspace.pk, actor="test")
    workspace.refresh_from_db()
    assert workspace.status == Status.OFFLINE
    event = StructureEvent.objects.filter(workspace=workspace).first()
    assert event.payload["backend_call"] == "skipped"
    assert "No 'local' backend" in event.payload["reason"]
    assert recording["local"].calls == calls


def test_has_backend_answers_for_a_workspace_and_for_an_org(org, recording, settings):
    workspace = Workspace.objects.create(org=org, name="x", backend="docker")
    assert dispatch.has_backend(workspace_id=workspace.pk)
    settings.MOLECULE_BACKENDS = ["local"]
    assert not dispatch.has_backend(workspace_id=workspace.pk)
    assert dispatch.has_backend(org=org)
    with pytest.raises(TypeError):
        dispatch.has_backend()


# --- transactions and serialization --------------------------------------------------------------


def test_the_event_and_the_state_change_commit_or_roll_back_together(org, recording, run_tasks):
    workspace = online(org, recording, run_tasks)
    before = StructureEvent.objects.count()

    def stop_then_fail() -> None:
        with transaction.atomic():
            dispatch.stop(workspace_id=workspace.pk, actor="test")
            raise RuntimeError("the caller's transaction fails after the verb")

    with pytest.raises(RuntimeError):
        stop_then_fail()
    workspace.refresh_from_db()
    assert workspace.status == Status.ONLINE
    assert StructureEvent.objects.count() == before


def test_the_backend_is_called_only_after_the_transaction_commits(
    org, recording, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        dispatch.create_workspace(org=org, name="PM", actor="test")
        assert recording["local"].calls == []
    assert len(callbacks) == 1
    callbacks[0]()
    assert [c[0] for c in recording["local"].calls] == ["start"]


def test_a_task_for_a_superseded_generation_does_nothing(org, recording, run_tasks):
    workspace = online(org, recording, run_tasks)
    calls = list(recording["local"].calls)
    dispatch.restart(workspace_id=workspace.pk, actor="test")  # not run: gen + 1 queued
    assert dispatch.reconcile(workspace_id=workspace.pk, generation=workspace.generation) == (
        "stale"
    )
    assert recording["local"].calls == calls


def test_racing_verbs_end_with_one_instance(org, recording, run_tasks):
    workspace = online(org, recording, run_tasks)
    dispatch.stop(workspace_id=workspace.pk, actor="a")
    dispatch.provision(workspace_id=workspace.pk, actor="b")
    dispatch.restart(workspace_id=workspace.pk, actor="c")
    workspace.refresh_from_db()
    # The tasks of all three verbs arrive, late and out of order; only the last one acts.
    for generation in [workspace.generation, workspace.generation - 2, workspace.generation - 1]:
        dispatch.reconcile(workspace_id=workspace.pk, generation=generation)
    assert recording["local"].workspaces_running() == [str(workspace.pk)]


# --- backend errors -----------------------------------------------------------------------------


def test_a_permanent_backend_error_marks_the_workspace_failed_with_the_error(
    org, recording, run_tasks
):
    recording["local"].fail_next = BackendError("image ws:latest is missing", permanent=True)
    with run_tasks():
        workspace = dispatch.create_workspace(org=org, name="PM", actor="test")
    workspace.refresh_from_db()
    assert workspace.status == Status.FAILED
    event = StructureEvent.objects.filter(workspace=workspace).first()
    assert event.event_type == EventType.WORKSPACE_PROVISION_FAILED
    assert event.payload["error"] == "image ws:latest is missing"


def test_the_task_retries_a_transient_error_and_gives_up_on_the_last_attempt(org, recording):
    from workspaces import tasks

    workspace = dispatch.create_workspace(org=org, name="PM", actor="test")
    args = [str(workspace.pk), workspace.generation]
    recording["local"].fail_next = BackendError("engine busy")
    # Eagerly applied, the retry runs again at once; on a worker it comes back after a backoff.
    first = tasks.reconcile_workspace.apply(args=args, retries=0, throw=False)
    assert first.result == "started"
    assert recording["local"].workspaces_running() == [str(workspace.pk)]
    # A task that already ran does nothing when delivered again.
    assert tasks.reconcile_workspace.apply(args=args, throw=False).result == "done"
    dispatch.restart(workspace_id=workspace.pk, actor="test")  # its task is not run here
    workspace.refresh_from_db()
    args = [str(workspace.pk), workspace.generation]
    recording["local"].fail_next = BackendError("engine busy")
    last = tasks.reconcile_workspace.apply(args=args, retries=tasks.MAX_RETRIES, throw=False)
    assert last.result == "failed"
    assert Workspace.objects.get(pk=workspace.pk).status == Status.FAILED


def test_a_transient_error_asks_for_a_retry_until_the_final_attempt(org, recording):
    workspace = dispatch.create_workspace(org=org, name="PM", actor="test")
    recording["local"].fail_next = BackendError("engine busy")
    with pytest.raises(dispatch.RetryLater):
        dispatch.reconcile(
            workspace_id=workspace.pk, generation=workspace.generation, final_attempt=False
        )
    recording["local"].fail_next = BackendError("engine busy")
    assert (
        dispatch.reconcile(workspace_id=workspace.pk, generation=workspace.generation) == "failed"
    )
    workspace.refresh_from_db()
    assert workspace.status == Status.FAILED


def test_a_failed_stop_is_recorded_with_its_error(org, recording, run_tasks):
    workspace = online(org, recording, run_tasks)
    recording["local"].fail_next = BackendError("engine unreachable", permanent=True)
    with run_tasks():
        dispatch.stop(workspace_id=workspace.pk, actor="test")
    event = StructureEvent.objects.filter(workspace=workspace).first()
    assert event.event_type == EventType.BACKEND_CALL_FAILED
    assert event.payload == {"call": "stop", "error": "engine unreachable"}


# --- cascades -----------------------------------------------------------------------------------


@pytest.fixture
def team(org, recording, run_tasks):
    lead = online(org, recording, run_tasks, name="PM")
    child = online(org, recording, run_tasks, name="Dev", parent=lead)
    grandchild = online(org, recording, run_tasks, name="Intern", parent=child)
    return lead, child, grandchild


def statuses(*workspaces: Workspace) -> list[str]:
    return [Workspace.objects.get(pk=w.pk).status for w in workspaces]


def test_pause_cascades_to_every_live_descendant(team, recording, run_tasks):
    lead, child, grandchild = team
    with run_tasks():
        result = dispatch.pause(workspace_id=lead.pk, actor="test")
    assert statuses(lead, child, grandchild) == ["paused"] * 3
    assert [w.name for w in result.moved] == ["PM", "Dev", "Intern"]
    assert recording["local"].workspaces_running() == []
    cascaded = StructureEvent.objects.filter(workspace=grandchild).first()
    assert cascaded.payload["cascaded_from"] == str(lead.pk)


def test_pause_leaves_descendants_that_cannot_pause_as_they_are(team, run_tasks):
    lead, child, grandchild = team
    Workspace.objects.filter(pk=child.pk).update(status=Status.FAILED)
    with run_tasks():
        dispatch.pause(workspace_id=lead.pk, actor="test")
    assert statuses(lead, child, grandchild) == ["paused", "failed", "paused"]


def test_resume_cascades_to_paused_descendants(team, recording, run_tasks):
    lead, child, grandchild = team
    with run_tasks():
        dispatch.pause(workspace_id=lead.pk, actor="test")
        dispatch.resume(workspace_id=lead.pk, actor="test")
    assert statuses(lead, child, grandchild) == ["provisioning"] * 3
    assert len(recording["local"].workspaces_running()) == 3


def test_delete_cascades_and_removes_storage(team, recording, run_tasks):
    lead, child, grandchild = team
    with run_tasks():
        dispatch.delete(workspace_id=lead.pk, actor="test")
    assert statuses(lead, child, grandchild) == ["removed"] * 3
    removed = [c for c in recording["local"].calls if c[0] == "remove_storage"]
    assert len(removed) == 3
    with pytest.raises(TransitionRefused):
        dispatch.delete(workspace_id=lead.pk, actor="test")


def test_a_refused_cascade_touches_no_descendant(team):
    lead, child, grandchild = team
    with pytest.raises(TransitionRefused):
        dispatch.resume(workspace_id=lead.pk, actor="test")
    assert statuses(lead, child, grandchild) == ["online"] * 3


# --- sweeps -------------------------------------------------------------------------------------


def test_the_health_sweep_restarts_a_workspace_whose_instance_is_gone(org, recording, run_tasks):
    workspace = online(org, recording, run_tasks)
    recording["local"].running.clear()  # the instance died behind our back
    with run_tasks():
        assert dispatch.health_sweep() == [str(workspace.pk)]
    workspace.refresh_from_db()
    assert workspace.status == Status.PROVISIONING
    assert events(workspace)[-2:] == [
        (EventType.WORKSPACE_OFFLINE, "instance_lost"),
        (EventType.WORKSPACE_PROVISIONING, "auto_restart"),
    ]
    assert recording["local"].workspaces_running() == [str(workspace.pk)]


def test_the_health_sweep_fails_a_workspace_that_died_while_booting(org, recording, run_tasks):
    with run_tasks():
        workspace = dispatch.create_workspace(org=org, name="PM", actor="test")
    recording["local"].running.clear()
    dispatch.health_sweep()
    workspace.refresh_from_db()
    assert workspace.status == Status.FAILED


def test_the_health_sweep_never_touches_paused_or_offline_workspaces(org, recording, run_tasks):
    paused = online(org, recording, run_tasks, name="P")
    Workspace.objects.filter(pk=paused.pk).update(status=Status.PAUSED)
    stopped = online(org, recording, run_tasks, name="S")
    Workspace.objects.filter(pk=stopped.pk).update(status=Status.OFFLINE)
    recording["local"].running.clear()
    assert dispatch.health_sweep() == []


def test_the_liveness_sweep_waits_a_whole_timeout_after_a_gap(org, recording, run_tasks, settings):
    settings.MOLECULE_LIVENESS_TIMEOUT = 60
    workspace = online(org, recording, run_tasks)
    Workspace.objects.filter(pk=workspace.pk).update(
        last_heartbeat_at=timezone.now() - timedelta(minutes=10)
    )
    # The sweep has never run (a console that just started): nothing is judged yet.
    assert dispatch.liveness_sweep() == []
    SweepState.objects.update(watching_since=timezone.now() - timedelta(seconds=61))
    with run_tasks():
        assert dispatch.liveness_sweep() == [str(workspace.pk)]
    assert events(workspace)[-2:] == [
        (EventType.WORKSPACE_OFFLINE, "heartbeat_lost"),
        (EventType.WORKSPACE_PROVISIONING, "auto_restart"),
    ]


def test_the_provision_timeout_fails_a_workspace_that_never_registered(org, recording, run_tasks):
    with run_tasks():
        workspace = dispatch.create_workspace(org=org, name="PM", actor="test")
    Workspace.objects.filter(pk=workspace.pk).update(
        status_changed_at=timezone.now() - timedelta(minutes=4)
    )
    with run_tasks():
        assert dispatch.provision_timeout_sweep() == [str(workspace.pk)]
    workspace.refresh_from_db()
    assert workspace.status == Status.FAILED
    assert recording["local"].workspaces_running() == []
    event = StructureEvent.objects.filter(workspace=workspace).first()
    assert event.payload["error"] == "no registration within 180s"


def test_a_crash_loop_stops_the_automatic_restarts(org, recording, run_tasks, settings):
    settings.MOLECULE_CRASH_LOOP_LIMIT = 2
    workspace = online(org, recording, run_tasks)
    for _ in range(3):
        recording["local"].running.clear()
        with run_tasks():
            dispatch.health_sweep()
        Workspace.objects.filter(pk=workspace.pk, status=Status.PROVISIONING).update(
            status=Status.ONLINE
        )
    workspace.refresh_from_db()
    assert workspace.status == Status.OFFLINE
    last = StructureEvent.objects.filter(workspace=workspace).first()
    assert last.payload["cause"] == "crash_loop"


def test_the_orphan_sweep_stops_unowned_instances_after_the_grace_period(
    org, recording, run_tasks, settings
):
    owned = online(org, recording, run_tasks)
    stray = recording["local"].start(
        InstanceSpec(
            workspace_id="gone",
            name="gone",
            org_slug="acme",
            runtime="x",
            tier=tier_settings(2),
            generation=1,
            env={},
        )
    )
    settings.MOLECULE_ORPHAN_GRACE = 60
    assert dispatch.orphan_sweep() == []  # first sighting: only suspected
    assert OrphanSuspect.objects.filter(instance_id=stray.instance_id).exists()
    OrphanSuspect.objects.update(first_seen_at=timezone.now() - timedelta(seconds=61))
    assert dispatch.orphan_sweep() == [stray.instance_id]
    assert recording["local"].is_running(Instance(owned.instance_id))
    assert not recording["local"].is_running(stray)
    assert StructureEvent.objects.filter(
        event_type=EventType.ORPHAN_REMOVED, payload__instance_id=stray.instance_id
    ).exists()
    assert not OrphanSuspect.objects.exists()


def test_a_parent_from_another_org_is_refused_before_anything_is_written(org, other_org, recording):
    stranger = Workspace.objects.create(org=other_org, name="Lead", backend="local")
    with pytest.raises(dispatch.InvalidRequest, match="belongs to another org"):
        dispatch.create_workspace(org=org, name="Dev", parent=stranger, actor="test")
    assert not Workspace.objects.filter(org=org).exists()


@pytest.mark.django_db(transaction=True)
def test_a_verb_on_a_workspace_held_by_a_backend_call_gives_up_with_a_clear_refusal(
    org, recording, monkeypatch
):
    import threading

    from django.db import connection

    from workspaces.dispatch import core

    monkeypatch.setattr(core, "VERB_LOCK_WAIT", 0.3)
    monkeypatch.setattr("workspaces.dispatch.verbs.VERB_LOCK_WAIT", 0.3)
    workspace = dispatch.create_workspace(org=org, name="PM", actor="test")
    held, release = threading.Event(), threading.Event()

    def slow_backend_call() -> None:
        with transaction.atomic():
            Workspace.objects.select_for_update().get(pk=workspace.pk)
            held.set()
            release.wait(10)
        connection.close()

    holder = threading.Thread(target=slow_backend_call)
    holder.start()
    try:
        held.wait(10)
        with pytest.raises(dispatch.Refused, match="is busy"):
            dispatch.stop(workspace_id=workspace.pk, actor="test")
    finally:
        release.set()
        holder.join()
    assert Workspace.objects.get(pk=workspace.pk).status == Status.PROVISIONING
    dispatch.stop(workspace_id=workspace.pk, actor="test")  # free again: it goes through
