"""Read queries shared by the pages, the admin, the API and the commands."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, QuerySet
from django.shortcuts import get_object_or_404

from orgs.access import User, visible_orgs
from workspaces.models import Status, StructureEvent, Workspace


def workspaces_for(
    user: User,
    *,
    org_slug: str | None = None,
    status: str | None = None,
    backend: str | None = None,
    include_removed: bool = False,
) -> QuerySet[Workspace]:
    rows = Workspace.objects.filter(org__in=visible_orgs(user)).select_related("org", "parent")
    if org_slug:
        rows = rows.filter(org__slug=org_slug)
    if status:
        rows = rows.filter(status=status)
    elif not include_removed:
        rows = rows.exclude(status=Status.REMOVED)
    if backend:
        rows = rows.filter(backend=backend)
    return rows.order_by("org__slug", "created_at")


def workspace_for(user: User, workspace_id: Any) -> Workspace:
    """The workspace if the user may see it; 404 otherwise (also for other orgs' ids)."""
    return get_object_or_404(
        Workspace.objects.select_related("org", "parent").filter(org__in=visible_orgs(user)),
        pk=workspace_id,
    )


@dataclass
class FleetCounts:
    by_status: dict[str, int]
    by_org: list[dict[str, Any]] = field(default_factory=list)
    by_backend: dict[str, int] = field(default_factory=dict)
    total: int = 0


def fleet_counts(user: User) -> FleetCounts:
    rows = Workspace.objects.filter(org__in=visible_orgs(user))
    by_status = Counter(
        {r["status"]: r["n"] for r in rows.values("status").annotate(n=Count("pk"))}
    )
    per_org: dict[str, dict[str, Any]] = {}
    for r in (
        rows.exclude(status=Status.REMOVED).values("org__slug", "status").annotate(n=Count("pk"))
    ):
        org = per_org.setdefault(r["org__slug"], {"slug": r["org__slug"], "total": 0})
        org[r["status"]] = r["n"]
        org["total"] += r["n"]
    by_backend = {
        r["backend"]: r["n"]
        for r in rows.exclude(status=Status.REMOVED).values("backend").annotate(n=Count("pk"))
    }
    return FleetCounts(
        by_status={s.value: by_status.get(s.value, 0) for s in Status},
        by_org=sorted(per_org.values(), key=lambda o: o["slug"]),
        by_backend=by_backend,
        total=sum(v for k, v in by_status.items() if k != Status.REMOVED),
    )


def events_for_workspace(workspace: Workspace, *, limit: int = 50) -> list[StructureEvent]:
    return list(workspace.events.all()[:limit])


def workspace_as_dict(workspace: Workspace) -> dict[str, Any]:
    return {
        "id": str(workspace.pk),
        "org": workspace.org.slug,
        "name": workspace.name,
        "role": workspace.role,
        "tier": workspace.tier,
        "runtime": workspace.runtime,
        "status": workspace.status,
        "backend": workspace.backend,
        "parent": str(workspace.parent_id) if workspace.parent_id else None,
        "url": workspace.url,
        "instance_id": workspace.instance_id,
        "last_heartbeat_at": (
            workspace.last_heartbeat_at.isoformat() if workspace.last_heartbeat_at else None
        ),
        "last_error_rate": workspace.last_error_rate,
        "active_tasks": workspace.active_tasks,
        "uptime_seconds": workspace.uptime_seconds,
        "created_at": workspace.created_at.isoformat(),
    }
