"""Fleets for the sweep tests: rows written in bulk, in the states the sweeps judge.

The rows are inserted directly (the sweeps only read what a fleet looks like; how it got there
is the other tests' business), on the ``local`` recording backend, whose ``running`` holds the
instances that run.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from orgs.models import Org
from workspaces.events import Pending, record_many
from workspaces.models import EventType, Status, StructureEvent, SweepState, Workspace

SILENT_FOR = timedelta(seconds=600)
STUCK_FOR = timedelta(hours=1)


def rows(
    org: Org,
    recording: dict[str, Any],
    prefix: str,
    count: int,
    *,
    status: str = Status.ONLINE,
    silent: bool = False,
    stuck: bool = False,
    running: bool = True,
    restarts: int = 0,
) -> list[Workspace]:
    """``count`` workspaces named ``{prefix}-{i}``, each with an instance of its generation.

    ``silent``: last heartbeat well past the liveness timeout. ``stuck``: in its state well past
    the provision timeout. ``running``: the backend lists its instance. ``restarts``: automatic
    restarts already in the crash-loop window.
    """
    now = timezone.now()
    made = Workspace.objects.bulk_create(
        Workspace(
            org=org,
            name=f"{prefix}-{i:04d}",
            backend="local",
            status=status,
            generation=3,
            instance_generation=3,
            reconciled_generation=3,
            instance_id=f"rec-{prefix}-{i:04d}",
            url=f"http://127.0.0.1:1/{prefix}/{i}",
            backend_state={"n": i},
            token_hash=f"{i:064d}",
            last_heartbeat_at=now - SILENT_FOR if silent else now,
            uptime_seconds=100 + i,
            active_tasks=1,
            current_task="working",
        )
        for i in range(count)
    )
    if stuck:
        Workspace.objects.filter(pk__in=[w.pk for w in made]).update(
            status_changed_at=now - STUCK_FOR
        )
    if running:
        for workspace in made:
            recording["local"].running[workspace.instance_id] = None
    if restarts:
        record_many(
            Pending(
                EventType.WORKSPACE_PROVISIONING,
                actor="system:liveness",
                workspace_id=workspace.pk,
                org_id=org.pk,
                payload={"from": "offline", "to": "provisioning", "cause": "auto_restart"},
            )
            for workspace in made
            for _ in range(restarts)
        )
    return made


def watching() -> None:
    """The liveness sweep has been watching for long enough to judge silence."""
    now = timezone.now()
    SweepState.objects.update_or_create(
        name="liveness",
        defaults={"last_run_at": now, "watching_since": now - timedelta(days=1)},
    )


def outcome(since: int) -> dict[str, Any]:
    """Every row as it is, and each workspace's events after event ``since``, by name."""
    workspaces = {
        row.pop("name"): {k: v for k, v in row.items() if k != "id"}
        for row in Workspace.objects.values()
    }
    names = dict(Workspace.objects.values_list("pk", "name"))
    events: dict[str, list[tuple[Any, ...]]] = {}
    for event in StructureEvent.objects.filter(pk__gt=since).order_by("pk"):
        key = names.get(event.workspace_id, "")
        events.setdefault(key, []).append(
            (event.event_type, event.actor, event.payload, event.org_id, event.created_at)
        )
    return {"workspaces": workspaces, "events": events}


def last_event_id() -> int:
    return StructureEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
