"""Tiers that give an agent the host are refused to an org an operator has not trusted.

On docker, T3 runs privileged in the host's PID namespace and T4 holds the engine's socket: a
tenant's token asking for either would be root on the host. Every door that sets a tier refuses
them with the same sentence (create, edit, expand, import), and a start of a row that has one is
refused too. A superuser's ``Org.privileged_tiers`` lifts it. These use the recording backends.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from orgs.importer import import_org
from orgs.models import Org, OrgMembership
from orgs.orgfile import InvalidOrgFile
from tests.support.keys import Api, mint_token
from workspaces import dispatch
from workspaces.models import EventType, Status, StructureEvent, Workspace

pytestmark = pytest.mark.django_db

REFUSAL = "tier 4 on the docker backend gives the agent the host"


@pytest.fixture
def docker_org(org: Org, recording: dict[str, Any]) -> Org:
    org.backend = "docker"
    org.save(update_fields=["backend"])
    return org


def test_each_door_refuses_a_tier_that_reaches_the_host(docker_org: Org) -> None:
    with pytest.raises(ValidationError, match=REFUSAL):
        dispatch.create_workspace(org=docker_org, name="PM", tier=4, actor="test")
    workspace = dispatch.create_workspace(org=docker_org, name="PM", tier=2, actor="test")
    with pytest.raises(ValidationError, match="tier 3 on the docker backend"):
        dispatch.edit_workspace(workspace_id=workspace.pk, actor="test", tier=3)
    lead = dispatch.create_workspace(
        org=docker_org, name="Lead", spec={"children": [{"name": "Root", "tier": 4}]}, actor="t"
    )
    with pytest.raises(dispatch.InvalidRequest, match=REFUSAL):
        dispatch.expand_team(workspace_id=lead.pk, actor="test")
    assert not Workspace.objects.filter(tier__gt=2).exists()


def test_the_api_answers_400_with_the_sentence(docker_org: Org) -> None:
    api = Api(mint_token(docker_org), Client())
    response = api.post(f"orgs/{docker_org.slug}/workspaces", {"name": "PM", "tier": 4})
    assert response.status_code == 400
    assert REFUSAL in " ".join(response.json()["fields"]["tier"])


def test_an_import_names_the_line_of_the_tier(recording: dict[str, Any]) -> None:
    text = "name: Acme\nslug: acme-d\nbackend: docker\nworkspaces:\n  - name: PM\n    tier: 4\n"
    with pytest.raises(InvalidOrgFile) as invalid:
        import_org(text, actor="test")
    [problem] = invalid.value.problems
    assert problem.line == 6
    assert REFUSAL in problem.message
    assert not Org.objects.filter(slug="acme-d").exists()


def test_a_row_that_has_such_a_tier_is_not_started(
    docker_org: Org, recording: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        workspace = dispatch.create_workspace(org=docker_org, name="PM", actor="test")
    # Written before the rule (or the operator withdrew the trust since).
    Workspace.objects.filter(pk=workspace.pk).update(tier=4)
    with django_capture_on_commit_callbacks(execute=True):
        dispatch.restart(workspace_id=workspace.pk, actor="test")
    workspace.refresh_from_db()
    assert workspace.status == Status.FAILED
    failed = StructureEvent.objects.filter(
        workspace=workspace, event_type=EventType.WORKSPACE_PROVISION_FAILED
    ).get()
    assert REFUSAL in failed.payload["error"]
    assert recording["docker"].running == {}


def test_an_org_an_operator_trusts_may_use_them(docker_org: Org) -> None:
    docker_org.privileged_tiers = True
    docker_org.save(update_fields=["privileged_tiers"])
    workspace = dispatch.create_workspace(org=docker_org, name="PM", tier=4, actor="test")
    assert workspace.tier == 4


def test_other_backends_keep_every_tier_inside_their_isolation(org: Org, recording: Any) -> None:
    # local grants no privileges for T3/T4; a control plane's VM is the workspace's own host.
    for backend in ("local", "controlplane"):
        org.backend = backend
        org.save(update_fields=["backend"])
        assert dispatch.tier_limit(org, backend) == 4


def test_only_a_superuser_may_trust_an_org(org: Org, superuser: User) -> None:
    owner = User.objects.create_user("olga", password="pw", is_staff=True)
    owner.user_permissions.set([])
    OrgMembership.objects.create(org=org, user=owner, role=OrgMembership.Role.OWNER)
    url = reverse("admin:orgs_org_change", args=[org.pk])
    as_superuser = Client()
    as_superuser.force_login(superuser)
    assert 'name="privileged_tiers"' in as_superuser.get(url).content.decode()
    as_owner = Client()
    as_owner.force_login(owner)
    assert 'name="privileged_tiers"' not in as_owner.get(url).content.decode()
