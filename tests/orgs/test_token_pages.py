"""The API tokens page and the admin for tokens and partner keys.

Owners mint (the token is shown once) and revoke; viewers see the list; outsiders see nothing
of another org; the admin never shows a hash and shows a minted key once.
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

from orgs import api_tokens, partner_keys
from orgs.models import Org, OrgApiToken, PartnerApiKey
from tests.support.users import make_member
from workspaces.models import EventType, StructureEvent

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


def login(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def minted_on(content: str) -> str:
    match = re.search(r'<pre class="console" id="minted-token">([^<]+)</pre>', content)
    assert match, "the page shows no minted token"
    return match[1]


# --- list ---------------------------------------------------------------------------------------


def test_the_page_lists_the_users_orgs_tokens_and_no_others(
    org: Org, other_org: Org, owner: User
) -> None:
    ours = api_tokens.mint(org=org, name="ours", created_by="test").token
    theirs = api_tokens.mint(org=other_org, name="theirs", created_by="test").token
    content = login(owner).get(reverse("tokens")).content.decode()
    assert f'data-token="{ours.prefix}"' in content
    assert f'data-token="{theirs.prefix}"' not in content
    assert "globex" not in content
    assert ours.token_hash not in content


def test_the_page_answers_htmx_with_only_the_table(org: Org, owner: User) -> None:
    api_tokens.mint(org=org, name="ours", created_by="test")
    content = login(owner).get(reverse("tokens"), headers=HTMX).content.decode()
    assert 'id="tokens"' in content
    assert "<html" not in content
    assert "Mint a token" not in content


def test_a_viewer_sees_the_tokens_but_no_mint_form_or_revoke(org: Org, viewer: User) -> None:
    token = api_tokens.mint(org=org, name="ours", created_by="test").token
    content = login(viewer).get(reverse("tokens")).content.decode()
    assert f'data-token="{token.prefix}"' in content
    assert "Mint a token" not in content
    assert reverse("token-revoke", args=[token.pk]) not in content


def test_anonymous_visitors_are_sent_to_the_login_page(org: Org) -> None:
    for response in (
        Client().get(reverse("tokens")),
        Client().post(reverse("token-mint"), {"org": "acme", "name": "x"}),
    ):
        assert response.status_code == 302
        assert response.url.startswith(reverse("login"))
    assert not OrgApiToken.objects.exists()


# --- mint ---------------------------------------------------------------------------------------


def test_minting_shows_the_token_once(org: Org, owner: User) -> None:
    client = login(owner)
    response = client.post(reverse("token-mint"), {"org": "acme", "name": "zapier"})
    assert response.status_code == 201
    assert "no-store" in response["Cache-Control"]
    plaintext = minted_on(response.content.decode())
    row = OrgApiToken.objects.get()
    assert api_tokens.hash_token(plaintext) == row.token_hash
    assert (row.name, row.created_by) == ("zapier", "user:olivia")
    again = client.get(reverse("tokens")).content.decode()
    assert row.prefix in again
    assert plaintext not in again


def test_minting_with_htmx_answers_the_table_with_the_new_token(org: Org, owner: User) -> None:
    response = login(owner).post(
        reverse("token-mint"), {"org": "acme", "name": "zapier"}, headers=HTMX
    )
    content = response.content.decode()
    assert response["HX-Trigger"] == "token-minted"
    assert "<html" not in content
    assert api_tokens.hash_token(minted_on(content)) == OrgApiToken.objects.get().token_hash


def test_minting_with_an_expiry(org: Org, owner: User) -> None:
    login(owner).post(reverse("token-mint"), {"org": "acme", "name": "job", "expires_in_days": 3})
    assert OrgApiToken.objects.get().expires_at is not None


def test_a_mint_without_a_name_is_refused_with_a_message(org: Org, owner: User) -> None:
    response = login(owner).post(reverse("token-mint"), {"org": "acme", "name": ""})
    assert response.status_code == 400
    assert "Token not minted" in response.content.decode()
    assert not OrgApiToken.objects.exists()


def test_a_viewer_cannot_mint(org: Org, viewer: User) -> None:
    response = login(viewer).post(reverse("token-mint"), {"org": "acme", "name": "x"})
    assert response.status_code == 403
    assert not OrgApiToken.objects.exists()


def test_an_outsider_cannot_mint_for_another_org(org: Org, outsider: User) -> None:
    response = login(outsider).post(reverse("token-mint"), {"org": "acme", "name": "x"})
    assert response.status_code == 404
    assert not OrgApiToken.objects.exists()


def test_minting_needs_a_csrf_token(org: Org, owner: User) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    response = client.post(reverse("token-mint"), {"org": "acme", "name": "x"})
    assert response.status_code == 403
    assert not OrgApiToken.objects.exists()


# --- revoke -------------------------------------------------------------------------------------


def test_revoke_asks_first_then_revokes_and_a_second_revoke_is_404(org: Org, owner: User) -> None:
    token = api_tokens.mint(org=org, name="ci", created_by="test").token
    client = login(owner)
    url = reverse("token-revoke", args=[token.pk])
    confirm = client.get(url)
    assert confirm.status_code == 200
    assert f"Revoke token {token.prefix}" in confirm.content.decode()
    assert OrgApiToken.objects.get().revoked_at is None
    response = client.post(url)
    assert response.status_code == 302
    assert response.url == reverse("tokens")
    assert OrgApiToken.objects.get().revoked_at is not None
    event = StructureEvent.objects.get(event_type=EventType.TOKEN_REVOKED)
    assert (event.actor, event.payload["prefix"]) == ("user:olivia", token.prefix)
    assert client.post(url).status_code == 404
    assert client.get(url).status_code == 404


def test_revoking_with_htmx_answers_the_table(org: Org, owner: User) -> None:
    token = api_tokens.mint(org=org, name="ci", created_by="test").token
    response = login(owner).post(reverse("token-revoke", args=[token.pk]), headers=HTMX)
    content = response.content.decode()
    assert response["HX-Trigger"] == "token-revoked"
    assert 'data-status="revoked"' in content
    assert "<html" not in content


@pytest.mark.parametrize(("who", "status"), [("viewer", 403), ("outsider", 404)])
def test_only_the_orgs_owners_and_admins_revoke(
    org: Org, other_org: Org, who: str, status: int
) -> None:
    # A viewer of the token's org, or an owner of another org.
    user = (
        make_member(org, who, "viewer") if who == "viewer" else make_member(other_org, who, "owner")
    )
    token = api_tokens.mint(org=org, name="ci", created_by="test").token
    response = login(user).post(reverse("token-revoke", args=[token.pk]))
    assert response.status_code == status
    assert OrgApiToken.objects.get().revoked_at is None


# --- admin --------------------------------------------------------------------------------------


def test_the_admin_lists_tokens_without_their_hashes(org: Org, superuser: User) -> None:
    token = api_tokens.mint(org=org, name="ci", created_by="test").token
    client = login(superuser)
    changelist = client.get(reverse("admin:orgs_orgapitoken_changelist")).content.decode()
    change = client.get(reverse("admin:orgs_orgapitoken_change", args=[token.pk])).content.decode()
    for page in (changelist, change):
        assert token.prefix in page
        assert token.token_hash not in page
    assert 'name="name"' not in change  # read-only: nothing to edit


def test_the_admin_mints_a_token_and_shows_it_once(org: Org, superuser: User) -> None:
    response = login(superuser).post(
        reverse("admin:orgs_orgapitoken_add"), {"org": org.pk, "name": "from-admin"}
    )
    assert response.status_code == 200
    plaintext = re.search(r'<pre id="minted-token"[^>]*>([^<]+)</pre>', response.content.decode())
    assert plaintext
    row = OrgApiToken.objects.get()
    assert api_tokens.hash_token(plaintext[1]) == row.token_hash
    assert row.created_by == "user:root"


def test_the_admin_revoke_action_revokes_through_the_service(org: Org, superuser: User) -> None:
    token = api_tokens.mint(org=org, name="ci", created_by="test").token
    login(superuser).post(
        reverse("admin:orgs_orgapitoken_changelist"),
        {"action": "revoke_action", "_selected_action": [token.pk]},
    )
    assert OrgApiToken.objects.get().revoked_at is not None
    assert StructureEvent.objects.filter(event_type=EventType.TOKEN_REVOKED).count() == 1


def test_the_admin_mints_a_partner_key_with_scopes(superuser: User) -> None:
    response = login(superuser).post(
        reverse("admin:orgs_partnerapikey_add"),
        {"name": "Reseller", "scopes": ["orgs:read", "orgs:create"], "rate_limit": 30},
    )
    plaintext = re.search(r"mol_pk_live_[0-9a-f]{32}", response.content.decode())
    assert plaintext
    key = PartnerApiKey.objects.get()
    assert partner_keys.hash_token(plaintext[0]) == key.key_hash
    assert (key.scopes, key.rate_limit) == (["orgs:create", "orgs:read"], 30)


def test_partner_keys_are_hidden_from_staff_who_are_not_superusers(org: Org) -> None:
    staff = make_member(org, "stan", "owner")
    staff.is_staff = True
    staff.save()
    assert login(staff).get(reverse("admin:orgs_partnerapikey_changelist")).status_code == 403


def test_keys_cannot_be_deleted_in_the_admin(org: Org, superuser: User) -> None:
    token = api_tokens.mint(org=org, name="ci", created_by="test").token
    response = login(superuser).post(
        reverse("admin:orgs_orgapitoken_delete", args=[token.pk]), {"post": "yes"}
    )
    assert response.status_code == 403
    assert OrgApiToken.objects.filter(pk=token.pk).exists()


def test_the_admin_token_list_names_no_other_orgs(
    org: Org, other_org: Org, superuser: User
) -> None:
    staff = make_member(org, "stan", "owner")
    staff.is_staff = True
    staff.save()
    staff.user_permissions.add(Permission.objects.get(codename="view_orgapitoken"))
    api_tokens.mint(org=org, name="ours", created_by="test")
    theirs = api_tokens.mint(org=other_org, name="theirs", created_by="test").token
    content = login(staff).get(reverse("admin:orgs_orgapitoken_changelist")).content.decode()
    assert "ours" in content
    assert theirs.prefix not in content
    assert "globex" not in content
