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
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, quote_plus

from django.conf import settings

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
        self._forms = tuple(sorted(self._names, key=lambda form: (-len(form), form)))

    def _pattern(self, text: str) -> re.Pattern[str] | None:
        """An alternation of the forms that occur in ``text``; None when none does. Built per
        text rather than once: a substring test is cheap, and a redactor kept per agent (the
        registry keeps thousands) stays a tuple of strings."""
        present = [form for form in self._forms if form in text]
        return re.compile("|".join(map(re.escape, present))) if present else None

    @property
    def longest(self) -> int:
        """The longest run of characters one mask can replace (a token-shaped word at least:
        a stream must hold that much back to see a whole one)."""
        token = _TOKEN_LENGTH + 1 if self._token_hash else 0
        return max([token, *map(len, self._forms)])

    def spans(self, text: str) -> Iterator[tuple[int, int]]:
        """Where something this redactor may mask begins and ends in ``text``."""
        if (pattern := self._pattern(text)) is not None:
            yield from (found.span() for found in pattern.finditer(text))
        if self._token_hash:
            yield from (found.span() for found in _TOKEN_SHAPED.finditer(text))

    @property
    def empty(self) -> bool:
        return not self._forms and not self._token_hash

    @property
    def withholding(self) -> bool:
        """True when the secrets could not be read, so every text is withheld."""
        return False

    def text(self, text: str) -> str:
        if self.empty or not text:
            return text
        masked = text
        if (pattern := self._pattern(text)) is not None:
            masked = pattern.sub(lambda found: mask(self._names[found.group()]), masked)
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
        if any(form in text for form in self._forms):
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

    @property
    def withholding(self) -> bool:
        return True

    def text(self, text: str) -> str:
        return f"(withheld: {self._why})" if text else text


def for_workspace(workspace: Workspace) -> Redactor:
    """The redactor for what ``workspace``'s agent says: its secrets and its current token."""
    return for_workspaces([workspace.pk])[workspace.pk]


def for_workspaces(ids: Iterable[Any]) -> dict[Any, Redactor]:
    """A redactor for each workspace id given (its secrets, its current token), in one query.

    Every stored secret counts, whatever its name (one from before the name rule was still
    handed to the agent once). One that cannot be opened (its key is gone) makes that
    workspace's redactor withhold everything: what it would mask is unknown. An id with no row
    gets no redactor.
    """
    return {pk: found.redactor() for pk, found in _read(ids).items()}


@dataclass
class _Found:
    token_hash: str
    values: dict[str, str] = field(default_factory=dict)
    unreadable: bool = False

    def redactor(self) -> Redactor:
        if self.unreadable:
            return _Withholding("the workspace's secrets cannot be opened to mask them")
        return Redactor(self.values, token_hash=self.token_hash)


def _read(ids: Iterable[Any]) -> dict[Any, _Found]:
    # Here, not at the top: the vault writes events, and events are masked with this module.
    from workspaces import vault

    found: dict[Any, _Found] = {}
    ring = vault.keyring()
    # One statement: each row's token hash, and its secrets by a LEFT JOIN (none: one NULL row).
    rows = (
        Workspace.objects.filter(pk__in=list(ids))
        .order_by()
        .values_list("pk", "token_hash", "secrets__key", "secrets__value_encrypted")
    )
    for pk, token_hash, key, blob in rows:
        entry = found.setdefault(pk, _Found(token_hash))
        if key is None:
            continue
        try:
            entry.values[key] = vault.open_blob(blob, workspace_id=pk, key=key, ring=ring)
        except vault.SecretsUnreadable:
            entry.unreadable = True
    return found


_INSTANCES: OrderedDict[tuple[str, str], Redactor] = OrderedDict()
_INSTANCES_LOCK = threading.Lock()


def for_instance(workspace_id: Any, token_hash: str) -> Redactor | None:
    """The redactor for the agent holding the token whose hash is ``token_hash``; None when that
    is not the workspace's current token (the caller refuses the report anyway).

    Kept per process for as long as the instance lives (its token), so only an instance's first
    report costs a query: what an agent can print is what it was started with, and a
    secret set since reaches it only with a new instance, hence a new token.
    """
    key = (str(workspace_id), token_hash)
    with _INSTANCES_LOCK:
        if (found := _INSTANCES.get(key)) is not None:
            _INSTANCES.move_to_end(key)
            return found
    if not token_hash:
        return None
    found = _read([workspace_id]).get(workspace_id)
    if found is None or not hmac.compare_digest(found.token_hash, token_hash):
        return None
    redactor = found.redactor()
    with _INSTANCES_LOCK:
        _INSTANCES[key] = redactor
        while len(_INSTANCES) > settings.MOLECULE_REDACTION_CACHE:
            _INSTANCES.popitem(last=False)
    return redactor
