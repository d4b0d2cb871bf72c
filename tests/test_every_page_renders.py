"""Every page and partial renders, for a workspace in every state, with every event in its past.

An operator opens the console after a crash: whatever state a workspace is in and whatever the
code wrote into its history, no page may answer 5xx. The history is made by the code that writes
events (``tests/support/history.py``), and is checked to hold every event type and every
lifecycle cause, so a new one is either covered here or fails the first test. The pages are
found by walking the URL configuration and the admin's registry, not listed by hand, so a new
page is covered too; a URL argument this file cannot fill fails with its name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from orgs.models import Org, OrgApiToken, OrgMembership, PartnerApiKey
from tests.support.history import (
    copy_history,
    lived_history,
    missing_from,
    workspace_in_each_state,
)
from tests.support.page_walk import PARTIALS, TEMPLATES, admin_urls, get, page_urls, variants
from tests.support.users import make_member
from workspaces.models import EventType, StructureEvent, Workspace

pytestmark = pytest.mark.django_db

ADMIN_TOKEN = "t" * 40


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
        "root": ["configs", "workspace", "no-such-root"],
        "name": ["parity-probe"],
    }
    return World(org, workspaces, lead, fills)


def test_the_history_holds_every_event_type_and_every_lifecycle_cause(world: World) -> None:
    assert missing_from(list(StructureEvent.objects.all())) == []


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
    for url in page_urls(world.fills):
        if url.startswith("/api/"):
            for query in ("", "?include_removed=true", "?limit=500"):
                asked += 1
                found.append(get(api, url + query, {}))
            continue
        for who, client in clients.items():
            for variant, headers in variants(url):
                asked += 1
                if problem := get(client, variant, headers):
                    found.append(f"{who}: {problem}")
    for url in admin_urls():
        asked += 1
        found.append(get(clients["superuser"], url, {}))
    log = reverse("event-log")
    for event_type in EventType.values:
        for who, client in clients.items():
            asked += 1
            if problem := get(client, f"{log}?type={event_type}", {}):
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
