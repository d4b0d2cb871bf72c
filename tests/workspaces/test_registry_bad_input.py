"""Issue 9's inputs to the agents' registry, each sent exactly as found: a 400 in JSON with the
field and why, never a 5xx, and nothing written (no credentials needed to be refused)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from tests.support.rows import with_token
from workspaces import bearer_secrets
from workspaces.models import StructureEvent, Workspace

pytestmark = pytest.mark.django_db

NESTED = b'{"agent_card": ' + b"[" * 30_000 + b"]" * 30_000 + b"}"


@pytest.fixture
def online(org: Any) -> tuple[Workspace, str]:
    return with_token(org)


def send(path: str, token: str, raw: bytes) -> Any:
    return Client().post(
        path,
        data=raw,
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )


def snapshot(workspace: Workspace) -> tuple[Any, ...]:
    row = Workspace.objects.values().get(pk=workspace.pk)
    return tuple(sorted(row.items())), StructureEvent.objects.count()


def refused(response: Any, status: int = 400) -> str:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/json"
    return response.json()["error"]


@pytest.mark.parametrize("path", ["/registry/register", "/registry/heartbeat"])
def test_deeply_nested_json_needs_no_credentials_to_be_a_400(path: str) -> None:
    message = refused(send(path, "", NESTED))
    assert message == "body is not JSON: it is nested more than 64 levels deep"


def body(workspace: Workspace, **fields: Any) -> bytes:
    return json.dumps({"workspace_id": str(workspace.pk), **fields}).encode()


@pytest.mark.parametrize(
    ("raw_field", "message"),
    [
        (b'"error_rate": NaN', "NaN, Infinity and -Infinity are not JSON numbers"),
        (b'"uptime_seconds": Infinity', "NaN, Infinity and -Infinity are not JSON numbers"),
        (b'"active_tasks": -Infinity', "NaN, Infinity and -Infinity are not JSON numbers"),
        (b'"uptime_seconds": 1e400', "the number 1e400 is out of range"),
    ],
)
def test_numbers_json_does_not_have_are_a_400(online, raw_field: bytes, message: str) -> None:
    workspace, token = online
    before = snapshot(workspace)
    raw = b'{"workspace_id": "%s", %s}' % (str(workspace.pk).encode(), raw_field)
    assert refused(send("/registry/heartbeat", token, raw)) == f"body is not JSON: {message}"
    assert snapshot(workspace) == before


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        # PositiveIntegerField is 32 bits on PostgreSQL: refused, not clamped (68 years of uptime
        # is a broken agent, and a heartbeat that says so is better refused than believed).
        ({"uptime_seconds": 10**10}, "uptime_seconds must be between 0 and 2147483647"),
        ({"uptime_seconds": 2**31}, "uptime_seconds must be between 0 and 2147483647"),
        ({"active_tasks": 10**7}, "active_tasks must be between 0 and 1000000"),
        ({"sample_error": "boom\x00"}, "sample_error must not contain a NUL character"),
        ({"current_task": "a\udc00"}, "current_task must be text (it holds an unpaired surrogate)"),
        ({"error_rate": True}, "error_rate must be a number"),
    ],
)
def test_out_of_range_numbers_and_nul_in_a_heartbeat_are_a_400(online, fields, message) -> None:
    workspace, token = online
    before = snapshot(workspace)
    assert refused(send("/registry/heartbeat", token, body(workspace, **fields))) == message
    assert snapshot(workspace) == before


def test_the_largest_uptime_the_column_holds_is_stored(online) -> None:
    workspace, token = online
    response = send("/registry/heartbeat", token, body(workspace, uptime_seconds=2**31 - 1))
    assert response.status_code == 200
    workspace.refresh_from_db()
    assert workspace.uptime_seconds == 2**31 - 1


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"url": "http://x\x00"}, "url must not contain a NUL character"),
        ({"agent_card": {"name": "a\x00"}}, "agent_card holds a string with a NUL character"),
        ({"agent_card": {"\x00": 1}}, "agent_card holds a string with a NUL character"),
        ({"agent_card": ["x"]}, "agent_card must be an object"),
    ],
)
def test_nul_in_a_registration_is_a_400(org, fields, message) -> None:
    token = bearer_secrets.mint()
    workspace = Workspace.objects.create(
        org=org, name="PM", backend="local", token_hash=bearer_secrets.hash_token(token)
    )
    before = snapshot(workspace)
    assert refused(send("/registry/register", token, body(workspace, **fields))) == message
    assert snapshot(workspace) == before


def test_a_nul_in_the_workspace_id_is_a_400() -> None:
    raw = json.dumps({"workspace_id": "\x00"}).encode()
    assert refused(send("/registry/register", "", raw)) == "workspace_id must be a UUID"


def test_every_answer_is_json_even_a_get(online) -> None:
    response = Client().get("/registry/heartbeat")
    assert refused(response, 405) == "method GET not allowed; use POST"
    assert response["Allow"] == "POST"
    assert refused(Client().get("/registry/nothing-here"), 404) == "Not found."


def test_an_unhandled_error_is_a_json_500_and_logged(online, monkeypatch, caplog) -> None:
    workspace, token = online

    def broken(**kwargs: Any) -> Any:
        raise RuntimeError("the registry broke on purpose")

    monkeypatch.setattr("workspaces.heartbeats.heartbeat", broken)
    response = Client(raise_request_exception=False).post(
        "/registry/heartbeat",
        data=body(workspace),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert refused(response, 500).startswith("Internal error; it is logged")
    [record] = [r for r in caplog.records if r.name == "django.request"]
    assert record.exc_info and record.exc_info[0] is RuntimeError
