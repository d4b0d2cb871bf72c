"""The admin as an adapter: its actions and its add form go through dispatch, never around it.

Actions are posted the way the changelist posts them: first with ``index`` (the action bar),
then, for destructive verbs, the confirmation form's own fields (``confirmed=yes``, no index).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from orgs.models import Org, OrgMembership
from tests.support.fleet import bulk_events, bulk_fleet
from tests.support.rows import MakeWorkspace, event_count, last_event, status_of
from tests.support.users import make_member
from workspaces import admin_lists, dispatch
from workspaces.lifecycle import TransitionRefused
from workspaces.models import EventType, Status, StructureEvent, Workspace

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:workspaces_workspace_changelist"


@pytest.fixture(autouse=True)
def _no_real_agents(recording: dict[str, Any]) -> None:
    """Every test here uses the recording backends; none starts a real agent."""


@pytest.fixture
def admin_client(superuser: User) -> Client:
    client = Client()
    client.force_login(superuser)
    return client


def run_action(client: Client, action: str, workspaces: list[Workspace], **extra: str) -> Any:
    """Post an action from the changelist's action bar."""
    return client.post(
        reverse(CHANGELIST),
        {"action": action, "index": "0", "_selected_action": [str(w.pk) for w in workspaces]},
        **extra,
    )


def confirm_action(client: Client, action: str, workspaces: list[Workspace]) -> Any:
    """Post what the confirmation page's form posts."""
    return client.post(
        reverse(CHANGELIST),
        {
            "action": action,
            "confirmed": "yes",
            "_selected_action": [str(w.pk) for w in workspaces],
        },
    )


def messages_of(response: Any) -> list[tuple[str, str]]:
    return [(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)]


# --- the changelist -----------------------------------------------------------------------------


def test_the_workspace_changelist_lists_the_workspaces(
    org: Org, other_org: Org, admin_client: Client, make_workspace: MakeWorkspace
) -> None:
    make_workspace(org, name="AcmeLead")
    make_workspace(other_org, name="GlobexLead")
    response = admin_client.get(reverse(CHANGELIST))
    content = response.content.decode()
    assert response.status_code == 200
    assert "AcmeLead" in content
    assert "GlobexLead" in content


def test_the_stock_bulk_delete_action_is_not_offered(
    org: Org, admin_client: Client, make_workspace: MakeWorkspace
) -> None:
    # It would hard-delete rows behind dispatch's back.
    make_workspace(org)
    content = admin_client.get(reverse(CHANGELIST)).content.decode()
    assert 'value="delete_action"' in content
    assert 'value="delete_selected"' not in content


# --- actions ------------------------------------------------------------------------------------

# action, the state it starts from, the state it ends in, the event it writes.
ACTION_CASES = [
    ("provision", Status.OFFLINE, Status.PROVISIONING, EventType.WORKSPACE_PROVISIONING),
    ("resume", Status.PAUSED, Status.PROVISIONING, EventType.WORKSPACE_PROVISIONING),
    ("stop", Status.ONLINE, Status.OFFLINE, EventType.WORKSPACE_OFFLINE),
    ("restart", Status.ONLINE, Status.PROVISIONING, EventType.WORKSPACE_PROVISIONING),
    ("pause", Status.ONLINE, Status.PAUSED, EventType.WORKSPACE_PAUSED),
    ("delete", Status.ONLINE, Status.REMOVED, EventType.WORKSPACE_REMOVED),
]
IMMEDIATE = [case for case in ACTION_CASES if case[0] not in dispatch.DESTRUCTIVE_VERBS]
CONFIRMED = [case for case in ACTION_CASES if case[0] in dispatch.DESTRUCTIVE_VERBS]


def test_the_cases_cover_every_verb_once() -> None:
    # Guards the split below: a verb added to dispatch must be added to the admin's tests.
    assert sorted(case[0] for case in ACTION_CASES) == sorted(dispatch.VERBS)
    assert {case[0] for case in CONFIRMED} == {"restart", "stop", "pause", "delete"}


@pytest.mark.parametrize(("verb", "start", "end", "event_type"), IMMEDIATE)
def test_a_non_destructive_action_acts_at_once_through_dispatch(
    org: Org,
    admin_client: Client,
    make_workspace: MakeWorkspace,
    verb: str,
    start: str,
    end: str,
    event_type: str,
) -> None:
    workspace = make_workspace(org, start)
    before = event_count(workspace)
    response = run_action(admin_client, f"{verb}_action", [workspace])
    assert response.status_code == 302
    assert status_of(workspace) == end
    assert event_count(workspace) == before + 1
    event = last_event(workspace)
    assert (event.event_type, event.actor, event.payload["cause"]) == (
        event_type,
        "user:root",
        verb,
    )
    assert messages_of(response) == [("info", f"{verb.capitalize()} requested: PM.")]


@pytest.mark.parametrize(("verb", "start", "end", "event_type"), CONFIRMED)
def test_a_destructive_action_first_asks_for_confirmation_and_changes_nothing(
    org: Org,
    admin_client: Client,
    make_workspace: MakeWorkspace,
    verb: str,
    start: str,
    end: str,
    event_type: str,
) -> None:
    workspace = make_workspace(org, start)
    before = event_count(workspace)
    response = run_action(admin_client, f"{verb}_action", [workspace])
    content = response.content.decode()
    assert response.status_code == 200
    assert f"{verb.capitalize()} 1 workspace(s)?" in content
    assert 'name="confirmed" value="yes"' in content
    assert f'name="action" value="{verb}_action"' in content
    assert f'name="_selected_action" value="{workspace.pk}"' in content
    assert status_of(workspace) == start
    assert event_count(workspace) == before


@pytest.mark.parametrize(("verb", "start", "end", "event_type"), CONFIRMED)
def test_a_destructive_action_acts_once_confirmed(
    org: Org,
    admin_client: Client,
    make_workspace: MakeWorkspace,
    verb: str,
    start: str,
    end: str,
    event_type: str,
) -> None:
    workspace = make_workspace(org, start)
    before = event_count(workspace)
    response = confirm_action(admin_client, f"{verb}_action", [workspace])
    assert response.status_code == 302
    assert status_of(workspace) == end
    assert event_count(workspace) == before + 1
    event = last_event(workspace)
    assert (event.event_type, event.actor, event.payload["cause"]) == (
        event_type,
        "user:root",
        verb,
    )
    assert messages_of(response) == [("info", f"{verb.capitalize()} requested: PM.")]


def test_a_confirmed_stop_stops_the_instance_on_its_backend(
    org: Org,
    admin_client: Client,
    make_workspace: MakeWorkspace,
    recording: dict[str, Any],
    django_capture_on_commit_callbacks: Any,
) -> None:
    workspace = make_workspace(org)
    with django_capture_on_commit_callbacks(execute=True):
        confirm_action(admin_client, "stop_action", [workspace])
    assert recording["local"].calls[-1] == ("stop", workspace.instance_id)


def test_an_action_reports_per_workspace_a_refusal_by_name_and_moves_the_others(
    org: Org, admin_client: Client, make_workspace: MakeWorkspace
) -> None:
    running = make_workspace(org, Status.ONLINE, name="Runner")
    resting = make_workspace(org, Status.PAUSED, name="Sleeper")
    resting_events = event_count(resting)
    response = confirm_action(admin_client, "stop_action", [running, resting])
    refusal = str(TransitionRefused(workspace_name="Sleeper", cause="stop", current="paused"))
    assert messages_of(response) == [("error", refusal), ("info", "Stop requested: Runner.")]
    assert "'Sleeper'" in refusal
    assert status_of(running) == Status.OFFLINE
    assert status_of(resting) == Status.PAUSED
    assert event_count(resting) == resting_events


def test_an_action_where_every_workspace_is_refused_reports_no_success(
    org: Org, admin_client: Client, make_workspace: MakeWorkspace
) -> None:
    workspace = make_workspace(org, Status.ONLINE)
    response = run_action(admin_client, "resume_action", [workspace])
    assert [level for level, _ in messages_of(response)] == ["error"]
    assert status_of(workspace) == Status.ONLINE


def test_a_staff_viewer_cannot_stop_a_workspace_from_the_admin(
    org: Org, make_workspace: MakeWorkspace
) -> None:
    staff = make_member(org, "stella", OrgMembership.Role.VIEWER)
    staff.is_staff = True
    staff.save()
    staff.user_permissions.add(Permission.objects.get(codename="view_workspace"))
    workspace = make_workspace(org)
    client = Client()
    client.force_login(staff)
    confirm_action(client, "stop_action", [workspace])
    assert status_of(workspace) == Status.ONLINE


# --- the add form -------------------------------------------------------------------------------


def test_the_add_form_creates_and_provisions_through_dispatch(
    org: Org,
    admin_client: Client,
    recording: dict[str, Any],
    django_capture_on_commit_callbacks: Any,
) -> None:
    form = {
        "org": str(org.pk),
        "name": "Scout",
        "role": "Analyst",
        "tier": "1",
        "runtime": "langgraph",
        "parent": "",
        "spec": "{}",
        "workspace_dir": "",
        "_save": "Save",
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse("admin:workspaces_workspace_add"), form)
    assert response.status_code == 302
    workspace = Workspace.objects.get(name="Scout")
    assert (workspace.org, workspace.tier, workspace.backend) == (org, 1, org.backend)
    assert workspace.status == Status.PROVISIONING
    create = StructureEvent.objects.get(
        workspace=workspace,
        event_type=EventType.WORKSPACE_PROVISIONING,
        payload__cause="create",
    )
    assert create.actor == "user:root"
    assert recording["local"].calls == [("start", str(workspace.pk))]
    # The form's own (never saved) instance must not have become a second row.
    assert Workspace.objects.count() == 1


# --- the event log is read-only -----------------------------------------------------------------


@pytest.fixture
def event(org: Org, make_workspace: MakeWorkspace) -> StructureEvent:
    return last_event(make_workspace(org))


def test_the_event_log_lists_events(admin_client: Client, event: StructureEvent) -> None:
    response = admin_client.get(reverse("admin:workspaces_structureevent_changelist"))
    assert response.status_code == 200
    assert event.event_type in response.content.decode()


def test_the_event_log_has_no_add_page(admin_client: Client, event: StructureEvent) -> None:
    response = admin_client.get(reverse("admin:workspaces_structureevent_add"))
    assert response.status_code == 403


def test_an_event_is_shown_without_a_save_button(
    admin_client: Client, event: StructureEvent
) -> None:
    response = admin_client.get(reverse("admin:workspaces_structureevent_change", args=[event.pk]))
    content = response.content.decode()
    assert response.status_code == 200
    assert event.actor in content
    assert 'name="_save"' not in content


def test_an_event_cannot_be_changed_by_posting(admin_client: Client, event: StructureEvent) -> None:
    response = admin_client.post(
        reverse("admin:workspaces_structureevent_change", args=[event.pk]),
        {"event_type": EventType.WORKSPACE_REMOVED, "actor": "forger", "payload": "{}"},
    )
    assert response.status_code == 403
    event.refresh_from_db()
    assert event.actor == "test"


def test_an_event_cannot_be_deleted(admin_client: Client, event: StructureEvent) -> None:
    url = reverse("admin:workspaces_structureevent_delete", args=[event.pk])
    assert admin_client.post(url, {"post": "yes"}).status_code == 403
    assert StructureEvent.objects.filter(pk=event.pk).exists()


def test_the_event_log_offers_no_bulk_delete(admin_client: Client, event: StructureEvent) -> None:
    content = admin_client.get(
        reverse("admin:workspaces_structureevent_changelist")
    ).content.decode()
    assert 'value="delete_selected"' not in content


# --- at scale -----------------------------------------------------------------------------------

# The goal for a changelist, whatever the fleet.
MAX_CHANGELIST_QUERIES = 10
EVENTS = "admin:workspaces_structureevent_changelist"


def changelist_queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(captured)


def changelists(org: Org) -> list[str]:
    workspaces, events = reverse(CHANGELIST), reverse(EVENTS)
    return [
        workspaces,
        f"{workspaces}?status__exact=online",
        f"{workspaces}?tier=2&backend__exact=docker",
        f"{workspaces}?org__id__exact={org.pk}",
        f"{workspaces}?q=ws-01",
        f"{workspaces}?o=3",
        f"{workspaces}?p=2",
        events,
        f"{events}?event_type__exact=WORKSPACE_ONLINE",
        f"{events}?org__id__exact={org.pk}",
        f"{events}?created_at__gte=2000-01-01+00%3A00%3A00%2B00%3A00",
        f"{events}?q=bulk1",
    ]


def staff_owner(org: Org) -> User:
    staff = make_member(org, "sam", OrgMembership.Role.OWNER)
    staff.is_staff = True
    staff.save()
    for codename in ("view_workspace", "change_workspace", "view_structureevent"):
        staff.user_permissions.add(Permission.objects.get(codename=codename))
    return staff


def test_the_changelists_ask_as_many_queries_for_a_big_fleet_as_for_a_small_one(
    org: Org, other_org: Org, superuser: User
) -> None:
    clients = {"root": Client(), "staff": Client()}
    clients["root"].force_login(superuser)
    clients["staff"].force_login(staff_owner(org))
    bulk_events(bulk_fleet(org, 120) + bulk_fleet(other_org, 30))
    small = {
        (who, url): changelist_queries(c, url)
        for who, c in clients.items()
        for url in changelists(org)
    }
    bulk_events(bulk_fleet(org, 600, prefix="more") + bulk_fleet(other_org, 300, prefix="more"))
    for who, client in clients.items():
        for url in changelists(org):
            count = changelist_queries(client, url)
            assert count == small[who, url], (who, url)
            assert count <= MAX_CHANGELIST_QUERIES, (who, url, count)


def test_the_changelists_show_a_member_only_their_orgs_rows_and_orgs(
    org: Org, other_org: Org
) -> None:
    bulk_events(bulk_fleet(org, 5, prefix="ours") + bulk_fleet(other_org, 5, prefix="theirs"))
    client = Client()
    client.force_login(staff_owner(org))
    for url in (reverse(CHANGELIST), reverse(EVENTS)):
        content = client.get(url).content.decode()
        assert "ours-" in content
        assert "theirs-" not in content
        assert "globex" not in content


def test_a_count_past_the_cap_stops_counting(
    org: Org, monkeypatch: pytest.MonkeyPatch, superuser: User
) -> None:
    monkeypatch.setattr(admin_lists, "COUNT_CAP", 60)
    bulk_fleet(org, 80)
    client = Client()
    client.force_login(superuser)
    content = client.get(reverse(CHANGELIST)).content.decode()
    assert "60 workspaces" in content
    assert "data-workspace" not in content  # the admin's own table, not the console's
    assert content.count('name="_selected_action"') == 50


def test_the_org_filter_lists_the_first_orgs_and_the_chosen_one(
    superuser: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(admin_lists, "ORG_CHOICES", 3)
    orgs = [Org.objects.create(slug=f"org-{n:02d}", name=f"Org {n}") for n in range(6)]
    client = Client()
    client.force_login(superuser)
    content = client.get(reverse(CHANGELIST), {"org__id__exact": orgs[5].pk}).content.decode()
    listed = set(re.findall(r"org__id__exact=(\d+)", content))
    assert listed == {str(o.pk) for o in (orgs[0], orgs[1], orgs[2], orgs[5])}
    for bad in ("abc", "-1", "1.5", ""):
        response = client.get(reverse(CHANGELIST), {"org__id__exact": bad})
        assert response.status_code < 500
