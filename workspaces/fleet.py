"""What a fleet table's query string asks for, and the conditional answers of the polled parts.

The dashboard (and the org page's table) read their filters, sort and cursor from the query
string here; a value that does not parse is ignored with a note the page shows, never a 500
(docs/architecture.md §11). The polled partials answer ``304`` when the version of what they
show is the one the browser already has (``If-None-Match``).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseNotModified, QueryDict
from django.utils.http import parse_etags

from orgs.fields import slug_problem
from orgs.models import Backend
from workspaces.keyset import Order
from workspaces.models import Status
from workspaces.tiers import TIER_CHOICES

PAGE_SIZE = 50
# At most this many ids in one badge poll: a page's rows, with room to spare.
MAX_POLLED_IDS = 100
# Past this many orgs, a form takes an org's slug instead of listing every org.
ORG_SELECT_MAX = 50
# Longest accepted name search; a longer one cannot match a name (max_length 200).
MAX_SEARCH = 200

# key in the query string -> the order it means. Each is served by an index on (column, id)
# (workspaces/models.py); ``heartbeat`` is an annotation that reads a never-seen workspace as
# the oldest heartbeat, so the sorted column is never NULL and one range scan serves a page.
SORTS: dict[str, Order] = {
    o.key: o
    for o in (
        Order("name", "name"),
        Order("-name", "name", descending=True),
        Order("state", "status"),
        Order("-state", "status", descending=True),
        Order("heartbeat", "heartbeat", kind=datetime),
        Order("-heartbeat", "heartbeat", descending=True, kind=datetime),
        Order("created", "created_at", kind=datetime),
        Order("-created", "created_at", descending=True, kind=datetime),
    )
}
DEFAULT_SORT = "name"
SORT_LABELS = {
    "name": "Name",
    "state": "State",
    "heartbeat": "Last heartbeat",
    "created": "Created",
}


@dataclass
class FleetQuery:
    org: str | None = None
    # The state filter ("state", not "status": only dispatch and the registry assign a status).
    state: str | None = None
    backend: str | None = None
    tier: int | None = None
    search: str | None = None
    sort: str = DEFAULT_SORT
    cursor: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def order(self) -> Order:
        return SORTS[self.sort]

    @property
    def filtered(self) -> bool:
        return any((self.org, self.state, self.backend, self.tier, self.search))


def _choice(
    params: QueryDict, name: str, allowed: Iterable[str], notes: list[str], label: str
) -> str | None:
    value = params.get(name, "").strip()
    if not value:
        return None
    if value not in allowed:
        notes.append(f"Ignored the {label} {value[:40]!r}: not one of {', '.join(allowed)}.")
        return None
    return value


def parse(params: QueryDict) -> FleetQuery:
    """The query string's filters, sort and cursor; what does not parse is noted and ignored."""
    notes: list[str] = []
    query = FleetQuery(notes=notes, state=_choice(params, "status", Status.values, notes, "state"))
    org = params.get("org", "").strip()
    if org and slug_problem(org):
        notes.append(f"Ignored the org {org[:40]!r}: not an org's slug.")
    elif org:
        query.org = org
    query.backend = _choice(params, "backend", Backend.values, notes, "backend")
    tiers = [str(value) for value, _ in TIER_CHOICES]
    tier = _choice(params, "tier", tiers, notes, "tier")
    query.tier = int(tier) if tier else None
    search = params.get("q", "").strip()
    if "\x00" in search or len(search) > MAX_SEARCH:
        notes.append("Ignored the name search: too long, or not text.")
    else:
        query.search = search or None
    sort = params.get("sort", "").strip() or DEFAULT_SORT
    if sort not in SORTS:
        notes.append(f"Ignored the sort {sort[:40]!r}: sorted by {DEFAULT_SORT}.")
        sort = DEFAULT_SORT
    query.sort = sort
    query.cursor = params.get("cursor") or None
    return query


def polled_ids(params: QueryDict) -> list[uuid.UUID]:
    """The workspace ids a badge poll asks about; what is not an id is skipped."""
    found = []
    for raw in params.get("ids", "").split(",")[:MAX_POLLED_IDS]:
        try:
            found.append(uuid.UUID(raw.strip()))
        except ValueError:
            continue
    return found


def etag(parts: Iterable[Any]) -> str:
    digest = hashlib.blake2b(repr(list(parts)).encode(), digest_size=12).hexdigest()
    return f'"{digest}"'


def not_modified(request: HttpRequest, tag: str) -> HttpResponse | None:
    """A 304 when the browser already has ``tag``; None when it must be sent.

    Compared weakly: GZipMiddleware marks the tags of what it compresses as weak.
    """
    given = {t.removeprefix("W/") for t in parse_etags(request.headers.get("If-None-Match", ""))}
    if tag in given or "*" in given:
        response = HttpResponseNotModified()
        response["ETag"] = tag
        return response
    return None


def tagged(response: HttpResponse, tag: str) -> HttpResponse:
    """``response`` with its version, kept by the browser and asked again on every poll."""
    response["ETag"] = tag
    # Stored but revalidated every time: the browser sends If-None-Match, a 304 costs no body.
    response["Cache-Control"] = "private, no-cache"
    return response
