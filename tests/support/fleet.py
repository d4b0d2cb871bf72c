"""Fleets of a chosen size for the page tests: bulk-created rows, no dispatch, no backend.

The tests that compare a page's queries at two fleet sizes (tests/workspaces/test_fleet_pages.py,
tests/orgs/test_event_log_page.py, tests/workspaces/test_admin.py) need hundreds of rows in a
few statements; the rows' history does not matter to them, only their columns.
"""

from __future__ import annotations

import itertools
from datetime import timedelta

from django.utils import timezone

from orgs.models import Backend, Org
from workspaces.models import EventType, Status, StructureEvent, Workspace

STATES = [Status.ONLINE, Status.DEGRADED, Status.OFFLINE, Status.FAILED, Status.PROVISIONING]
BACKENDS = [Backend.LOCAL, Backend.DOCKER, Backend.CONTROLPLANE]


def bulk_fleet(org: Org, count: int, *, prefix: str = "ws", teams: bool = True) -> list[Workspace]:
    """``count`` workspaces of ``org`` in every state, backend and tier, some never heard from.

    Heartbeat times and creation times repeat (ties the keyset's primary key must break). With
    ``teams``, every tenth workspace leads the nine after it.
    """
    now = timezone.now()
    rows = []
    for i, state in zip(range(count), itertools.cycle(STATES), strict=False):
        rows.append(
            Workspace(
                org=org,
                name=f"{prefix}-{i % 97:03d}-{i:05d}",
                status=state,
                backend=BACKENDS[i % len(BACKENDS)],
                tier=1 + i % 4,
                last_heartbeat_at=None if i % 7 == 0 else now - timedelta(seconds=i % 11),
                restart_count=i % 3,
            )
        )
    created = Workspace.objects.bulk_create(rows)
    # Creation times in groups of five, the same within a group.
    for group in range(0, count, 5):
        ids = [w.pk for w in created[group : group + 5]]
        Workspace.objects.filter(pk__in=ids).update(created_at=now - timedelta(minutes=group))
    if teams:
        for lead in range(0, count, 10):
            members = [w.pk for w in created[lead + 1 : lead + 10]]
            Workspace.objects.filter(pk__in=members).update(parent=created[lead])
    return created


def bulk_events(workspaces: list[Workspace], per_workspace: int = 2) -> None:
    """Events for each workspace (several types), in one INSERT."""
    types = [EventType.WORKSPACE_PROVISIONING, EventType.WORKSPACE_ONLINE, EventType.SECRET_SET]
    StructureEvent.objects.bulk_create(
        StructureEvent(
            event_type=types[(i + n) % len(types)],
            workspace=w,
            org_id=w.org_id,
            actor=f"user:bulk{n}",
            payload={"n": n},
        )
        for i, w in enumerate(workspaces)
        for n in range(per_workspace)
    )
