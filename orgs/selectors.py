"""Read queries for the org pages: the user's orgs, an org's tree and table, an import's progress.

Every query starts from ``access.visible_orgs`` (or an org the caller already got through an
access helper), so nothing here can show another org's rows.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.shortcuts import get_object_or_404

from orgs.access import User, visible_orgs
from orgs.models import Org, OrgMembership
from workspaces.models import EventType, Status, StructureEvent, Workspace
from workspaces.verb_text import consequence

# The states an import's progress page counts separately; the rest are "other".
PROGRESS_STATES = (Status.PROVISIONING, Status.ONLINE, Status.FAILED)


def orgs_for(user: User) -> QuerySet[Org]:
    """The user's orgs (every org for a superuser) with live-workspace counts per state."""
    live = ~Q(workspaces__status=Status.REMOVED)
    return (
        Org.objects.filter(pk__in=visible_orgs(user))
        .annotate(
            total=Count("workspaces", filter=live),
            online=Count("workspaces", filter=Q(workspaces__status=Status.ONLINE)),
            provisioning=Count("workspaces", filter=Q(workspaces__status=Status.PROVISIONING)),
            failed=Count("workspaces", filter=Q(workspaces__status=Status.FAILED)),
        )
        .order_by("slug")
    )


def roles_of(user: User) -> dict[int, str]:
    """org id -> the user's role there (empty for superusers without memberships)."""
    if not user.is_authenticated:
        return {}
    return dict(OrgMembership.objects.filter(user=user).values_list("org_id", "role"))


def org_workspaces(
    org: Org,
    *,
    status: str | None = None,
    tier: int | None = None,
    backend: str | None = None,
    search: str | None = None,
) -> QuerySet[Workspace]:
    """An org's workspaces for its table; removed ones only when asked for by status."""
    rows = org.workspaces.select_related("parent")
    rows = rows.filter(status=status) if status else rows.exclude(status=Status.REMOVED)
    if tier:
        rows = rows.filter(tier=tier)
    if backend:
        rows = rows.filter(backend=backend)
    if search:
        rows = rows.filter(Q(name__icontains=search) | Q(role__icontains=search))
    return rows.order_by("name", "created_at")


def status_counts(rows: QuerySet[Workspace]) -> dict[str, int]:
    found = Counter(dict(rows.values_list("status").annotate(n=Count("pk")).order_by()))
    return {s.value: found.get(s.value, 0) for s in Status}


@dataclass
class TreeNode:
    workspace: Workspace
    children: list[TreeNode] = field(default_factory=list)

    @property
    def can_expand(self) -> bool:
        """A lead whose spec names children and who leads no live workspace now."""
        spec_children = (self.workspace.spec or {}).get("children")
        return bool(spec_children) and not self.children and self._live

    @property
    def can_collapse(self) -> bool:
        return bool(self.children)

    @property
    def descendants(self) -> int:
        return sum(1 + child.descendants for child in self.children)

    @property
    def collapse_consequence(self) -> str:
        """What the JavaScript dialog says: the same sentence as the no-JS confirmation."""
        return consequence("collapse", name=self.workspace.name, live_descendants=self.descendants)

    @property
    def _live(self) -> bool:
        return self.workspace.status not in (Status.PAUSED, Status.REMOVED)


def tree_of(workspaces: list[Workspace]) -> list[TreeNode]:
    """Nest ``workspaces`` by parent; one whose parent is not among them is a root."""
    nodes = {w.pk: TreeNode(w) for w in workspaces}
    roots = []
    for workspace in workspaces:
        parent = nodes.get(workspace.parent_id)
        (parent.children if parent else roots).append(nodes[workspace.pk])
    return roots


def org_tree(org: Org) -> list[TreeNode]:
    return tree_of(list(org.workspaces.exclude(status=Status.REMOVED).order_by("created_at")))


# --- imports ------------------------------------------------------------------------------------


def import_event(org: Org, event_id: int) -> StructureEvent:
    """The ORG_IMPORTED event ``event_id`` of ``org``; 404 for any other event."""
    return get_object_or_404(
        StructureEvent.objects.filter(org=org, event_type=EventType.ORG_IMPORTED), pk=event_id
    )


@dataclass
class ImportProgress:
    created: int
    by_state: dict[str, int]
    other: int
    tree: list[TreeNode]

    @property
    def settled(self) -> bool:
        """Nothing is still on its way up: every workspace is online, failed or otherwise done."""
        return self.by_state[Status.PROVISIONING] == 0


def import_progress(event: StructureEvent) -> ImportProgress:
    ids: list[Any] = event.payload.get("workspaces", [])
    rows = list(Workspace.objects.filter(pk__in=ids).order_by("created_at"))
    found = Counter(w.status for w in rows)
    by_state = {s.value: found.get(s.value, 0) for s in PROGRESS_STATES}
    return ImportProgress(
        created=len(ids),
        by_state=by_state,
        other=len(rows) - sum(by_state.values()),
        tree=tree_of(rows),
    )


def recent_imports(org: Org, *, limit: int = 5) -> list[StructureEvent]:
    return list(StructureEvent.objects.filter(org=org, event_type=EventType.ORG_IMPORTED)[:limit])
