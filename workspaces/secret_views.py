"""The secrets part of the workspace page: set a secret, delete one (keys only, ever).

A value goes in through a password field and is never rendered again: not in the page, a
message, an error or an event. Owners and admins set and delete; viewers see the keys;
another org's workspace is 404. Without JavaScript each form posts and redirects back to the
workspace page; with htmx the secrets section re-renders itself.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from orgs.access import actor, can_act, check_write
from workspaces import selectors, vault
from workspaces.lifecycle import Refused
from workspaces.models import Workspace


class SecretForm(forms.Form):
    key = forms.CharField(max_length=vault.MAX_KEY_LENGTH)
    # strip=False: a secret's leading or trailing space may be part of it.
    value = forms.CharField(widget=forms.PasswordInput, strip=False, required=False)


def _section(request: HttpRequest, workspace: Workspace, *, status: int = 200) -> HttpResponse:
    context = {
        "workspace": workspace,
        "secrets": vault.secrets_of(workspace),
        "can_act": can_act(request.user, workspace.org_id),
        # Only when the section is the whole answer; on the full page the state part shows them.
        "show_messages": True,
    }
    return render(request, "workspaces/workspace.html#secrets", context, status=status)


def _back(workspace: Workspace) -> HttpResponse:
    return redirect(reverse("workspace", args=[workspace.pk]) + "#secrets")


@sensitive_post_parameters("value")
@login_required
@require_POST
def secret_set(request: HttpRequest, workspace_id: str) -> HttpResponse:
    workspace = selectors.workspace_for(request.user, workspace_id)
    check_write(request.user, workspace.org_id)
    form = SecretForm(request.POST)
    ok = False
    if not form.is_valid():
        messages.error(request, f"Secret not set: {form.errors.as_text()}")
    else:
        key = form.cleaned_data["key"]
        try:
            vault.set_secret(
                workspace_id=workspace.pk,
                key=key,
                value=form.cleaned_data["value"],
                actor=actor(request.user),
            )
        except ValidationError as invalid:
            # Field messages describe the problem, never quote the value.
            messages.error(request, f"Secret not set: {' '.join(invalid.messages)}")
        except Refused as refused:
            messages.error(request, str(refused))
        else:
            ok = True
            messages.success(
                request,
                f"Secret {key} is set. The agent receives it at its next start "
                "(restart the workspace to apply it now).",
            )
    if request.htmx:
        return _section(request, workspace, status=200 if ok else 400)
    return _back(workspace)


@login_required
@require_http_methods(["GET", "POST"])
def secret_delete(request: HttpRequest, workspace_id: str, key: str) -> HttpResponse:
    workspace = selectors.workspace_for(request.user, workspace_id)
    check_write(request.user, workspace.org_id)
    if not workspace.secrets.filter(key=key).exists():
        raise Http404("No such secret.")
    if request.method == "GET":
        return render(
            request, "workspaces/secret_delete.html", {"workspace": workspace, "key": key}
        )
    try:
        vault.delete_secret(workspace_id=workspace.pk, key=key, actor=actor(request.user))
    except vault.SecretNotFound:
        raise Http404("No such secret.") from None
    messages.success(request, f"Secret {key} is deleted; the agent loses it at its next start.")
    if request.htmx:
        return _section(request, workspace)
    return _back(workspace)
