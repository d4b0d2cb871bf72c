"""Org API tokens: mint (the plaintext is returned once), list, revoke, and check a bearer.

A token is 32 random bytes, url-safe (43 characters). Only its sha256 is stored, so a copy of
the database lets nobody act as a token; the first 8 characters are kept as its ``prefix`` for
people to recognise it by. Pages, the API, the admin and ``manage.py token`` all call this
module; none of them keeps its own copy of the rules.

Decisions:

- **Revoking is immediate and happens once.** A revoked token fails on the very next request
  (every check reads the row). Revoking it again answers "not found" (404), like revoking a
  token that never existed, so revoke tooling that double-delivers gets a clear answer.
- **Expiry is optional, and at most ten years ahead** (orgs/fields.py says why). An expired
  token fails like any bad token; it can still be revoked, which makes the list say why it
  stopped.
- **Tokens of an archived org stop working.** Archiving is the API's org delete.
- **last_used_at is written at most once a minute per token**, not on every request: it answers
  "is this token still in use?" without turning every API call into a write.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from orgs import fields as org_fields
from orgs.models import Org, OrgApiToken
from workspaces.bearer_secrets import hash_token
from workspaces.events import record as record_event
from workspaces.models import EventType

TOKEN_BYTES = 32
PREFIX_LENGTH = 8
MAX_NAME_LENGTH = org_fields.MAX_CREDENTIAL_NAME
# Longer bearers are not ours; refusing them early keeps hashing bounded.
MAX_BEARER_LENGTH = 200
LAST_USED_GRANULARITY = timedelta(seconds=60)


class TokenNotFound(Exception):
    """No live token with that id in that org (a revoked one counts as not found)."""


@dataclass(frozen=True)
class Minted:
    token: OrgApiToken
    plaintext: str  # shown once, then only its hash exists


def clean_name(name: object) -> str:
    if why := org_fields.credential_name_problem(name):
        raise ValidationError({"name": [why]})
    return str(name).strip()


def clean_expiry(expires_at: datetime | None) -> datetime | None:
    if why := org_fields.expires_at_problem(expires_at):
        raise ValidationError({"expires_at": [why]})
    return expires_at


def mint(*, org: Org, name: str, created_by: str, expires_at: datetime | None = None) -> Minted:
    """Create a token for ``org``; returns it with its plaintext, the only time it exists.

    Writes TOKEN_MINTED (prefix and name, never the token). ``ValidationError`` for an empty or
    long name or an expiry in the past.
    """
    name, expires_at = clean_name(name), clean_expiry(expires_at)
    plaintext = secrets.token_urlsafe(TOKEN_BYTES)
    with transaction.atomic():
        token = OrgApiToken.objects.create(
            org=org,
            name=name,
            prefix=plaintext[:PREFIX_LENGTH],
            token_hash=hash_token(plaintext),
            created_by=created_by,
            expires_at=expires_at,
        )
        record_event(
            EventType.TOKEN_MINTED,
            org_id=org.pk,
            actor=created_by,
            payload={
                "kind": "org_token",
                "id": token.pk,
                "prefix": token.prefix,
                "name": name,
                "expires_at": expires_at.isoformat() if expires_at else None,
            },
        )
    return Minted(token, plaintext)


def revoke(*, org: Org, token_id: object, actor: str) -> OrgApiToken:
    """Revoke a live token of ``org`` now; writes TOKEN_REVOKED.

    ``TokenNotFound`` when ``org`` has no such token or it is already revoked.
    """
    with transaction.atomic():
        token = (
            OrgApiToken.objects.select_for_update()
            .filter(org=org, pk=token_id, revoked_at__isnull=True)
            .first()
        )
        if token is None:
            raise TokenNotFound(f"Org {org.slug} has no live API token {token_id}.")
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        record_event(
            EventType.TOKEN_REVOKED,
            org_id=org.pk,
            actor=actor,
            payload={
                "kind": "org_token",
                "id": token.pk,
                "prefix": token.prefix,
                "name": token.name,
            },
        )
    return token


def tokens_of(orgs: QuerySet[Org], *, include_revoked: bool = True) -> QuerySet[OrgApiToken]:
    rows = OrgApiToken.objects.filter(org__in=orgs).select_related("org")
    if not include_revoked:
        rows = rows.filter(revoked_at__isnull=True)
    return rows


def authenticate(plaintext: str) -> OrgApiToken | None:
    """The live token this bearer is, or None; every reason for None looks the same outside.

    The lookup is by the token's hash (a unique index), so no comparison of secret strings
    happens in Python and timing says nothing about how close a guess was.
    """
    if not plaintext or len(plaintext) > MAX_BEARER_LENGTH:
        return None
    now = timezone.now()
    token = (
        OrgApiToken.objects.select_related("org")
        .filter(token_hash=hash_token(plaintext), revoked_at__isnull=True)
        .exclude(org__status=Org.OrgStatus.ARCHIVED)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .first()
    )
    if token is None:
        return None
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_GRANULARITY:
        OrgApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def as_dict(token: OrgApiToken) -> dict[str, Any]:
    """A token as the API and ``manage.py token list --json`` show it: never its hash."""

    def iso(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment else None

    return {
        "id": token.pk,
        "org": token.org.slug,
        "prefix": token.prefix,
        "name": token.name,
        "created_by": token.created_by,
        "created_at": iso(token.created_at),
        "last_used_at": iso(token.last_used_at),
        "expires_at": iso(token.expires_at),
        "revoked_at": iso(token.revoked_at),
        "status": token.status,
    }
