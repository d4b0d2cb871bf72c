"""One rule per field of an org, an API token and a partner key, for every door.

The API, the pages, the admin, the commands and org import ask these functions (as
``workspaces/fields.py`` does for a workspace's fields, whose text and moment rules these build
on), so the same value gets the same answer everywhere. Each returns the end of a sentence saying
what is wrong, or None.

Expiry: at most ``MAX_EXPIRY_DAYS`` (ten years) ahead. A credential meant to outlive that should
have no expiry; a bound also keeps every stored expiry a date Python and every time zone can
show (``9999-12-31T23:59:59-01:00`` is year 10000 in UTC, which PostgreSQL stores and no page
could read back).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from django.utils import timezone

from orgs.models import Backend, Org
from workspaces.fields import MOMENT_PROBLEM, moment, text_problem

# The column sizes in orgs/models.py.
MAX_SLUG = 64
MAX_NAME = 200
MAX_CREDENTIAL_NAME = 100
# Slugs that name pages under /orgs/ (orgs/urls.py: /orgs/import/), never an org.
RESERVED_SLUGS = frozenset({"import"})
SLUG = re.compile(r"^[-a-zA-Z0-9_]+\Z")
MAX_EXPIRY_DAYS = 3650


def slug_problem(value: object) -> str | None:
    if not isinstance(value, str) or not value:
        return "is required: the org's short name in URLs, e.g. acme"
    if len(value) > MAX_SLUG or not SLUG.match(value):
        return f"{value[:80]!r} is not a slug: use up to {MAX_SLUG} letters, digits, - and _"
    if value in RESERVED_SLUGS:
        return f"{value!r} is reserved for a console page"
    return None


def name_problem(value: object) -> str | None:
    return text_problem(value, max_length=MAX_NAME, required=True)


def plan_problem(value: object) -> str | None:
    if value in Org.Plan.values:
        return None
    return f"unknown plan {str(value)[:40]!r}: use {', '.join(Org.Plan.values)}"


def backend_problem(value: object) -> str | None:
    if value in Backend.values:
        return None
    return f"unknown backend {str(value)[:40]!r}: use {', '.join(Backend.values)}"


def credential_name_problem(value: object) -> str | None:
    """The name of an API token or a partner key: who or what uses it."""
    if not isinstance(value, str) or not value.strip():
        return "a name is required (what or who will use it)"
    if len(value.strip()) > MAX_CREDENTIAL_NAME:
        return f"must be at most {MAX_CREDENTIAL_NAME} characters"
    return text_problem(value, max_length=10**9)


def expires_at_problem(value: datetime | None, *, now: datetime | None = None) -> str | None:
    """An expiry: in the future, at most ten years ahead (None: never expires)."""
    if value is None:
        return None
    now = now or timezone.now()
    try:
        late = value > now + timedelta(days=MAX_EXPIRY_DAYS)
        early = value <= now
    except (OverflowError, TypeError):  # a naive or unconvertible moment
        return MOMENT_PROBLEM
    if early:
        return "must be in the future"
    if late:
        return f"must be at most {MAX_EXPIRY_DAYS} days (10 years) from now"
    return None


def expires_in_days_problem(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return "must be a whole number of days"
    if not 1 <= value <= MAX_EXPIRY_DAYS:
        return f"must be 1 to {MAX_EXPIRY_DAYS} days"
    return None


def expires_at_from_text(value: object) -> tuple[datetime | None, str | None]:
    """``expires_at`` as a door receives it (ISO 8601 text or nothing): (moment, problem)."""
    if value is None or value == "":
        return None, None
    parsed = moment(value)
    if parsed is None:
        return None, MOMENT_PROBLEM
    return parsed, expires_at_problem(parsed)


def expiry_in_days(days: int, *, now: datetime | None = None) -> datetime:
    """The moment ``days`` (checked by :func:`expires_in_days_problem`) from now."""
    return (now or timezone.now()) + timedelta(days=days)
