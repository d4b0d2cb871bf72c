"""``/api/v1/orgs``: partner keys create, read and delete orgs and poll their provision status."""

from __future__ import annotations

from typing import Any

import pytest

from orgs.models import Org
from tests.support.keys import Api, api, mint_token
from tests.support.rows import MakeWorkspace
from workspaces.models import EventType, Status, StructureEvent, Workspace

pytestmark = pytest.mark.django_db


# --- create -------------------------------------------------------------------------------------


def test_a_partner_key_with_orgs_create_creates_an_org(partner: Any) -> None:
    client = partner(["orgs:create"])
    response = client.post(
        "orgs", {"slug": "initech", "name": "Initech", "plan": "team", "backend": "docker"}
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["slug"], body["name"], body["plan"], body["backend"], body["status"]) == (
        "initech",
        "Initech",
        "team",
        "docker",
        "active",
    )
    org = Org.objects.get(slug="initech")
    event = StructureEvent.objects.get(org=org)
    assert event.event_type == EventType.ORG_CREATED
    assert event.actor.startswith("partner:mol_pk_live_")
    assert len(event.actor) == len("partner:") + 16


def test_creating_an_org_defaults_to_the_free_plan_on_the_local_backend(partner: Any) -> None:
    partner(["orgs:create"]).post("orgs", {"slug": "initech", "name": "Initech"})
    org = Org.objects.get(slug="initech")
    assert (org.plan, org.backend) == ("free", "local")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "No slug"}, "slug"),
        ({"slug": "bad slug!", "name": "X"}, "slug"),
        ({"slug": "acme", "name": "Taken"}, "slug"),
        ({"slug": "import", "name": "Reserved"}, "slug"),
        ({"slug": "ok"}, "name"),
        ({"slug": "ok", "name": "   "}, "name"),
        ({"slug": "ok", "name": "X", "plan": "platinum"}, "plan"),
        ({"slug": "ok", "name": "X", "backend": "mainframe"}, "backend"),
        ({"slug": "ok", "name": "X", "colour": "red"}, "colour"),
    ],
)
def test_creating_an_org_with_bad_fields_is_400_with_field_errors(
    org: Org, partner: Any, body: dict[str, Any], field: str
) -> None:
    response = partner(["orgs:create"]).post("orgs", body)
    assert response.status_code == 400
    assert field in response.json()["fields"]
    assert Org.objects.count() == 1


def test_an_org_bound_key_cannot_create_orgs(org: Org, partner: Any) -> None:
    response = partner(["orgs:create"], org=org).post("orgs", {"slug": "new", "name": "New"})
    assert response.status_code == 403
    assert not Org.objects.filter(slug="new").exists()


def test_the_admin_token_creates_orgs_as_admin_token(admin: Api) -> None:
    assert admin.post("orgs", {"slug": "initech", "name": "Initech"}).status_code == 201
    assert StructureEvent.objects.get(event_type=EventType.ORG_CREATED).actor == "admin-token"


# --- read ---------------------------------------------------------------------------------------


def test_a_global_key_lists_every_active_org(org: Org, other_org: Org, partner: Any) -> None:
    Org.objects.create(slug="gone", name="Gone", status=Org.OrgStatus.ARCHIVED)
    client = partner(["orgs:read"])
    assert [o["slug"] for o in client.get("orgs").json()["orgs"]] == ["acme", "globex"]
    with_archived = client.get("orgs", include_archived="true").json()["orgs"]
    assert [o["slug"] for o in with_archived] == ["acme", "globex", "gone"]


def test_an_org_reads_as_its_fields(org: Org, partner: Any) -> None:
    body = partner(["orgs:read"]).get("orgs/acme").json()
    assert body["slug"] == "acme"
    assert body["name"] == "Acme Research"
    assert body["status"] == "active"


def test_an_unknown_org_is_404(partner: Any) -> None:
    assert partner(["orgs:read"]).get("orgs/nope").status_code == 404


# --- delete (archive) ---------------------------------------------------------------------------


def test_deleting_an_org_with_live_workspaces_is_refused_with_the_reason(
    org: Org, partner: Any, make_workspace: MakeWorkspace
) -> None:
    workspace = make_workspace(org)
    response = partner(["orgs:delete"]).delete("orgs/acme")
    assert response.status_code == 409
    assert "it has 1 live workspace(s)" in response.json()["error"]
    assert Org.objects.get(pk=org.pk).status == Org.OrgStatus.ACTIVE
    assert Workspace.objects.get(pk=workspace.pk).status == Status.ONLINE


def test_deleting_an_org_with_cascade_removes_every_workspace_through_dispatch(
    org: Org,
    partner: Any,
    make_workspace: MakeWorkspace,
    recording: dict[str, Any],
    run_tasks: Any,
) -> None:
    lead = make_workspace(org, name="Lead")
    child = make_workspace(org, name="Child", parent=lead)
    loner = make_workspace(org, Status.PAUSED, name="Loner")
    already = make_workspace(org, Status.REMOVED, name="Gone")
    with run_tasks():
        response = partner(["orgs:delete"]).delete("orgs/acme", cascade="true")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "archived"
    assert set(body["workspaces_deleted"]) == {str(lead.pk), str(child.pk), str(loner.pk)}
    assert set(Workspace.objects.values_list("status", flat=True)) == {Status.REMOVED}
    for workspace in (lead, child):
        assert ("stop", workspace.instance_id) in recording["local"].calls
    removed = StructureEvent.objects.filter(event_type=EventType.WORKSPACE_REMOVED)
    assert removed.exclude(workspace=already).count() == 3
    archived = StructureEvent.objects.get(event_type=EventType.ORG_ARCHIVED)
    assert archived.payload["cascade"] is True


def test_deleting_an_empty_org_archives_it_and_a_second_delete_is_404(
    org: Org, partner: Any
) -> None:
    client = partner(["orgs:delete", "orgs:read"])
    assert client.delete("orgs/acme").status_code == 200
    assert Org.objects.get(pk=org.pk).status == Org.OrgStatus.ARCHIVED
    assert client.delete("orgs/acme").status_code == 404
    # The row stays, readable, for its history.
    assert client.get("orgs/acme").json()["status"] == "archived"


def test_an_archived_orgs_tokens_stop_working(org: Org, partner: Any) -> None:
    token_client = api(mint_token(org))
    assert token_client.get("orgs/acme").status_code == 200
    partner(["orgs:delete"]).delete("orgs/acme")
    assert token_client.get("orgs/acme").status_code == 401


def test_an_archived_org_takes_no_new_workspaces(org: Org, admin: Api) -> None:
    Org.objects.filter(pk=org.pk).update(status=Org.OrgStatus.ARCHIVED)
    response = admin.post("orgs/acme/workspaces", {"name": "Late"})
    assert response.status_code == 409
    assert "archived" in response.json()["error"]
    assert not Workspace.objects.exists()


# --- provision status ---------------------------------------------------------------------------


def test_provision_status_follows_the_orgs_workspaces(
    org: Org, partner: Any, make_workspace: MakeWorkspace
) -> None:
    client = partner(["provision:status"])
    assert client.get("orgs/acme/provision-status").json()["phase"] == "empty"
    starting = make_workspace(org, Status.PROVISIONING, name="A")
    status = client.get("orgs/acme/provision-status").json()
    assert (status["phase"], status["workspaces"], status["by_status"]["provisioning"]) == (
        "provisioning",
        1,
        1,
    )
    Workspace.objects.filter(pk=starting.pk).update(status=Status.ONLINE)
    assert client.get("orgs/acme/provision-status").json()["phase"] == "ready"
    make_workspace(org, Status.PAUSED, name="B")
    assert client.get("orgs/acme/provision-status").json()["phase"] == "partial"
    Workspace.objects.filter(pk=starting.pk).update(status=Status.FAILED)
    assert client.get("orgs/acme/provision-status").json()["phase"] == "failed"


def test_an_org_token_may_read_its_own_provision_status(org: Org, client_a: Api) -> None:
    assert client_a.get("orgs/acme/provision-status").json()["org"] == "acme"
