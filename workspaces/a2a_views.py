"""The message panel of the workspace page: send the agent a message, see its answer.

One form posts text; dispatch forwards it as an A2A ``message/send`` (workspaces/dispatch/a2a.py)
and records the exchange as an event (sizes and status, never the text). With htmx the panel
re-renders itself with the exchange below the form; without JavaScript the post redirects back
to the page, which shows the answer as a message. Owners and admins only: viewers see no form
and get 403; another org's workspace is 404.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from orgs.access import actor, can_act, check_write
from workspaces import dispatch, selectors
from workspaces.dispatch.a2a import MAX_TEXT
from workspaces.models import Workspace

# What a flashed answer keeps: the page is for reading it, the API for the whole response.
FLASH_CHARS = 2000


class MessageForm(forms.Form):
    text = forms.CharField(max_length=MAX_TEXT, strip=False, widget=forms.Textarea)


def _panel(
    request: HttpRequest, workspace: Workspace, status: int, **context: object
) -> HttpResponse:
    context |= {"workspace": workspace, "can_act": can_act(request.user, workspace.org_id)}
    return render(request, "workspaces/a2a.html#a2a", context, status=status)


@login_required
@require_POST
def message_send(request: HttpRequest, workspace_id: str) -> HttpResponse:
    workspace = selectors.workspace_for(request.user, workspace_id)
    check_write(request.user, workspace.org_id)
    form = MessageForm(request.POST)
    text = request.POST.get("text", "")
    status, exchange, problem = 200, None, ""
    if not form.is_valid():
        status, problem = 400, f"Not sent: {form.errors.as_text()}"
    else:
        try:
            exchange = dispatch.send_message(
                workspace_id=workspace.pk, actor=actor(request.user), text=form.cleaned_data["text"]
            )
        except dispatch.InvalidRequest as invalid:
            status, problem = 400, f"Not sent: {invalid}"
        except dispatch.Refused as refused:
            status, problem = 409, f"Not sent: {refused}"
        except dispatch.AgentFailed as failed:
            # Sent, and recorded: the agent's failure is news, not the operator's mistake.
            problem = f"No answer: {failed.message}"
    if request.htmx:
        return _panel(request, workspace, status, sent=text, exchange=exchange, problem=problem)
    if exchange is not None:
        answer = exchange.text
        if len(answer) > FLASH_CHARS:
            answer = answer[:FLASH_CHARS] + "…"
        messages.success(request, f"{workspace.name} answered: {answer}")
    else:
        messages.error(request, problem)
    return redirect(reverse("workspace", args=[workspace.pk]) + "#a2a")
