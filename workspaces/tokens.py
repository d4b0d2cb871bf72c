"""Workspace tokens: minted at each start, handed to the agent, stored only as a sha256 hash."""

from __future__ import annotations

import hashlib
import secrets


def mint() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
