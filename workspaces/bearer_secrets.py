"""Bearer secrets: minted here, stored only as a sha256 hash.

Workspace tokens (minted at each start, handed to the agent) use both functions; org API tokens
and partner keys (orgs/api_tokens.py, orgs/partner_keys.py) hash with the same one.
"""

from __future__ import annotations

import hashlib
import secrets


def mint() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
