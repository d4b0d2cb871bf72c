"""Credentials through the API: an org's API tokens, and partner keys.

Org tokens (``/api/v1/orgs/<slug>/tokens``): an org token manages its own org's tokens (so the
org is self-sufficient once the first token exists); a partner key needs ``admin:keys`` and
reaches the orgs it is bound to (or all); ADMIN_TOKEN does all.

Partner keys (``/api/v1/partner-keys``): ``admin:keys`` or ADMIN_TOKEN; never an org token.
A partner key cannot hand out more than it holds: a key it mints has a subset of its scopes
and, if it is bound to an org, the same binding.

The plaintext of a new token or key is in the mint response only (with ``Cache-Control:
no-store``); revoking is immediate, and revoking again is 404.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse

from api import shapes
from api.http import ApiError, Fields, endpoint, no_content, ok, org_in_reach, query_bool, read_json
from orgs import api_tokens, partner_keys
from orgs import fields as org_fields
from orgs.bearer import Principal
from orgs.models import Org, PartnerApiKey

S = PartnerApiKey.Scope


def _expiry(fields: Fields) -> datetime | None:
    """``expires_at`` (a moment) or ``expires_in_days`` (a whole number), not both; each by
    the rule every door shares (orgs/fields.py): in the future, at most ten years ahead."""
    expires_at = fields.moment("expires_at")
    days = fields.integer("expires_in_days")
    if days is not None:
        if expires_at is not None:
            fields.add("expires_in_days", "give expires_at or expires_in_days, not both")
        elif why := org_fields.expires_in_days_problem(days):
            fields.add("expires_in_days", why)
        else:
            expires_at = org_fields.expiry_in_days(days)
    elif why := org_fields.expires_at_problem(expires_at):
        fields.add("expires_at", why)
    return expires_at


# --- org tokens -------------------------------------------------------------------------------


@endpoint(scope=S.ADMIN_KEYS)
def list_tokens(request: HttpRequest, principal: Principal, slug: str) -> HttpResponse:
    org = org_in_reach(principal, slug)
    rows = api_tokens.tokens_of(
        Org.objects.filter(pk=org.pk), include_revoked=query_bool(request, "include_revoked")
    )
    return ok({"tokens": [shapes.token(row) for row in rows]})


@endpoint(scope=S.ADMIN_KEYS)
def mint_token(request: HttpRequest, principal: Principal, slug: str) -> HttpResponse:
    org = org_in_reach(principal, slug)
    data = read_json(request)
    fields = Fields(data, {"name", "expires_at", "expires_in_days"})
    name = fields.rule("name", org_fields.credential_name_problem, required=True)
    expires_at = _expiry(fields)
    fields.check()
    minted = api_tokens.mint(
        org=org, name=name or "", created_by=principal.actor, expires_at=expires_at
    )
    return ok({**shapes.token(minted.token), "token": minted.plaintext}, status=201, secret=True)


@endpoint(scope=S.ADMIN_KEYS)
def revoke_token(
    request: HttpRequest, principal: Principal, slug: str, token_id: int
) -> HttpResponse:
    org = org_in_reach(principal, slug)
    try:
        api_tokens.revoke(org=org, token_id=token_id, actor=principal.actor)
    except api_tokens.TokenNotFound:
        raise Http404 from None
    return no_content()


# --- partner keys -----------------------------------------------------------------------------


def _keys_in_reach(principal: Principal) -> QuerySet[PartnerApiKey]:
    rows = PartnerApiKey.objects.select_related("org")
    if principal.org_id is not None:
        rows = rows.filter(org_id=principal.org_id)
    return rows


@endpoint(scope=S.ADMIN_KEYS, org_tokens=False)
def list_partner_keys(request: HttpRequest, principal: Principal) -> HttpResponse:
    rows = _keys_in_reach(principal)
    if not query_bool(request, "include_revoked"):
        rows = rows.filter(revoked_at__isnull=True)
    return ok({"keys": [shapes.partner_key(row) for row in rows]})


@endpoint(scope=S.ADMIN_KEYS, org_tokens=False)
def mint_partner_key(request: HttpRequest, principal: Principal) -> HttpResponse:
    data = read_json(request)
    fields = Fields(data, {"name", "scopes", "org", "rate_limit", "expires_at", "expires_in_days"})
    name = fields.rule("name", org_fields.credential_name_problem, required=True)
    scopes = fields.string_list("scopes", required=True) or []
    rate_limit = fields.integer("rate_limit")
    expires_at = _expiry(fields)
    org = None
    if (slug := data.get("org")) is not None:
        if not isinstance(slug, str):
            fields.add("org", "must be an org slug or null")
        elif org_fields.slug_problem(slug):
            fields.add("org", "no such org")
        else:
            org = principal.orgs().filter(slug=slug).first()
            if org is None:
                fields.add("org", "no such org")
    fields.check()
    if principal.is_partner:
        # No escalation: a key hands out at most what it holds.
        if extra := sorted(set(scopes) - principal.scopes):
            raise ApiError(403, f"This key cannot grant scopes it lacks: {', '.join(extra)}.")
        if principal.org_id is not None and (org is None or org.pk != principal.org_id):
            raise ApiError(403, "This key is bound to one org; the keys it mints must be too.")
    minted = partner_keys.mint(
        name=name or "",
        scopes=scopes,
        org=org,
        rate_limit=rate_limit if rate_limit is not None else 60,
        expires_at=expires_at,
        created_by=principal.actor,
    )
    return ok({**shapes.partner_key(minted.key), "key": minted.plaintext}, status=201, secret=True)


@endpoint(scope=S.ADMIN_KEYS, org_tokens=False)
def revoke_partner_key(request: HttpRequest, principal: Principal, key_id: int) -> HttpResponse:
    bound = Org.objects.get(pk=principal.org_id) if principal.org_id is not None else None
    try:
        partner_keys.revoke(key_id=key_id, actor=principal.actor, org=bound)
    except partner_keys.KeyNotFound:
        raise Http404 from None
    return no_content()
