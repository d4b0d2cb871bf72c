"""The admin's changelists of org-scoped models: a staff member sees only their orgs' rows."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from orgs.models import Org, OrgMembership, Team
from tests.support.org_pages import login
from tests.support.users import make_member
from workspaces.models import Workspace

# Every test here uses the recording backends (tests/support/fakes.py); none starts a real agent.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("recording")]


# --- admin changelists --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "codename", "marker"),
    [
        ("org", "view_org", "globex"),
        ("orgmembership", "view_orgmembership", "globex"),
        ("team", "view_team", "Theirs team"),
        ("workspace", "view_workspace", "Theirs"),
        ("structureevent", "view_structureevent", "globex"),
    ],
)
def test_admin_changelists_show_a_staff_member_only_their_orgs(
    org: Org,
    other_org: Org,
    tree: dict[str, Workspace],
    theirs: Workspace,
    model: str,
    codename: str,
    marker: str,
) -> None:
    Team.objects.create(org=other_org, lead=theirs, name="Theirs team")
    make_member(other_org, "gus", OrgMembership.Role.OWNER)
    staff = make_member(org, "stella", OrgMembership.Role.ADMIN)
    staff.is_staff = True
    staff.save()
    staff.user_permissions.add(Permission.objects.get(codename=codename))
    app = "orgs" if model in ("org", "orgmembership", "team") else "workspaces"
    response = login(staff).get(reverse(f"admin:{app}_{model}_changelist"))
    content = response.content.decode()
    assert response.status_code == 200
    # Neither in the rows nor in the sidebar's org filter.
    assert marker not in content
    assert "globex" not in content
    own = {
        "org": "acme",
        "orgmembership": "stella",
        "team": "PM team",
        "workspace": "DBA",
        "structureevent": "acme",
    }
    assert own[model] in content
