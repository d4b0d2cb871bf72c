"""The one way a structure event is written.

Every event in the append-only log (``StructureEvent``) is created by :func:`record`, so the rules
hold for all of them in one place: the org is the workspace's when the event has a workspace,
the payload is a JSON object, and the actor names who or what acted. ``tests/test_architecture.py``
fails when any other module creates an event by hand.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from workspaces import redaction
from workspaces.models import EventType, StructureEvent, Workspace

# Keys the console itself writes and reads back (the crash-loop count filters on ``cause``): never
# an agent's text, so never masked.
STRUCTURAL = frozenset({"cause"})
# Keys that hold what the agent printed or reported. When the workspace's secrets cannot be
# read (its key is gone), only these are withheld: the rest is the console's own sentence,
# which is what tells the operator how to repair the key.
AGENT_TEXT = frozenset({"console", "sample_error", "current_task"})

# Rows per INSERT: one statement for any sweep's batch, well under PostgreSQL's 65,535
# parameters (6 a row).
BULK_BATCH = 5000


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
    payload = dict(payload or {})
    if workspace is not None:
        if org_id is not None and org_id != workspace.org_id:
            raise ValueError("an event's org is its workspace's org")
        org_id = workspace.org_id
        if payload:
            payload = _masked(payload, redaction.for_workspace(workspace))
    return StructureEvent.objects.create(
        event_type=event_type,
        workspace=workspace,
        org_id=org_id,
        actor=actor,
        payload=payload,
    )


def _masked(payload: dict[str, Any], redactor: redaction.Redactor) -> dict[str, Any]:
    """The payload with the workspace's secrets masked: an event keeps what an agent printed
    (a console tail, an error it reported), and the log is read by every member of the org."""
    if redactor.withholding:
        return {k: redactor.value(v) if k in AGENT_TEXT else v for k, v in payload.items()}
    return {k: v if k in STRUCTURAL else redactor.value(v) for k, v in payload.items()}


@dataclass(frozen=True)
class Pending:
    """One event for :func:`record_many`: what :func:`record` takes, with the workspace by id.

    ``org_id`` is the workspace's org, which the caller read with the row (a sweep's
    ``UPDATE … RETURNING``, an import's rows): the rule of :func:`record` holds because the
    caller passes the pair it read, not an org of its choosing.
    """

    event_type: EventType
    actor: str
    payload: dict[str, Any] = field(default_factory=dict)
    workspace_id: Any = None
    org_id: Any = None


def record_many(events: Iterable[Pending]) -> list[StructureEvent]:
    """Append many events in one INSERT (a sweep's or an import's batch), in the given order.

    The same rules as :func:`record`, for rows the caller holds by id. Call it inside the
    transaction that makes the changes the events record. ``created_at`` and the ids follow the
    list's order, so a workspace's events keep the order they were given in.
    """
    events = list(events)
    # One query for the whole batch: the workspaces' tokens and secrets.
    masking = {e.workspace_id for e in events if e.workspace_id is not None and e.payload}
    redactors = redaction.for_workspaces(masking) if masking else {}
    rows = []
    for event in events:
        if event.workspace_id is not None and event.org_id is None:
            raise ValueError("an event with a workspace names the workspace's org")
        rows.append(
            StructureEvent(
                event_type=event.event_type,
                workspace_id=event.workspace_id,
                org_id=event.org_id,
                actor=event.actor,
                payload=(
                    _masked(dict(event.payload), redactors[event.workspace_id])
                    if event.workspace_id in redactors
                    else dict(event.payload)
                ),
            )
        )
    return StructureEvent.objects.bulk_create(rows, batch_size=BULK_BATCH)
