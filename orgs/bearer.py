"""Bearer authentication for the JSON API: who is calling, and which orgs they reach.

Three credentials, checked in this order:

1. a partner key (``mol_pk_…``): scopes, an optional org binding, an optional expiry;
2. ``ADMIN_TOKEN`` from the environment, the break-glass credential: every org, every scope;
   compared in constant time and recorded as the actor ``admin-token``;
3. an org API token: everything inside its own org, nothing outside it.

Every failure raises ``Unauthorized`` with the same message, whatever the reason (no header, a
malformed one, an unknown, revoked or expired token), so nothing can be learnt by probing. The
one exception is a partner key past its expiry, which says "API key expired": the partner
holds a real key and needs to know to replace it, not to debug their headers.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import QuerySet

from orgs import api_tokens, partner_keys
from orgs.models import Org, OrgApiToken, PartnerApiKey

UNAUTHORIZED = "invalid or missing API credentials"
EXPIRED = "API key expired"
ADMIN_ACTOR = "admin-token"


class Unauthorized(Exception):
    def __init__(self, message: str = UNAUTHORIZED) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of one API request."""

    kind: str  # "admin", "org_token" or "partner_key"
    actor: str  # what its events record: "admin-token", "token:<prefix>", "partner:<prefix>"
    org_id: int | None = None  # the one org it is bound to; None: every org
    scopes: frozenset[str] = field(default_factory=frozenset)
    token: OrgApiToken | None = None
    partner_key: PartnerApiKey | None = None

    @property
    def is_admin(self) -> bool:
        return self.kind == "admin"

    @property
    def is_org_token(self) -> bool:
        return self.kind == "org_token"

    @property
    def is_partner(self) -> bool:
        return self.kind == "partner_key"

    def orgs(self) -> QuerySet[Org]:
        """Every org this caller reaches; anything else answers 404, as if it did not exist."""
        if self.org_id is None:
            return Org.objects.all()
        return Org.objects.filter(pk=self.org_id)


def bearer_of(header: str) -> str:
    scheme, _, credential = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return ""
    return credential.strip()


def _is_admin_token(bearer: str) -> bool:
    configured = settings.ADMIN_TOKEN
    # compare_digest takes as long whatever the first differing character: no timing oracle.
    return bool(configured) and hmac.compare_digest(bearer.encode(), configured.encode())


def authenticate(authorization: str) -> Principal:
    """The principal for an ``Authorization`` header value; ``Unauthorized`` otherwise."""
    bearer = bearer_of(authorization)
    if not bearer:
        raise Unauthorized
    if partner_keys.is_partner_key(bearer):
        try:
            key = partner_keys.authenticate(bearer)
        except partner_keys.KeyExpired:
            raise Unauthorized(EXPIRED) from None
        if key is None:
            raise Unauthorized
        return Principal(
            kind="partner_key",
            actor=f"partner:{key.prefix}",
            org_id=key.org_id,
            scopes=frozenset(key.scopes),
            partner_key=key,
        )
    if _is_admin_token(bearer):
        return Principal(kind="admin", actor=ADMIN_ACTOR)
    token = api_tokens.authenticate(bearer)
    if token is None:
        raise Unauthorized
    return Principal(
        kind="org_token", actor=f"token:{token.prefix}", org_id=token.org_id, token=token
    )
