"""Org API tokens as a service and a command: hashed only, shown once, revoked at once."""

from __future__ import annotations

import io
import json
import re
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.utils import timezone

from orgs import api_tokens
from orgs.models import Org, OrgApiToken
from tests.support.keys import database_text
from workspaces.models import EventType, StructureEvent

pytestmark = pytest.mark.django_db


def test_a_token_is_32_random_url_safe_bytes_with_an_8_character_prefix(org: Org) -> None:
    minted = api_tokens.mint(org=org, name="ci", created_by="user:olivia")
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", minted.plaintext)
    assert minted.token.prefix == minted.plaintext[:8]
    assert minted.token.token_hash == api_tokens.hash_token(minted.plaintext)
    other = api_tokens.mint(org=org, name="ci", created_by="user:olivia")
    assert other.plaintext != minted.plaintext


def test_no_plaintext_token_is_anywhere_in_the_database(org: Org, other_org: Org) -> None:
    minted = [
        api_tokens.mint(org=o, name=f"t{i}", created_by="test").plaintext
        for i, o in enumerate([org, org, other_org])
    ]
    api_tokens.revoke(
        org=org, token_id=OrgApiToken.objects.filter(org=org).first().pk, actor="test"
    )
    dump = database_text()
    assert "acme" in dump  # the dump really holds the rows
    for plaintext in minted:
        assert plaintext[:8] in dump  # the prefix is kept, on purpose
        assert plaintext not in dump
        assert plaintext[8:] not in dump


def test_authenticate_finds_a_live_token_by_its_hash(org: Org) -> None:
    minted = api_tokens.mint(org=org, name="ci", created_by="test")
    assert api_tokens.authenticate(minted.plaintext) == minted.token
    assert api_tokens.authenticate(minted.plaintext + "x") is None
    assert api_tokens.authenticate("") is None


def test_authenticate_refuses_revoked_expired_and_archived(org: Org) -> None:
    revoked = api_tokens.mint(org=org, name="a", created_by="test")
    api_tokens.revoke(org=org, token_id=revoked.token.pk, actor="test")
    expired = api_tokens.mint(org=org, name="b", created_by="test")
    OrgApiToken.objects.filter(pk=expired.token.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    live = api_tokens.mint(org=org, name="c", created_by="test")
    assert api_tokens.authenticate(revoked.plaintext) is None
    assert api_tokens.authenticate(expired.plaintext) is None
    assert api_tokens.authenticate(live.plaintext) is not None
    Org.objects.filter(pk=org.pk).update(status=Org.OrgStatus.ARCHIVED)
    assert api_tokens.authenticate(live.plaintext) is None


def test_last_used_at_is_written_at_most_once_a_minute(org: Org) -> None:
    minted = api_tokens.mint(org=org, name="ci", created_by="test")
    api_tokens.authenticate(minted.plaintext)
    first = OrgApiToken.objects.get().last_used_at
    api_tokens.authenticate(minted.plaintext)
    assert OrgApiToken.objects.get().last_used_at == first
    OrgApiToken.objects.update(last_used_at=timezone.now() - timedelta(minutes=2))
    api_tokens.authenticate(minted.plaintext)
    assert timezone.now() - OrgApiToken.objects.get().last_used_at < timedelta(seconds=10)


def test_revoking_twice_is_not_found_the_second_time(org: Org) -> None:
    minted = api_tokens.mint(org=org, name="ci", created_by="test")
    api_tokens.revoke(org=org, token_id=minted.token.pk, actor="user:olivia")
    with pytest.raises(api_tokens.TokenNotFound):
        api_tokens.revoke(org=org, token_id=minted.token.pk, actor="user:olivia")
    assert StructureEvent.objects.filter(event_type=EventType.TOKEN_REVOKED).count() == 1


def test_a_token_is_revoked_only_through_its_own_org(org: Org, other_org: Org) -> None:
    minted = api_tokens.mint(org=org, name="ci", created_by="test")
    with pytest.raises(api_tokens.TokenNotFound):
        api_tokens.revoke(org=other_org, token_id=minted.token.pk, actor="test")
    assert OrgApiToken.objects.get().revoked_at is None


@pytest.mark.parametrize(
    ("name", "expires_at", "field"),
    [
        ("", None, "name"),
        ("   ", None, "name"),
        ("x" * 101, None, "name"),
        ("ok", timezone.now() - timedelta(days=1), "expires_at"),
    ],
)
def test_minting_refuses_bad_names_and_past_expiries(
    org: Org, name: str, expires_at: object, field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        api_tokens.mint(org=org, name=name, created_by="test", expires_at=expires_at)  # type: ignore[arg-type]
    assert field in caught.value.message_dict
    assert not OrgApiToken.objects.exists()
    assert not StructureEvent.objects.exists()


def test_mint_and_revoke_events_name_the_token_by_prefix_and_name(org: Org) -> None:
    minted = api_tokens.mint(org=org, name="zapier", created_by="user:olivia")
    api_tokens.revoke(org=org, token_id=minted.token.pk, actor="cli:ops")
    events = list(StructureEvent.objects.order_by("id"))
    assert [(e.event_type, e.actor, e.org_id) for e in events] == [
        (EventType.TOKEN_MINTED, "user:olivia", org.pk),
        (EventType.TOKEN_REVOKED, "cli:ops", org.pk),
    ]
    for event in events:
        assert (event.payload["prefix"], event.payload["name"]) == (minted.token.prefix, "zapier")
        assert minted.plaintext not in json.dumps(event.payload)


# --- manage.py token ----------------------------------------------------------------------------


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("token", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_the_command_mints_prints_the_token_once_and_records_the_cli_user(org: Org) -> None:
    out, err = run("mint", "--org", "acme", "--name", "deploy", "--expires-in-days", "30")
    plaintext = out.strip()
    row = OrgApiToken.objects.get()
    assert api_tokens.hash_token(plaintext) == row.token_hash
    assert row.created_by.startswith("cli:")
    assert row.expires_at is not None
    assert "shown only now" in err
    listing, _ = run("list")
    assert row.prefix in listing
    assert plaintext not in listing


def test_the_command_lists_as_json_without_hashes(org: Org) -> None:
    minted = api_tokens.mint(org=org, name="ci", created_by="test")
    out, _ = run("list", "--json")
    [row] = json.loads(out)
    assert (row["prefix"], row["name"], row["status"]) == (minted.token.prefix, "ci", "active")
    assert minted.token.token_hash not in out


def test_the_command_revokes_by_prefix_then_refuses_a_second_time(org: Org) -> None:
    minted = api_tokens.mint(org=org, name="ci", created_by="test")
    out, _ = run("revoke", minted.token.prefix)
    assert "Revoked" in out
    assert OrgApiToken.objects.get().revoked_at is not None
    with pytest.raises(CommandError, match="No live token"):
        run("revoke", str(minted.token.pk))


def test_the_command_refuses_an_unknown_org(db: None) -> None:
    with pytest.raises(CommandError, match="No org has the slug 'nope'"):
        run("mint", "--org", "nope", "--name", "x")
