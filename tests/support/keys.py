"""Helpers for the tests of API tokens, partner keys, secrets and the JSON API."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from django.test import Client

from orgs import api_tokens, partner_keys
from orgs.models import Org

# The break-glass admin token the ``admin`` fixture (tests/api/conftest.py) configures.
ADMIN_TOKEN = "break-glass-" + "x" * 40


def database_text() -> str:
    """Every row of every table as text: what a stolen copy of the database would hold."""
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT t::text FROM "{table}" t')
            chunks += [row[0] for row in cursor.fetchall()]
    return "\n".join(chunks)


def mint_token(org: Org, name: str = "ci", *, expires_at: datetime | None = None) -> str:
    return api_tokens.mint(org=org, name=name, created_by="test", expires_at=expires_at).plaintext


def mint_key(
    scopes: list[str] | None = None,
    *,
    org: Org | None = None,
    expires_at: datetime | None = None,
    rate_limit: int = 1000,
    name: str = "partner",
) -> str:
    return partner_keys.mint(
        name=name,
        scopes=list(partner_keys.SCOPES) if scopes is None else scopes,
        org=org,
        expires_at=expires_at,
        rate_limit=rate_limit,
        created_by="test",
    ).plaintext


@dataclass
class Api:
    """A test client that speaks JSON to /api/v1/ with one bearer credential."""

    bearer: str | None
    client: Client

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.bearer}"} if self.bearer is not None else {}

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get(f"/api/v1/{path}", params, headers=self.headers())

    def send(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None) -> Any:
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        return getattr(self.client, method)(
            f"/api/v1/{path}", data=data, content_type="application/json", headers=self.headers()
        )

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self.send("post", path, body, **kwargs)

    def put(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self.send("put", path, body, **kwargs)

    def patch(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self.send("patch", path, body, **kwargs)

    def delete(self, path: str, **params: Any) -> Any:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        return self.client.delete(
            f"/api/v1/{path}" + (f"?{query}" if query else ""), headers=self.headers()
        )


def api(bearer: str | None) -> Api:
    return Api(bearer, Client())
