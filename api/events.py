"""``/api/v1/events``: the event log, filtered, newest first, paginated with a cursor.

Filters: ``org`` (slug), ``workspace`` (id), ``type``, ``actor`` (exact, e.g. ``token:AbCd1234``),
``since`` / ``until`` (ISO 8601, inclusive / exclusive). ``limit`` (≤ 200) per page; the answer's
``next_cursor`` fetches the next (older) page, and is null on the last one. The cursor is the
last event's id, so pages stay stable while new events arrive at the top.

An org token reads its own org's events; ADMIN_TOKEN reads all, including those that belong to
no org (an orphan instance removed by a sweep).
"""

from __future__ import annotations

import re
import uuid

from django.http import HttpRequest, HttpResponse

from api import shapes
from api.http import (
    ApiError,
    endpoint,
    ok,
    org_in_reach,
    query_int,
    query_moment,
    query_text,
)
from orgs.bearer import Principal
from workspaces.models import EventType, StructureEvent

# An event id (a 64-bit primary key) as this API writes it in next_cursor.
CURSOR = re.compile(r"^[0-9]{1,18}\Z")


@endpoint()
def list_events(request: HttpRequest, principal: Principal) -> HttpResponse:
    rows = StructureEvent.objects.select_related("org")
    if principal.org_id is not None:
        rows = rows.filter(org_id=principal.org_id)
    errors: dict[str, list[str]] = {}
    if slug := query_text(request, "org", errors):
        rows = rows.filter(org=org_in_reach(principal, slug))
    if workspace := query_text(request, "workspace", errors):
        try:
            rows = rows.filter(workspace_id=uuid.UUID(workspace))
        except ValueError:
            errors["workspace"] = ["must be a workspace id"]
    if event_type := query_text(request, "type", errors):
        if event_type not in EventType.values:
            errors["type"] = [f"unknown event type; known: {', '.join(EventType.values)}"]
        rows = rows.filter(event_type=event_type)
    if actor := query_text(request, "actor", errors):
        rows = rows.filter(actor=actor)
    if since := query_moment(request, "since"):
        rows = rows.filter(created_at__gte=since)
    if until := query_moment(request, "until"):
        rows = rows.filter(created_at__lt=until)
    if errors:
        raise ApiError(400, "Invalid query.", fields=errors)
    limit = query_int(request, "limit", default=50, low=1, high=200)
    if cursor := request.GET.get("cursor"):
        # ASCII digits within an id's range: "²".isdigit() is true, and int() refuses it.
        if not CURSOR.match(cursor):
            raise ApiError(400, "Invalid query.", fields={"cursor": ["not a cursor from this API"]})
        rows = rows.filter(pk__lt=int(cursor))
    page = list(rows.order_by("-pk")[: limit + 1])
    more = len(page) > limit
    page = page[:limit]
    return ok(
        {
            "events": [shapes.event(e) for e in page],
            "next_cursor": str(page[-1].pk) if more else None,
        }
    )
