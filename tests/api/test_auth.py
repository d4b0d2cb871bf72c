"""Bearer authentication of the JSON API: who gets in, who does not, and how they are told.

Every failure answers the same 401 body (nothing to learn by probing), except a partner key
past its expiry, which says so; a missing scope is 403; a partner key's rate limit is 429 with
Retry-After; another org's objects are 404, as if they did not exist.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from orgs import api_tokens, bearer, partner_keys
from orgs.models import Org, OrgApiToken, PartnerApiKey
from tests.support.keys import ADMIN_TOKEN, Api, api, mint_key, mint_token
from tests.support.rows import MakeWorkspace, status_of
from workspaces.models import Status, StructureEvent, Workspace

pytestmark = pytest.mark.django_db

UNAUTHORIZED = {"error": bearer.UNAUTHORIZED}


# --- 401: one answer for every failure ----------------------------------------------------------


def _revoked(org: Org) -> str:
    plaintext = mint_token(org, "old")
    row = OrgApiToken.objects.get(token_hash=api_tokens.hash_token(plaintext))
    api_tokens.revoke(org=org, token_id=row.pk, actor="test")
    return plaintext


def _expired(org: Org) -> str:
    plaintext = mint_token(org, "short-lived")
    OrgApiToken.objects.filter(token_hash=api_tokens.hash_token(plaintext)).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    return plaintext


def _archived(org: Org) -> str:
    plaintext = mint_token(org, "of an archived org")
    Org.objects.filter(pk=org.pk).update(status=Org.OrgStatus.ARCHIVED)
    return plaintext


def _revoked_key(org: Org) -> str:
    plaintext = mint_key(["orgs:read"])
    key = PartnerApiKey.objects.get(key_hash=partner_keys.hash_token(plaintext))
    partner_keys.revoke(key_id=key.pk, actor="test")
    return plaintext


def _revoked_expired_key(org: Org) -> str:
    # Revoked wins over expired: only a live key may learn that it merely expired.
    plaintext = _revoked_key(org)
    PartnerApiKey.objects.update(expires_at=timezone.now() - timedelta(days=1))
    return plaintext


def _one_character_off(org: Org) -> str:
    plaintext = mint_token(org, "real")
    return plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B")


BAD_CREDENTIALS = {
    "no header": lambda org: None,
    "empty bearer": lambda org: "",
    "garbage": lambda org: "not-a-token",
    "very long": lambda org: "x" * 5000,
    "one character off a real token": _one_character_off,
    "revoked org token": _revoked,
    "expired org token": _expired,
    "token of an archived org": _archived,
    "unknown partner key": lambda org: "mol_pk_live_" + "0" * 32,
    "revoked partner key": _revoked_key,
    "revoked and expired partner key": _revoked_expired_key,
    "admin token when none is configured": lambda org: ADMIN_TOKEN,
}


@pytest.mark.parametrize("case", BAD_CREDENTIALS)
@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "orgs"), ("get", "orgs/acme/workspaces"), ("post", "orgs/acme/tokens")],
)
def test_every_authentication_failure_answers_the_same_401(
    org: Org, case: str, method: str, path: str
) -> None:
    credential = BAD_CREDENTIALS[case](org)
    client = api(credential)
    response = client.get(path) if method == "get" else client.post(path, {"name": "x"})
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED
    assert response["WWW-Authenticate"] == 'Bearer realm="molecule"'
    assert OrgApiToken.objects.filter(name="x").count() == 0


def test_a_wrong_authorization_scheme_is_the_same_401(org: Org, token: str) -> None:
    response = Client().get("/api/v1/orgs", headers={"Authorization": f"Basic {token}"})
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED


def test_the_scheme_is_case_insensitive(org: Org, token: str) -> None:
    response = Client().get("/api/v1/orgs", headers={"Authorization": f"bearer {token}"})
    assert response.status_code == 200


def test_a_logged_in_console_session_does_not_authenticate_the_api(
    org: Org, superuser: User
) -> None:
    # Cookies would make every API endpoint a CSRF target: the API takes bearers only.
    client = Client()
    client.force_login(superuser)
    response = client.get("/api/v1/orgs")
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED


def test_an_expired_partner_key_says_it_expired() -> None:
    plaintext = mint_key(["orgs:read"])
    PartnerApiKey.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    response = api(plaintext).get("orgs")
    assert response.status_code == 401
    assert response.json() == {"error": "API key expired"}


def test_a_partner_key_works_until_its_expiry(org: Org) -> None:
    plaintext = mint_key(["orgs:read"], expires_at=timezone.now() + timedelta(hours=1))
    assert api(plaintext).get("orgs").status_code == 200


# --- revocation and expiry take effect at once --------------------------------------------------


def test_revoking_a_token_refuses_its_very_next_request(org: Org, token: str) -> None:
    client = api(token)
    assert client.get("orgs/acme").status_code == 200
    row = OrgApiToken.objects.get()
    api_tokens.revoke(org=org, token_id=row.pk, actor="test")
    response = client.get("orgs/acme")
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED


def test_a_token_that_revokes_itself_is_refused_right_after(org: Org, token: str) -> None:
    client = api(token)
    row = OrgApiToken.objects.get()
    assert client.delete(f"orgs/acme/tokens/{row.pk}").status_code == 204
    assert client.get("orgs/acme").status_code == 401


def test_revoking_a_partner_key_refuses_its_very_next_request() -> None:
    plaintext = mint_key(["orgs:read"])
    client = api(plaintext)
    assert client.get("orgs").status_code == 200
    partner_keys.revoke(key_id=PartnerApiKey.objects.get().pk, actor="test")
    assert client.get("orgs").status_code == 401


def test_a_token_records_when_it_was_last_used(org: Org, token: str) -> None:
    assert OrgApiToken.objects.get().last_used_at is None
    api(token).get("orgs")
    used = OrgApiToken.objects.get().last_used_at
    assert used is not None
    assert timezone.now() - used < timedelta(seconds=10)


# --- org isolation ------------------------------------------------------------------------------


def test_an_org_token_lists_only_its_own_org(org: Org, other_org: Org, client_a: Api) -> None:
    response = client_a.get("orgs")
    assert [o["slug"] for o in response.json()["orgs"]] == ["acme"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "orgs/globex", None),
        ("get", "orgs/globex/provision-status", None),
        ("get", "orgs/globex/workspaces", None),
        ("post", "orgs/globex/workspaces", {"name": "Intruder"}),
        ("get", "orgs/globex/workspaces/{ws}", None),
        ("patch", "orgs/globex/workspaces/{ws}", {"name": "Renamed"}),
        ("delete", "orgs/globex/workspaces/{ws}", None),
        ("post", "orgs/globex/workspaces/{ws}/stop", None),
        ("post", "orgs/globex/workspaces/{ws}/restart", None),
        ("get", "orgs/globex/workspaces/{ws}/secrets", None),
        ("put", "orgs/globex/workspaces/{ws}/secrets/API_KEY", {"value": "x"}),
        ("get", "orgs/globex/tokens", None),
        ("post", "orgs/globex/tokens", {"name": "mine now"}),
        # Its own org in the path, the other org's workspace id: still 404.
        ("get", "orgs/acme/workspaces/{ws}", None),
        ("post", "orgs/acme/workspaces/{ws}/stop", None),
        ("delete", "orgs/acme/workspaces/{ws}", None),
        ("put", "orgs/acme/workspaces/{ws}/secrets/API_KEY", {"value": "x"}),
    ],
)
def test_a_token_cannot_touch_another_org_and_gets_404(
    org: Org,
    other_org: Org,
    client_a: Api,
    make_workspace: MakeWorkspace,
    method: str,
    path: str,
    body: Any,
) -> None:
    theirs = make_workspace(other_org, name="Theirs")
    events = StructureEvent.objects.count()
    path = path.format(ws=theirs.pk)
    if method in ("get", "delete"):
        response = getattr(client_a, method)(path)
    else:
        response = client_a.send(method, path, body)
    assert response.status_code == 404
    assert response.json() == {"error": "Not found."}
    theirs.refresh_from_db()
    assert (theirs.name, theirs.status) == ("Theirs", Status.ONLINE)
    assert StructureEvent.objects.count() == events
    assert not Workspace.objects.filter(name="Intruder").exists()
    assert not theirs.secrets.exists()


def test_a_missing_org_and_a_foreign_org_look_the_same(
    org: Org, other_org: Org, client_a: Api
) -> None:
    assert client_a.get("orgs/globex").json() == client_a.get("orgs/no-such-org").json()
    assert client_a.get("orgs/globex").status_code == 404


def test_another_orgs_token_cannot_be_revoked_through_ones_own_org(
    org: Org, other_org: Org, client_a: Api
) -> None:
    mint_token(other_org, "theirs")
    theirs = OrgApiToken.objects.get(org=other_org)
    assert client_a.delete(f"orgs/acme/tokens/{theirs.pk}").status_code == 404
    assert client_a.delete(f"orgs/globex/tokens/{theirs.pk}").status_code == 404
    assert OrgApiToken.objects.get(pk=theirs.pk).revoked_at is None


# --- ADMIN_TOKEN --------------------------------------------------------------------------------


def test_the_admin_token_acts_on_every_org_as_admin_token(
    org: Org,
    other_org: Org,
    admin: Api,
    make_workspace: MakeWorkspace,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ours, theirs = make_workspace(org, name="Ours"), make_workspace(other_org, name="Theirs")
    with caplog.at_level(logging.WARNING, logger="molecule.api"):
        assert admin.post(f"orgs/acme/workspaces/{ours.pk}/stop").status_code == 202
        assert admin.post(f"orgs/globex/workspaces/{theirs.pk}/stop").status_code == 202
        assert {o["slug"] for o in admin.get("orgs").json()["orgs"]} == {"acme", "globex"}
    for workspace in (ours, theirs):
        event = StructureEvent.objects.filter(workspace=workspace).latest("id")
        assert (event.actor, event.payload["cause"]) == ("admin-token", "stop")
    used = [r.getMessage() for r in caplog.records if "ADMIN_TOKEN used" in r.getMessage()]
    assert len(used) == 3
    assert ADMIN_TOKEN not in caplog.text


def test_the_admin_token_is_refused_when_it_is_not_configured(org: Org, settings: Any) -> None:
    settings.ADMIN_TOKEN = ""
    response = api("").get("orgs")
    assert response.status_code == 401
    # An empty configured token never matches an empty bearer.
    assert Client().get("/api/v1/orgs", headers={"Authorization": "Bearer"}).status_code == 401


def test_a_near_miss_of_the_admin_token_is_refused(org: Org, admin: Api) -> None:
    assert api(ADMIN_TOKEN[:-1] + "y").get("orgs").status_code == 401
    assert api(ADMIN_TOKEN + "x").get("orgs").status_code == 401
    assert admin.get("orgs").status_code == 200


# --- 403: the credential is good, the permission is missing -----------------------------------


def test_a_partner_key_without_the_scope_is_403_and_told_which(org: Org, partner: Any) -> None:
    client = partner(["provision:status"])
    response = client.get("orgs")
    assert response.status_code == 403
    assert response.json() == {"error": "This key lacks the scope orgs:read."}
    assert client.get("orgs/acme/provision-status").status_code == 200


def test_an_org_token_cannot_create_or_delete_orgs(org: Org, client_a: Api) -> None:
    created = client_a.post("orgs", {"slug": "sneaky", "name": "Sneaky"})
    deleted = client_a.delete("orgs/acme")
    assert (created.status_code, deleted.status_code) == (403, 403)
    assert "partner key with the scope orgs:create" in created.json()["error"]
    assert not Org.objects.filter(slug="sneaky").exists()
    assert Org.objects.get(slug="acme").status == Org.OrgStatus.ACTIVE


def test_a_partner_key_cannot_drive_workspaces(
    org: Org, partner: Any, make_workspace: MakeWorkspace
) -> None:
    workspace = make_workspace(org)
    client = partner()  # every scope, no binding
    for response in (
        client.get("orgs/acme/workspaces"),
        client.post(f"orgs/acme/workspaces/{workspace.pk}/stop"),
        client.get("events"),
    ):
        assert response.status_code == 403
        assert "use an org API token" in response.json()["error"]
    assert status_of(workspace) == Status.ONLINE


def test_an_org_bound_partner_key_reaches_only_its_org(
    org: Org, other_org: Org, partner: Any
) -> None:
    client = partner(["orgs:read"], org=org)
    assert [o["slug"] for o in client.get("orgs").json()["orgs"]] == ["acme"]
    assert client.get("orgs/acme").status_code == 200
    assert client.get("orgs/globex").status_code == 404


# --- 429: the per-key rate limit ----------------------------------------------------------------


def test_a_partner_key_over_its_rate_limit_gets_429_with_retry_after(org: Org) -> None:
    client = api(mint_key(["orgs:read"], rate_limit=3))
    assert [client.get("orgs").status_code for _ in range(3)] == [200, 200, 200]
    refused = client.get("orgs")
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert "3 requests per minute" in refused.json()["error"]
    # The window ends: the key may call again.
    PartnerApiKey.objects.update(window_started_at=timezone.now() - timedelta(seconds=61))
    assert client.get("orgs").status_code == 200


def test_the_rate_limit_is_per_key(org: Org) -> None:
    busy, quiet = api(mint_key(["orgs:read"], rate_limit=1)), api(mint_key(["orgs:read"]))
    busy.get("orgs")
    assert busy.get("orgs").status_code == 429
    assert quiet.get("orgs").status_code == 200


def test_requests_refused_for_scope_still_count_against_the_limit(org: Org) -> None:
    client = api(mint_key(["provision:status"], rate_limit=2))
    assert [client.get("orgs").status_code for _ in range(3)] == [403, 403, 429]


# --- methods ------------------------------------------------------------------------------------


def test_a_method_an_endpoint_lacks_is_405_with_allow(org: Org, client_a: Api) -> None:
    response = client_a.put("orgs/acme/workspaces", {})
    assert response.status_code == 405
    assert response["Allow"] == "GET, POST"


def test_a_method_is_only_revealed_after_authentication(org: Org) -> None:
    response = api(None).put("orgs/acme/workspaces", {})
    assert response.status_code == 401
