"""Read queries shared by the pages, the admin, the API and the commands."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Count, QuerySet
from django.shortcuts import get_object_or_404

from orgs.access import User, visible_orgs
from workspaces import template_view
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


def live_descendant_count(workspace: Workspace) -> int:
    """How many workspaces below this one are not removed (what a cascading verb reaches)."""
    count, frontier = 0, [workspace.pk]
    while frontier:
        frontier = list(
            Workspace.objects.filter(parent_id__in=frontier)
            .exclude(status=Status.REMOVED)
            .values_list("pk", flat=True)
        )
        count += len(frontier)
    return count


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


def events_for(
    user: User,
    *,
    org_slug: str | None = None,
    workspace_id: Any = None,
    event_type: str | None = None,
    actor: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[StructureEvent]:
    """The event log as ``user`` may read it, newest first, narrowed by the given filters.

    Members read their orgs' events. Events that belong to no org (an orphan instance the sweep
    removed) say something about the whole console, so only superusers read those.
    """
    rows = StructureEvent.objects.select_related("org", "workspace")
    if not user.is_superuser:
        rows = rows.filter(org__in=visible_orgs(user))
    if org_slug:
        rows = rows.filter(org__slug=org_slug)
    if workspace_id:
        rows = rows.filter(workspace_id=workspace_id)
    if event_type:
        rows = rows.filter(event_type=event_type)
    if actor:
        rows = rows.filter(actor__icontains=actor)
    if since:
        rows = rows.filter(created_at__gte=since)
    if until:
        rows = rows.filter(created_at__lt=until)
    return rows.order_by("-created_at", "-id")


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
        # What the runtime says of itself (docs/registry-protocol.md): "wedged" or "", its
        # metadata (Molecule's capabilities, idle timeout) and this month's spend in cents.
        "runtime_state": workspace.runtime_state,
        "runtime_metadata": workspace.runtime_metadata,
        "monthly_spend": workspace.monthly_spend,
        # What an org template set (workspaces/template_view.py: channel secrets masked,
        # memories counted).
        "template": template_view.settings(workspace.template),
        "created_at": workspace.created_at.isoformat(),
    }


def parity_matrix(*, run_id: object = None) -> dict[str, Any]:
    """Rows by backends: declared verdict (from the code) and the last verified result.

    With ``run_id``, the results of that run (cells fill in while it runs); otherwise, per cell,
    the newest result of any recent run.
    """
    from workspaces import parity
    from workspaces.models import ParityResult, ParityRun

    declared = parity.declared_matrix()
    run = ParityRun.objects.filter(pk=run_id).first() if run_id else ParityRun.objects.first()
    if run_id and run is not None:
        results = list(run.results.select_related("run"))
    else:
        recent = ParityRun.objects.values_list("pk", flat=True)[:20]
        results = list(
            ParityResult.objects.filter(run__in=list(recent)).select_related("run").order_by("-id")
        )
    latest: dict[tuple[str, str], Any] = {}
    for result in results:
        latest.setdefault((result.backend, result.row), result)
    backends = list(declared)
    rows = [
        {
            "row": row,
            "cells": [
                {
                    "backend": backend,
                    "declared": declared[backend][row.id],
                    "result": latest.get((backend, row.id)),
                }
                for backend in backends
            ],
        }
        for row in parity.ROWS
    ]
    failures = [r for r in latest.values() if r.outcome != ParityResult.PASSED]
    total = len(parity.ROWS) * len(run.backends) if run else 0
    return {
        "backends": backends,
        "rows": rows,
        "run": run,
        "progress": {"done": run.results.count() if run else 0, "total": total},
        "drift": [r for r in latest.values() if r.drift],
        "failures": sorted(failures, key=lambda r: (r.backend, r.row)),
    }
