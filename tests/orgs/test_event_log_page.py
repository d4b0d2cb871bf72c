"""The event log page: whose events each caller reads, its filters, pagination and htmx answer,
and how it shows a payload.
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from typing import Any
from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from orgs.models import Org
from tests.support.fleet import bulk_events, bulk_fleet
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


def next_link(content: str) -> str | None:
    found = re.search(r'<a href="([^"]+)"[^>]*rel="next"', content)
    return found[1].replace("&amp;", "&") if found else None


def test_the_event_log_is_paged_newest_first_by_older_links(org: Org, superuser: User) -> None:
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
    assert 'rel="first"' not in first
    second = client.get(reverse("event-log") + next_link(first)).content.decode()
    assert event_ids(second) == newest[50:100]
    third = client.get(reverse("event-log") + next_link(second)).content.decode()
    assert event_ids(third) == newest[100:]
    assert next_link(third) is None
    assert 'rel="first"' in third


def test_paging_keeps_the_filters(org: Org, superuser: User) -> None:
    for _ in range(60):
        StructureEvent.objects.create(event_type=EventType.ORG_CREATED, org=org, actor="test:x")
    content = log(login(superuser), actor="test:x")
    assert next_link(content).startswith("?actor=test%3Ax&cursor=")


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


# --- at scale -----------------------------------------------------------------------------------

# Session, user, the form's org choices and the page (its org and workspace joined), and room.
MAX_LOG_QUERIES = 6


def log_queries(client: Client, query: dict[str, Any]) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(reverse("event-log"), query)
    assert response.status_code == 200
    assert len(event_ids(response.content.decode())) <= 50
    return len(captured)


def test_the_event_log_asks_as_many_queries_for_3000_events_as_for_300(
    org: Org, other_org: Org, owner: User, superuser: User
) -> None:
    queries = [{}, {"org": "acme"}, {"type": "WORKSPACE_ONLINE"}, {"actor": "bulk1"}]
    bulk_events(bulk_fleet(org, 100, teams=False) + bulk_fleet(other_org, 50, teams=False))
    small = {
        (who.username, str(q)): log_queries(login(who), q)
        for who in (owner, superuser)
        for q in queries
    }
    bulk_events(bulk_fleet(org, 900, prefix="more", teams=False), per_workspace=3)
    for who in (owner, superuser):
        for q in queries:
            count = log_queries(login(who), q)
            assert count == small[who.username, str(q)], (who.username, q)
            assert count <= MAX_LOG_QUERIES


def test_a_member_never_reads_another_orgs_events_through_a_cursor_made_on_its_log(
    org: Org, other_org: Org, owner: User, superuser: User
) -> None:
    ours = bulk_fleet(org, 3, prefix="ours", teams=False)
    bulk_events(ours)
    bulk_events(bulk_fleet(other_org, 60, prefix="theirs", teams=False))
    theirs = log(login(superuser), org="globex")
    cursor = re.search(r"cursor=([^\"&]+)", theirs)[1]
    client = login(owner)
    for query in ({}, {"org": "globex"}):
        content = client.get(reverse("event-log") + f"?cursor={cursor}", query).content.decode()
        assert "theirs-" not in content
        assert "/orgs/globex/" not in content
    mine = client.get(reverse("event-log") + f"?cursor={cursor}").content.decode()
    ours_events = StructureEvent.objects.filter(org=org).values_list("pk", flat=True)
    assert set(event_ids(mine)) <= set(ours_events)


@pytest.mark.parametrize("cursor", ["garbage", "W10:x", "a" * 3000, "WyIxIiwiMiJd:abc"])
def test_a_bad_cursor_shows_the_newest_events_with_a_note(
    org: Org, superuser: User, cursor: str
) -> None:
    bulk_events(bulk_fleet(org, 5, teams=False))
    for headers in ({}, HTMX):
        response = login(superuser).get(reverse("event-log"), {"cursor": cursor}, headers=headers)
        assert response.status_code == 200
        content = response.content.decode()
        assert "not valid" in content
        assert len(event_ids(content)) == 10


def test_a_cursor_from_the_dashboard_is_not_a_position_in_the_log(
    org: Org, superuser: User
) -> None:
    bulk_events(bulk_fleet(org, 30, teams=False))
    dashboard = login(superuser).get(reverse("dashboard")).content.decode()
    bulk_fleet(org, 60, prefix="more", teams=False)
    dashboard = login(superuser).get(reverse("dashboard")).content.decode()
    cursor = re.search(r"cursor=([^\"&]+)", dashboard)[1]
    content = log(login(superuser), cursor=html.unescape(cursor))
    assert "not valid" in content
