"""``/api/v1/orgs/<slug>/workspaces/<id>/plugins``: install, list and uninstall over the API
(the shipped catalogue, plugins/; the recording backend's in-memory files)."""

from __future__ import annotations

import pytest

from orgs.models import Org
from tests.support.keys import Api
from tests.support.rows import MakeWorkspace
from workspaces.models import EventType, Workspace

pytestmark = pytest.mark.django_db


def url(workspace: Workspace, tail: str = "") -> str:
    return f"orgs/{workspace.org.slug}/workspaces/{workspace.pk}/plugins{tail}"


def test_a_plugin_is_installed_listed_and_uninstalled(
    org: Org, client_a: Api, make_workspace: MakeWorkspace
) -> None:
    workspace = make_workspace(org)
    before = client_a.get(url(workspace)).json()
    assert before["installed"] == []
    assert "parity-probe" in [plugin["name"] for plugin in before["catalogue"]]
    installed = client_a.post(url(workspace), {"name": "parity-probe"})
    assert (installed.status_code, installed.json()["name"]) == (201, "parity-probe")
    listed = client_a.get(url(workspace)).json()["installed"]
    assert [(p["name"], p["version"]) for p in listed] == [("parity-probe", "1.0.0")]
    assert client_a.delete(url(workspace, "/parity-probe")).status_code == 204
    assert client_a.get(url(workspace)).json()["installed"] == []
    assert client_a.delete(url(workspace, "/parity-probe")).status_code == 404
    kinds = sorted(
        workspace.events.filter(event_type__startswith="PLUGIN_").values_list(
            "event_type", flat=True
        )
    )
    assert kinds == [EventType.PLUGIN_INSTALLED, EventType.PLUGIN_UNINSTALLED]


@pytest.mark.parametrize("body", [{"name": "nope"}, {"name": "../x"}, {"name": 3}, {}])
def test_what_is_not_a_catalogue_plugin_is_400(
    org: Org, client_a: Api, make_workspace: MakeWorkspace, body: dict
) -> None:
    workspace = make_workspace(org)
    response = client_a.post(url(workspace), body)
    assert response.status_code == 400
    assert not workspace.events.filter(event_type=EventType.PLUGIN_INSTALLED).exists()
