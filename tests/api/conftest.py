"""Fixtures for the JSON API tests: credentials for each kind of caller, workspaces in a state.

Every test here runs on the recording backends (tests/support/fakes.py): the API is tested for
what it asks dispatch to do, never by starting agents.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from orgs.models import Org
from tests.support.keys import ADMIN_TOKEN, Api, api, mint_key, mint_token


@pytest.fixture(autouse=True)
def _no_real_agents(recording: dict[str, Any]) -> None:
    """Every API test uses the recording backends; none starts a real agent."""


@pytest.fixture
def run_tasks(django_capture_on_commit_callbacks: Any) -> Callable[[], Any]:
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def token(org: Org) -> str:
    return mint_token(org)


@pytest.fixture
def client_a(token: str) -> Api:
    """An org token of ``org`` (acme)."""
    return api(token)


@pytest.fixture
def client_b(other_org: Org) -> Api:
    """An org token of ``other_org`` (globex)."""
    return api(mint_token(other_org))


@pytest.fixture
def admin(settings: Any) -> Api:
    settings.ADMIN_TOKEN = ADMIN_TOKEN
    return api(ADMIN_TOKEN)


@pytest.fixture
def partner(db: None) -> Callable[..., Api]:
    """A partner key client: ``partner(["orgs:read"], org=None, ...)``."""

    def make(scopes: list[str] | None = None, **kwargs: Any) -> Api:
        return api(mint_key(scopes, **kwargs))

    return make
