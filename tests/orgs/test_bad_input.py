"""Issue 9's inputs through org import, the pages, the admin and the commands, each sent exactly
as found: refused with a sentence (a 4xx on a page, a ``CommandError`` from a command), never a
5xx or a traceback, and nothing written. The JSON API's are in tests/api/test_bad_input.py."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client

from orgs import importer
from orgs.models import Org, OrgApiToken, PartnerApiKey
from workspaces import fields
from workspaces.models import StructureEvent, Workspace

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_real_agents(recording: dict[str, Any]) -> None:
    """Recording backends: nothing here starts an agent."""


def rows() -> tuple[int, ...]:
    return (
        Org.objects.count(),
        Workspace.objects.count(),
        OrgApiToken.objects.count(),
        PartnerApiKey.objects.count(),
        StructureEvent.objects.count(),
    )


def problems_of(text: str) -> list[str]:
    before = rows()
    with pytest.raises(importer.InvalidOrgFile) as refused:
        importer.import_org(text, actor="test")
    assert rows() == before
    return [str(p) for p in refused.value.problems]


# --- org import ---------------------------------------------------------------------------------


def test_a_yaml_integer_of_over_4300_digits_is_a_problem_with_its_line() -> None:
    text = "name: Beta\nslug: beta\nworkspaces:\n  - name: PM\n    tier: " + "9" * 5000 + "\n"
    assert problems_of(text) == ["line 5: a number longer than 30 digits"]


@pytest.mark.parametrize("date", ["2024-02-30", "2023-13-01", "2024-02-28 25:00:00"])
def test_an_impossible_yaml_date_is_a_problem_with_its_line(date: str) -> None:
    text = f"name: Beta\nslug: beta\nworkspaces:\n  - name: {date}\n"
    [problem] = problems_of(text)
    assert problem.startswith(f"line 4: {date!r} is not a date that exists")


def test_a_nul_or_overlong_name_in_a_file_is_refused() -> None:
    text = 'name: Beta\nslug: beta\nworkspaces:\n  - name: "P\\0M"\n    role: ' + "r" * 201
    assert problems_of(text + "\n") == [
        "line 4: workspaces[0].name: must not contain control characters",
        "line 5: workspaces[0].role: is longer than 200 characters",
    ]


def test_a_team_one_over_the_cap_is_refused_at_import_and_as_a_spec() -> None:
    over = fields.MAX_TEAM + 1
    children = "".join(f"      - name: w{n}\n" for n in range(fields.MAX_TEAM))
    text = "name: Beta\nslug: beta\nworkspaces:\n  - name: PM\n    children:\n" + children
    cap = f"one import or team spec creates at most {fields.MAX_TEAM}"
    assert problems_of(text) == [f"line 3: workspaces: {over} workspaces; {cap}"]
    spec = {"children": [{"name": f"w{n}"} for n in range(over)]}
    assert fields.problems({"spec": spec}) == {"spec.children": [f"{over} workspaces; {cap}"]}


def test_a_default_runtime_follows_the_runtime_rule() -> None:
    text = "name: Beta\nslug: beta\ndefaults: {runtime: ''}\nworkspaces:\n  - name: PM\n"
    assert problems_of(text) == ["line 3: defaults.runtime: must be a non-empty string"]


# --- commands -----------------------------------------------------------------------------------


def command(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.mark.parametrize("name", ["token", "partner_key"])
def test_expires_in_99999999_days_is_refused_by_the_commands(org: Org, name: str) -> None:
    extra = ["--scope", "orgs:read"] if name == "partner_key" else ["--org", "acme"]
    before = rows()
    with pytest.raises(CommandError) as refused:
        command(name, "mint", "--name", "x", *extra, "--expires-in-days", "99999999")
    assert str(refused.value) == "--expires-in-days must be 1 to 3650 days."
    assert rows() == before


def test_demo_with_a_bad_slug_is_refused_and_the_pages_still_answer(superuser: User) -> None:
    with pytest.raises(CommandError) as refused:
        command("demo", "--org", "bad slug!")
    assert str(refused.value) == (
        "Cannot create the demo org: --org 'bad slug!' is not a slug: "
        "use up to 64 letters, digits, - and _."
    )
    assert not Org.objects.exists()
    client = Client()
    client.force_login(superuser)
    for page in ("/", "/orgs/", "/events/"):
        assert client.get(page).status_code == 200


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--name", ""], "name: is required and must be a non-empty string"),
        (["--name", "   "], "name: is required and must be a non-empty string"),
        (["--name", "PM", "--runtime", ""], "runtime: must be a non-empty string"),
        (["--name", "P\x00M"], "name: must not contain control characters"),
    ],
)
def test_workspace_create_refuses_an_empty_name_or_runtime(org: Org, option, message) -> None:
    before = rows()
    with pytest.raises(CommandError) as refused:
        command("workspace", "create", "--org", "acme", *option)
    assert str(refused.value) == f"Workspace not created: {message}"
    assert rows() == before


def test_a_nul_in_a_lookup_is_no_such_thing_in_the_commands(org: Org) -> None:
    with pytest.raises(CommandError, match="No org has the slug"):
        command("token", "list", "--org", "ac\x00me")
    with pytest.raises(CommandError, match="No workspace is called"):
        command("workspace", "stop", "P\x00M")
    with pytest.raises(CommandError, match="No live token"):
        command("token", "revoke", "ab\x00")


# --- pages --------------------------------------------------------------------------------------


@pytest.fixture
def browser(owner: User) -> Client:
    client = Client()
    client.force_login(owner)
    return client


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "x", "expires_in_days": "99999999"}, "must be 1 to 3650 days"),
        ({"name": "a\x01b"}, "must not contain control characters"),
    ],
)
def test_the_token_page_refuses_what_the_api_refuses(browser, org, data, message) -> None:
    before = rows()
    response = browser.post("/tokens/new/", {"org": "acme", **data})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert rows() == before


@pytest.mark.parametrize(
    "path",
    [
        "/?org=ac%00me",
        "/?status=%00",
        "/tokens/?org=%00",
        "/events/?actor=%00",
        "/orgs/acme/?q=%00",
        "/admin/orgs/org/?q=%00",
        "/admin/workspaces/workspace/?q=a%00",
    ],
)
def test_a_nul_in_a_page_filter_is_a_400_with_a_sentence(superuser, org, path) -> None:
    client = Client()
    client.force_login(superuser)
    response = client.get(path)
    assert response.status_code == 400
    assert "holds a NUL character, which no filter takes." in response.content.decode()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "P\x00M", "must not contain control characters"),
        ("workspace_dir", "/srv/a\x00b", "must not contain control characters"),
        ("name", "", "is required and must be a non-empty string"),
        ("runtime", "", "must be a non-empty string"),
    ],
)
def test_the_workspace_forms_give_the_shared_rules_sentence(
    browser, org, make_workspace, field, value, message
) -> None:
    workspace = make_workspace(org)
    form = {"name": "PM", "role": "", "tier": "2", "runtime": "langgraph", "workspace_dir": ""}
    response = browser.post(f"/workspaces/{workspace.pk}/edit/", {**form, field: value})
    assert response.status_code == 400
    assert message in response.content.decode()
    before = rows()
    if field != "workspace_dir":
        create = {"org": "acme", "name": "New", "tier": "2", "runtime": "langgraph"}
        response = browser.post("/workspaces/new/", {**create, field: value}, follow=True)
        assert message in response.content.decode()
    assert rows() == before


def test_a_nul_org_in_the_create_form_is_an_unknown_choice(browser, org) -> None:
    response = browser.post("/workspaces/new/", {"org": "ac\x00me", "name": "x"}, follow=True)
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not Workspace.objects.exists()
