"""Credentials through the API: an org's tokens (mint, list, revoke) and partner keys."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from orgs import partner_keys
from orgs.models import Org, OrgApiToken, PartnerApiKey
from tests.support.keys import Api, api, database_text, mint_token
from workspaces.models import EventType, StructureEvent

pytestmark = pytest.mark.django_db


# --- org tokens ---------------------------------------------------------------------------------


def test_minting_returns_the_token_once_and_stores_only_its_hash(
    org: Org, token: str, client_a: Api
) -> None:
    response = client_a.post("orgs/acme/tokens", {"name": "zapier"})
    assert response.status_code == 201
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    plaintext = body["token"]
    assert len(plaintext) == 43
    assert body["prefix"] == plaintext[:8]
    assert (body["name"], body["org"], body["status"]) == ("zapier", "acme", "active")
    assert body["created_by"] == f"token:{token[:8]}"
    assert plaintext not in database_text()
    # The new token works, and listing never shows it again.
    assert api(plaintext).get("orgs/acme").status_code == 200
    listing = client_a.get("orgs/acme/tokens").content.decode()
    assert body["prefix"] in listing
    assert plaintext not in listing
    assert "hash" not in listing


def test_minting_writes_token_minted_with_prefix_and_name_only(org: Org, client_a: Api) -> None:
    plaintext = client_a.post("orgs/acme/tokens", {"name": "zapier"}).json()["token"]
    event = StructureEvent.objects.filter(event_type=EventType.TOKEN_MINTED).latest("id")
    assert event.payload["prefix"] == plaintext[:8]
    assert event.payload["name"] == "zapier"
    assert plaintext not in str(event.payload)


def test_minting_with_an_expiry(org: Org, client_a: Api) -> None:
    body = client_a.post("orgs/acme/tokens", {"name": "job", "expires_in_days": 7}).json()
    expires = OrgApiToken.objects.get(pk=body["id"]).expires_at
    assert expires is not None
    assert timedelta(days=6, hours=23) < expires - timezone.now() <= timedelta(days=7)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": "  "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "x", "expires_in_days": 0}, "expires_in_days"),
        ({"name": "x", "expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ({"name": "x", "expires_at": "soon"}, "expires_at"),
        ({"name": "x", "scopes": ["all"]}, "scopes"),
    ],
)
def test_minting_with_bad_fields_is_400(
    org: Org, client_a: Api, body: dict[str, Any], field: str
) -> None:
    response = client_a.post("orgs/acme/tokens", body)
    assert response.status_code == 400
    assert field in response.json()["fields"]
    assert OrgApiToken.objects.count() == 1  # only the caller's own


def test_listing_tokens_hides_revoked_ones_unless_asked(org: Org, client_a: Api) -> None:
    gone = client_a.post("orgs/acme/tokens", {"name": "gone"}).json()
    client_a.delete(f"orgs/acme/tokens/{gone['id']}")
    names = [t["name"] for t in client_a.get("orgs/acme/tokens").json()["tokens"]]
    assert names == ["ci"]
    everything = client_a.get("orgs/acme/tokens", include_revoked="true").json()["tokens"]
    assert {(t["name"], t["status"]) for t in everything} == {("ci", "active"), ("gone", "revoked")}


def test_revoking_is_immediate_and_a_second_revoke_is_404(org: Org, client_a: Api) -> None:
    minted = client_a.post("orgs/acme/tokens", {"name": "temp"}).json()
    victim = api(minted["token"])
    assert victim.get("orgs/acme").status_code == 200
    assert client_a.delete(f"orgs/acme/tokens/{minted['id']}").status_code == 204
    assert victim.get("orgs/acme").status_code == 401
    assert client_a.delete(f"orgs/acme/tokens/{minted['id']}").status_code == 404
    revoked = StructureEvent.objects.filter(event_type=EventType.TOKEN_REVOKED)
    assert [e.payload["prefix"] for e in revoked] == [minted["prefix"]]


def test_a_partner_key_with_admin_keys_mints_a_token_for_its_org(org: Org, partner: Any) -> None:
    client = partner(["admin:keys"], org=org)
    response = client.post("orgs/acme/tokens", {"name": "bootstrap"})
    assert response.status_code == 201
    assert response.json()["created_by"].startswith("partner:mol_pk_live_")
    assert api(response.json()["token"]).get("orgs/acme").status_code == 200


def test_a_partner_key_without_admin_keys_cannot_touch_tokens(org: Org, partner: Any) -> None:
    client = partner(["orgs:read", "orgs:create"])
    assert client.post("orgs/acme/tokens", {"name": "x"}).status_code == 403
    assert client.get("orgs/acme/tokens").status_code == 403
    assert not OrgApiToken.objects.exists()


# --- partner keys -------------------------------------------------------------------------------


def test_the_admin_token_mints_a_partner_key_shown_once(org: Org, admin: Api) -> None:
    response = admin.post(
        "partner-keys",
        {"name": "Reseller", "scopes": ["orgs:create", "orgs:read"], "rate_limit": 120},
    )
    assert response.status_code == 201
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    key = body["key"]
    assert key.startswith("mol_pk_live_")
    assert len(key) == 44
    assert all(c in "0123456789abcdef" for c in key[12:])
    assert body["prefix"] == key[:16]
    assert (body["scopes"], body["rate_limit"], body["org"]) == (
        ["orgs:create", "orgs:read"],
        120,
        None,
    )
    assert key not in database_text()
    assert api(key).get("orgs").status_code == 200


def test_a_partner_key_cannot_grant_scopes_it_lacks(org: Org, partner: Any) -> None:
    client = partner(["admin:keys", "orgs:read"])
    escalated = client.post("partner-keys", {"name": "x", "scopes": ["orgs:delete"]})
    assert escalated.status_code == 403
    assert "orgs:delete" in escalated.json()["error"]
    subset = client.post("partner-keys", {"name": "y", "scopes": ["orgs:read"]})
    assert subset.status_code == 201
    assert PartnerApiKey.objects.count() == 2


def test_an_org_bound_key_mints_only_keys_bound_to_its_org(
    org: Org, other_org: Org, partner: Any
) -> None:
    client = partner(["admin:keys", "orgs:read"], org=org)
    unbound = client.post("partner-keys", {"name": "x", "scopes": ["orgs:read"]})
    assert unbound.status_code == 403
    other = client.post("partner-keys", {"name": "x", "scopes": [], "org": "globex"})
    assert other.status_code == 400
    assert other.json()["fields"]["org"] == ["no such org"]
    bound = client.post("partner-keys", {"name": "x", "scopes": ["orgs:read"], "org": "acme"})
    assert bound.status_code == 201
    assert bound.json()["org"] == "acme"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"scopes": []}, "name"),
        ({"name": "x"}, "scopes"),
        ({"name": "x", "scopes": ["orgs:everything"]}, "scopes"),
        ({"name": "x", "scopes": "orgs:read"}, "scopes"),
        ({"name": "x", "scopes": [], "rate_limit": 0}, "rate_limit"),
        ({"name": "x", "scopes": [], "rate_limit": "fast"}, "rate_limit"),
        ({"name": "x", "scopes": [], "org": 5}, "org"),
    ],
)
def test_minting_a_partner_key_with_bad_fields_is_400(
    admin: Api, body: dict[str, Any], field: str
) -> None:
    response = admin.post("partner-keys", body)
    assert response.status_code == 400
    assert field in response.json()["fields"]
    assert not PartnerApiKey.objects.exists()


def test_listing_and_revoking_partner_keys(admin: Api) -> None:
    key = admin.post("partner-keys", {"name": "x", "scopes": ["orgs:read"]}).json()
    listing = admin.get("partner-keys").json()["keys"]
    assert [k["prefix"] for k in listing] == [key["prefix"]]
    assert key["key"] not in str(listing)
    assert admin.delete(f"partner-keys/{key['id']}").status_code == 204
    assert api(key["key"]).get("orgs").status_code == 401
    assert admin.delete(f"partner-keys/{key['id']}").status_code == 404
    assert admin.get("partner-keys").json()["keys"] == []
    assert admin.get("partner-keys", include_revoked="true").json()["keys"][0]["status"] == (
        "revoked"
    )


def test_an_org_bound_key_cannot_revoke_a_global_key(org: Org, partner: Any) -> None:
    global_key = partner_keys.mint(name="global", scopes=[], created_by="test").key
    client = partner(["admin:keys"], org=org)
    assert client.delete(f"partner-keys/{global_key.pk}").status_code == 404
    assert PartnerApiKey.objects.get(pk=global_key.pk).revoked_at is None


def test_org_tokens_cannot_manage_partner_keys(org: Org, client_a: Api) -> None:
    assert client_a.get("partner-keys").status_code == 403
    assert client_a.post("partner-keys", {"name": "x", "scopes": []}).status_code == 403
    assert not PartnerApiKey.objects.exists()


def test_a_token_minted_by_a_token_records_the_chain(org: Org) -> None:
    first = mint_token(org, "root")
    second = api(first).post("orgs/acme/tokens", {"name": "child"}).json()
    third = api(second["token"]).post("orgs/acme/tokens", {"name": "grandchild"}).json()
    assert third["created_by"] == f"token:{second['prefix']}"
    assert second["created_by"] == f"token:{first[:8]}"
