"""Masking a workspace's secrets in what the console shows or keeps from that workspace.

An agent can print anything it was given: its console output, a file it wrote, a terminal
session, an A2A answer, the sample error in a heartbeat. Everything the console shows or stores
from a workspace passes through a :class:`Redactor` built from that workspace's secrets, which
replaces each value with ``[secret:NAME]``.

What counts as the value: the value itself and the forms an agent most often prints it in
(JSON-escaped, URL-encoded, base64 of the whole value). The agent's own bearer token is masked
too (``[secret:auth_token]``): the console keeps only its hash, so every token-shaped word is
hashed and compared. Values of one or two characters are not masked (they would mask every
other word and protect nothing); the secret-name rule does not forbid them, the README says so.

The guarantee is checked after masking, not assumed: if a value still occurs (a value that is
part of the mask text itself, say), the whole text is withheld rather than shown.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Iterator, Mapping
from urllib.parse import quote, quote_plus

from workspaces import vault
from workspaces.models import Workspace

MIN_LENGTH = 3
WITHHELD = "(withheld: it holds a secret of this workspace that could not be masked)"
TOKEN_LABEL = "auth_token"
# bearer_secrets.mint(): 32 random bytes, URL-safe base64 without padding.
_TOKEN_LENGTH = 43
_TOKEN_SHAPED = re.compile(rf"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{{{_TOKEN_LENGTH}}}(?![A-Za-z0-9_-])")


def mask(name: str) -> str:
    return f"[secret:{name}]"


def _forms(value: str) -> set[str]:
    raw = value.encode()
    forms = {
        value,
        json.dumps(value)[1:-1],
        quote(value, safe=""),
        quote_plus(value, safe=""),
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    }
    return {form for form in forms if len(form) >= MIN_LENGTH}


class Redactor:
    """Masks the given secrets (name → value) and, when its hash is given, the agent's token."""

    def __init__(self, secrets: Mapping[str, str], *, token_hash: str = "") -> None:
        self._names: dict[str, str] = {}
        for name, value in sorted(secrets.items()):
            if len(value) < MIN_LENGTH:
                continue
            for form in _forms(value):
                self._names.setdefault(form, name)
        self._token_hash = token_hash
        # Longest first: a value that contains another is masked whole, not around the other.
        forms = sorted(self._names, key=lambda form: (-len(form), form))
        self._pattern = re.compile("|".join(map(re.escape, forms))) if forms else None

    @property
    def longest(self) -> int:
        """The longest run of characters one mask can replace (a token-shaped word at least:
        a stream must hold that much back to see a whole one)."""
        token = _TOKEN_LENGTH + 1 if self._token_hash else 0
        return max([token, *map(len, self._names)])

    def spans(self, text: str) -> Iterator[tuple[int, int]]:
        """Where something this redactor may mask begins and ends in ``text``."""
        if self._pattern is not None:
            yield from (found.span() for found in self._pattern.finditer(text))
        if self._token_hash:
            yield from (found.span() for found in _TOKEN_SHAPED.finditer(text))

    @property
    def empty(self) -> bool:
        return self._pattern is None and not self._token_hash

    def text(self, text: str) -> str:
        if self.empty or not text:
            return text
        masked = text
        if self._pattern is not None:
            masked = self._pattern.sub(lambda found: mask(self._names[found.group()]), masked)
        if self._token_hash:
            masked = _TOKEN_SHAPED.sub(self._token, masked)
        if not self._leaks(masked):
            return masked
        # Even the notice may spell a short value: then a shorter one, then nothing.
        return next((notice for notice in (WITHHELD, "(withheld)") if not self._leaks(notice)), "")

    def value(self, value: object) -> object:
        """``value`` (a JSON-like structure: an event's payload) with every string masked."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {self.text(str(k)): self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value

    def _token(self, found: re.Match[str]) -> str:
        digest = hashlib.sha256(found.group().encode()).hexdigest()
        return mask(TOKEN_LABEL) if hmac.compare_digest(digest, self._token_hash) else found.group()

    def _leaks(self, text: str) -> bool:
        if self._pattern is not None and self._pattern.search(text):
            return True
        return bool(self._token_hash) and any(
            hmac.compare_digest(hashlib.sha256(word.encode()).hexdigest(), self._token_hash)
            for word in _TOKEN_SHAPED.findall(text)
        )


class StreamRedactor:
    """A :class:`Redactor` over a stream (a terminal session) whose chunks may cut a value in two.

    It keeps back the last characters of each chunk (as many as the longest form it masks, less
    one) until the next chunk shows whether they begin a value, and never cuts through a value
    that is already whole; :meth:`flush` releases the rest at the end of the stream.
    """

    def __init__(self, redactor: Redactor) -> None:
        self._redactor = redactor
        self._pending = ""

    def feed(self, chunk: str) -> str:
        text = self._pending + chunk
        cut = max(len(text) - max(self._redactor.longest - 1, 0), 0)
        for start, end in sorted(self._redactor.spans(text)):
            if start < cut < end:
                cut = end
        ready, self._pending = text[:cut], text[cut:]
        return self._redactor.text(ready)

    def flush(self) -> str:
        rest, self._pending = self._pending, ""
        return self._redactor.text(rest)


class _Withholding(Redactor):
    """Stands in when the workspace's secrets cannot be opened: nothing can be checked, so
    nothing is shown."""

    def __init__(self, why: str) -> None:
        super().__init__({})
        self._why = why

    @property
    def empty(self) -> bool:
        return False

    def text(self, text: str) -> str:
        return f"(withheld: {self._why})" if text else text


def for_workspace(workspace: Workspace) -> Redactor:
    """The redactor for what ``workspace``'s agent says: its secrets and its current token."""
    try:
        secrets = vault.environment(workspace)
    except vault.SecretsUnreadable:
        return _Withholding("the workspace's secrets cannot be opened to mask them")
    return Redactor(secrets, token_hash=workspace.token_hash)
