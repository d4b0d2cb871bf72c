"""The one way a structure event is written.

Every event in the append-only log (``StructureEvent``) is created by :func:`record`, so the rules
hold for all of them in one place: the org is the workspace's when the event has a workspace,
the payload is a JSON object, and the actor names who or what acted. ``tests/test_architecture.py``
fails when any other module creates an event by hand.
"""

from __future__ import annotations

from typing import Any

from workspaces.models import EventType, StructureEvent, Workspace


def record(
    event_type: EventType,
    *,
    actor: str,
    payload: dict[str, Any] | None = None,
    workspace: Workspace | None = None,
    org_id: Any = None,
) -> StructureEvent:
    """Append one event. Call it inside the transaction that makes the change it records.

    ``org_id`` defaults to the workspace's org; an event with neither (an orphan the sweep
    stopped) belongs to no org and only superusers see it.
    """
    if workspace is not None:
        if org_id is not None and org_id != workspace.org_id:
            raise ValueError("an event's org is its workspace's org")
        org_id = workspace.org_id
    return StructureEvent.objects.create(
        event_type=event_type,
        workspace=workspace,
        org_id=org_id,
        actor=actor,
        payload=dict(payload or {}),
    )
