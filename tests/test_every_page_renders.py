"""Every page and partial renders, for a workspace in every state, with every event in its past.

An operator opens the console after a crash: whatever state a workspace is in and whatever the
code wrote into its history, no page may answer 5xx. The history is made by the code that writes
events (``tests/support/history.py``), and is checked to hold every event type and every
lifecycle cause, so a new one is either covered here or fails the first test. The pages are
found by walking the URL configuration and the admin's registry, not listed by hand, so a new
page is covered too; a URL argument this file cannot fill fails with its name.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib import admin
from django.contrib.auth.models import User
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from orgs.models import Org, OrgApiToken, OrgMembership, PartnerApiKey
from tests.support.history import (
    copy_history,
    lived_history,
    missing_from,
    workspace_in_each_state,
)
from tests.support.users import make_member
from workspaces import dispatch
from workspaces.models import EventType, StructureEvent, Workspace

pytestmark = pytest.mark.django_db

ADMIN_TOKEN = "t" * 40
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
NOT_PAGES = {"password_reset_confirm", "registry-register", "registry-heartbeat"}


@dataclass
class World:
    org: Org
    workspaces: list[Workspace]
    lead: Workspace
    fills: dict[str, list[Any]]


@pytest.fixture
def world(recording: dict[str, Any], settings: Any) -> World:
    settings.ADMIN_TOKEN = ADMIN_TOKEN
    org = lived_history(recording, settings)
    lived = list(StructureEvent.objects.filter(workspace__org=org).order_by("id"))
    states = workspace_in_each_state(org)
    for workspace in states.values():
        copy_history(lived, onto=workspace)
    lead = Workspace.objects.get(org=org, name="Lead")
    workspaces = [*states.values(), lead]
    imported = StructureEvent.objects.filter(event_type=EventType.ORG_IMPORTED).first()
    assert imported is not None
    fills: dict[str, list[Any]] = {
        "slug": [org.slug],
        "workspace_id": [ws.pk for ws in workspaces],
        "key": ["OPENAI_API_KEY"],
        "token_id": list(OrgApiToken.objects.values_list("pk", flat=True)),
        "key_id": list(PartnerApiKey.objects.values_list("pk", flat=True)),
        "event_id": [imported.pk],
    }
    return World(org, workspaces, lead, fills)


def test_the_history_holds_every_event_type_and_every_lifecycle_cause(world: World) -> None:
    assert missing_from(list(StructureEvent.objects.all())) == []


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


def page_urls(world: World) -> Iterator[str]:
    for route, pattern in _routes(get_resolver().url_patterns):
        if pattern.name in NOT_PAGES:
            continue
        kwargs = re.findall(r"<(?:\w+:)?(\w+)>", route)
        choices: list[dict[str, Any]] = [{}]
        for kwarg in kwargs:
            values = _verbs(pattern.name or "") if kwarg == "verb" else world.fills.get(kwarg)
            if values is None:
                pytest.fail(f"{route}: no values for <{kwarg}>; add it to the world's fills")
            choices = [{**c, kwarg: v} for c in choices for v in values]
        for chosen in choices:
            yield reverse(pattern.name, kwargs=chosen)


def admin_urls(world: World) -> Iterator[str]:
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


def _get(client: Client, url: str, headers: dict[str, str]) -> str | None:
    """None when the answer is not a server error; otherwise what went wrong."""
    try:
        response = client.get(url, headers=headers)
    except Exception as error:  # the point of this test: any escape is a finding
        return f"GET {url} {headers or ''} raised {type(error).__name__}: {error}"
    if response.status_code >= 500:
        return f"GET {url} {headers or ''} answered {response.status_code}"
    return None


def _client(user: User | None = None, **defaults: str) -> Client:
    client = Client(raise_request_exception=True, **defaults)
    if user is not None:
        client.force_login(user)
    return client


def test_no_page_or_partial_answers_5xx_for_any_state_or_event(
    world: World, superuser: User
) -> None:
    viewer = make_member(world.org, "vera", OrgMembership.Role.VIEWER)
    clients = {"superuser": _client(superuser), "viewer": _client(viewer)}
    api = _client(HTTP_AUTHORIZATION=f"Bearer {ADMIN_TOKEN}")
    found, asked = [], 0
    for url in page_urls(world):
        if url.startswith("/api/"):
            for query in ("", "?include_removed=true", "?limit=500"):
                asked += 1
                found.append(_get(api, url + query, {}))
            continue
        for who, client in clients.items():
            for variant, headers in variants(url):
                asked += 1
                if problem := _get(client, variant, headers):
                    found.append(f"{who}: {problem}")
    for url in admin_urls(world):
        asked += 1
        found.append(_get(clients["superuser"], url, {}))
    log = reverse("event-log")
    for event_type in EventType.values:
        for who, client in clients.items():
            asked += 1
            if problem := _get(client, f"{log}?type={event_type}", {}):
                found.append(f"{who}: {problem}")
    problems = [p for p in found if p]
    assert PARTIALS, f"no {{% partialdef %}} found under {TEMPLATES}"
    assert problems == [], f"{len(problems)} of {asked} requests failed:\n" + "\n".join(problems)
    # The walk really covered the world: every workspace page was among the requests.
    assert asked > 20 * len(world.workspaces)


def test_the_workspace_page_says_it_was_restarted_when_and_why(
    world: World, superuser: User
) -> None:
    # The first Member: restarted by the sweeps, then removed by the collapse.
    member = Workspace.objects.get(org=world.org, name="Member", restart_count__gte=1)
    content = _client(superuser).get(reverse("workspace", args=[member.pk])).content.decode()
    assert member.restart_count >= 1
    assert f"{member.restart_count} automatic" in content
    assert "last exit" in content
    assert member.last_exit_reason in content
    assert "Crash loop" in content or "restarted" in content
