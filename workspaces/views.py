"""Console pages: the fleet dashboard and the workspace page.

One template per page; when the request comes from htmx the view renders only the partial that
asked (``template.html#partial``). Every verb is a POST with CSRF that calls dispatch; a GET on a
verb URL only shows the confirmation form, so the pages work without JavaScript.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from orgs.access import actable_orgs, actor, can_act, check_write
from orgs.fields import slug_problem
from orgs.models import Org
from workspaces import dispatch, lifecycle, selectors, vault
from workspaces.forms import EditWorkspaceForm, NewWorkspaceForm
from workspaces.lifecycle import Refused, TransitionRefused
from workspaces.models import Status, Workspace
from workspaces.verb_text import consequence


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    org = request.GET.get("org") or None
    status = request.GET.get("status") or None
    context = {
        "counts": selectors.fleet_counts(request.user),
        "workspaces": selectors.workspaces_for(request.user, org_slug=org, status=status),
        "filters": {"org": org or "", "status": status or ""},
        "statuses": [s.value for s in Status],
        "form": NewWorkspaceForm(orgs=actable_orgs(request.user)),
    }
    if request.htmx:
        return render(request, "workspaces/dashboard.html#fleet", context)
    return render(request, "workspaces/dashboard.html", context)


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
