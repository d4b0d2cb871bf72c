"""The registry speaks Molecule's protocol (docs/registry-protocol.md): the requests Molecule's
workspace runtime sends, byte for byte as it builds them, and what each one does.

The bodies below are Molecule's, key for key and type for type (its runtime at commit 7cf77f2:
``workspace/main.py`` register, ``workspace/heartbeat.py`` the loop, ``executor_helpers`` the
mini-heartbeats); the program that sends them for real, across the backends, is
tests/support/molecule_agent.py (tests/workspaces/test_molecule_agent.py and
tests/contract/test_molecule_runtime.py).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from tests.support.keys import ADMIN_TOKEN, api
from workspaces import bearer_secrets
from workspaces.models import EventType, Status, StructureEvent, Workspace

pytestmark = pytest.mark.django_db

URL = "http://3f2a9c1b7d44:8000"
CAPABILITIES = {
    "heartbeat": False,
    "scheduler": False,
    "session": True,
    "status_mgmt": False,
    "retry": False,
    "activity_decoration": False,
    "channel_dispatch": False,
}
REASON = "SDK init timeout — restart workspace"


def register_body(workspace: Workspace) -> dict[str, Any]:
    """main.py step 8: ``{"id", "url", "agent_card"}``, the card from config.yaml."""
    return {
        "id": str(workspace.pk),
        "url": URL,
        "agent_card": {
            "name": "PM",
            "description": "",
            "version": "1.0.0",
            "url": URL,
            "skills": [],
            "capabilities": {"streaming": True, "pushNotifications": True},
        },
    }


def heartbeat_body(
    workspace: Workspace, *, uptime: int = 812, wedged: bool = False, metadata: bool = True
) -> dict[str, Any]:
    """heartbeat.py's loop: six keys, then the wedge's two, then runtime_metadata."""
    body: dict[str, Any] = {
        "workspace_id": str(workspace.pk),
        "error_rate": 0.0,
        "sample_error": "",
        "active_tasks": 1,
        "current_task": "Drafting report",
        "uptime_seconds": uptime,
    }
    if wedged:
        body.update({"runtime_state": "wedged", "sample_error": REASON})
    if metadata:
        body["runtime_metadata"] = {"capabilities": CAPABILITIES, "idle_timeout_seconds": 900}
    return body


def mini_body(workspace: Workspace, task: str = "Summarise", active: int = 1) -> dict[str, Any]:
    """executor_helpers.set_current_task: a partial body, integer error_rate, uptime 0."""
    return {
        "workspace_id": str(workspace.pk),
        "current_task": task,
        "active_tasks": active,
        "error_rate": 0,
        "sample_error": "",
        "uptime_seconds": 0,
    }


def send(path: str, body: dict[str, Any], token: str | None) -> tuple[int, dict[str, Any]]:
    # No token file, no header at all: that is what Molecule's runtime sends then.
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    response = Client().post(
        path, data=json.dumps(body), content_type="application/json", headers=headers
    )
    assert response["Content-Type"] == "application/json"
    return response.status_code, response.json()


@pytest.fixture
def agent(org: Any) -> tuple[Workspace, str]:
    """A provisioning workspace and the token in its configs directory."""
    token = bearer_secrets.mint()
    workspace = Workspace.objects.create(
        org=org, name="PM", backend="local", token_hash=bearer_secrets.hash_token(token)
    )
    return workspace, token


@pytest.fixture
def online(agent: tuple[Workspace, str]) -> tuple[Workspace, str]:
    workspace, token = agent
    assert send("/registry/register", register_body(workspace), token)[0] == 200
    assert send("/registry/heartbeat", heartbeat_body(workspace), token)[0] == 200
    return agent


def answer(workspace_status: str) -> dict[str, Any]:
    return {
        "status": "ok",
        "workspace_status": workspace_status,
        "heartbeat_interval": settings.MOLECULE_HEARTBEAT_INTERVAL,
    }


def fresh(workspace: Workspace) -> Workspace:
    workspace.refresh_from_db()
    return workspace


def moves(workspace: Workspace) -> list[tuple[str, str]]:
    return list(
        StructureEvent.objects.filter(workspace=workspace)
        .order_by("id")
        .values_list("event_type", "payload__cause")
    )


# --- register -----------------------------------------------------------------------------------


def test_register_with_id_comes_online_and_answers_molecules_shape(agent, settings) -> None:
    workspace, token = agent
    status, reply = send("/registry/register", register_body(workspace), token)
    assert status == 200
    # Molecule's runtime reads only auth_token from this answer; the console never sends one
    # (the token is in the configs directory), so the runtime keeps the one it has.
    assert reply == {
        "status": "registered",
        "workspace_status": "online",
        "heartbeat_interval": settings.MOLECULE_HEARTBEAT_INTERVAL,
    }
    workspace = fresh(workspace)
    assert workspace.status == Status.ONLINE
    assert workspace.agent_card == register_body(workspace)["agent_card"]
    assert workspace.url == URL
    event = StructureEvent.objects.get(workspace=workspace)
    assert (event.event_type, event.actor) == (
        EventType.WORKSPACE_ONLINE,
        f"agent:{workspace.short_id}",
    )


def test_register_takes_id_and_workspace_id_when_they_agree(agent) -> None:
    workspace, token = agent
    body = {**register_body(workspace), "workspace_id": str(workspace.pk)}
    assert send("/registry/register", body, token)[0] == 200


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        (
            {"id": "00000000-0000-0000-0000-000000000001"},
            "workspace_id and id name different workspaces; send one of them",
        ),
        ({"id": "PM"}, "id must be a UUID"),
        ({"id": 7}, "id must be a UUID"),
    ],
)
def test_register_refuses_ids_that_disagree_or_are_not_uuids(agent, ids, message) -> None:
    workspace, token = agent
    body = {"workspace_id": str(workspace.pk), **ids} if "different" in message else ids
    assert send("/registry/register", body, token) == (400, {"error": message})
    assert fresh(workspace).status == Status.PROVISIONING


def test_register_without_any_id_says_which_keys_it_takes(agent) -> None:
    _workspace, token = agent
    assert send("/registry/register", {"url": URL}, token) == (
        400,
        {"error": "workspace_id or id must be a UUID"},
    )


def test_the_heartbeat_takes_workspace_id_only(agent) -> None:
    workspace, token = agent
    body = {"id": str(workspace.pk), "error_rate": 0.0}
    assert send("/registry/heartbeat", body, token) == (
        400,
        {"error": "workspace_id must be a UUID"},
    )


@pytest.mark.parametrize("credential", ["none", "wrong", "other-workspace", "no-bearer-prefix"])
def test_every_credential_failure_is_the_same_401_at_every_door(agent, org, credential) -> None:
    workspace, token = agent
    other_token = bearer_secrets.mint()
    Workspace.objects.create(
        org=org, name="Other", backend="local", token_hash=bearer_secrets.hash_token(other_token)
    )
    bodies = {
        "/registry/register": register_body(workspace),
        "/registry/heartbeat": heartbeat_body(workspace),
        "/registry/update-card": {"workspace_id": str(workspace.pk), "agent_card": {"name": "x"}},
    }
    for path, body in bodies.items():
        if credential == "no-bearer-prefix":
            response = Client().post(
                path, data=json.dumps(body), content_type="application/json",
                headers={"Authorization": token},
            )  # fmt: skip
            answer = (response.status_code, response.json())
        else:
            used = {"none": None, "wrong": "nope", "other-workspace": other_token}[credential]
            answer = send(path, body, used)
        assert answer == (401, {"error": "invalid workspace credentials"}), path
    workspace = fresh(workspace)
    assert (workspace.status, workspace.agent_card) == (Status.PROVISIONING, {})


# --- the heartbeat as the registration ---------------------------------------------------------


def test_an_authenticated_heartbeat_from_provisioning_is_the_registration(agent) -> None:
    # Molecule's runtime registers once and never retries: when that call was lost (the console
    # was restarting), its heartbeats are all that come.
    workspace, token = agent
    status, reply = send("/registry/heartbeat", heartbeat_body(workspace), token)
    assert (status, reply["status"], reply["workspace_status"]) == (200, "ok", "online")
    workspace = fresh(workspace)
    assert workspace.status == Status.ONLINE
    assert workspace.runtime_metadata["capabilities"] == CAPABILITIES
    assert (workspace.active_tasks, workspace.uptime_seconds) == (1, 812)
    event = StructureEvent.objects.get(workspace=workspace)
    assert event.event_type == EventType.WORKSPACE_ONLINE
    assert event.actor == f"agent:{workspace.short_id}"
    assert (event.payload["cause"], event.payload["via"]) == ("register", "heartbeat")


def test_a_mini_heartbeat_from_provisioning_also_brings_it_online(agent) -> None:
    workspace, token = agent
    assert send("/registry/heartbeat", mini_body(workspace), token)[0] == 200
    assert fresh(workspace).status == Status.ONLINE


def test_a_first_heartbeat_already_wedged_comes_online_then_degrades(agent) -> None:
    workspace, token = agent
    status, reply = send("/registry/heartbeat", heartbeat_body(workspace, wedged=True), token)
    assert (status, reply["workspace_status"]) == (200, "degraded")
    assert moves(workspace) == [
        (EventType.WORKSPACE_ONLINE, "register"),
        (EventType.WORKSPACE_DEGRADED, "degrade"),
    ]


def test_register_after_heartbeats_changes_no_state(online) -> None:
    workspace, token = online
    assert send("/registry/register", register_body(workspace), token)[0] == 200
    assert moves(workspace) == [(EventType.WORKSPACE_ONLINE, "register")]


# --- the heartbeat: Molecule's body, the wedge -------------------------------------------------


def test_molecules_full_heartbeat_is_stored_field_by_field(online) -> None:
    workspace, token = online
    status, reply = send("/registry/heartbeat", heartbeat_body(workspace, uptime=60), token)
    assert (status, reply["status"], reply["workspace_status"]) == (200, "ok", "online")
    workspace = fresh(workspace)
    assert (workspace.last_error_rate, workspace.last_sample_error) == (0.0, "")
    assert (workspace.active_tasks, workspace.current_task) == (1, "Drafting report")
    assert workspace.uptime_seconds == 60
    assert workspace.runtime_state == ""
    assert workspace.runtime_metadata == {
        "capabilities": CAPABILITIES,
        "idle_timeout_seconds": 900,
    }
    assert workspace.monthly_spend is None  # Molecule's runtime never sends it


def test_a_heartbeat_without_runtime_metadata_keeps_the_stored_one(online) -> None:
    # Molecule's loop leaves the key out when its adapter cannot be loaded.
    workspace, token = online
    assert send("/registry/heartbeat", heartbeat_body(workspace, metadata=False), token)[0] == 200
    assert fresh(workspace).runtime_metadata["capabilities"] == CAPABILITIES
    body = {**heartbeat_body(workspace), "runtime_metadata": {"capabilities": {}}}
    assert send("/registry/heartbeat", body, token)[0] == 200
    assert fresh(workspace).runtime_metadata == {"capabilities": {}}


def test_wedged_degrades_stays_degraded_while_wedged_and_recovers_when_not(online) -> None:
    workspace, token = online
    status, reply = send("/registry/heartbeat", heartbeat_body(workspace, wedged=True), token)
    assert (status, reply["workspace_status"]) == (200, "degraded")
    workspace = fresh(workspace)
    assert (workspace.runtime_state, workspace.last_sample_error) == ("wedged", REASON)
    degraded = StructureEvent.objects.filter(workspace=workspace).order_by("id").last()
    assert degraded.event_type == EventType.WORKSPACE_DEGRADED
    assert degraded.actor == f"agent:{workspace.short_id}"
    assert degraded.payload == {
        "from": "online",
        "to": "degraded",
        "cause": "degrade",
        "runtime_state": "wedged",
        "sample_error": REASON,
        "reason": "the agent reports its runtime wedged",
    }
    # Error rate 0 does not recover it while the runtime says it is wedged.
    for _ in range(3):
        body = heartbeat_body(workspace, wedged=True)
        assert send("/registry/heartbeat", body, token)[1]["workspace_status"] == "degraded"
    # The first full heartbeat without runtime_state: healthy again.
    status, reply = send("/registry/heartbeat", heartbeat_body(workspace), token)
    assert (status, reply["workspace_status"]) == (200, "online")
    workspace = fresh(workspace)
    assert (workspace.runtime_state, workspace.last_sample_error) == ("", "")
    recovered = StructureEvent.objects.filter(workspace=workspace).order_by("id").last()
    assert recovered.event_type == EventType.WORKSPACE_ONLINE
    assert (recovered.payload["cause"], recovered.payload["runtime_state"]) == ("recover", "")
    assert moves(workspace) == [
        (EventType.WORKSPACE_ONLINE, "register"),
        (EventType.WORKSPACE_DEGRADED, "degrade"),
        (EventType.WORKSPACE_ONLINE, "recover"),
    ]


def test_a_mini_heartbeat_does_not_clear_a_wedge(online) -> None:
    # Molecule's platform lets the task-start push (error_rate 0, no runtime_state) flip a
    # wedged workspace back online until the next full beat; the console does not.
    workspace, token = online
    send("/registry/heartbeat", heartbeat_body(workspace, wedged=True), token)
    status, reply = send("/registry/heartbeat", mini_body(workspace, "Next task", 2), token)
    assert (status, reply["workspace_status"]) == (200, "degraded")
    workspace = fresh(workspace)
    assert workspace.runtime_state == "wedged"
    assert (workspace.active_tasks, workspace.current_task) == (2, "Next task")
    # Its empty sample is no news: the page still says why the workspace is wedged.
    assert workspace.last_sample_error == REASON
    assert send("/registry/heartbeat", mini_body(workspace, "", 0), token)[0] == 200
    assert fresh(workspace).status == Status.DEGRADED
    assert send("/registry/heartbeat", heartbeat_body(workspace), token)[0] == 200
    assert fresh(workspace).status == Status.ONLINE


@pytest.mark.parametrize(
    ("body", "clears"),
    [
        ({"uptime_seconds": 31}, True),  # a full beat whose adapter could not be loaded
        ({"uptime_seconds": 0, "runtime_metadata": {"capabilities": {}}}, True),
        ({"uptime_seconds": 0, "runtime_state": ""}, True),  # it says so
        ({"uptime_seconds": 0}, False),
        ({}, False),  # the console's own shortest beat: every field at its default
    ],
)
def test_which_heartbeats_clear_a_wedge(online, body, clears) -> None:
    workspace, token = online
    send("/registry/heartbeat", heartbeat_body(workspace, wedged=True), token)
    base = {"workspace_id": str(workspace.pk), "error_rate": 0}
    status, reply = send("/registry/heartbeat", {**base, **body}, token)
    assert (status, reply["workspace_status"]) == (200, "online" if clears else "degraded")
    assert fresh(workspace).runtime_state == ("" if clears else "wedged")


def test_a_workspace_degraded_by_errors_and_wedged_needs_both_to_clear(online) -> None:
    workspace, token = online
    failing = {**heartbeat_body(workspace), "error_rate": 0.8, "sample_error": "rate limited"}
    assert send("/registry/heartbeat", failing, token)[1]["workspace_status"] == "degraded"
    wedged = {**heartbeat_body(workspace, wedged=True), "error_rate": 0.0}
    assert send("/registry/heartbeat", wedged, token)[1]["workspace_status"] == "degraded"
    unwedged_failing = {**heartbeat_body(workspace), "error_rate": 0.3}
    assert send("/registry/heartbeat", unwedged_failing, token) == (200, answer("degraded"))
    assert send("/registry/heartbeat", heartbeat_body(workspace), token) == (200, answer("online"))
    assert moves(workspace)[1:] == [
        (EventType.WORKSPACE_DEGRADED, "degrade"),
        (EventType.WORKSPACE_ONLINE, "recover"),
    ]


def test_a_new_instance_starts_with_no_runtime_state(online) -> None:
    # A restart (a verb, a sweep) sends the workspace back to provisioning with a new token; the
    # new agent's registration forgets what the old runtime said of itself.
    workspace, token = online
    send("/registry/heartbeat", heartbeat_body(workspace, wedged=True), token)
    Workspace.objects.filter(pk=workspace.pk).update(status=Status.PROVISIONING)
    assert send("/registry/register", register_body(workspace), token)[0] == 200
    workspace = fresh(workspace)
    assert (workspace.status, workspace.runtime_state, workspace.runtime_metadata) == (
        Status.ONLINE,
        "",
        {},
    )


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("wedged", "wedged"),
        ("", ""),
        ("ready", "ready"),  # a word Molecule's runtime does not send: kept, and not wedged
        ("x" * 50, "x" * 20),  # cut to the column, like the other texts
    ],
)
def test_runtime_state_words(online, value, stored) -> None:
    workspace, token = online
    body = {**heartbeat_body(workspace), "runtime_state": value}
    status, reply = send("/registry/heartbeat", body, token)
    assert (status, reply["workspace_status"]) == (
        200,
        "degraded" if value == "wedged" else "online",
    )
    assert fresh(workspace).runtime_state == stored


# --- monthly_spend ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ([1234], 1234),
        ([1234, 0], 1234),  # 0 means unchanged
        ([1234, -5], 1234),  # negative counts as 0: unchanged
        ([10**15], 10**12),  # clamped to $10 billion, as Molecule's platform does
        ([99.0], 99),
        ([10**29], 10**12),
    ],
)
def test_monthly_spend_is_stored_in_cents_and_clamped(online, sent, stored) -> None:
    workspace, token = online
    for cents in sent:
        body = {**heartbeat_body(workspace), "monthly_spend": cents}
        assert send("/registry/heartbeat", body, token)[0] == 200
    assert fresh(workspace).monthly_spend == stored


# --- refusals: a 400 with a sentence, nothing written -------------------------------------------


def row(workspace: Workspace) -> tuple[Any, ...]:
    return tuple(sorted(Workspace.objects.values().get(pk=workspace.pk).items()))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"monthly_spend": 1.5}, "monthly_spend must be a whole number of cents"),
        ({"monthly_spend": "12"}, "monthly_spend must be a whole number of cents"),
        ({"monthly_spend": True}, "monthly_spend must be a whole number of cents"),
        ({"runtime_state": 5}, "runtime_state must be a string"),
        ({"runtime_state": "wedged\x00"}, "runtime_state must not contain a NUL character"),
        ({"runtime_metadata": ["session"]}, "runtime_metadata must be an object"),
        ({"runtime_metadata": "caps"}, "runtime_metadata must be an object"),
        (
            {"runtime_metadata": {"capabilities": {"a\x00": True}}},
            "runtime_metadata holds a string with a NUL character",
        ),
        (
            {"runtime_metadata": {"blob": "x" * 16_400}},
            "runtime_metadata is 16411 bytes as JSON; at most 16384 are taken",
        ),
    ],
)
def test_bad_runtime_fields_are_a_400_and_change_nothing(online, fields, message) -> None:
    workspace, token = online
    before, events = row(workspace), StructureEvent.objects.count()
    body = {**heartbeat_body(workspace, wedged=True), **fields}
    assert send("/registry/heartbeat", body, token) == (400, {"error": message})
    assert (row(workspace), StructureEvent.objects.count()) == (before, events)


def test_the_largest_runtime_metadata_is_stored(online) -> None:
    workspace, token = online
    filler = "x" * (16 * 1024 - len('{"blob":""}'))
    body = {**heartbeat_body(workspace), "runtime_metadata": {"blob": filler}}
    assert send("/registry/heartbeat", body, token)[0] == 200
    assert fresh(workspace).runtime_metadata == {"blob": filler}


def test_null_runtime_fields_count_as_absent(online) -> None:
    workspace, token = online
    send("/registry/heartbeat", {**heartbeat_body(workspace), "monthly_spend": 500}, token)
    body = {
        **heartbeat_body(workspace),
        "runtime_state": None,
        "runtime_metadata": None,
        "monthly_spend": None,
    }
    assert send("/registry/heartbeat", body, token)[0] == 200
    workspace = fresh(workspace)
    assert (workspace.runtime_state, workspace.monthly_spend) == ("", 500)
    assert workspace.runtime_metadata["capabilities"] == CAPABILITIES


# --- update-card --------------------------------------------------------------------------------


def card_body(workspace: Workspace, **card: Any) -> dict[str, Any]:
    """watcher.py's body: ``{"workspace_id", "agent_card"}``."""
    return {
        "workspace_id": str(workspace.pk),
        "agent_card": {"name": "PM", "skills": [{"id": "report", "name": "Report"}], **card},
    }


def test_update_card_stores_the_card_and_answers_updated(online, settings) -> None:
    workspace, token = online
    events = StructureEvent.objects.count()
    status, reply = send("/registry/update-card", card_body(workspace), token)
    assert (status, reply) == (
        200,
        {
            "status": "updated",
            "workspace_status": "online",
            "heartbeat_interval": settings.MOLECULE_HEARTBEAT_INTERVAL,
        },
    )
    assert fresh(workspace).agent_card == card_body(workspace)["agent_card"]
    assert StructureEvent.objects.count() == events  # no state moved


def test_update_card_while_provisioning_stores_it_without_moving(agent) -> None:
    workspace, token = agent
    assert send("/registry/update-card", card_body(workspace), token)[0] == 200
    workspace = fresh(workspace)
    assert (workspace.status, workspace.agent_card["name"]) == (Status.PROVISIONING, "PM")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "agent_card is required"),
        ({"agent_card": None}, "agent_card is required"),
        ({"agent_card": ["x"]}, "agent_card must be an object"),
        (
            {"agent_card": {"description": "x" * 33_000}},
            "agent_card is 33018 bytes as JSON; at most 32768 are taken",
        ),
    ],
)
def test_update_card_refusals(online, body, message) -> None:
    workspace, token = online
    before = row(workspace)
    full = {"workspace_id": str(workspace.pk), **body}
    assert send("/registry/update-card", full, token) == (400, {"error": message})
    assert row(workspace) == before


def test_update_card_for_a_paused_workspace_is_a_409(online) -> None:
    workspace, token = online
    Workspace.objects.filter(pk=workspace.pk).update(status=Status.PAUSED)
    assert send("/registry/update-card", card_body(workspace), token) == (
        409,
        {"error": "workspace is paused; it does not accept an agent card"},
    )


def test_update_card_answers_only_post() -> None:
    response = Client().get("/registry/update-card")
    assert (response.status_code, response["Allow"]) == (405, "POST")


# --- shown: the workspace page and the API -------------------------------------------------------


def test_the_page_and_the_api_show_runtime_state_capabilities_and_spend(
    online, superuser, settings
) -> None:
    workspace, token = online
    body = {**heartbeat_body(workspace, wedged=True), "monthly_spend": 123456}
    send("/registry/heartbeat", body, token)
    client = Client()
    client.force_login(superuser)
    page = client.get(f"/workspaces/{workspace.pk}/?partial=state").content.decode()
    assert '<dd class="runtime-state"><strong>wedged</strong> · <em>' in page
    assert REASON in page
    assert "<code>session</code> ✓" in page
    assert "<code>scheduler</code> ✗" in page
    assert "idle timeout 900 s" in page
    assert '<dd class="monthly-spend">$1234.56</dd>' in page

    settings.ADMIN_TOKEN = ADMIN_TOKEN
    shape = api(ADMIN_TOKEN).get(f"orgs/{workspace.org.slug}/workspaces/{workspace.pk}").json()
    assert shape["runtime_state"] == "wedged"
    assert shape["runtime_metadata"]["capabilities"] == CAPABILITIES
    assert shape["monthly_spend"] == 123456


@pytest.mark.parametrize(
    ("cents", "shown"), [(5, "$0.05"), (100, "$1.00"), (10**12, "$10000000000.00")]
)
def test_spend_is_shown_in_dollars(online, superuser, cents, shown) -> None:
    workspace, token = online
    send("/registry/heartbeat", {**heartbeat_body(workspace), "monthly_spend": cents}, token)
    client = Client()
    client.force_login(superuser)
    page = client.get(f"/workspaces/{workspace.pk}/?partial=state").content.decode()
    assert f'<dd class="monthly-spend">{shown}</dd>' in page


def test_a_workspace_that_reported_nothing_shows_dashes(agent, superuser) -> None:
    workspace, _token = agent
    client = Client()
    client.force_login(superuser)
    page = client.get(f"/workspaces/{workspace.pk}/?partial=state").content.decode()
    assert '<dd class="runtime-state">—</dd>' in page
    assert '<dd class="capabilities">—</dd>' in page
    assert '<dd class="monthly-spend">—</dd>' in page
