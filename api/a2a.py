"""``POST /api/v1/orgs/<slug>/workspaces/<id>/a2a``: Molecule's A2A proxy route.

The body is the A2A JSON-RPC 2.0 request (``message/send``), the answer the agent's JSON-RPC
response, with the workspace's secrets masked. Refusals: 400 for a body that is not such a
request, 413 for one over ``MOLECULE_A2A_MAX_REQUEST_BYTES``, 409 when the workspace is not
online or degraded (or its backend cannot forward), 502 when the agent cannot be reached or
answers something unusable, 504 when it does not answer within ``MOLECULE_A2A_TIMEOUT``; each
with ``error`` saying why. Org tokens of the workspace's org and ADMIN_TOKEN, like every
workspace route.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse

from api.http import ApiError, endpoint, ok, org_in_reach, read_bounded
from orgs.bearer import Principal
from workspaces import dispatch
from workspaces.models import Workspace


def _body(request: HttpRequest) -> bytes:
    return read_bounded(request, settings.MOLECULE_A2A_MAX_REQUEST_BYTES)


@endpoint()
def send(
    request: HttpRequest, principal: Principal, slug: str, workspace_id: uuid.UUID
) -> HttpResponse:
    org = org_in_reach(principal, slug)
    if not Workspace.objects.filter(org=org, pk=workspace_id).exists():
        raise Http404
    body = _body(request)
    try:
        exchange = dispatch.send_message(
            workspace_id=workspace_id, actor=principal.actor, request=body
        )
    except dispatch.RequestTooLarge as refused:
        raise ApiError(413, str(refused)) from None
    except dispatch.AgentFailed as failed:
        raise ApiError(504 if failed.timeout else 502, failed.message) from None
    return ok(exchange.answer)
