"""Partner API keys: format, hashing, expiry, and the per-key rate limit across processes."""

from __future__ import annotations

import io
import re
import threading
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from orgs import partner_keys
from orgs.models import Org, PartnerApiKey
from tests.support.keys import database_text
from workspaces.models import EventType, StructureEvent


def mint(**kwargs: object) -> partner_keys.MintedKey:
    defaults: dict[str, object] = {
        "name": "Reseller",
        "scopes": ["orgs:read"],
        "created_by": "test",
    }
    return partner_keys.mint(**{**defaults, **kwargs})  # type: ignore[arg-type]


@pytest.mark.django_db
def test_a_key_is_mol_pk_live_and_32_hex_with_a_16_character_prefix() -> None:
    minted = mint()
    assert re.fullmatch(r"mol_pk_live_[0-9a-f]{32}", minted.plaintext)
    assert minted.key.prefix == minted.plaintext[:16]
    assert minted.key.key_hash == partner_keys.hash_token(minted.plaintext)


@pytest.mark.django_db
def test_no_plaintext_key_is_anywhere_in_the_database(org: Org) -> None:
    keys = [mint(org=org).plaintext, mint(scopes=["admin:keys"]).plaintext]
    dump = database_text()
    for plaintext in keys:
        assert plaintext[:16] in dump
        assert plaintext not in dump
        assert plaintext[16:] not in dump


@pytest.mark.django_db
def test_an_expired_key_is_told_apart_from_an_unknown_one() -> None:
    minted = mint(expires_at=timezone.now() + timedelta(hours=1))
    assert partner_keys.authenticate(minted.plaintext) == minted.key
    PartnerApiKey.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(partner_keys.KeyExpired):
        partner_keys.authenticate(minted.plaintext)
    assert partner_keys.authenticate("mol_pk_live_" + "f" * 32) is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": ""}, "name"),
        ({"scopes": ["orgs:everything"]}, "scopes"),
        ({"scopes": "orgs:read"}, "scopes"),
        ({"rate_limit": 0}, "rate_limit"),
        ({"rate_limit": True}, "rate_limit"),
        ({"expires_at": timezone.now() - timedelta(days=1)}, "expires_at"),
    ],
)
def test_minting_refuses_bad_arguments_with_field_errors(changes: dict, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        mint(**changes)
    assert field in caught.value.message_dict
    assert not PartnerApiKey.objects.exists()


@pytest.mark.django_db
def test_mint_and_revoke_write_events_without_the_key(org: Org) -> None:
    minted = mint(org=org, created_by="user:root")
    partner_keys.revoke(key_id=minted.key.pk, actor="user:root")
    events = list(StructureEvent.objects.order_by("id"))
    assert [(e.event_type, e.payload["kind"], e.org_id) for e in events] == [
        (EventType.TOKEN_MINTED, "partner_key", org.pk),
        (EventType.TOKEN_REVOKED, "partner_key", org.pk),
    ]
    assert all(minted.plaintext not in str(e.payload) for e in events)
    with pytest.raises(partner_keys.KeyNotFound):
        partner_keys.revoke(key_id=minted.key.pk, actor="user:root")


# --- the rate limit -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_window_admits_rate_limit_requests_then_says_how_long_to_wait() -> None:
    key = mint(rate_limit=2).key
    start = timezone.now()
    assert partner_keys.take_request(key, now=start) is None
    assert partner_keys.take_request(key, now=start + timedelta(seconds=1)) is None
    assert partner_keys.take_request(key, now=start + timedelta(seconds=20)) == 40
    assert partner_keys.take_request(key, now=start + timedelta(seconds=59.5)) == 1
    # The window opened with the first request and is over 60 s later.
    assert partner_keys.take_request(key, now=start + timedelta(seconds=60)) is None
    row = PartnerApiKey.objects.get()
    assert (row.window_started_at, row.window_count) == (start + timedelta(seconds=60), 1)
    assert row.last_used_at == start + timedelta(seconds=60)


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_on_separate_connections_never_exceed_the_limit() -> None:
    # Each thread has its own database connection, as each web process would: the count lives
    # in the row, so together they take exactly rate_limit slots.
    key = mint(rate_limit=5).key
    results: list[int | None] = []
    lock, barrier = threading.Lock(), threading.Barrier(12)

    def request() -> None:
        try:
            barrier.wait()
            outcome = partner_keys.take_request(key)
            with lock:
                results.append(outcome)
        finally:
            connection.close()

    threads = [threading.Thread(target=request) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(results) == 12
    assert results.count(None) == 5
    assert all(isinstance(wait, int) and 1 <= wait <= 60 for wait in results if wait is not None)
    assert PartnerApiKey.objects.get().window_count == 5


# --- manage.py partner_key ----------------------------------------------------------------------


@pytest.mark.django_db
def test_the_command_mints_lists_and_revokes(org: Org) -> None:
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "partner_key",
        "mint",
        "--name",
        "CI",
        "--scope",
        "orgs:read",
        "--scope",
        "orgs:create",
        "--org",
        "acme",
        stdout=out,
        stderr=err,
    )
    plaintext = out.getvalue().strip()
    key = PartnerApiKey.objects.get()
    assert partner_keys.hash_token(plaintext) == key.key_hash
    assert (key.scopes, key.org, key.created_by[:4]) == (["orgs:create", "orgs:read"], org, "cli:")
    listing = io.StringIO()
    call_command("partner_key", "list", stdout=listing)
    assert key.prefix in listing.getvalue()
    assert plaintext not in listing.getvalue()
    call_command("partner_key", "revoke", key.prefix, stdout=io.StringIO())
    assert PartnerApiKey.objects.get().revoked_at is not None
    with pytest.raises(CommandError, match="matches 0 live keys"):
        call_command("partner_key", "revoke", key.prefix, stdout=io.StringIO())
