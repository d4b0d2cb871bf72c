"""``/api/v1/orgs``: create, list, get, delete (archive) and provision status.

Partner keys need the matching scope (orgs:create, orgs:read, orgs:delete, provision:status);
an org token sees only its own org and cannot create or delete orgs; ADMIN_TOKEN does all.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from api import shapes
from api.http import (
    ApiError,
    Fields,
    endpoint,
    ok,
    org_in_reach,
    query_bool,
    read_json,
)
from orgs import services as org_services
from orgs.bearer import Principal
from orgs.models import Backend, Org, PartnerApiKey

S = PartnerApiKey.Scope


@endpoint(scope=S.ORGS_READ)
def list_orgs(request: HttpRequest, principal: Principal) -> HttpResponse:
    rows = principal.orgs()
    if not query_bool(request, "include_archived"):
        rows = rows.exclude(status=Org.OrgStatus.ARCHIVED)
    return ok({"orgs": [shapes.org(row) for row in rows.order_by("slug")]})


@endpoint(scope=S.ORGS_CREATE, org_tokens=False)
def create_org(request: HttpRequest, principal: Principal) -> HttpResponse:
    if principal.org_id is not None:
        raise ApiError(403, "This key is bound to one org; it cannot create orgs.")
    data = read_json(request)
    fields = Fields(data, {"slug", "name", "plan", "backend"})
    fields.check()
    org = org_services.create_org(
        slug=data.get("slug"),
        name=data.get("name"),
        plan=data.get("plan", Org.Plan.FREE),
        backend=data.get("backend", Backend.LOCAL),
        actor=principal.actor,
    )
    return ok(shapes.org(org), status=201)


@endpoint(scope=S.ORGS_READ)
def get_org(request: HttpRequest, principal: Principal, slug: str) -> HttpResponse:
    return ok(shapes.org(org_in_reach(principal, slug)))


@endpoint(scope=S.ORGS_DELETE, org_tokens=False)
def delete_org(request: HttpRequest, principal: Principal, slug: str) -> HttpResponse:
    """Archive the org; 409 while it has live workspaces unless ``?cascade=true``."""
    org = org_in_reach(principal, slug)
    try:
        deleted = org_services.archive_org(
            org_id=org.pk, actor=principal.actor, cascade=query_bool(request, "cascade")
        )
    except org_services.OrgNotFound:
        raise ApiError(404, "Not found.") from None
    org.refresh_from_db()
    return ok({**shapes.org(org), "workspaces_deleted": deleted})


@endpoint(scope=S.PROVISION_STATUS)
def provision_status(request: HttpRequest, principal: Principal, slug: str) -> HttpResponse:
    return ok(org_services.provision_status(org_in_reach(principal, slug)))
