"""Partner API keys: mint, revoke, check a bearer, and the per-key rate limit.

A key is ``mol_pk_live_`` + 32 hex characters (128 random bits); the prefix makes a leaked key
easy to spot in logs and for secret scanners. Only its sha256 is stored; the first 16
characters are kept as its ``prefix``. Scopes say what a key may do; a key bound to an org
reaches only that org.

The rate limit is a fixed one-minute window per key, counted in the key's own row with
conditional UPDATEs. The database, not a per-process cache, because the console runs several
web processes (gunicorn workers, several machines) and each must count against the same
window; Django's default cache is per process, and a shared cache (Redis) is not part of the
embedded default. Each UPDATE takes the row lock, so concurrent requests in different
processes never both take the last slot. A window opens with the first request after the
previous one ended, so there is no shared minute boundary for bursts to line up on.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from orgs import fields as org_fields
from orgs.models import Org, PartnerApiKey
from workspaces.bearer_secrets import hash_token
from workspaces.events import record as record_event
from workspaces.models import EventType

KEY_PREFIX = "mol_pk_live_"
PREFIX_LENGTH = 16
MAX_NAME_LENGTH = org_fields.MAX_CREDENTIAL_NAME
MAX_RATE_LIMIT = 100_000
WINDOW = timedelta(seconds=60)
SCOPES = frozenset(PartnerApiKey.Scope.values)


class KeyNotFound(Exception):
    """No live partner key with that id (a revoked one counts as not found)."""


class KeyExpired(Exception):
    """The key is real and not revoked, but past its expiry: the one 401 that says why."""


@dataclass(frozen=True)
class MintedKey:
    key: PartnerApiKey
    plaintext: str  # shown once, then only its hash exists


def is_partner_key(bearer: str) -> bool:
    return bearer.startswith("mol_pk_")


def _clean(
    name: object, scopes: object, rate_limit: object, expires_at: datetime | None
) -> tuple[str, list[str], int]:
    errors: dict[str, list[str]] = {}
    if why := org_fields.credential_name_problem(name):
        errors["name"] = [why]
    if not isinstance(scopes, list | tuple | set | frozenset) or not all(
        isinstance(s, str) for s in scopes
    ):
        errors["scopes"] = ["must be a list of scope names"]
    elif unknown := sorted(set(scopes) - SCOPES):
        errors["scopes"] = [
            f"unknown scope(s): {', '.join(unknown)}; known: {', '.join(sorted(SCOPES))}"
        ]
    if (
        isinstance(rate_limit, bool)
        or not isinstance(rate_limit, int)
        or not 1 <= rate_limit <= MAX_RATE_LIMIT
    ):
        errors["rate_limit"] = [
            f"must be a whole number of requests per minute, 1 to {MAX_RATE_LIMIT}"
        ]
    if why := org_fields.expires_at_problem(expires_at):
        errors["expires_at"] = [why]
    if errors:
        raise ValidationError(errors)
    return str(name).strip(), sorted(set(scopes)), int(rate_limit)  # type: ignore[arg-type]


def mint(
    *,
    name: str,
    scopes: list[str],
    created_by: str,
    org: Org | None = None,
    expires_at: datetime | None = None,
    rate_limit: int = 60,
) -> MintedKey:
    """Create a partner key; returns it with its plaintext, the only time it exists.

    Writes TOKEN_MINTED (kind partner_key: prefix, name, scopes; never the key), on the bound
    org if there is one. ``ValidationError`` with field errors for bad arguments.
    """
    name, scopes, rate_limit = _clean(name, scopes, rate_limit, expires_at)
    plaintext = KEY_PREFIX + secrets.token_hex(16)
    with transaction.atomic():
        key = PartnerApiKey.objects.create(
            name=name,
            prefix=plaintext[:PREFIX_LENGTH],
            key_hash=hash_token(plaintext),
            scopes=scopes,
            org=org,
            rate_limit=rate_limit,
            created_by=created_by,
            expires_at=expires_at,
        )
        _event(EventType.TOKEN_MINTED, key, created_by, scopes=scopes)
    return MintedKey(key, plaintext)


def revoke(*, key_id: object, actor: str, org: Org | None = None) -> PartnerApiKey:
    """Revoke a live key now; writes TOKEN_REVOKED. ``KeyNotFound`` if none (or revoked).

    ``org``: only a key bound to that org may be revoked (an org-bound admin:keys key).
    """
    with transaction.atomic():
        rows = PartnerApiKey.objects.select_for_update().filter(pk=key_id, revoked_at__isnull=True)
        if org is not None:
            rows = rows.filter(org=org)
        key = rows.first()
        if key is None:
            raise KeyNotFound(f"There is no live partner key {key_id}.")
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
        _event(EventType.TOKEN_REVOKED, key, actor)
    return key


def _event(event_type: EventType, key: PartnerApiKey, actor: str, **extra: Any) -> None:
    record_event(
        event_type,
        org_id=key.org_id,
        actor=actor,
        payload={
            "kind": "partner_key",
            "id": key.pk,
            "prefix": key.prefix,
            "name": key.name,
            **extra,
        },
    )


def authenticate(plaintext: str) -> PartnerApiKey | None:
    """The live key this bearer is, or None. ``KeyExpired`` for a real key past its expiry."""
    if not is_partner_key(plaintext) or len(plaintext) > 100:
        return None
    key = (
        PartnerApiKey.objects.select_related("org")
        .filter(key_hash=hash_token(plaintext), revoked_at__isnull=True)
        .first()
    )
    if key is None:
        return None
    if key.expires_at is not None and key.expires_at <= timezone.now():
        raise KeyExpired
    return key


def take_request(key: PartnerApiKey, *, now: datetime | None = None) -> int | None:
    """Count one request against the key's window: None if allowed, else seconds to wait.

    Three conditional UPDATEs, each atomic on its own (no transaction needed; each commits at
    once so other processes see it): take a slot in the open window; else open a new window if
    the last one ended; else, if another request opened a new window between the two (the
    second UPDATE then matches nothing), try the open window once more. Also stamps
    last_used_at, which costs nothing extra here.
    """
    now = now or timezone.now()
    window_open = Q(window_started_at__gt=now - WINDOW)
    rows = PartnerApiKey.objects.filter(pk=key.pk)

    def take_slot() -> bool:
        return bool(
            rows.filter(window_open, window_count__lt=F("rate_limit")).update(
                window_count=F("window_count") + 1, last_used_at=now
            )
        )

    if take_slot():
        return None
    opened = rows.filter(~window_open | Q(window_started_at__isnull=True)).update(
        window_started_at=now, window_count=1, last_used_at=now
    )
    if opened or take_slot():
        return None
    started = rows.values_list("window_started_at", flat=True).first() or now
    # Clamped: another process may have opened the window a moment "after" this one's now.
    wait = math.ceil((started + WINDOW - now).total_seconds())
    return min(max(1, wait), int(WINDOW.total_seconds()))
