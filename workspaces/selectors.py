"""Read queries shared by the pages, the admin, the API and the commands."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.core.cache import cache
from django.db.models import Count, DateTimeField, Max, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404

from orgs.access import User, visible_orgs
from orgs.models import Org
from workspaces import keyset, template_view
from workspaces.models import NEVER, Status, StructureEvent, Workspace

if TYPE_CHECKING:
    from workspaces.fleet import FleetQuery


def workspaces_for(
    user: User,
    *,
    org_slug: str | None = None,
    status: str | None = None,
    backend: str | None = None,
    include_removed: bool = False,
) -> QuerySet[Workspace]:
    rows = Workspace.objects.filter(org__in=visible_orgs(user)).select_related("org", "parent")
    rows = _narrowed(rows, org_slug, status, backend, include_removed=include_removed)
    return rows.order_by("org__slug", "created_at")


def _narrowed(
    rows: QuerySet[Workspace],
    org_slug: str | None,
    status: str | None,
    backend: str | None,
    *,
    include_removed: bool,
) -> QuerySet[Workspace]:
    """The filters every workspace list shares: removed ones only when asked for, by status or
    by ``include_removed``."""
    if org_slug:
        rows = rows.filter(org__slug=org_slug)
    if status:
        rows = rows.filter(status=status)
    elif not include_removed:
        rows = rows.exclude(status=Status.REMOVED)
    if backend:
        rows = rows.filter(backend=backend)
    return rows


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
    by_backend: dict[str, int] = field(default_factory=dict)
    total: int = 0


def visible_workspaces(user: User) -> QuerySet[Workspace]:
    """Every workspace the user may see. A superuser's query has no org condition at all: an
    ``org_id IN (every org)`` would keep the database from walking a sort's index."""
    if user.is_authenticated and user.is_superuser:
        return Workspace.objects.all()
    return Workspace.objects.filter(org__in=visible_orgs(user))


def fleet_counts(user: User) -> FleetCounts:
    """Counts by state and by backend in one grouped query (an index-only scan of
    (status, backend) on PostgreSQL)."""
    groups = (
        visible_workspaces(user)
        .values("status", "backend")
        .annotate(n=Count("pk"))
        .order_by("status", "backend")
    )
    by_status: Counter[str] = Counter()
    by_backend: Counter[str] = Counter()
    for group in groups:
        by_status[group["status"]] += group["n"]
        if group["status"] != Status.REMOVED:
            by_backend[group["backend"]] += group["n"]
    return FleetCounts(
        by_status={s.value: by_status.get(s.value, 0) for s in Status},
        by_backend=dict(sorted(by_backend.items())),
        total=sum(n for status, n in by_status.items() if status != Status.REMOVED),
    )


def fleet_changed_at(user: User) -> datetime | None:
    """When a visible workspace last changed state or was created: what the counts depend on.

    One index probe on (status_changed_at) for a superuser. Never ``last_heartbeat_at`` nor
    ``updated_at``: a heartbeat that changes nothing must not make the counts poll re-send.
    """
    return visible_workspaces(user).aggregate(at=Max("status_changed_at"))["at"]


# The largest orgs are a grouping of every workspace (hundreds of milliseconds at 100,000): read
# at most once per this many seconds per viewer (once for all superusers), from the cache.
LARGEST_ORGS_TTL = 30


def largest_orgs(user: User, *, limit: int) -> list[dict[str, Any]]:
    """``largest_orgs_now``, at most ``LARGEST_ORGS_TTL`` seconds old."""
    scope = "all" if user.is_superuser else f"user-{user.pk}"
    key = f"molecule:fleet:largest-orgs:{scope}:{limit}"
    found = cache.get(key)
    if found is None:
        found = largest_orgs_now(user, limit=limit)
        cache.set(key, found, LARGEST_ORGS_TTL)
    return found


def largest_orgs_now(user: User, *, limit: int) -> list[dict[str, Any]]:
    """The ``limit`` orgs with the most live workspaces, with their counts by state: one query.

    The dashboard lists these, not every org: a thousand orgs is the orgs page's to list.
    """
    live = ~Q(status=Status.REMOVED)
    per_state = {
        s.value: Count("pk", filter=Q(status=s))
        for s in (Status.ONLINE, Status.DEGRADED, Status.PROVISIONING, Status.OFFLINE)
    }
    rows = (
        visible_workspaces(user)
        .values("org_id", "org__slug")
        .annotate(total=Count("pk", filter=live), failed=Count("pk", filter=Q(status="failed")))
        .annotate(**per_state)
        .filter(total__gt=0)
        .order_by("-total", "org__slug")[:limit]
    )
    return [{**row, "slug": row["org__slug"]} for row in rows]


# A workspace that never sent a heartbeat sorts as the oldest one. The same expression is
# indexed with the primary key (workspaces/models.py), which serves both directions.
HEARTBEAT = Coalesce("last_heartbeat_at", Value(NEVER), output_field=DateTimeField())


def fleet_rows(
    user: User,
    *,
    org: str | None = None,
    status: str | None = None,
    backend: str | None = None,
    tier: int | None = None,
    search: str | None = None,
    include_removed: bool = False,
) -> QuerySet[Workspace]:
    """The dashboard's table before ordering and paging: filtered on the server.

    ``search`` matches names starting with it, case-insensitively (``UPPER(name) LIKE 'X%'``,
    served on PostgreSQL by an index on that expression, migration 0009).
    """
    rows = visible_workspaces(user).select_related("org", "parent").annotate(heartbeat=HEARTBEAT)
    rows = _narrowed(rows, org, status, backend, include_removed=include_removed)
    if tier is not None:
        rows = rows.filter(tier=tier)
    if search:
        rows = rows.filter(name__istartswith=search)
    return rows


def fleet_page(user: User, query: FleetQuery, *, size: int) -> keyset.Page:
    """One page of the dashboard's table; a bad cursor is ``keyset.BadCursor``."""
    rows = fleet_rows(
        user,
        org=query.org,
        status=query.state,
        backend=query.backend,
        tier=query.tier,
        search=query.search,
    )
    return keyset.page(rows, query.order, query.cursor, size=size)


def badge_rows(user: User, ids: list[Any], *, org_id: Any = None) -> list[Workspace]:
    """The state columns of the workspaces ``ids`` the user may see (the rows on screen), of
    the org ``org_id`` when given."""
    rows = visible_workspaces(user).filter(pk__in=ids)
    if org_id is not None:
        rows = rows.filter(org_id=org_id)
    return list(
        rows.only(
            "id",
            "status",
            "status_changed_at",
            "restart_count",
            "crash_looping",
            "last_exit_at",
            "last_exit_reason",
        ).order_by("pk")
    )


def badge_version(rows: list[Workspace]) -> list[Any]:
    return [
        (w.pk, w.status, w.status_changed_at, w.restart_count, w.crash_looping, w.last_exit_at)
        for w in rows
    ]


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
        # By id, looked up once (an InitPlan), so that (org, created_at, id) serves the page.
        org_id = Org.objects.filter(slug=org_slug).values("pk")[:1]
        rows = rows.filter(org_id=Subquery(org_id))
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
