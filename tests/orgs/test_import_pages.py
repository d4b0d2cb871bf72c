"""Org import from the console: the import page (a file or a paste, into a new org or one the
caller owns, every problem shown on its line) and the progress page that follows the
imported workspaces until they settle.
"""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from orgs.importer import import_org
from orgs.models import Org, OrgMembership, Team
from tests.support.org_pages import BAD, GOOD, HTMX, TREE, login, set_status
from workspaces import vault
from workspaces.models import EventType, Status, StructureEvent, Workspace

# Every test here uses the recording backends (tests/support/fakes.py); none starts a real agent.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("recording")]


# --- the import page ----------------------------------------------------------------------------


def post_import(client: Client, **data: Any) -> Any:
    return client.post(reverse("org-import"), data)


def test_the_import_page_offers_a_superuser_a_new_org(superuser: User, org: Org) -> None:
    content = login(superuser).get(reverse("org-import")).content.decode()
    assert 'enctype="multipart/form-data"' in content
    assert "(a new org, from the file&#x27;s name and slug)" in content
    assert '<option value="acme"' in content


def test_the_import_page_offers_an_owner_only_their_own_orgs(
    org: Org, other_org: Org, owner: User
) -> None:
    content = login(owner).get(reverse("org-import")).content.decode()
    assert '<option value="acme"' in content
    assert '<option value="globex"' not in content
    assert "a new org" not in content


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_viewer_only_member_cannot_import(org: Org, viewer: User, method: str) -> None:
    response = getattr(login(viewer), method)(reverse("org-import"), {"text": TREE, "into": "acme"})
    assert response.status_code == 403
    assert not Workspace.objects.exists()


def test_a_bad_file_shows_every_problem_with_its_line_and_creates_nothing(
    superuser: User,
) -> None:
    before = StructureEvent.objects.count()
    response = post_import(login(superuser), text=BAD)
    content = response.content.decode()
    assert response.status_code == 400
    assert "Nothing was imported: 2 problems in the file" in content
    assert '<a href="#L5">line 5</a>: <code>workspaces[0].tier</code>: unknown tier 9' in content
    assert "<code>workspaces[0].children[1].name</code>: duplicate name &#x27;A&#x27;" in content
    # The file is listed with the bad lines marked.
    assert re.search(r'<li id="L5" class="bad"><code>\s*tier: 9</code></li>', content)
    assert re.search(r'<li id="L4"><code>\s*- name: PM</code></li>', content)
    assert not Org.objects.filter(slug="beta").exists()
    assert not Workspace.objects.exists()
    assert StructureEvent.objects.count() == before


def test_an_uploaded_bad_file_comes_back_in_the_text_box_to_fix(superuser: User) -> None:
    upload = SimpleUploadedFile("beta.yaml", BAD.encode(), content_type="application/yaml")
    response = login(superuser).post(reverse("org-import"), {"file": upload})
    content = response.content.decode()
    assert response.status_code == 400
    assert "line 5" in content
    assert (
        html.escape("      - {name: A}") in content.split('name="text"')[1].split("</textarea>")[0]
    )


def test_an_uploaded_file_is_imported_and_redirects_to_its_progress(
    superuser: User, recording: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    upload = SimpleUploadedFile("beta.yaml", GOOD.encode(), content_type="application/yaml")
    with django_capture_on_commit_callbacks(execute=True):
        response = login(superuser).post(
            reverse("org-import"), {"file": upload, "env": "OPENAI_API_KEY=sk-upload\n"}
        )
    event = StructureEvent.objects.get(event_type=EventType.ORG_IMPORTED)
    assert response.status_code == 302
    assert response.url == reverse("org-import-progress", args=["beta", event.pk])
    assert event.payload["source"] == "beta.yaml"
    assert event.actor == "user:root"
    names = set(Workspace.objects.filter(org__slug="beta").values_list("name", flat=True))
    assert names == {"PM", "Frontend"}
    assert len([c for c in recording["local"].calls if c[0] == "start"]) == 2


def test_a_pasted_file_is_imported_with_the_env_values_as_secrets(
    superuser: User, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = post_import(login(superuser), text=GOOD, env="OPENAI_API_KEY=sk-pasted")
    assert response.status_code == 302
    for workspace in Workspace.objects.filter(org__slug="beta"):
        assert vault.reveal(workspace_id=workspace.pk, key="OPENAI_API_KEY") == "sk-pasted"


def test_a_missing_env_value_is_a_problem_on_its_line_and_no_value_is_echoed(
    superuser: User,
) -> None:
    response = post_import(login(superuser), text=GOOD, env="OTHER=sk-do-not-echo")
    content = response.content.decode()
    assert response.status_code == 400
    assert '<a href="#L3">line 3</a>: <code>required_env[0]</code>: OPENAI_API_KEY is required' in (
        content
    )
    assert "sk-do-not-echo" not in content
    assert not Org.objects.filter(slug="beta").exists()


def test_a_malformed_env_line_is_refused_without_echoing_it(superuser: User) -> None:
    response = post_import(login(superuser), text=GOOD, env="sk-just-a-value")
    content = response.content.decode()
    assert response.status_code == 400
    assert "Line 1 is not NAME=value." in content
    assert "sk-just-a-value" not in content


def test_an_owner_imports_into_their_org(
    org: Org, owner: User, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = post_import(login(owner), text=TREE, into="acme")
    event = StructureEvent.objects.get(event_type=EventType.ORG_IMPORTED)
    assert response.url == reverse("org-import-progress", args=["acme", event.pk])
    assert Workspace.objects.filter(org=org).count() == 5
    assert Team.objects.filter(org=org).count() == 2


def test_an_owner_cannot_create_a_new_org_by_import(org: Org, owner: User) -> None:
    response = post_import(login(owner), text=GOOD, env="OPENAI_API_KEY=x")
    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    assert not Org.objects.filter(slug="beta").exists()


def test_an_owner_cannot_import_into_another_org(org: Org, other_org: Org, owner: User) -> None:
    response = post_import(login(owner), text=TREE, into="globex")
    assert response.status_code == 400
    assert "Select a valid choice." in response.content.decode()
    assert not Workspace.objects.exists()


def test_a_viewer_of_one_org_cannot_import_into_it_through_another_role(
    org: Org, other_org: Org, viewer: User
) -> None:
    # Owner of globex, viewer of acme: acting on globex gives no right to act on acme.
    OrgMembership.objects.create(org=other_org, user=viewer, role=OrgMembership.Role.OWNER)
    response = post_import(login(viewer), text=TREE, into="acme")
    assert response.status_code == 400
    assert not Workspace.objects.filter(org=org).exists()


def test_both_a_file_and_a_paste_are_refused(superuser: User) -> None:
    upload = SimpleUploadedFile("beta.yaml", GOOD.encode())
    response = login(superuser).post(reverse("org-import"), {"file": upload, "text": GOOD})
    assert "Upload a file or paste one, not both." in response.content.decode()
    assert not Org.objects.filter(slug="beta").exists()


def test_neither_a_file_nor_a_paste_is_refused(superuser: User) -> None:
    response = post_import(login(superuser), text="  ")
    assert "Upload a YAML file or a template archive, or paste one." in response.content.decode()


# --- the progress page --------------------------------------------------------------------------


@pytest.fixture
def imported(org: Org, django_capture_on_commit_callbacks: Any) -> StructureEvent:
    with django_capture_on_commit_callbacks(execute=True):
        return import_org(TREE, actor="test", into=org).event


def progress_url(org: Org, event: StructureEvent) -> str:
    return reverse("org-import-progress", args=[org.slug, event.pk])


def counts_in(content: str) -> dict[str, int]:
    found = re.findall(r'data-progress="(\w+)"><strong>(\d+)</strong>', content)
    return {name: int(n) for name, n in found}


def test_the_progress_page_counts_and_keeps_polling_while_provisioning(
    org: Org, owner: User, imported: StructureEvent
) -> None:
    content = login(owner).get(progress_url(org, imported)).content.decode()
    assert "<html" in content
    assert counts_in(content) == {"created": 5, "provisioning": 5, "online": 0, "failed": 0}
    assert f'hx-get="{progress_url(org, imported)}"' in content
    assert 'data-settled="false"' in content
    assert 'data-node="DBA"' in content


def test_the_progress_partial_follows_the_workspaces_until_they_settle(
    org: Org, owner: User, imported: StructureEvent
) -> None:
    client = login(owner)
    rows = {w.name: w for w in Workspace.objects.filter(org=org)}
    set_status(Status.ONLINE, rows["PM"], rows["Frontend"])
    set_status(Status.FAILED, rows["Scout"])
    response = client.get(progress_url(org, imported), headers=HTMX)
    content = response.content.decode()
    assert "<html" not in content
    assert 'id="progress"' in content
    assert counts_in(content) == {"created": 5, "provisioning": 2, "online": 2, "failed": 1}

    set_status(Status.ONLINE, rows["Backend"], rows["DBA"])
    content = client.get(progress_url(org, imported), headers=HTMX).content.decode()
    assert counts_in(content) == {"created": 5, "provisioning": 0, "online": 4, "failed": 1}
    assert 'data-settled="true"' in content
    # Settled: the partial no longer asks to be polled.
    assert "hx-get" not in content
    assert "Settled: 4 of 5 online, 1 failed" in content


def test_the_progress_page_counts_other_states_apart(
    org: Org, owner: User, imported: StructureEvent
) -> None:
    set_status(Status.PAUSED, *Workspace.objects.filter(org=org, name__in=["PM", "Scout"]))
    content = login(owner).get(progress_url(org, imported), headers=HTMX).content.decode()
    assert counts_in(content)["other"] == 2


def test_a_viewer_may_watch_the_progress(org: Org, viewer: User, imported: StructureEvent) -> None:
    assert login(viewer).get(progress_url(org, imported)).status_code == 200


def test_an_outsider_gets_404_for_the_progress(
    org: Org, outsider: User, imported: StructureEvent
) -> None:
    assert login(outsider).get(progress_url(org, imported)).status_code == 404


def test_progress_for_an_event_that_is_not_this_orgs_import_is_404(
    org: Org, other_org: Org, superuser: User, imported: StructureEvent, theirs: Workspace
) -> None:
    client = login(superuser)
    other_import = StructureEvent.objects.get(event_type=EventType.ORG_IMPORTED, org=other_org)
    assert client.get(progress_url(org, other_import)).status_code == 404
    not_an_import = StructureEvent.objects.filter(org=org).exclude(pk=imported.pk).first()
    assert client.get(progress_url(org, not_an_import)).status_code == 404
