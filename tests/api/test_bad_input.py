"""Issue 9's inputs to the JSON API, each sent exactly as found: a 4xx with a sentence, never a
5xx, nothing written; and a token stored with a far-future expiry no longer breaks anything.

The generated version of this file is tests/test_hostile_input.py (Hypothesis, every field).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.utils import timezone

from orgs import api_tokens
from orgs.models import Org, OrgApiToken, PartnerApiKey
from tests.support.keys import Api
from tests.support.rows import MakeWorkspace
from workspaces import fields, vault
from workspaces.bearer_secrets import hash_token
from workspaces.models import StructureEvent, Workspace, WorkspaceSecret

pytestmark = pytest.mark.django_db

NESTED = b'{"name": ' + b"[" * 30_000 + b"]" * 30_000 + b"}"


def refused(response: Any, status: int = 400) -> dict[str, Any]:
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["error"].endswith("."), body
    return body


def test_deeply_nested_json_is_a_400_with_a_sentence(org: Org, client_a: Api) -> None:
    before = Workspace.objects.count()
    body = refused(client_a.post("orgs/acme/workspaces", raw=NESTED))
    assert body["error"] == "The body is not valid JSON: it is nested more than 64 levels deep."
    assert Workspace.objects.count() == before


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b'{"name": NaN}', "NaN, Infinity and -Infinity are not JSON numbers"),
        (b'{"name": -Infinity}', "NaN, Infinity and -Infinity are not JSON numbers"),
        (b'{"tier": 1e999}', "the number 1e999 is out of range"),
        (b'{"tier": ' + b"9" * 5000 + b"}", "a number has more than 30 digits"),
        (b'{"name": "\xff"}', "it is not UTF-8"),
    ],
)
def test_numbers_json_does_not_have_are_a_400(org: Org, client_a: Api, raw: bytes, why: str):
    body = refused(client_a.post("orgs/acme/workspaces", raw=raw))
    assert body["error"] == f"The body is not valid JSON: {why}."


def test_the_events_cursor_is_ascii_digits(client_a: Api) -> None:
    body = refused(client_a.get("events", cursor="²"))
    assert body["fields"] == {"cursor": ["not a cursor from this API"]}
    body = refused(client_a.get("events", cursor="9" * 40))
    assert body["fields"] == {"cursor": ["not a cursor from this API"]}


@pytest.mark.parametrize(
    "moment",
    [
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        "0001-01-01T00:30:00+00:31",
        "2024-02-30T00:00:00Z",
    ],
)
@pytest.mark.parametrize("name", ["since", "until"])
def test_since_and_until_out_of_range_are_a_400(client_a: Api, name: str, moment: str) -> None:
    body = refused(client_a.get("events", **{name: moment}))
    [why] = body["fields"][name]
    assert why.startswith("must be an ISO 8601 date and time")


def test_since_and_until_at_the_edges_of_the_calendar_work(client_a: Api) -> None:
    response = client_a.get("events", since="0001-01-01T00:00:00Z", until="9999-12-31T23:59:59Z")
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("events", {"actor": "a\x00b"}, "actor"),
        ("events", {"type": "\x00"}, "type"),
        ("events", {"org": "ac\x00me"}, "org"),
        ("orgs/acme/workspaces", {"name": "P\x00M"}, "name"),
        ("orgs/acme/workspaces", {"backend": "\x00"}, "backend"),
        ("orgs/acme/workspaces", {"status": "\x00"}, "status"),
    ],
)
def test_a_nul_in_a_filter_is_a_400_naming_the_filter(
    org: Org, client_a: Api, path: str, params: dict[str, str], field: str
) -> None:
    body = refused(client_a.get(path, **params))
    assert body == {
        "error": "Invalid query.",
        "fields": {field: ["must not contain a NUL character"]},
    }
    control = {name: value.replace("\x00", "\x01") for name, value in params.items()}
    body = refused(client_a.get(path, **control))
    assert body["fields"][field] == ["must not contain control characters"]


@pytest.mark.parametrize(
    ("field", "value", "why"),
    [
        ("name", "P\x00M", "must not contain control characters"),
        ("name", "PM\ud800", "must be text (it holds an unpaired surrogate)"),
        ("name", "x" * 201, "is longer than 200 characters"),
        ("role", "x" * 201, "is longer than 200 characters"),
        ("role", "a\x00", "must not contain control characters"),
        ("workspace_dir", "/tmp/a\x00b", "must not contain control characters"),
        ("runtime", "", "must be a non-empty string"),
    ],
)
def test_bad_workspace_fields_are_refused_at_create_and_edit(
    org: Org, client_a: Api, make_workspace: MakeWorkspace, field: str, value: str, why: str
) -> None:
    workspace = make_workspace(org)
    before = Workspace.objects.count()
    create = refused(client_a.post("orgs/acme/workspaces", {"name": "New", field: value}))
    assert create["fields"][field] == [why]
    edit = refused(client_a.patch(f"orgs/acme/workspaces/{workspace.pk}", {field: value}))
    assert edit["fields"][field] == [why]
    assert Workspace.objects.count() == before


def test_a_team_spec_over_the_cap_is_refused_like_an_import_over_it(
    org: Org, client_a: Api, make_workspace: MakeWorkspace
) -> None:
    over = fields.MAX_TEAM + 1
    spec = {"children": [{"name": f"w{n}"} for n in range(over)]}
    body = refused(client_a.post("orgs/acme/workspaces", {"name": "Lead", "spec": spec}))
    assert body["fields"]["spec.children"] == [
        f"{over} workspaces; one import or team spec creates at most {fields.MAX_TEAM}"
    ]
    lead = make_workspace(org)
    body = refused(client_a.patch(f"orgs/acme/workspaces/{lead.pk}", {"spec": spec}))
    assert "spec.children" in body["fields"]
    lead.refresh_from_db()
    assert lead.spec == {}


# --- secrets ------------------------------------------------------------------------------------


def test_a_nul_in_a_secret_key_or_value_is_refused(
    org: Org, client_a: Api, make_workspace: MakeWorkspace
) -> None:
    workspace = make_workspace(org)
    base = f"orgs/acme/workspaces/{workspace.pk}/secrets"
    body = refused(client_a.put(f"{base}/A%00B", {"value": "v"}))
    assert body == {"error": "The address holds a NUL character, which no URL takes."}
    body = refused(client_a.put(f"{base}/A%01B", {"value": "v"}))
    assert body["fields"]["key"] == [vault.key_problem("A\x01B")]  # the name rule's own sentence
    body = refused(client_a.put(f"{base}/TOKEN", {"value": "a\x00b"}))
    assert body["fields"]["value"] == [
        "must not contain a NUL character (environment values cannot hold one)"
    ]
    body = refused(client_a.put(f"{base}/TOKEN", {"value": "a\udc80b"}))
    assert body["fields"]["value"] == ["must be text (it holds an unpaired surrogate)"]
    assert refused(client_a.delete(f"{base}/A%00B"))["error"].startswith("The address holds")
    assert refused(client_a.delete(f"{base}/A%01B"), 404) == {"error": "Not found."}
    assert not WorkspaceSecret.objects.exists()


# --- tokens -------------------------------------------------------------------------------------


def test_a_token_expiring_in_year_9999_with_an_offset_is_refused(org: Org, client_a: Api) -> None:
    before = OrgApiToken.objects.count()
    body = refused(
        client_a.post("orgs/acme/tokens", {"name": "x", "expires_at": "9999-12-31T23:59:59-01:00"})
    )
    assert body["fields"]["expires_at"] == [
        "must be an ISO 8601 date and time between years 1 and 9999 in UTC, "
        "e.g. 2030-01-31T12:00:00Z"
    ]
    body = refused(
        client_a.post("orgs/acme/tokens", {"name": "x", "expires_at": "9999-12-31T23:59:59Z"})
    )
    assert body["fields"]["expires_at"] == ["must be at most 3650 days (10 years) from now"]
    assert OrgApiToken.objects.count() == before


def test_a_partner_key_expiring_past_ten_years_is_refused(admin: Api) -> None:
    body = refused(
        admin.post(
            "partner-keys",
            {"name": "p", "scopes": ["orgs:read"], "expires_at": "2999-01-01T00:00:00Z"},
        )
    )
    assert body["fields"]["expires_at"] == ["must be at most 3650 days (10 years) from now"]
    assert not PartnerApiKey.objects.exists()


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("a\x00b", "must not contain control characters"),
        ("x" * 101, "must be at most 100 characters"),
        ("  ", "a name is required (what or who will use it)"),
    ],
)
def test_bad_token_names_are_refused(org: Org, client_a: Api, name: str, why: str) -> None:
    body = refused(client_a.post("orgs/acme/tokens", {"name": name}))
    assert body["fields"]["name"] == [why]


def test_the_database_refuses_an_expiry_no_page_could_read_back(org: Org) -> None:
    token = api_tokens.mint(org=org, name="far", created_by="test").token
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE orgs_orgapitoken SET expires_at = %s::timestamptz WHERE id = %s",
            ["9999-12-31T23:59:59-01:00", token.pk],
        )


@pytest.mark.django_db(transaction=True)
def test_a_token_stored_with_year_10000_is_listed_and_revoked_everywhere_after_migrating(
    settings: Any,
) -> None:
    """The row as the bug left it (before the bound): stored by the previous schema, repaired by
    the migration, then listed by the API, the page, the admin and the command, and revoked."""
    before = [("orgs", "0004_org_required_env")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    # Rows written with the models of that schema (today's have columns it lacks).
    old = executor.loader.project_state(before).apps
    org = old.get_model("orgs", "Org").objects.create(slug="acme", name="Acme")
    plaintext = "far-token-" + "x" * 33
    old_token = old.get_model("orgs", "OrgApiToken").objects.create(
        org=org,
        name="far",
        prefix=plaintext[:8],
        token_hash=hash_token(plaintext),
        created_by="test",
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE orgs_orgapitoken SET expires_at = %s::timestamptz WHERE id = %s",
            ["9999-12-31T23:59:59-01:00", old_token.pk],
        )
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    token = api_tokens.Minted(token=OrgApiToken.objects.get(pk=old_token.pk), plaintext=plaintext)

    api_client = Api(token.plaintext, Client())
    listed = api_client.get("orgs/acme/tokens")
    assert listed.status_code == 200
    [row] = listed.json()["tokens"]
    assert row["expires_at"] == "9999-12-30T00:00:00+00:00"
    root = User.objects.create_superuser("root", "root@localhost", "pw-root")
    browser = Client()
    browser.force_login(root)
    assert browser.get("/tokens/").status_code == 200
    assert browser.get("/admin/orgs/orgapitoken/").status_code == 200
    assert browser.get(f"/admin/orgs/orgapitoken/{token.token.pk}/change/").status_code == 200
    out = StringIO()
    call_command("token", "list", "--json", stdout=out)
    assert json.loads(out.getvalue())[0]["expires_at"] == "9999-12-30T00:00:00+00:00"
    assert api_client.delete(f"orgs/acme/tokens/{token.token.pk}").status_code == 204


# --- JSON always --------------------------------------------------------------------------------


def test_an_unknown_api_url_is_a_json_404(client_a: Api) -> None:
    assert refused(client_a.get("no/such/thing"), 404) == {"error": "Not found."}


def test_an_unhandled_error_in_the_api_is_a_json_500_and_logged(
    org: Org, client_a: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the API broke on purpose")

    monkeypatch.setattr("api.shapes.org", broken)
    client = Client(raise_request_exception=False)
    response = client.get("/api/v1/orgs/acme", headers=client_a.headers())
    body = refused(response, 500)
    assert body == {"error": "Internal error; it is logged, with its traceback, on the server."}
    [record] = [r for r in caplog.records if r.name == "django.request"]
    assert record.exc_info and record.exc_info[0] is RuntimeError


def test_nothing_was_written_by_refused_requests(org: Org, client_a: Api) -> None:
    before = StructureEvent.objects.count()
    client_a.post("orgs/acme/workspaces", raw=NESTED)
    client_a.post("orgs/acme/tokens", {"name": "x", "expires_at": "9999-12-31T23:59:59-01:00"})
    assert StructureEvent.objects.count() == before


def test_an_expiry_at_the_bound_is_accepted(org: Org, client_a: Api) -> None:
    at = (timezone.now() + timedelta(days=3649)).astimezone(UTC).isoformat()
    assert client_a.post("orgs/acme/tokens", {"name": "x", "expires_at": at}).status_code == 201
    assert datetime.fromisoformat(at) < timezone.now() + timedelta(days=3650)
    assert json.loads(json.dumps(at))
