"""Read queries for the org pages: the user's orgs, an org's tree and table, an import's progress.

Every query starts from ``access.visible_orgs`` (or an org the caller already got through an
access helper), so nothing here can show another org's rows.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, IntegerField, Max, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
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
        # Unindexed, but within one org and bounded by the page's LIMIT.
        rows = rows.filter(Q(name__icontains=search) | Q(role__icontains=search))
    return rows.order_by("name", "pk")


@dataclass
class OrgCounts:
    by_status: dict[str, int]
    total: int
    # For the polled counts' ETag: state columns only, never a heartbeat's time.
    version: list[Any]


def org_counts(org: Org) -> OrgCounts:
    """The org's workspaces by state, and their version, in one grouped query."""
    groups = list(
        org.workspaces.values("status")
        .annotate(
            n=Count("pk"),
            changed=Max("status_changed_at"),
            restarts=Sum("restart_count"),
            looping=Count("pk", filter=Q(crash_looping=True)),
        )
        .order_by("status")
    )
    found = {g["status"]: g["n"] for g in groups}
    return OrgCounts(
        by_status={s.value: found.get(s.value, 0) for s in Status},
        total=sum(n for status, n in found.items() if status != Status.REMOVED),
        version=[tuple(g.values()) for g in groups],
    )


def status_counts(rows: QuerySet[Workspace]) -> dict[str, int]:
    found = Counter(dict(rows.values_list("status").annotate(n=Count("pk")).order_by()))
    return {s.value: found.get(s.value, 0) for s in Status}


@dataclass
class TreeNode:
    workspace: Workspace
    children: list[TreeNode] = field(default_factory=list)
    # On the org page: how many live workspaces the node leads (an annotation), and whether
    # they are all among ``children`` (otherwise the node is shown closed, with a link that
    # loads them). An import's progress tree has every node, so both default to "all here".
    live_children: int | None = None
    loaded: bool = True

    @property
    def child_count(self) -> int:
        return len(self.children) if self.live_children is None else self.live_children

    @property
    def can_expand(self) -> bool:
        """A lead whose spec names children and who leads no live workspace now."""
        spec_children = (self.workspace.spec or {}).get("children")
        return bool(spec_children) and not self.child_count and self._live

    @property
    def can_collapse(self) -> bool:
        return bool(self.child_count)

    @property
    def whole(self) -> bool:
        """Whether every live workspace below this one is in the tree."""
        return self.loaded and all(child.whole for child in self.children)

    @property
    def descendants(self) -> int:
        return sum(1 + child.descendants for child in self.children)

    @property
    def collapse_consequence(self) -> str:
        """What the JavaScript dialog says: the same sentence as the no-JS confirmation.

        Only for a subtree the page holds whole; for any other the page links to the
        confirmation page, which counts the descendants itself."""
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


# The org page's tree opens at most this many nodes (and reads at most TREE_DEPTH levels); the
# rest stay closed behind their lead's "show" link, loaded on demand (docs/architecture.md §11).
TREE_BUDGET = 100
TREE_DEPTH = 4


def _with_child_counts(rows: QuerySet[Workspace]) -> QuerySet[Workspace]:
    live_children = (
        Workspace.objects.filter(parent=OuterRef("pk"))
        .exclude(status=Status.REMOVED)
        .order_by()
        .values("parent")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return rows.annotate(
        live_children=Coalesce(Subquery(live_children), 0, output_field=IntegerField())
    ).order_by("created_at", "pk")


@dataclass
class TreePage:
    roots: list[TreeNode]
    # More top-level workspaces than the budget: the table lists them all.
    more: bool = False

    @property
    def ids(self) -> str:
        """The ids of every node shown, for the badge poll."""
        found: list[str] = []
        stack = list(self.roots)
        while stack:
            node = stack.pop()
            found.append(str(node.workspace.pk))
            stack.extend(node.children)
        return ",".join(found)


def _grow(nodes: list[TreeNode], budget: int) -> None:
    """Open ``nodes`` level by level while the budget lasts: one query a level.

    A lead is opened only with all its live children (never a part of its team); one whose
    team does not fit stays closed, with its count and a link that loads it.
    """
    frontier = [n for n in nodes if n.live_children]
    for _ in range(TREE_DEPTH):
        if not frontier or budget <= 0:
            break
        wanted = sum(n.live_children or 0 for n in frontier)
        live = Workspace.objects.exclude(status=Status.REMOVED)
        rows = _with_child_counts(live.filter(parent__in=[n.workspace.pk for n in frontier]))
        by_parent: dict[Any, list[Workspace]] = {}
        for row in rows[: min(budget, wanted)]:
            by_parent.setdefault(row.parent_id, []).append(row)
        opened: list[TreeNode] = []
        for node in frontier:
            team = by_parent.get(node.workspace.pk, [])
            if len(team) != node.live_children or len(team) > budget:
                node.loaded = False
                continue
            node.children = [TreeNode(w, live_children=w.live_children) for w in team]
            budget -= len(team)
            opened += node.children
        frontier = [n for n in opened if n.live_children]
    for node in frontier:
        node.loaded = False


def org_tree(org: Org, *, budget: int = TREE_BUDGET) -> TreePage:
    """The org's team tree, open as far as ``budget`` nodes allow.

    Roots are the live workspaces with no live parent (a removed lead's members stand alone).
    """
    live = org.workspaces.exclude(status=Status.REMOVED)
    top = live.filter(Q(parent__isnull=True) | Q(parent__status=Status.REMOVED))
    rows = list(_with_child_counts(top)[: budget + 1])
    roots = [TreeNode(w, live_children=w.live_children) for w in rows[:budget]]
    _grow(roots, budget - len(roots))
    return TreePage(roots=roots, more=len(rows) > budget)


def subtree(org: Org, parent_id: Any, *, budget: int = TREE_BUDGET) -> TreePage:
    """The live children of ``parent_id`` (a workspace of ``org``), open as the budget allows."""
    live = org.workspaces.filter(parent_id=parent_id).exclude(status=Status.REMOVED)
    rows = list(_with_child_counts(live)[: budget + 1])
    nodes = [TreeNode(w, live_children=w.live_children) for w in rows[:budget]]
    _grow(nodes, budget - len(nodes))
    return TreePage(roots=nodes, more=len(rows) > budget)


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
