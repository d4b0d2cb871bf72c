"""The console pages as an adapter: who may see and act, full pages and htmx partials, verbs.

Every test runs on the recording backends (tests/support/fakes.py), so no agent process starts;
the pages are tested for what they ask dispatch to do and what they show, the owner / viewer /
outsider way healthchecks tests its views.
"""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from orgs.models import Org
from tests.support.rows import MakeWorkspace, event_count, last_event, status_of
from workspaces.lifecycle import TransitionRefused
from workspaces.models import EventType, Status, Workspace

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


@pytest.fixture(autouse=True)
def _no_real_agents(recording: dict[str, Any]) -> None:
    """Every test here uses the recording backends; none starts a real agent."""


def login(user: User, **kwargs: Any) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


def page_url(workspace: Workspace) -> str:
    return reverse("workspace", args=[workspace.pk])


def verb_url(workspace: Workspace, verb: str) -> str:
    return reverse("workspace-verb", args=[workspace.pk, verb])


def refusal(workspace: Workspace, cause: str) -> str:
    """The operator's message for a refused verb, written by the state machine."""
    return str(
        TransitionRefused(workspace_name=workspace.name, cause=cause, current=status_of(workspace))
    )


def error_messages(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request) if m.level_tag == "error"]


# --- anonymous visitors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "target"),
    [
        ("get", "dashboard"),
        ("get", "page"),
        ("get", "verb"),
        ("post", "verb"),
        ("post", "create"),
    ],
)
def test_anonymous_visitors_are_sent_to_the_login_page(
    client: Client, org: Org, make_workspace: MakeWorkspace, method: str, target: str
) -> None:
    workspace = make_workspace(org)
    url = {
        "dashboard": reverse("dashboard"),
        "page": page_url(workspace),
        "verb": verb_url(workspace, "stop"),
        "create": reverse("workspace-create"),
    }[target]
    response = getattr(client, method)(url, {"org": org.slug, "name": "Sneaky"})
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))
    assert status_of(workspace) == Status.ONLINE
    assert not Workspace.objects.filter(name="Sneaky").exists()


# --- dashboard ----------------------------------------------------------------------------------


def test_dashboard_is_a_full_page_with_the_fleet_and_the_create_form(
    org: Org, owner: User, make_workspace: MakeWorkspace
) -> None:
    make_workspace(org, name="Scout")
    response = login(owner).get(reverse("dashboard"))
    content = response.content.decode()
    assert response.status_code == 200
    assert "<html" in content
    assert 'id="fleet"' in content
    assert 'data-workspace="Scout"' in content
    assert "New workspace" in content


def test_dashboard_answers_htmx_with_only_the_fleet_block(
    org: Org, owner: User, make_workspace: MakeWorkspace
) -> None:
    make_workspace(org, name="Scout")
    response = login(owner).get(reverse("dashboard"), headers=HTMX)
    content = response.content.decode()
    assert response.status_code == 200
    assert 'id="fleet"' in content
    assert 'data-workspace="Scout"' in content
    assert "<html" not in content
    assert "New workspace" not in content


def test_dashboard_counts_workspaces_by_state(
    org: Org, owner: User, make_workspace: MakeWorkspace
) -> None:
    make_workspace(org, Status.ONLINE, name="A")
    make_workspace(org, Status.ONLINE, name="B")
    make_workspace(org, Status.PAUSED, name="C")
    make_workspace(org, Status.REMOVED, name="Gone")
    content = login(owner).get(reverse("dashboard")).content.decode()
    # Removed workspaces are counted in their own box but not in the fleet's total.
    assert "<strong>3</strong> workspaces" in content
    assert 'data-count="online"><strong>2</strong> online' in content
    assert 'data-count="paused"><strong>1</strong> paused' in content
    assert 'data-count="removed"><strong>1</strong> removed' in content
    assert 'data-count="failed"><strong>0</strong> failed' in content


def test_dashboard_filters_by_org(
    org: Org, other_org: Org, superuser: User, make_workspace: MakeWorkspace
) -> None:
    make_workspace(org, name="AcmeOne")
    make_workspace(other_org, name="GlobexOne")
    client = login(superuser)
    everything = client.get(reverse("dashboard")).content.decode()
    assert 'data-workspace="AcmeOne"' in everything
    assert 'data-workspace="GlobexOne"' in everything
    filtered = client.get(reverse("dashboard"), {"org": "globex"}).content.decode()
    assert 'data-workspace="GlobexOne"' in filtered
    assert 'data-workspace="AcmeOne"' not in filtered


def test_dashboard_filters_by_status(org: Org, owner: User, make_workspace: MakeWorkspace) -> None:
    make_workspace(org, Status.ONLINE, name="Busy")
    make_workspace(org, Status.PAUSED, name="Resting")
    content = login(owner).get(reverse("dashboard"), {"status": "paused"}).content.decode()
    assert 'data-workspace="Resting"' in content
    assert 'data-workspace="Busy"' not in content


def test_dashboard_does_not_list_other_orgs_workspaces_to_a_member(
    org: Org, other_org: Org, owner: User, make_workspace: MakeWorkspace
) -> None:
    make_workspace(org, name="Ours")
    make_workspace(other_org, name="Theirs")
    client = login(owner)
    content = client.get(reverse("dashboard")).content.decode()
    assert 'data-workspace="Ours"' in content
    assert 'data-workspace="Theirs"' not in content
    assert "globex" not in content
    assert "<strong>1</strong> workspaces" in content
    # Asking for the other org by name shows nothing either.
    filtered = client.get(reverse("dashboard"), {"org": "globex"}).content.decode()
    assert 'data-workspace="Theirs"' not in filtered


def test_dashboard_offers_no_create_form_to_a_viewer(org: Org, viewer: User) -> None:
    content = login(viewer).get(reverse("dashboard")).content.decode()
    assert 'id="fleet"' in content
    assert "New workspace" not in content


# --- workspace page -----------------------------------------------------------------------------


def test_workspace_page_is_a_full_page_with_state_events_and_console(
    org: Org, owner: User, make_workspace: MakeWorkspace
) -> None:
    workspace = make_workspace(org)
    content = login(owner).get(page_url(workspace)).content.decode()
    assert "<html" in content
    for block in ('id="state"', 'id="events"', 'id="console"'):
        assert block in content
    assert EventType.WORKSPACE_PROVISIONING in content
    # The recording backend's console output for the instance it started.
    assert f"console of {workspace.instance_id}" in content
    assert f'action="{verb_url(workspace, "stop")}"' in content


@pytest.mark.parametrize(
    ("partial", "present", "absent"),
    [
        ("state", 'id="state"', ('id="events"', 'id="console"')),
        ("events", 'id="events"', ('id="state"', 'id="console"')),
        ("console", 'id="console"', ('id="state"', 'id="events"')),
    ],
)
def test_workspace_page_answers_htmx_with_the_partial_asked_for(
    org: Org,
    owner: User,
    make_workspace: MakeWorkspace,
    partial: str,
    present: str,
    absent: tuple[str, ...],
) -> None:
    workspace = make_workspace(org)
    response = login(owner).get(page_url(workspace), {"partial": partial}, headers=HTMX)
    content = response.content.decode()
    assert response.status_code == 200
    assert present in content
    assert "<html" not in content
    for block in absent:
        assert block not in content


def test_workspace_page_events_partial_lists_the_timeline(
    org: Org, owner: User, make_workspace: MakeWorkspace
) -> None:
    workspace = make_workspace(org, Status.PAUSED)
    response = login(owner).get(page_url(workspace), {"partial": "events"}, headers=HTMX)
    content = response.content.decode()
    assert EventType.WORKSPACE_PROVISIONING in content
    assert EventType.WORKSPACE_PAUSED in content


def test_workspace_page_console_partial_shows_the_backends_output(
    org: Org, owner: User, make_workspace: MakeWorkspace
) -> None:
    workspace = make_workspace(org)
    response = login(owner).get(page_url(workspace), {"partial": "console"}, headers=HTMX)
    assert f"console of {workspace.instance_id}" in response.content.decode()


def test_workspace_page_without_htmx_ignores_the_partial_parameter(
    org: Org, owner: User, make_workspace: MakeWorkspace
) -> None:
    # Without JavaScript a ?partial= link still lands on the whole page.
    workspace = make_workspace(org)
    content = login(owner).get(page_url(workspace), {"partial": "state"}).content.decode()
    assert "<html" in content
    assert 'id="events"' in content


def test_viewer_sees_the_workspace_page_without_verbs(
    org: Org, viewer: User, make_workspace: MakeWorkspace
) -> None:
    workspace = make_workspace(org)
    response = login(viewer).get(page_url(workspace))
    content = response.content.decode()
    assert response.status_code == 200
    assert "You can view this workspace but not act on it." in content
    assert verb_url(workspace, "stop") not in content


def test_outsider_gets_404_for_the_workspace_page(
    org: Org, outsider: User, make_workspace: MakeWorkspace
) -> None:
    workspace = make_workspace(org)
    assert login(outsider).get(page_url(workspace)).status_code == 404


# --- verbs --------------------------------------------------------------------------------------

# verb, the state it starts from, the state it ends in, the event it writes.
VERB_CASES = [
    ("provision", Status.OFFLINE, Status.PROVISIONING, EventType.WORKSPACE_PROVISIONING),
    ("stop", Status.ONLINE, Status.OFFLINE, EventType.WORKSPACE_OFFLINE),
    ("restart", Status.ONLINE, Status.PROVISIONING, EventType.WORKSPACE_PROVISIONING),
    ("pause", Status.ONLINE, Status.PAUSED, EventType.WORKSPACE_PAUSED),
    ("resume", Status.PAUSED, Status.PROVISIONING, EventType.WORKSPACE_PROVISIONING),
    ("delete", Status.ONLINE, Status.REMOVED, EventType.WORKSPACE_REMOVED),
]


@pytest.mark.parametrize(("verb", "start", "end", "event_type"), VERB_CASES)
def test_a_verb_posted_from_the_page_moves_the_workspace_and_writes_its_event(
    org: Org,
    owner: User,
    make_workspace: MakeWorkspace,
    verb: str,
    start: str,
    end: str,
    event_type: str,
) -> None:
    workspace = make_workspace(org, start)
    before = event_count(workspace)
    response = login(owner).post(verb_url(workspace, verb))
    assert response.status_code == 302
    assert response.url == page_url(workspace)
    assert status_of(workspace) == end
    assert event_count(workspace) == before + 1
    event = last_event(workspace)
    assert (event.event_type, event.actor, event.payload["cause"]) == (
        event_type,
        "user:olivia",
        verb,
    )


def test_stop_from_the_page_stops_the_instance_on_its_backend(
    org: Org,
    owner: User,
    make_workspace: MakeWorkspace,
    recording: dict[str, Any],
    django_capture_on_commit_callbacks: Any,
) -> None:
    workspace = make_workspace(org)
    with django_capture_on_commit_callbacks(execute=True):
        login(owner).post(verb_url(workspace, "stop"))
    assert recording["local"].calls[-1] == ("stop", workspace.instance_id)
    workspace.refresh_from_db()
    assert workspace.instance_id == ""


def test_a_verb_from_the_page_is_reported_as_requested_with_the_state_it_left(
    org: Org, owner: User, make_workspace: MakeWorkspace
) -> None:
    workspace = make_workspace(org)
    response = login(owner).post(verb_url(workspace, "restart"), follow=True)
    content = response.content.decode()
    # The backend call is queued, not done: the page says what was asked and where it stands.
    assert "Restart requested for PM; it is now provisioning." in content
    assert "Restart: done" not in content


@pytest.mark.parametrize(("verb", "start", "end", "event_type"), VERB_CASES)
def test_get_on_a_verb_url_only_shows_the_confirmation(
    org: Org,
    owner: User,
    make_workspace: MakeWorkspace,
    verb: str,
    start: str,
    end: str,
    event_type: str,
) -> None:
    workspace = make_workspace(org, start)
    before = event_count(workspace)
    response = login(owner).get(verb_url(workspace, verb))
    content = response.content.decode()
    assert response.status_code == 200
    assert f"{verb.capitalize()} PM?" in content
    assert '<form method="post">' in content
    assert status_of(workspace) == start
    assert event_count(workspace) == before


def test_a_refused_verb_redirects_with_the_clear_message_and_changes_nothing(
    org: Org, owner: User, make_workspace: MakeWorkspace
) -> None:
    workspace = make_workspace(org, Status.ONLINE)
    before = event_count(workspace)
    message = refusal(workspace, "resume")
    client = login(owner)
    response = client.post(verb_url(workspace, "resume"))
    assert response.status_code == 302
    assert response.url == page_url(workspace)
    assert error_messages(response) == [message]
    assert status_of(workspace) == Status.ONLINE
    assert event_count(workspace) == before


def test_a_refused_verb_message_is_shown_on_the_workspace_page(
    org: Org, owner: User, make_workspace: MakeWorkspace
) -> None:
    workspace = make_workspace(org, Status.ONLINE)
    message = refusal(workspace, "resume")
    response = login(owner).post(verb_url(workspace, "resume"), follow=True)
    assert html.escape(message) in response.content.decode()


def test_a_refused_verb_answers_htmx_with_409_and_the_state_partial_holding_the_message(
    org: Org, owner: User, make_workspace: MakeWorkspace
) -> None:
    workspace = make_workspace(org, Status.ONLINE)
    before = event_count(workspace)
    message = refusal(workspace, "resume")
    response = login(owner).post(verb_url(workspace, "resume"), headers=HTMX)
    content = response.content.decode()
    assert response.status_code == 409
    assert 'id="state"' in content
    assert "<html" not in content
    assert html.escape(message) in content
    assert status_of(workspace) == Status.ONLINE
    assert event_count(workspace) == before


def test_a_verb_done_with_htmx_answers_the_new_state_and_tells_the_page_to_refresh(
    org: Org, owner: User, make_workspace: MakeWorkspace
) -> None:
    workspace = make_workspace(org, Status.ONLINE)
    response = login(owner).post(verb_url(workspace, "pause"), headers=HTMX)
    content = response.content.decode()
    assert response.status_code == 200
    assert response["HX-Trigger"] == "workspace-changed"
    assert 'data-status="paused"' in content
    assert "<html" not in content
    assert status_of(workspace) == Status.PAUSED


@pytest.mark.parametrize("method", ["get", "post"])
def test_an_unknown_verb_is_404(
    org: Org, owner: User, make_workspace: MakeWorkspace, method: str
) -> None:
    workspace = make_workspace(org)
    before = event_count(workspace)
    response = getattr(login(owner), method)(verb_url(workspace, "explode"))
    assert response.status_code == 404
    assert event_count(workspace) == before


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_viewer_cannot_run_a_verb(
    org: Org, viewer: User, make_workspace: MakeWorkspace, method: str
) -> None:
    workspace = make_workspace(org)
    before = event_count(workspace)
    response = getattr(login(viewer), method)(verb_url(workspace, "stop"))
    assert response.status_code == 403
    assert status_of(workspace) == Status.ONLINE
    assert event_count(workspace) == before


@pytest.mark.parametrize("method", ["get", "post"])
def test_an_outsider_gets_404_not_403_for_a_verb(
    org: Org, outsider: User, make_workspace: MakeWorkspace, method: str
) -> None:
    # 404 rather than 403, so another org's workspace ids cannot be probed.
    workspace = make_workspace(org)
    before = event_count(workspace)
    response = getattr(login(outsider), method)(verb_url(workspace, "stop"))
    assert response.status_code == 404
    assert status_of(workspace) == Status.ONLINE
    assert event_count(workspace) == before


def test_a_verb_posted_without_a_csrf_token_is_refused(
    org: Org, owner: User, make_workspace: MakeWorkspace
) -> None:
    workspace = make_workspace(org)
    response = login(owner, enforce_csrf_checks=True).post(verb_url(workspace, "stop"))
    assert response.status_code == 403
    assert status_of(workspace) == Status.ONLINE


def test_a_verb_posted_with_the_confirmation_forms_csrf_token_is_done(
    org: Org, owner: User, make_workspace: MakeWorkspace
) -> None:
    # The counterpart of the test above: the token is what made the difference.
    workspace = make_workspace(org)
    client = login(owner, enforce_csrf_checks=True)
    confirmation = client.get(verb_url(workspace, "stop")).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', confirmation)
    assert token is not None
    response = client.post(verb_url(workspace, "stop"), {"csrfmiddlewaretoken": token[1]})
    assert response.status_code == 302
    assert status_of(workspace) == Status.OFFLINE


# --- create form --------------------------------------------------------------------------------


def new_workspace(org: str = "acme", **fields: Any) -> dict[str, Any]:
    return {
        "org": org,
        "name": "Scout",
        "role": "Analyst",
        "tier": 3,
        "runtime": "langgraph",
        **fields,
    }


def test_the_create_form_creates_and_provisions_through_dispatch(
    org: Org,
    owner: User,
    recording: dict[str, Any],
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = login(owner).post(reverse("workspace-create"), new_workspace())
    workspace = Workspace.objects.get(name="Scout")
    assert response.status_code == 302
    assert response.url == page_url(workspace)
    assert (workspace.org, workspace.tier, workspace.role) == (org, 3, "Analyst")
    assert workspace.status == Status.PROVISIONING
    event = last_event(workspace)
    assert (event.event_type, event.actor, event.payload["cause"]) == (
        EventType.WORKSPACE_PROVISIONING,
        "user:olivia",
        "create",
    )
    assert recording["local"].calls == [("start", str(workspace.pk))]


def test_a_viewer_cannot_create_a_workspace_in_the_org(org: Org, viewer: User) -> None:
    response = login(viewer).post(reverse("workspace-create"), new_workspace())
    assert response.status_code == 403
    assert not Workspace.objects.exists()


def test_an_outsider_cannot_create_a_workspace_in_another_org(org: Org, outsider: User) -> None:
    response = login(outsider).post(reverse("workspace-create"), new_workspace("acme"))
    assert response.status_code == 404  # as if the org did not exist
    assert not Workspace.objects.exists()


@pytest.mark.parametrize("tier", [0, 5, "two"])
def test_the_create_form_refuses_an_unknown_tier(org: Org, owner: User, tier: Any) -> None:
    response = login(owner).post(reverse("workspace-create"), new_workspace(tier=tier))
    [message] = error_messages(response)
    assert "tier" in message
    assert not Workspace.objects.exists()


def test_the_create_url_does_not_answer_get(org: Org, owner: User) -> None:
    assert login(owner).get(reverse("workspace-create")).status_code == 405


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(None, "never"), (5, "5 s ago"), (119, "119 s ago"), (600, "10 min ago"), (10800, "3 h ago")],
)
def test_heartbeat_ages_are_shown_in_seconds_when_recent(seconds, shown):
    from datetime import timedelta

    from django.utils import timezone

    from workspaces.templatetags.console import ago

    moment = None if seconds is None else timezone.now() - timedelta(seconds=seconds)
    assert ago(moment) == shown
