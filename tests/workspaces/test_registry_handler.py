"""The agents' door through the WSGI application gunicorn serves: ``/registry/`` takes the short
middleware chain (workspaces/registry_handler.py) and answers as the full one did."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.core.signals import request_finished, request_started
from django.db import OperationalError, close_old_connections, connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from molecule.wsgi import application
from orgs.models import Org
from tests.support.rows import with_token
from workspaces.models import Workspace
from workspaces.registry_handler import REGISTRY_MIDDLEWARE, RegistryHandler

pytestmark = pytest.mark.django_db


@pytest.fixture
def online(org: Org) -> tuple[Workspace, str]:
    return with_token(org)


@pytest.fixture(autouse=True)
def in_the_tests_transaction() -> Iterator[None]:
    # As Django's test client does: the request signals would close the connection that holds
    # the test's transaction.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def served(
    path: str, body: dict[str, Any] | None = None, *, token: str = "", host: str = "127.0.0.1"
) -> tuple[int, dict[str, str], bytes]:
    """One request through ``molecule.wsgi.application``: status, headers, body."""
    request = RequestFactory(headers={"Host": host}).post(
        path,
        data=json.dumps(body or {}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    answer: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], *_: Any) -> None:
        answer["status"], answer["headers"] = int(status.split()[0]), dict(headers)

    chunks = application(request.environ, start_response)
    content = b"".join(chunks)
    chunks.close()  # type: ignore[attr-defined]
    return answer["status"], answer["headers"], content


def beat(workspace: Workspace, token: str) -> tuple[int, dict[str, str], bytes]:
    return served(
        "/registry/heartbeat", {"workspace_id": str(workspace.pk), "error_rate": 0.0}, token=token
    )


def test_a_quiet_heartbeat_through_the_registry_door_is_one_statement(online) -> None:
    workspace, token = online
    with CaptureQueriesContext(connection) as queries:
        status, _, content = beat(workspace, token)
    assert (status, json.loads(content)["workspace_status"]) == (200, "online")
    assert len(queries) == 1
    assert Workspace.objects.get(pk=workspace.pk).last_heartbeat_at is not None


def test_the_registry_skips_the_page_middleware_and_pages_keep_it(online) -> None:
    workspace, token = online
    _, registry_headers, _ = beat(workspace, token)
    _, page_headers, _ = served("/accounts/login/")
    assert "X-Frame-Options" not in registry_headers
    assert page_headers["X-Frame-Options"] == "DENY"
    assert registry_headers["X-Content-Type-Options"] == "nosniff"  # SecurityMiddleware's


def test_refusals_are_the_registrys_json(online) -> None:
    workspace, _ = online
    assert served("/registry/heartbeat", {"workspace_id": str(workspace.pk)}, token="x")[0] == 401
    status, _, content = served("/registry/nothing-here")
    assert (status, json.loads(content)) == (404, {"error": "Not found."})
    status, _, content = served("/registry/heart\x00beat")
    assert status == 400 and b"NUL" in content
    assert served("/registry/heartbeat", host="evil.example")[0] == 400


def test_a_lost_database_is_a_503_with_retry_after(online, monkeypatch, caplog) -> None:
    workspace, token = online

    def lost(**kwargs: Any) -> Any:
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr("workspaces.heartbeats.heartbeat", lost)
    status, headers, content = beat(workspace, token)
    assert (status, headers["Retry-After"]) == (503, "5")
    assert "database is unavailable" in json.loads(content)["error"]


def test_an_unhandled_error_is_a_json_500_and_logged(online, monkeypatch, caplog) -> None:
    workspace, token = online

    def broken(**kwargs: Any) -> Any:
        raise RuntimeError("the registry broke on purpose")

    monkeypatch.setattr("workspaces.heartbeats.heartbeat", broken)
    status, _, content = beat(workspace, token)
    assert status == 500
    assert json.loads(content)["error"].startswith("Internal error; it is logged")
    assert any(r.exc_info and r.exc_info[0] is RuntimeError for r in caplog.records)


def test_building_the_short_chain_leaves_the_settings_as_they_were() -> None:
    before = list(settings.MIDDLEWARE)
    RegistryHandler().load_middleware()
    assert before == settings.MIDDLEWARE
    assert set(REGISTRY_MIDDLEWARE) < set(before)
