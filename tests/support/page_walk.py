"""Every page of the console, found by walking the URL configuration and the admin's registry.

Used by the tests that render every page for every state (tests/test_every_page_renders.py) and
after real faults (tests/workspaces/test_local_fleet.py): a new page is covered without being
listed, and a URL argument the caller cannot fill fails with its name.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib import admin
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from workspaces import dispatch
from workspaces.models import EventType, StructureEvent

TEMPLATES = Path(django_settings.BASE_DIR) / "templates"
PARTIALS = sorted(
    set(
        re.findall(
            r"{%\s*partialdef\s+([\w-]+)",
            "".join(p.read_text() for p in TEMPLATES.rglob("*.html")),
        )
    )
)
# Routes that answer only to what is not a console page (an agent, a login flow's e-mail link).
NOT_PAGES = {
    "password_reset_confirm",
    "registry-register",
    "registry-heartbeat",
    "registry-update-card",
}


def _routes(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            if pattern.app_name == "admin":
                continue  # the admin is walked through its registry below
            yield from _routes(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern), pattern


def _verbs(name: str) -> list[str]:
    if name == "team-verb":
        return list(dispatch.TEAM_VERBS)
    return list(dispatch.VERBS) + list(dispatch.TEAM_VERBS)


def page_urls(fills: dict[str, list[Any]]) -> Iterator[str]:
    for route, pattern in _routes(get_resolver().url_patterns):
        if pattern.name in NOT_PAGES:
            continue
        kwargs = re.findall(r"<(?:\w+:)?(\w+)>", route)
        choices: list[dict[str, Any]] = [{}]
        for kwarg in kwargs:
            values = _verbs(pattern.name or "") if kwarg == "verb" else fills.get(kwarg)
            if values is None:
                pytest.fail(f"{route}: no values for <{kwarg}>; add it to the fills")
            choices = [{**c, kwarg: v} for c in choices for v in values]
        for chosen in choices:
            url = reverse(pattern.name, kwargs=chosen)
            yield url
            yield from fleet_page_urls(pattern.name or "", url, fills)


def fleet_page_urls(name: str, url: str, fills: dict[str, list[Any]]) -> Iterator[str]:
    """The polled and on-demand parts of the fleet pages (docs/architecture.md §11), asked
    about the walk's workspaces, and a sort, a filter and a cursor that is not one."""
    ids = [str(pk) for pk in fills.get("workspace_id", [])]
    if name == "dashboard":
        yield f"{url}?partial=badges&ids={','.join(ids)}"
        yield f"{url}?sort=-heartbeat&status=online&q=a"
        yield f"{url}?sort=state&cursor=not-a-cursor"
    elif name == "org":
        yield f"{url}?partial=badges&scope=tree&ids={','.join(ids)}"
        yield f"{url}?partial=counts"
        yield f"{url}?cursor=not-a-cursor"
        yield from (f"{url}?partial=children&parent={pk}" for pk in ids[:2])
    elif name == "event-log":
        yield f"{url}?cursor=not-a-cursor"


def admin_urls() -> Iterator[str]:
    for model in admin.site._registry:
        opts = model._meta
        base = f"admin:{opts.app_label}_{opts.model_name}"
        yield reverse(f"{base}_changelist")
        yield reverse(f"{base}_add")  # read-only admins answer 403: fine, it is not a 5xx
        rows = model.objects.all()
        if model is StructureEvent:
            # One event of each type: each renders its own payload.
            firsts = {}
            for event in rows.order_by("id"):
                firsts.setdefault(event.event_type, event)
            rows = list(firsts.values())
        for row in list(rows)[:40]:
            yield reverse(f"{base}_change", args=[row.pk])
            yield reverse(f"{base}_history", args=[row.pk])
    changelist = reverse("admin:workspaces_workspace_changelist")
    for status in ("online", "offline", "removed", "failed"):
        yield f"{changelist}?status__exact={status}"
    events = reverse("admin:workspaces_structureevent_changelist")
    yield from (f"{events}?event_type__exact={t}" for t in EventType.values)


def variants(url: str) -> Iterator[tuple[str, dict[str, str]]]:
    yield url, {}
    yield url, {"HX-Request": "true"}
    for name in PARTIALS:
        joiner = "&" if "?" in url else "?"
        yield f"{url}{joiner}partial={name}", {"HX-Request": "true"}


def get(client: Client, url: str, headers: dict[str, str]) -> str | None:
    """None when the answer is not a server error; otherwise what went wrong."""
    try:
        response = client.get(url, headers=headers)
    except Exception as error:  # the point of this test: any escape is a finding
        return f"GET {url} {headers or ''} raised {type(error).__name__}: {error}"
    if response.status_code >= 500:
        return f"GET {url} {headers or ''} answered {response.status_code}"
    return None


def server_errors(client: Client, urls: list[str], *, api: Client | None = None) -> list[str]:
    """GET every URL (with htmx and each partial for the pages): the requests that failed."""
    found = []
    for url in urls:
        if url.startswith("/api/"):
            if api is not None:
                found.append(get(api, url, {}))
            continue
        for variant, headers in variants(url):
            found.append(get(client, variant, headers))
    return [problem for problem in found if problem]
