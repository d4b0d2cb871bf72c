"""Org pages: the orgs list, an org's page (team tree, workspace table, team verbs), org import
with its live progress page, and the event log.

Each view opens with an access helper (``org_for``, ``actable_orgs``, ``visible_orgs``): another
org's object answers 404, a viewer's POST 403. One template per page; an htmx request gets the
partial it asked for (``page.html#partial``). Team verbs call dispatch and nothing else.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from orgs import importer, selectors
from orgs.access import actable_orgs, actor, can_act, org_for, visible_orgs
from orgs.forms import EventFilterForm, ImportForm, MoveForm, WorkspaceFilterForm
from orgs.models import Org
from workspaces import dispatch, fleet, keyset
from workspaces import selectors as workspace_selectors
from workspaces.lifecycle import Refused
from workspaces.models import Status, StructureEvent
from workspaces.verb_text import consequence

EVENTS_PER_PAGE = 50
PAGE_SIZE = fleet.PAGE_SIZE
EVENT_ORDER = keyset.Order("log", "created_at", descending=True, kind=datetime)
TEAM_VERBS = dispatch.TEAM_VERBS


# --- orgs list ----------------------------------------------------------------------------------


@login_required
def org_list(request: HttpRequest) -> HttpResponse:
    roles = selectors.roles_of(request.user)
    orgs = list(selectors.orgs_for(request.user))
    for org in orgs:
        org.role = roles.get(org.pk, "superuser" if request.user.is_superuser else "")
    context = {"orgs": orgs, "can_import": _can_import(request)}
    return render(request, "orgs/list.html", context)


def _can_import(request: HttpRequest) -> bool:
    return request.user.is_superuser or actable_orgs(request.user).exists()


# --- the org page -------------------------------------------------------------------------------


# The move form lists the org's workspaces by name up to this many; past it, it takes ids.
MOVE_CHOICES = 200
ORG_TABLE_ORDER = keyset.Order("org-name", "name")


def _org_table(request: HttpRequest, org: Org) -> dict[str, Any]:
    """One keyset page of the org's table, by name; a bad cursor shows the first page."""
    filters = WorkspaceFilterForm(request.GET)
    rows = selectors.org_workspaces(org, **filters.filters())
    notes = []
    try:
        page = keyset.page(rows, ORG_TABLE_ORDER, request.GET.get("cursor"), size=PAGE_SIZE)
    except keyset.BadCursor:
        notes.append("That page link is not valid (any more): showing the first page.")
        page = keyset.page(rows, ORG_TABLE_ORDER, None, size=PAGE_SIZE)
    return {
        "filters": filters,
        "filtered": any(filters.filters().values()),
        "page": page,
        "table_ids": ",".join(str(w.pk) for w in page.rows),
        "notes": notes,
    }


def _org_context(request: HttpRequest, org: Org) -> dict[str, Any]:
    acting = can_act(request.user, org.pk)
    counts = selectors.org_counts(org)
    context = {
        "org": org,
        "can_act": acting,
        "tree": selectors.org_tree(org),
        "counts": counts.by_status,
        "total": counts.total,
        **_org_table(request, org),
        "move_form": None,
        "imports": selectors.recent_imports(org),
    }
    if acting:
        live = org.workspaces.exclude(status=Status.REMOVED).order_by("name")
        movable = list(live.only("id", "name")[: MOVE_CHOICES + 1])
        context["move_by_id"] = len(movable) > MOVE_CHOICES
        context["move_form"] = MoveForm(workspaces=[] if context["move_by_id"] else movable)
    return context


@login_required
def org_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """The org page: counts, the team tree (open as far as its budget goes, the rest loaded on
    demand), a keyset page of the table. The counts and the badges on screen poll small
    partials that answer 304 while nothing they show changed (docs/architecture.md §11)."""
    org = org_for(request.user, slug)
    partial = request.GET.get("partial") if request.htmx else None
    if partial == "counts":
        return _org_counts(request, org)
    if partial == "badges":
        return _org_badges(request, org)
    if partial == "children":
        return _org_children(request, org)
    if partial == "table":
        context = {"org": org, **_org_table(request, org)}
        return render(request, "orgs/org.html#table", context)
    context = _org_context(request, org)
    if partial == "tree":
        return render(request, "orgs/org.html#tree", context)
    return render(request, "orgs/org.html", context)


def _org_counts(request: HttpRequest, org: Org) -> HttpResponse:
    counts = selectors.org_counts(org)
    tag = fleet.etag([request.user.pk, org.pk, counts.version])
    if unchanged := fleet.not_modified(request, tag):
        return unchanged
    context = {"org": org, "counts": counts.by_status, "total": counts.total}
    return fleet.tagged(render(request, "orgs/org.html#counts", context), tag)


def _org_badges(request: HttpRequest, org: Org) -> HttpResponse:
    """The badges of the tree's or the table's workspaces on screen (``ids``), out of band."""
    scope = request.GET.get("scope")
    ids = fleet.polled_ids(request.GET)
    if scope not in ("tree", "table") or not ids:
        return HttpResponse(status=204)
    rows = workspace_selectors.badge_rows(request.user, ids, org_id=org.pk)
    tag = fleet.etag([request.user.pk, scope, workspace_selectors.badge_version(rows)])
    if unchanged := fleet.not_modified(request, tag):
        return unchanged
    response = render(request, "orgs/org.html#badges", {"rows": rows, "scope": scope})
    return fleet.tagged(response, tag)


def _org_children(request: HttpRequest, org: Org) -> HttpResponse:
    """A closed lead's team, loaded when the operator opens it."""
    parent_ids = fleet.polled_ids(QueryDict(f"ids={request.GET.get('parent', '')}"))
    if not parent_ids:
        return HttpResponse("No such workspace.", status=400, content_type="text/plain")
    parent = get_object_or_404(org.workspaces, pk=parent_ids[0])
    context = {
        "org": org,
        "can_act": can_act(request.user, org.pk),
        "parent": parent,
        "tree": selectors.subtree(org, parent.pk),
    }
    return render(request, "orgs/org.html#children", context)


def _after_team_change(
    request: HttpRequest, org: Org, *, error: str = "", status: int = 200
) -> HttpResponse:
    """Post/redirect/get for plain requests; the refreshed tree for htmx ones."""
    if error:
        messages.error(request, error)
    if not request.htmx:
        return redirect("org", slug=org.slug)
    response = render(request, "orgs/org.html#tree", _org_context(request, org), status=status)
    if not error:
        # The table and the counts elsewhere on the page refresh themselves on this.
        response["HX-Trigger"] = "workspace-changed"
    return response


@login_required
@require_http_methods(["GET", "POST"])
def team_verb(request: HttpRequest, slug: str, workspace_id: str, verb: str) -> HttpResponse:
    if verb not in TEAM_VERBS:
        raise Http404("No such team verb.")
    org = org_for(request.user, slug, write=True)
    workspace = get_object_or_404(org.workspaces, pk=workspace_id)
    if request.method == "GET":
        # A GET never changes anything: it asks for confirmation (how the page works without JS).
        live_children = workspace.children.exclude(status=Status.REMOVED)
        context = {
            "org": org,
            "workspace": workspace,
            "verb": verb,
            "children": live_children,
            "consequence": consequence(
                verb,
                name=workspace.name,
                live_descendants=workspace_selectors.live_descendant_count(workspace),
            ),
        }
        return render(request, "orgs/team_verb.html", context)
    try:
        result = TEAM_VERBS[verb](workspace_id=workspace.pk, actor=actor(request.user))
    except Refused as refused:
        return _after_team_change(request, org, error=str(refused), status=409)
    except dispatch.InvalidRequest as invalid:
        return _after_team_change(request, org, error=str(invalid), status=400)
    names = ", ".join(w.name for w in result.moved)
    done = "expanded into" if verb == "expand" else "collapsed; removed"
    messages.success(request, f"{workspace.name} {done}: {names}.")
    return _after_team_change(request, org)


@login_required
@require_POST
def workspace_move(request: HttpRequest, slug: str) -> HttpResponse:
    org = org_for(request.user, slug, write=True)
    form = MoveForm(request.POST, workspaces=[])
    if not form.is_valid():
        return _after_team_change(
            request, org, error=f"Not moved: {form.errors.as_text()}", status=400
        )
    workspace = get_object_or_404(org.workspaces, pk=form.cleaned_data["workspace"])
    parent_id = form.cleaned_data["parent"]
    # A parent the user cannot see is 404 like any other object; one of another org they can
    # see is for dispatch to refuse, with its own sentence.
    parent = workspace_selectors.workspace_for(request.user, parent_id) if parent_id else None
    try:
        dispatch.move_workspace(
            workspace_id=workspace.pk,
            parent_id=parent.pk if parent else None,
            actor=actor(request.user),
        )
    except Refused as refused:
        return _after_team_change(request, org, error=str(refused), status=409)
    except dispatch.InvalidRequest as invalid:
        return _after_team_change(request, org, error=str(invalid), status=400)
    where = f"under {parent.name}" if parent else "to the top level"
    messages.success(request, f"Moved {workspace.name} {where}.")
    return _after_team_change(request, org)


# --- import -------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def org_import(request: HttpRequest) -> HttpResponse:
    if not _can_import(request):
        raise PermissionDenied("Importing needs an org you own or administer.")
    form = ImportForm(
        request.POST or None,
        request.FILES or None,
        orgs=actable_orgs(request.user),
        allow_new=request.user.is_superuser,
        initial={"into": request.GET.get("into")},
    )
    context: dict[str, Any] = {"form": form, "problems": [], "source": []}
    if request.method == "GET":
        return render(request, "orgs/import.html", context)
    if not form.is_valid():
        return render(request, "orgs/import.html", context, status=400)
    text = form.cleaned_data["yaml"]
    try:
        result = importer.import_org(
            text,
            actor=actor(request.user),
            into=form.cleaned_data["into"],
            env=form.cleaned_data["env"],
            owner=request.user,
            source=form.cleaned_data["source"],
        )
    except importer.InvalidOrgFile as invalid:
        context["problems"] = invalid.problems
        if isinstance(text, str):
            bad = {p.line for p in invalid.problems}
            context["source"] = [
                {"number": n, "text": line, "bad": n in bad}
                for n, line in enumerate(text.splitlines(), 1)
            ]
            # An uploaded file lands in the text box, so it can be fixed in place and sent again.
            form.data = form.data.copy()
            form.data["text"] = text
        return render(request, "orgs/import.html", context, status=400)
    count = len(result.workspaces)
    files = f" with {result.files} file(s)" if result.files else ""
    messages.success(request, f"Imported {count} workspace(s){files} into {result.org.slug}.")
    for warning in result.warnings:
        messages.warning(request, warning)
    return redirect("org-import-progress", slug=result.org.slug, event_id=result.event.pk)


@login_required
def import_progress(request: HttpRequest, slug: str, event_id: int) -> HttpResponse:
    org = org_for(request.user, slug)
    event = selectors.import_event(org, event_id)
    context = {"org": org, "event": event, "progress": selectors.import_progress(event)}
    if request.htmx:
        return render(request, "orgs/progress.html#progress", context)
    return render(request, "orgs/progress.html", context)


# --- event log ----------------------------------------------------------------------------------


@login_required
def event_log(request: HttpRequest) -> HttpResponse:
    """The log, newest first, one keyset page at a time: no count, no offset, so the millionth
    event costs what the first does (docs/architecture.md §11). Each filter but the actor's has
    an index with the time (workspaces/models.py); the actor's is bounded by the page's LIMIT."""
    form = EventFilterForm(request.GET, orgs=visible_orgs(request.user))
    notes: list[str] = []
    if form.is_valid():
        rows = workspace_selectors.events_for(request.user, **form.filters())
    else:
        # A filter that does not parse matches nothing, rather than silently showing everything.
        rows = StructureEvent.objects.none()
    cursor = request.GET.get("cursor") or None
    try:
        page = keyset.page(rows, EVENT_ORDER, cursor, size=EVENTS_PER_PAGE, pk_kind=int)
    except keyset.BadCursor:
        notes.append("That page link is not valid (any more): showing the newest events.")
        page = keyset.page(rows, EVENT_ORDER, None, size=EVENTS_PER_PAGE, pk_kind=int)
    context: dict[str, Any] = {"form": form, "page": page, "notes": notes}
    if request.htmx:
        return render(request, "events/log.html#log", context)
    # Past a screenful the org filter takes a slug rather than listing every org.
    many = visible_orgs(request.user)[: fleet.ORG_SELECT_MAX + 1].count() > fleet.ORG_SELECT_MAX
    context["org_by_slug"] = many
    return render(request, "events/log.html", context)
