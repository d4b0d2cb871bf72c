"""The sweeps as they were before they went set-based: one row per transaction.

Kept as the specification the set-based sweeps are compared with (tests/workspaces/
test_sweeps_equivalence.py): on the same fleet, both must leave the same rows, write the same
events and queue the same backend calls. Copied from workspaces/dispatch/sweeps.py as of
d49ef16, with the crash-loop count and the event writes unchanged.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from workspaces import backends
from workspaces.backends import BackendError, Instance
from workspaces.dispatch.core import console_tail, locked, recorded_instance, transition
from workspaces.events import record as record_event
from workspaces.models import EventType, Status, StructureEvent, Workspace


def _crash_looping(workspace: Workspace) -> bool:
    since = timezone.now() - timedelta(seconds=settings.MOLECULE_CRASH_LOOP_WINDOW)
    restarts = StructureEvent.objects.filter(
        workspace=workspace,
        event_type=EventType.WORKSPACE_PROVISIONING,
        payload__cause="auto_restart",
        created_at__gte=since,
    ).count()
    return restarts >= settings.MOLECULE_CRASH_LOOP_LIMIT


def _offline_then_restart(
    workspace: Workspace, cause: str, *, actor: str, reason: str, console: str = ""
) -> None:
    transition(workspace, cause, actor=actor, payload={"reason": reason, "console": console})
    workspace.last_exit_reason, workspace.last_exit_at = reason, timezone.now()
    fields = ["last_exit_reason", "last_exit_at"]
    if _crash_looping(workspace):
        workspace.crash_looping = True
        workspace.save(update_fields=[*fields, "crash_looping", "updated_at"])
        record_event(
            EventType.WORKSPACE_OFFLINE,
            workspace=workspace,
            actor=actor,
            payload={
                "reason": f"not restarted: {settings.MOLECULE_CRASH_LOOP_LIMIT} automatic "
                f"restarts within {settings.MOLECULE_CRASH_LOOP_WINDOW:g}s; restart it by hand",
                "cause": "crash_loop",
            },
        )
        return
    transition(workspace, "auto_restart", actor=actor, payload={"reason": reason})
    workspace.restart_count += 1
    workspace.save(update_fields=[*fields, "restart_count", "updated_at"])


def liveness_sweep() -> list[str]:
    """The judging part (the watch-gap guard is the same code in both and is left out)."""
    cutoff = timezone.now() - timedelta(seconds=settings.MOLECULE_LIVENESS_TIMEOUT)
    candidates = Workspace.objects.filter(
        status__in=[Status.ONLINE, Status.DEGRADED], last_heartbeat_at__lt=cutoff
    ).values_list("pk", flat=True)
    swept = []
    for workspace_id in candidates:
        with transaction.atomic():
            workspace = locked(workspace_id)
            stale = workspace.last_heartbeat_at and workspace.last_heartbeat_at < cutoff
            if workspace.status not in (Status.ONLINE, Status.DEGRADED) or not stale:
                continue
            silent = (timezone.now() - workspace.last_heartbeat_at).total_seconds()
            _offline_then_restart(
                workspace,
                "heartbeat_lost",
                actor="system:liveness",
                reason=f"no heartbeat for {silent:.0f}s "
                f"(timeout {settings.MOLECULE_LIVENESS_TIMEOUT:g}s)",
            )
            swept.append(str(workspace_id))
    return swept


def provision_timeout_sweep() -> list[str]:
    timeout = settings.MOLECULE_PROVISION_TIMEOUT
    cutoff = timezone.now() - timedelta(seconds=timeout)
    candidates = Workspace.objects.filter(status=Status.PROVISIONING, status_changed_at__lt=cutoff)
    failed = []
    for workspace_id, backend_name, instance_id, url, state in candidates.values_list(
        "pk", "backend", "instance_id", "url", "backend_state"
    ):
        backend = backends.get(backend_name)
        instance = Instance(instance_id, url, state) if instance_id else None
        tail = console_tail(backend, instance) if backend else ""
        with transaction.atomic():
            workspace = locked(workspace_id)
            if workspace.status != Status.PROVISIONING or workspace.status_changed_at >= cutoff:
                continue
            if workspace.instance_id != instance_id:
                tail = ""
            transition(
                workspace,
                "provision_failed",
                actor="system:provision-timeout",
                payload={"error": f"no registration within {timeout:g}s", "console": tail},
            )
            failed.append(str(workspace_id))
    return failed


def health_sweep() -> list[str]:
    rows = (
        Workspace.objects.filter(status__in=[Status.PROVISIONING, Status.ONLINE, Status.DEGRADED])
        .exclude(instance_id="")
        .filter(instance_generation=F("generation"))
    )
    acted = []
    for workspace in rows:
        backend = backends.get(workspace.backend)
        instance = recorded_instance(workspace)
        if backend is None or instance is None:
            continue
        try:
            if backend.is_running(instance):
                continue
        except BackendError:
            continue
        tail = console_tail(backend, instance)
        with transaction.atomic():
            current = locked(workspace.pk)
            if (current.generation, current.instance_generation, current.instance_id) != (
                workspace.generation,
                workspace.instance_generation,
                workspace.instance_id,
            ):
                continue
            if current.status == Status.PROVISIONING:
                transition(
                    current,
                    "provision_failed",
                    actor="system:health",
                    payload={
                        "error": "the instance exited before the agent registered",
                        "console": tail,
                    },
                )
            elif current.status in (Status.ONLINE, Status.DEGRADED):
                _offline_then_restart(
                    current,
                    "instance_lost",
                    actor="system:health",
                    reason=f"the {current.backend} backend reports the instance is not running",
                    console=tail,
                )
            else:
                continue
            acted.append(str(workspace.pk))
    return acted
