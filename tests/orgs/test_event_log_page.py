"""The event log page: whose events each caller reads, its filters, pagination and htmx answer,
and how it shows a payload.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from orgs.models import Org
from tests.support.org_pages import HTMX, login, team_url
from workspaces.models import EventType, StructureEvent, Workspace

# Every test here uses the recording backends (tests/support/fakes.py); none starts a real agent.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("recording")]


# --- the event log ------------------------------------------------------------------------------


def event_ids(content: str) -> list[int]:
    return [int(n) for n in re.findall(r'data-event="(\d+)"', content)]


def log(client: Client, **query: Any) -> str:
    response = client.get(reverse("event-log"), query)
    assert response.status_code == 200
    return response.content.decode()


@pytest.fixture
def orphan_event(db: None) -> StructureEvent:
    return StructureEvent.objects.create(
        event_type=EventType.ORPHAN_REMOVED,
        actor="system:sweep",
        payload={"backend": "local", "instance_id": "local:stray"},
    )


def test_a_member_reads_only_their_orgs_events(
    org: Org,
    owner: User,
    tree: dict[str, Workspace],
    theirs: Workspace,
    orphan_event: StructureEvent,
) -> None:
    shown = set(event_ids(log(login(owner))))
    ours = set(StructureEvent.objects.filter(org=org).values_list("pk", flat=True))
    assert shown == ours


def test_a_viewer_reads_their_orgs_events_too(
    org: Org, viewer: User, tree: dict[str, Workspace], theirs: Workspace
) -> None:
    shown = set(event_ids(log(login(viewer))))
    assert shown == set(StructureEvent.objects.filter(org=org).values_list("pk", flat=True))


def test_a_superuser_reads_every_event_including_those_of_no_org(
    org: Org,
    superuser: User,
    tree: dict[str, Workspace],
    theirs: Workspace,
    orphan_event: StructureEvent,
) -> None:
    shown = set(event_ids(log(login(superuser))))
    assert shown == set(StructureEvent.objects.values_list("pk", flat=True))
    assert orphan_event.pk in shown


def test_a_member_asking_for_another_orgs_events_sees_none(
    org: Org, outsider: User, tree: dict[str, Workspace], theirs: Workspace
) -> None:
    content = log(login(outsider), org="acme")
    assert event_ids(content) == []
    assert "Select a valid choice." in content


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (
            {"type": "ORG_IMPORTED"},
            lambda: StructureEvent.objects.filter(event_type="ORG_IMPORTED"),
        ),
        ({"actor": "OLIVIA"}, lambda: StructureEvent.objects.filter(actor="user:olivia")),
        ({"org": "globex"}, lambda: StructureEvent.objects.filter(org__slug="globex")),
        (
            {"workspace": "DBA"},
            lambda: StructureEvent.objects.filter(workspace__name="DBA"),
        ),
    ],
)
def test_the_event_log_filters(
    org: Org,
    superuser: User,
    owner: User,
    tree: dict[str, Workspace],
    theirs: Workspace,
    query: dict[str, str],
    expected: Any,
) -> None:
    login(owner).post(team_url(tree["Backend"], "collapse"))  # an event by user:olivia
    if query.get("workspace"):
        query = {"workspace": str(tree[query["workspace"]].pk)}
    shown = event_ids(log(login(superuser), **query))
    assert shown
    assert sorted(shown) == sorted(expected().values_list("pk", flat=True))


def test_the_event_log_filters_by_time_range(
    org: Org, superuser: User, tree: dict[str, Workspace]
) -> None:
    def event_at(moment: datetime) -> StructureEvent:
        # created_at is auto_now_add and events cannot be updated: write it at that moment.
        with mock.patch("django.utils.timezone.now", return_value=moment):
            return StructureEvent.objects.create(
                event_type=EventType.ORG_CREATED, org=org, actor="test:clock"
            )

    winter = event_at(datetime(2024, 1, 15, 10, 0, tzinfo=UTC))
    summer = event_at(datetime(2024, 6, 15, 10, 0, tzinfo=UTC))
    client = login(superuser)
    assert event_ids(log(client, since="2024-01-01T00:00", until="2024-03-01T00:00")) == [winter.pk]
    assert event_ids(log(client, since="2024-06-15T10:00", until="2024-07-01")) == [summer.pk]
    # "until" is exclusive, "since" inclusive, both to the minute the form takes.
    assert event_ids(log(client, since="2024-01-01T00:00", until="2024-06-15T10:00")) == [winter.pk]
    recent = event_ids(log(client, since="2024-07-01T00:00"))
    assert winter.pk not in recent and summer.pk not in recent
    assert set(recent) == set(
        StructureEvent.objects.exclude(pk__in=[winter.pk, summer.pk]).values_list("pk", flat=True)
    )


def test_a_filter_that_does_not_parse_shows_its_error_and_no_events(
    org: Org, superuser: User, tree: dict[str, Workspace]
) -> None:
    content = log(login(superuser), workspace="not-a-uuid")
    assert event_ids(content) == []
    assert "Workspace id: Enter a valid UUID." in content


def test_the_event_log_is_paginated_newest_first(org: Org, superuser: User) -> None:
    for n in range(120):
        StructureEvent.objects.create(
            event_type=EventType.ORG_CREATED, org=org, actor=f"test:{n}", payload={"n": n}
        )
    client = login(superuser)
    first = log(client)
    newest = list(
        StructureEvent.objects.order_by("-created_at", "-id").values_list("pk", flat=True)
    )
    assert event_ids(first) == newest[:50]
    assert "page 1 of 3" in first
    assert 'href="?page=2"' in first
    third = log(client, page=3)
    assert event_ids(third) == newest[100:]
    assert 'href="?page=2"' in third
    # Out of range: the last page, not an error.
    assert event_ids(log(client, page=99)) == newest[100:]


def test_pagination_keeps_the_filters(org: Org, superuser: User) -> None:
    for _ in range(60):
        StructureEvent.objects.create(event_type=EventType.ORG_CREATED, org=org, actor="test:x")
    content = log(login(superuser), actor="test:x")
    assert 'href="?actor=test%3Ax&amp;page=2"' in content


def test_the_event_log_answers_htmx_with_only_the_table(
    org: Org, superuser: User, tree: dict[str, Workspace]
) -> None:
    response = login(superuser).get(reverse("event-log"), {"type": "ORG_IMPORTED"}, headers=HTMX)
    content = response.content.decode()
    assert 'id="log"' in content
    assert "<html" not in content
    assert len(event_ids(content)) == 1


def test_the_event_log_shows_the_payload_readably(
    org: Org, superuser: User, tree: dict[str, Workspace]
) -> None:
    login(superuser).post(team_url(tree["Backend"], "collapse"))
    content = log(login(superuser), type="WORKSPACE_COLLAPSED")
    dba = tree["DBA"].pk
    assert f"<dt>children</dt><dd>[&quot;{dba}&quot;]</dd>" in content
    assert "<dt>names</dt><dd>[&quot;DBA&quot;]</dd>" in content
