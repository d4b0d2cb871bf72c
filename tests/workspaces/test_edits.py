"""Editing a workspace: four doors (admin change form, API PATCH, page, command), one service.

Each door goes through ``dispatch.edit_workspace``: the same rule per field
(``workspaces.fields``), so the same value gets the same sentence everywhere; the same row lock
and busy timeout as the verbs; and one WORKSPACE_UPDATED event with each field's old and new.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse

from orgs import api_tokens
from orgs.models import Org
from workspaces import dispatch, fields
from workspaces.models import EventType, StructureEvent, Workspace

pytestmark = pytest.mark.django_db

# A door takes (workspace, changes) and returns the error text it showed, or "" when it saved.
Door = Callable[[Workspace, dict[str, Any]], str]

BAD = [
    ("name", "", fields.name_problem("")),
    ("name", "tab\there", fields.name_problem("tab\there")),
    ("tier", 9, fields.tier_problem(9)),
    ("runtime", "two words", fields.runtime_problem("two words")),
    ("workspace_dir", "/etc/agents", fields.workspace_dir_field_problem("/etc/agents")),
    ("role", "r" * 201, fields.role_problem("r" * 201)),
]


@pytest.fixture
def workspace(org: Org, recording: dict[str, Any]) -> Workspace:
    return dispatch.create_workspace(org=org, name="PM", role="Lead", actor="test")


def _form(workspace: Workspace, changes: dict[str, Any]) -> dict[str, Any]:
    current = {
        "name": workspace.name,
        "role": workspace.role,
        "tier": workspace.tier,
        "runtime": workspace.runtime,
        "workspace_dir": workspace.workspace_dir,
    }
    return {**current, **changes}


@pytest.fixture
def doors(owner: User, superuser: User, org: Org) -> dict[str, Door]:
    page_client, admin_client = Client(), Client()
    page_client.force_login(owner)
    admin_client.force_login(superuser)
    token = api_tokens.mint(org=org, name="edits", created_by="test").plaintext

    def page(workspace: Workspace, changes: dict[str, Any]) -> str:
        url = reverse("workspace-edit", args=[workspace.pk])
        response = page_client.post(url, _form(workspace, changes))
        return "" if response.status_code == 302 else response.content.decode()

    def admin(workspace: Workspace, changes: dict[str, Any]) -> str:
        url = reverse("admin:workspaces_workspace_change", args=[workspace.pk])
        data = {**_form(workspace, changes), "spec": json.dumps(workspace.spec)}
        response = admin_client.post(url, data)
        return "" if response.status_code == 302 else response.content.decode()

    def api(workspace: Workspace, changes: dict[str, Any]) -> str:
        url = reverse("api-workspace", args=[org.slug, workspace.pk])
        response = Client().patch(
            url, changes, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
        )
        return "" if response.status_code == 200 else response.content.decode()

    def command(workspace: Workspace, changes: dict[str, Any]) -> str:
        options = {"name": "--name", "workspace_dir": "--workspace-dir"}
        args = [
            part
            for field, value in changes.items()
            for part in (options.get(field, f"--{field}"), str(value))
        ]
        try:
            call_command("workspace", "edit", str(workspace.pk), *args, stdout=io.StringIO())
        except CommandError as error:
            return str(error)
        return ""

    return {"page": page, "admin": admin, "api": api, "command": command}


def _updates(workspace: Workspace) -> list[StructureEvent]:
    return list(
        StructureEvent.objects.filter(
            workspace=workspace, event_type=EventType.WORKSPACE_UPDATED
        ).order_by("id")
    )


@pytest.mark.parametrize("door", ["page", "admin", "api", "command"])
def test_each_door_writes_one_event_with_the_old_and_new_values(
    doors: dict[str, Door], workspace: Workspace, door: str
) -> None:
    assert doors[door](workspace, {"role": "Reviewer", "tier": 3}) == ""
    workspace.refresh_from_db()
    assert (workspace.role, workspace.tier) == ("Reviewer", 3)
    [event] = _updates(workspace)
    assert event.payload["changed"] == {"role": ["Lead", "Reviewer"], "tier": [2, 3]}
    assert "applies at the next start" in event.payload["note"]


@pytest.mark.parametrize("door", ["page", "admin", "api", "command"])
@pytest.mark.parametrize(("field", "value", "sentence"), BAD, ids=[b[0] for b in BAD])
def test_the_same_bad_value_gets_the_same_sentence_at_every_door(
    doors: dict[str, Door],
    workspace: Workspace,
    door: str,
    field: str,
    value: Any,
    sentence: str,
) -> None:
    if door == "command" and field == "tier":
        value = 9
    before = Workspace.objects.values().get(pk=workspace.pk)
    shown = doors[door](workspace, {field: value})
    assert sentence
    # HTML escapes quotes; the API and the command show them as they are.
    assert sentence in shown or sentence.replace("'", "&#x27;") in shown
    assert Workspace.objects.values().get(pk=workspace.pk) == before
    assert _updates(workspace) == []


@pytest.mark.django_db(transaction=True)  # the holder is another connection: it must see the row
def test_an_edit_waits_for_a_busy_row_then_refuses_like_a_verb(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("workspaces.dispatch.edits.VERB_LOCK_WAIT", 0.3)
    held, release = threading.Event(), threading.Event()

    def slow_backend_call() -> None:
        with transaction.atomic():
            Workspace.objects.select_for_update().get(pk=workspace.pk)
            held.set()
            release.wait(10)
        connection.close()

    holder = threading.Thread(target=slow_backend_call)
    holder.start()
    try:
        assert held.wait(10)
        with pytest.raises(dispatch.Refused, match="is busy"):
            dispatch.edit_workspace(workspace_id=workspace.pk, actor="test", role="Busy")
    finally:
        release.set()
        holder.join()
    assert Workspace.objects.get(pk=workspace.pk).role == "Lead"
