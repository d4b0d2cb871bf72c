"""The JSON shape of each resource, in one place so every endpoint answers alike.

No shape ever holds a token hash or a secret value; the only plaintext credentials the API
returns are the freshly minted ones (``token`` / ``key``), added by the mint endpoints.
"""

from __future__ import annotations

from typing import Any

from api.http import iso
from orgs import api_tokens
from orgs.models import Org, OrgApiToken, PartnerApiKey
from workspaces.models import StructureEvent, WorkspaceSecret


def org(row: Org) -> dict[str, Any]:
    return {
        "slug": row.slug,
        "name": row.name,
        "plan": row.plan,
        "backend": row.backend,
        "status": row.status,
        "created_at": iso(row.created_at),
    }


def token(row: OrgApiToken) -> dict[str, Any]:
    return api_tokens.as_dict(row)


def partner_key(row: PartnerApiKey) -> dict[str, Any]:
    return {
        "id": row.pk,
        "prefix": row.prefix,
        "name": row.name,
        "scopes": list(row.scopes),
        "org": row.org.slug if row.org else None,
        "rate_limit": row.rate_limit,
        "created_by": row.created_by,
        "created_at": iso(row.created_at),
        "last_used_at": iso(row.last_used_at),
        "expires_at": iso(row.expires_at),
        "revoked_at": iso(row.revoked_at),
        "status": row.status,
    }


def secret(row: WorkspaceSecret) -> dict[str, Any]:
    return {"key": row.key, "created_at": iso(row.created_at), "updated_at": iso(row.updated_at)}


def event(row: StructureEvent) -> dict[str, Any]:
    return {
        "id": row.pk,
        "type": row.event_type,
        "org": row.org.slug if row.org else None,
        "workspace": str(row.workspace_id) if row.workspace_id else None,
        "actor": row.actor,
        "payload": row.payload,
        "created_at": iso(row.created_at),
    }
