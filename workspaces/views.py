"""Console pages: the fleet dashboard and the workspace page.

One template per page; when the request comes from htmx the view renders only the partial that
asked (``template.html#partial``). Every verb is a POST with CSRF that calls dispatch; a GET on a
verb URL only shows the confirmation form, so the pages work without JavaScript.
"""

from __future__ import annotations

import time
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from orgs.access import actable_orgs, actor, can_act, check_write, visible_orgs
from orgs.fields import slug_problem
from orgs.models import Backend, Org
from workspaces import dispatch, fleet, keyset, lifecycle, selectors, vault
from workspaces.forms import EditWorkspaceForm, NewWorkspaceForm
from workspaces.lifecycle import Refused, TransitionRefused
from workspaces.models import Status, Workspace
from workspaces.tiers import TIER_CHOICES
from workspaces.verb_text import consequence

# The dashboard's table of orgs lists the largest few; the orgs page lists them all.
TOP_ORGS = 10


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    """The fleet: counts, the largest orgs and one page of the workspace table.

    Its cost does not grow with the fleet (docs/architecture.md §11): the table is a keyset
    page of ``fleet.PAGE_SIZE`` rows, the counts are two grouped queries, and the live parts
    poll small partials (``partial=counts``, ``partial=badges``) that answer 304 when nothing
    they show changed.
    """
    partial = request.GET.get("partial") if request.htmx else None
    if partial == "counts":
        return _dashboard_counts(request)
    if partial == "badges":
        return _dashboard_badges(request)
    query = fleet.parse(request.GET)
    try:
        page = selectors.fleet_page(request.user, query, size=fleet.PAGE_SIZE)
    except keyset.BadCursor:
        query.notes.append("That page link is not valid (any more): showing the first page.")
        query.cursor = None
        page = selectors.fleet_page(request.user, query, size=fleet.PAGE_SIZE)
    context: dict[str, Any] = {
        "query": query,
        "page": page,
        "poll_ids": ",".join(str(w.pk) for w in page.rows),
        "headers": _sort_headers(query.sort),
        "statuses": Status.values,
        "backends": Backend.values,
        "tiers": [value for value, _ in TIER_CHOICES],
        "sorts": list(fleet.SORTS),
    }
    if request.htmx:
        return render(request, "workspaces/dashboard.html#fleet", context)
    context.update(_counts_context(request))
    orgs = actable_orgs(request.user)
    context["form"] = NewWorkspaceForm(orgs=orgs)
    # Past a screenful the create form takes the org's slug: a select of a thousand orgs
    # would make the page grow with the fleet.
    context["actable"] = orgs[: fleet.ORG_SELECT_MAX + 1].count()
    context["org_select_max"] = fleet.ORG_SELECT_MAX
    return render(request, "workspaces/dashboard.html", context)


def _sort_headers(current: str) -> list[dict[str, Any]]:
    """Each sortable column: the sort its link asks for (the other direction when it is the
    current one) and the arrow it shows."""
    headers = []
    for key, label in fleet.SORT_LABELS.items():
        active = current.lstrip("-") == key
        descending = current.startswith("-")
        headers.append(
            {
                "label": label,
                "sort": (key if descending else f"-{key}") if active else key,
                "arrow": ("↓" if descending else "↑") if active else "",
            }
        )
    return headers


def _counts_context(request: HttpRequest) -> dict[str, Any]:
    return {
        "counts": selectors.fleet_counts(request.user),
        "orgs": selectors.largest_orgs(request.user, limit=TOP_ORGS),
        "org_total": visible_orgs(request.user).count(),
    }


def _dashboard_counts(request: HttpRequest) -> HttpResponse:
    """The counts and the largest orgs; 304 while no workspace changed state or was created.

    The version is the latest state change (one index probe), and the minute: a change whose
    transaction committed after a later-stamped one was read is re-sent within a minute.
    """
    changed = selectors.fleet_changed_at(request.user)
    tag = fleet.etag([request.user.pk, changed, int(time.time() // 60)])
    if unchanged := fleet.not_modified(request, tag):
        return unchanged
    response = render(request, "workspaces/dashboard.html#counts", _counts_context(request))
    return fleet.tagged(response, tag)


def _dashboard_badges(request: HttpRequest) -> HttpResponse:
    """The state cells of the rows on screen (``ids``), swapped in out of band.

    304 while none of them changed state, restarted or started crash-looping. The last
    heartbeat's age is not part of it: it refreshes when the table does (reload, paging,
    sorting, a verb), so a heartbeat that changes nothing costs the poll nothing.
    """
    ids = fleet.polled_ids(request.GET)
    if not ids:
        return HttpResponse(status=204)
    rows = selectors.badge_rows(request.user, ids)
    tag = fleet.etag([request.user.pk, selectors.badge_version(rows)])
    if unchanged := fleet.not_modified(request, tag):
        return unchanged
    response = render(request, "workspaces/dashboard.html#badges", {"rows": rows})
    return fleet.tagged(response, tag)


@login_required
@require_POST
def workspace_create(request: HttpRequest) -> HttpResponse:
    slug = request.POST.get("org", "")
    # A value no slug can be (a NUL: PostgreSQL refuses it even in a query) is the form's to refuse.
    if not slug_problem(slug) and (target := Org.objects.filter(slug=slug).first()):
        # Like every other write: another org's slug is 404, a viewer's own org 403.
        check_write(request.user, target.pk)
    form = NewWorkspaceForm(request.POST, orgs=actable_orgs(request.user))
    if not form.is_valid():
        messages.error(request, f"Workspace not created: {form.errors.as_text()}")
        return redirect("dashboard")
    workspace = dispatch.create_workspace(actor=actor(request.user), **form.cleaned_data)
    messages.success(request, f"Workspace {workspace.name} is provisioning.")
    return redirect("workspace", workspace_id=workspace.pk)


def _verbs_for(workspace: Workspace, live_descendants: int) -> list[dict[str, object]]:
    return [
        {
            "name": verb,
            "allowed": lifecycle.is_allowed(verb, workspace.status),
            "destructive": verb in dispatch.DESTRUCTIVE_VERBS,
            "consequence": consequence(
                verb, name=workspace.name, live_descendants=live_descendants
            ),
        }
        for verb in dispatch.VERBS
    ]


def _state_context(request: HttpRequest, workspace: Workspace) -> dict[str, object]:
    return {
        "workspace": workspace,
        "verbs": _verbs_for(workspace, selectors.live_descendant_count(workspace)),
        "can_act": can_act(request.user, workspace.org_id),
    }


@login_required
def workspace_detail(request: HttpRequest, workspace_id: str) -> HttpResponse:
    workspace = selectors.workspace_for(request.user, workspace_id)
    context = {
        **_state_context(request, workspace),
        "events": selectors.events_for_workspace(workspace),
        "children": selectors.workspaces_for(request.user).filter(parent=workspace),
        "secrets": vault.secrets_of(workspace),
    }
    partial = request.GET.get("partial")
    if request.htmx and partial == "console":
        context["console"] = dispatch.console(workspace_id=workspace.pk)
        return render(request, "workspaces/workspace.html#console", context)
    if request.htmx and partial in ("state", "events"):
        return render(request, f"workspaces/workspace.html#{partial}", context)
    context["console"] = dispatch.console(workspace_id=workspace.pk)
    return render(request, "workspaces/workspace.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def workspace_edit(request: HttpRequest, workspace_id: str) -> HttpResponse:
    """Name, role, tier, runtime and directory, through dispatch.edit_workspace."""
    workspace = selectors.workspace_for(request.user, workspace_id)
    check_write(request.user, workspace.org_id)
    fields = list(EditWorkspaceForm.base_fields)
    if request.method == "GET":
        initial = {name: getattr(workspace, name) for name in fields}
        form = EditWorkspaceForm(initial=initial)
        return render(request, "workspaces/edit.html", {"workspace": workspace, "form": form})
    form = EditWorkspaceForm(request.POST)
    status = 400
    if form.is_valid():
        try:
            changed = dispatch.edit_workspace(
                workspace_id=workspace.pk, actor=actor(request.user), **form.cleaned_data
            )
        except Refused as refused:
            form.add_error(None, str(refused))
            status = 409
        else:
            if changed:
                later = sorted(dispatch.AT_NEXT_START & set(changed))
                note = f" ({', '.join(later)}: applies at the next start)" if later else ""
                messages.success(request, f"Saved {', '.join(sorted(changed))}{note}.")
            else:
                messages.info(request, "Nothing changed.")
            return redirect("workspace", workspace_id=workspace.pk)
    context = {"workspace": workspace, "form": form}
    return render(request, "workspaces/edit.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def workspace_verb(request: HttpRequest, workspace_id: str, verb: str) -> HttpResponse:
    if verb not in dispatch.VERBS:
        raise Http404("No such verb.")
    workspace = selectors.workspace_for(request.user, workspace_id)
    check_write(request.user, workspace.org_id)
    if request.method == "GET":
        context: dict[str, object] = {"workspace": workspace, "verb": verb}
        if lifecycle.is_allowed(verb, workspace.status):
            context["consequence"] = consequence(
                verb,
                name=workspace.name,
                live_descendants=selectors.live_descendant_count(workspace),
            )
        else:
            # Say why instead of offering a button that can only be refused.
            context["refusal"] = str(
                TransitionRefused(
                    workspace_name=workspace.name, cause=verb, current=workspace.status
                )
            )
        return render(request, "workspaces/confirm.html", context)
    try:
        dispatch.VERBS[verb](workspace_id=workspace.pk, actor=actor(request.user))
    except Refused as refused:
        messages.error(request, str(refused))
        if request.htmx:
            response = _state_partial(request, workspace.pk)
            response.status_code = 409
            return response
        return redirect("workspace", workspace_id=workspace.pk)
    workspace.refresh_from_db()
    # The verb is recorded and the backend call queued, not done: the live state says the rest.
    requested = f"{verb.capitalize()} requested for {workspace.name}"
    messages.success(request, f"{requested}; it is now {workspace.status}.")
    if request.htmx:
        response = _state_partial(request, workspace.pk)
        response["HX-Trigger"] = "workspace-changed"
        return response
    return redirect("workspace", workspace_id=workspace.pk)


def _state_partial(request: HttpRequest, workspace_id: object) -> HttpResponse:
    workspace = selectors.workspace_for(request.user, workspace_id)
    return render(request, "workspaces/workspace.html#state", _state_context(request, workspace))
