"""``/api/v1/orgs/<slug>/workspaces/<id>/secrets``: set, list keys, delete.

Values go in and never come out: the list shows keys and times only, and no response, event
or log line holds a value. A value set now reaches the agent at its next start.
"""

from __future__ import annotations

import uuid

from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.debug import sensitive_variables

from api import shapes
from api.http import Fields, endpoint, no_content, ok, org_in_reach, read_json
from orgs.bearer import Principal
from orgs.models import Org
from workspaces import vault
from workspaces.models import Workspace


def _workspace(principal: Principal, slug: str, workspace_id: uuid.UUID) -> Workspace:
    org: Org = org_in_reach(principal, slug)
    row = Workspace.objects.filter(org=org, pk=workspace_id).first()
    if row is None:
        raise Http404
    return row


@endpoint()
def list_secrets(
    request: HttpRequest, principal: Principal, slug: str, workspace_id: uuid.UUID
) -> HttpResponse:
    workspace = _workspace(principal, slug, workspace_id)
    return ok({"secrets": [shapes.secret(s) for s in vault.secrets_of(workspace)]})


@endpoint()
@sensitive_variables("data", "value")
def put_secret(
    request: HttpRequest, principal: Principal, slug: str, workspace_id: uuid.UUID, key: str
) -> HttpResponse:
    """Body ``{"value": "..."}``. 201 when created, 200 when replaced."""
    workspace = _workspace(principal, slug, workspace_id)
    data = read_json(request)
    fields = Fields(data, {"value"})
    if "value" not in data:
        fields.add("value", "this field is required")
    fields.check()
    # Created or replaced is decided under the workspace's lock: of concurrent first writes of
    # one key, exactly one answers 201.
    secret, created = vault.put_secret(
        workspace_id=workspace.pk, key=key, value=data["value"], actor=principal.actor
    )
    return ok(
        {**shapes.secret(secret), "applies": "at the workspace's next start"},
        status=201 if created else 200,
    )


@endpoint()
def delete_secret(
    request: HttpRequest, principal: Principal, slug: str, workspace_id: uuid.UUID, key: str
) -> HttpResponse:
    workspace = _workspace(principal, slug, workspace_id)
    try:
        vault.delete_secret(workspace_id=workspace.pk, key=key, actor=principal.actor)
    except vault.SecretNotFound:
        raise Http404 from None
    return no_content()
