"""The plugins panel of the workspace page: what the agent has installed, what the catalogue
offers, install and uninstall (workspaces/dispatch/plugins.py does the work).

The panel is an htmx partial loaded when it scrolls into view (listing asks the backend), and
re-rendered after each change; without JavaScript the panel is its own page and each form posts
and redirects back to it with a message. Viewers see the list; owners and admins change it.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from orgs.access import actor, can_act, check_write
from workspaces import fields, selectors
from workspaces.dispatch import InvalidRequest, Refused, files, plugins
from workspaces.models import Workspace

FAILURES = (InvalidRequest, Refused, files.FileNotFound, files.FilesFailed)


def _panel(
    request: HttpRequest,
    workspace: Workspace,
    *,
    status: int = 200,
    done: str = "",
    refused: str = "",
) -> HttpResponse:
    problem, installed = "", []
    try:
        installed = plugins.installed_plugins(workspace_id=workspace.pk)
    except FAILURES as error:
        problem = str(error)
    names = {plugin.name for plugin in installed}
    context = {
        "workspace": workspace,
        "can_act": can_act(request.user, workspace.org_id),
        "installed": installed,
        "available": [p for p in plugins.available() if p.name not in names],
        "problem": problem,
        "done": done,
        "refused": refused,
    }
    template = "workspaces/plugins.html#plugins" if request.htmx else "workspaces/plugins.html"
    return render(request, template, context, status=status)


@login_required
@require_GET
def plugins_panel(request: HttpRequest, workspace_id: str) -> HttpResponse:
    workspace = selectors.workspace_for(request.user, workspace_id)
    return _panel(request, workspace)


def _change(request: HttpRequest, workspace_id: str, *, install: bool) -> HttpResponse:
    workspace = selectors.workspace_for(request.user, workspace_id)
    check_write(request.user, workspace.org_id)
    name = request.POST.get("name", "")
    error: Exception | None = None
    done = ""
    if fields.unstorable(name):
        error = InvalidRequest("The plugin name must be text without NUL characters.")
    else:
        try:
            if install:
                plugin = plugins.install_plugin(
                    workspace_id=workspace.pk, actor=actor(request.user), name=name
                )
                done = f"Installed {plugin.name} {plugin.version}: the agent has it now."
            else:
                plugins.uninstall_plugin(
                    workspace_id=workspace.pk, actor=actor(request.user), name=name
                )
                done = f"Uninstalled {name}."
        except FAILURES as failed:
            error = failed
    if request.htmx:
        status = 200 if error is None else (400 if isinstance(error, InvalidRequest) else 409)
        return _panel(request, workspace, status=status, done=done, refused=str(error or ""))
    if error is not None:
        messages.error(request, str(error))
    else:
        messages.success(request, done)
    return redirect(reverse("workspace-plugins", args=[workspace.pk]))


@login_required
@require_POST
def plugin_install(request: HttpRequest, workspace_id: str) -> HttpResponse:
    return _change(request, workspace_id, install=True)


@login_required
@require_POST
def plugin_uninstall(request: HttpRequest, workspace_id: str) -> HttpResponse:
    return _change(request, workspace_id, install=False)
