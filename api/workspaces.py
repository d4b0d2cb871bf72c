"""``/api/v1/orgs/<slug>/workspaces``: list, create, get, patch, delete, and the verbs.

Every lifecycle change goes through dispatch: create → ``dispatch.create_workspace``, delete →
``dispatch.delete``, the verbs → ``dispatch.VERBS`` / ``expand_team`` / ``collapse_team``, a
parent change → ``dispatch.move_workspace``. Name, role and tier are descriptive edits
(``workspaces.editing``); a tier change applies at the next start. Org tokens and ADMIN_TOKEN
only: partner keys manage orgs, not their workspaces.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse

from api.http import (
    ApiError,
    Fields,
    endpoint,
    ok,
    org_in_reach,
    query_bool,
    query_int,
    query_text,
    read_json,
    require_active,
)
from orgs.bearer import Principal
from orgs.models import Org
from workspaces import dispatch
from workspaces.models import Status, Workspace
from workspaces.selectors import workspace_as_dict
from workspaces.tiers import DEFAULT_TIER, TIER_CHOICES

TIERS = tuple(number for number, _ in TIER_CHOICES)
# Team verbs beside the lifecycle verbs; delete is the DELETE method on the workspace itself.
VERBS = {**{v: f for v, f in dispatch.VERBS.items() if v != "delete"}, **dispatch.TEAM_VERBS}


def _workspace(org: Org, workspace_id: uuid.UUID) -> Workspace:
    row = Workspace.objects.select_related("org").filter(org=org, pk=workspace_id).first()
    if row is None:
        raise Http404
    return row


def _parent(fields: Fields, org: Org, value: Any) -> Workspace | None:
    """The parent a request names (a workspace id of this org, or null)."""
    if value is None:
        return None
    try:
        parent_id = uuid.UUID(str(value))
    except ValueError:
        fields.add("parent", "must be a workspace id or null")
        return None
    parent = Workspace.objects.filter(org=org, pk=parent_id).exclude(status=Status.REMOVED).first()
    if parent is None:
        fields.add("parent", "no live workspace of this org has that id")
    return parent


def _check(fields: Fields, data: dict[str, Any]) -> None:
    """The rule every door shares (``workspaces.fields``), for the editable fields sent."""
    values = {key: data[key] for key in dispatch.EDITABLE if key in data}
    for field, whys in dispatch.edit_problems(values).items():
        for why in whys:
            fields.add(field, why)


def _dump(workspace: Workspace) -> dict[str, Any]:
    workspace.refresh_from_db()
    return workspace_as_dict(workspace)


@endpoint()
def list_workspaces(request: HttpRequest, principal: Principal, slug: str) -> HttpResponse:
    """Filters: status, tier, backend, name, parent (an id, or ``none`` for top-level),
    include_removed; paginated with limit (≤ 500) and offset."""
    org = org_in_reach(principal, slug)
    rows = Workspace.objects.filter(org=org).select_related("org")
    errors: dict[str, list[str]] = {}
    if status := query_text(request, "status", errors):
        if status not in Status.values:
            errors["status"] = [f"must be one of: {', '.join(Status.values)}"]
        rows = rows.filter(status=status)
    elif not query_bool(request, "include_removed"):
        rows = rows.exclude(status=Status.REMOVED)
    if tier := query_text(request, "tier", errors):
        if tier not in {str(t) for t in TIERS}:
            errors["tier"] = ["must be 1, 2, 3 or 4"]
        else:
            rows = rows.filter(tier=int(tier))
    if backend := query_text(request, "backend", errors):
        rows = rows.filter(backend=backend)
    if name := query_text(request, "name", errors):
        rows = rows.filter(name=name)
    if parent := query_text(request, "parent", errors):
        if parent == "none":
            rows = rows.filter(parent__isnull=True)
        else:
            try:
                rows = rows.filter(parent_id=uuid.UUID(parent))
            except ValueError:
                errors["parent"] = ["must be a workspace id or none"]
    if errors:
        raise ApiError(400, "Invalid query.", fields=errors)
    limit = query_int(request, "limit", default=100, low=1, high=500)
    offset = query_int(request, "offset", default=0, low=0, high=10**9)
    rows = rows.order_by("created_at", "pk")
    return ok(
        {
            "workspaces": [workspace_as_dict(w) for w in rows[offset : offset + limit]],
            "count": rows.count(),
            "limit": limit,
            "offset": offset,
        }
    )


@endpoint()
def create_workspace(request: HttpRequest, principal: Principal, slug: str) -> HttpResponse:
    org = org_in_reach(principal, slug)
    data = read_json(request)
    fields = Fields(data, {*dispatch.EDITABLE, "parent"})
    if "name" not in data:
        fields.add("name", "this field is required")
    _check(fields, data)
    parent = _parent(fields, org, data.get("parent"))
    fields.check()
    require_active(org)
    workspace = dispatch.create_workspace(
        org=org,
        name=data["name"].strip(),
        role=data.get("role", ""),
        tier=data.get("tier", DEFAULT_TIER),
        runtime=data.get("runtime", "langgraph"),
        parent=parent,
        workspace_dir=data.get("workspace_dir", ""),
        spec=data.get("spec") or {},
        actor=principal.actor,
    )
    return ok(_dump(workspace), status=201)


@endpoint()
def get_workspace(
    request: HttpRequest, principal: Principal, slug: str, workspace_id: uuid.UUID
) -> HttpResponse:
    return ok(workspace_as_dict(_workspace(org_in_reach(principal, slug), workspace_id)))


@endpoint()
def patch_workspace(
    request: HttpRequest, principal: Principal, slug: str, workspace_id: uuid.UUID
) -> HttpResponse:
    """Change name, role, tier, runtime, workspace_dir, spec and/or parent, all or nothing.

    A tier change applies at the next start; ``restart_required`` says when the agent now runs
    on the old tier.
    """
    org = org_in_reach(principal, slug)
    workspace = _workspace(org, workspace_id)
    data = read_json(request)
    fields = Fields(data, {*dispatch.EDITABLE, "parent"})
    _check(fields, data)
    parent = _parent(fields, org, data["parent"]) if "parent" in data else None
    fields.check()
    if not data:
        raise ApiError(
            400,
            "Nothing to change: send name, role, tier, runtime, workspace_dir, spec and/or parent.",
        )
    with transaction.atomic():
        if "parent" in data:
            dispatch.move_workspace(
                workspace_id=workspace.pk,
                parent_id=parent.pk if parent else None,
                actor=principal.actor,
            )
        changed = dispatch.edit_workspace(
            workspace_id=workspace.pk,
            actor=principal.actor,
            **{key: data[key] for key in dispatch.EDITABLE if key in data},
        )
    dumped = _dump(workspace)
    # A paused, offline or failed agent is not running: its next start uses the new tier anyway.
    running = dumped["status"] in (Status.PROVISIONING, Status.ONLINE, Status.DEGRADED)
    return ok(
        {
            **dumped,
            "changed": sorted(changed),
            "restart_required": bool(dispatch.AT_NEXT_START & set(changed)) and running,
        }
    )


@endpoint()
def delete_workspace(
    request: HttpRequest, principal: Principal, slug: str, workspace_id: uuid.UUID
) -> HttpResponse:
    """Delete through dispatch (cascades to children); 409 when it is already removed."""
    workspace = _workspace(org_in_reach(principal, slug), workspace_id)
    result = dispatch.delete(workspace_id=workspace.pk, actor=principal.actor)
    return ok({**_dump(workspace), "moved": [str(w.pk) for w in result.moved]}, status=202)


@endpoint()
def run_verb(
    request: HttpRequest, principal: Principal, slug: str, workspace_id: uuid.UUID, verb: str
) -> HttpResponse:
    """POST a verb: provision, stop, restart, pause, resume, expand, collapse.

    202: the state changed and the backend call is queued. 409 with the state machine's
    sentence when the verb is not allowed from the current state.
    """
    if verb not in VERBS:
        raise ApiError(404, f"No verb {verb!r}; verbs: {', '.join(VERBS)}.")
    workspace = _workspace(org_in_reach(principal, slug), workspace_id)
    result = VERBS[verb](workspace_id=workspace.pk, actor=principal.actor)
    moved = [str(w.pk) for w in getattr(result, "moved", [result])]
    return ok({**_dump(workspace), "verb": verb, "moved": moved}, status=202)
