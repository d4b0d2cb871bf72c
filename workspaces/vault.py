"""Workspace secrets: sealed with AES-256-GCM, set and deleted by key, opened to start agents.

A secret is stored as a versioned blob, ``v1:<key id>:<urlsafe base64 of nonce + ciphertext>``:

- ``v1`` names the format, so a later format (e.g. KMS-wrapped data keys) can be read beside it;
- the key id (8 hex characters of a hash of the key) says which key sealed the row, so a wrong
  key is reported as such instead of as a corrupt row, and rotation can find each row's key;
- the nonce is 12 random bytes per write; GCM's tag authenticates the ciphertext.

The associated data binds each blob to its workspace and key name: a blob copied into another
row (another workspace, another name) fails to open instead of leaking into the wrong agent.

The key is ``settings.SECRETS_ENCRYPTION_KEY`` (32 bytes, base64); ``..._FALLBACKS`` may still
open rows, never seal them. A row that no configured key opens raises ``SecretsUnreadable``
with a sentence saying which key is missing: never garbage, never a silent empty value.

Values never leave this module except through :func:`environment` (dispatch, to start an
agent) and :func:`reveal` (tests); events, pages, the API and logs only ever see key names.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterable
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from workspaces import envnames, fields
from workspaces.events import Pending, record_many
from workspaces.events import record as record_event
from workspaces.lifecycle import Refused
from workspaces.models import EventType, Status, TeamSecret, Workspace, WorkspaceSecret

VERSION = "v1"
NONCE_BYTES = 12
MAX_KEY_LENGTH = envnames.MAX_LENGTH
# An environment variable, not a file store: 32 KiB is far above any API key or password and
# far below what would slow an agent's start.
MAX_VALUE_BYTES = 32 * 1024
# Names are an allowlist *shape* (``envnames.SHAPE``: upper-case letters, digits and _, starting
# with a letter), not a list of bad names, which can never be complete. On top of the shape:
# the platform's own variables (MOLECULE_*: a secret must not replace the agent's token or
# registry URL) and the ones the backends set for the process itself; the interpreter's
# (PYTHON*: ignored by ``python -I`` anyway, so a secret there would only ever be dead weight);
# and the dynamic loader's (``envnames.steers_loader``), which act before any program runs.
RESERVED_PREFIXES = ("MOLECULE_", "PYTHON")
RESERVED_NAMES = frozenset(
    {"PATH", "HOME", "LANG", "LANGUAGE", "TMPDIR", "PWD", "SHELL", "USER", "LOGNAME", "TERM"}
    # The agent contract's (docs/agent-contract.md): the backend sets them over any secret, so
    # refusing the name says so instead of keeping a secret that would be silently ignored.
    | {"WORKSPACE_ID", "PLATFORM_URL", "CONFIGS_DIR", "WORKSPACE_CONFIG_PATH"}
)


class SecretsUnreadable(Exception):
    """A stored secret that the configured keys cannot open, or whose name no agent gets.

    Shaped like ``BackendError`` (``message``, ``permanent``) so that dispatch's reconcile marks
    the workspace failed with this sentence instead of starting an agent without its secrets.
    """

    permanent = True

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SecretNotFound(Exception):
    """No secret with that key on that workspace."""


# --- keys and blobs ---------------------------------------------------------------------------


def decode_key(value: str, *, name: str) -> bytes:
    try:
        raw = base64.b64decode(value.replace("-", "+").replace("_", "/"), validate=True)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise SecretsUnreadable(f"{name} is not 32 bytes in base64; cannot use it as an AES key.")
    return raw


def key_id(raw_key: bytes) -> str:
    """A short public name for a key; reveals nothing useful about 256 random bits."""
    return hashlib.sha256(b"molecule-secrets-key-id:" + raw_key).hexdigest()[:8]


def new_key() -> str:
    """A fresh key in the form SECRETS_ENCRYPTION_KEY takes."""
    return base64.b64encode(os.urandom(32)).decode()


def _current_key() -> bytes:
    return decode_key(settings.SECRETS_ENCRYPTION_KEY, name="SECRETS_ENCRYPTION_KEY")


def keyring(extra: Iterable[str] = ()) -> dict[str, bytes]:
    """Every key that may open a row, by key id: extra keys, the current one, the fallbacks."""
    raws = [decode_key(k, name="a given key") for k in extra]
    raws.append(_current_key())
    raws += [
        decode_key(k, name="SECRETS_ENCRYPTION_KEY_FALLBACKS")
        for k in getattr(settings, "SECRETS_ENCRYPTION_KEY_FALLBACKS", [])
    ]
    ring: dict[str, bytes] = {}
    for raw in raws:
        ring.setdefault(key_id(raw), raw)
    return ring


def _aad(workspace_id: Any, key: str) -> bytes:
    return f"molecule-secret:{VERSION}:{workspace_id}:{key}".encode()


def team_aad(lead_id: Any, member_path: str, key: str) -> bytes:
    """What binds a set-aside team secret (``TeamSecret``) to its lead, member and name."""
    return f"molecule-team-secret:{VERSION}:{lead_id}:{member_path}:{key}".encode()


def seal_with(value: str, *, aad: bytes, raw_key: bytes | None = None) -> str:
    raw_key = raw_key if raw_key is not None else _current_key()
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(raw_key).encrypt(nonce, value.encode(), aad)
    payload = base64.urlsafe_b64encode(nonce + sealed).decode()
    return f"{VERSION}:{key_id(raw_key)}:{payload}"


def open_with(blob: str, *, aad: bytes, where: str, ring: dict[str, bytes] | None = None) -> str:
    """The plaintext of one blob sealed with ``aad``; ``SecretsUnreadable`` when it cannot be."""
    ring = ring if ring is not None else keyring()
    version, _, rest = blob.partition(":")
    kid, _, payload = rest.partition(":")
    if version != VERSION or not kid or not payload:
        raise SecretsUnreadable(f"{where} is not a {VERSION} blob; it cannot be decrypted.")
    raw_key = ring.get(kid)
    if raw_key is None:
        raise SecretsUnreadable(
            f"{where} was encrypted under key id {kid}, but the configured keys are "
            f"{', '.join(ring)}: set SECRETS_ENCRYPTION_KEY (or SECRETS_ENCRYPTION_KEY_FALLBACKS) "
            "to the key it was written with."
        )
    try:
        data = base64.urlsafe_b64decode(payload.encode())
        plain = AESGCM(raw_key).decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], aad)
    except (InvalidTag, ValueError):
        raise SecretsUnreadable(
            f"{where} failed authentication under key id {kid}: the stored blob was altered "
            "or copied from another row."
        ) from None
    return plain.decode()


def seal(value: str, *, workspace_id: Any, key: str, raw_key: bytes | None = None) -> str:
    return seal_with(value, aad=_aad(workspace_id, key), raw_key=raw_key)


def open_blob(
    blob: str, *, workspace_id: Any, key: str, ring: dict[str, bytes] | None = None
) -> str:
    """The plaintext of one workspace secret's blob."""
    where = f"the secret {key!r} of workspace {workspace_id}"
    return open_with(blob, aad=_aad(workspace_id, key), where=where, ring=ring)


# --- validation -------------------------------------------------------------------------------


def key_problem(key: object) -> str | None:
    """Why ``key`` cannot name a secret (an environment variable of the agent), or None.

    The one name rule: the API, the workspace page, org import's ``required_env`` (and so
    ``import_org --env``) all come through here, and :func:`environment` asks it again of every
    stored row before an agent starts.
    """
    if not isinstance(key, str) or not key:
        return "must be a non-empty string"
    if len(key) > MAX_KEY_LENGTH:
        return f"must be at most {MAX_KEY_LENGTH} characters"
    if not envnames.SHAPE.match(key):
        return (
            "must be upper-case letters, digits and _, starting with a letter (like OPENAI_API_KEY)"
        )
    if key.startswith(RESERVED_PREFIXES) or key in RESERVED_NAMES:
        return f"{key} is reserved for the platform"
    if envnames.steers_loader(key):
        return f"{key} is read by the dynamic loader, so no agent is started with it"
    return None


def value_problem(value: object) -> str | None:
    """Why ``value`` cannot be a secret's value, or None. Never quotes the value."""
    if not isinstance(value, str):
        return "must be a string"
    if fields.SURROGATE.search(value):
        return fields.SURROGATE_PROBLEM
    if "\x00" in value:
        return "must not contain a NUL character (environment values cannot hold one)"
    if len(value.encode()) > MAX_VALUE_BYTES:
        return f"must be at most {MAX_VALUE_BYTES} bytes"
    return None


def _validate(key: object, value: object) -> None:
    errors = {}
    if problem := key_problem(key):
        errors["key"] = [problem]
    if problem := value_problem(value):
        errors["value"] = [problem]
    if errors:
        raise ValidationError(errors)


# --- services ---------------------------------------------------------------------------------


def _locked_workspace(workspace_id: Any) -> Workspace:
    # The same row lock dispatch takes: a secret write and a start of the agent never interleave.
    workspace = Workspace.objects.for_change().get(pk=workspace_id)
    if workspace.status == Status.REMOVED:
        raise Refused(f"Workspace {workspace.name!r} is removed; its secrets cannot change.")
    return workspace


def set_secret(
    *, workspace_id: Any, key: str, value: str, actor: str, origin: str = ""
) -> WorkspaceSecret:
    """Create or replace one secret; see :func:`put_secret`."""
    secret, _created = put_secret(
        workspace_id=workspace_id, key=key, value=value, actor=actor, origin=origin
    )
    return secret


def put_secret(
    *, workspace_id: Any, key: str, value: str, actor: str, origin: str = ""
) -> tuple[WorkspaceSecret, bool]:
    """Create or replace one secret; returns it and whether this call created it.

    Writes SECRET_SET with the key (never the value). Whether it created the row is decided
    under the workspace's row lock, so of several concurrent first writes of one key exactly one
    says created. The running agent keeps its environment: the value reaches it at its next
    start (restart, resume, or any provision). ``ValidationError`` (with ``key``/``value`` field
    errors) for a bad name or value; ``Refused`` for a removed workspace.
    """
    _validate(key, value)
    with transaction.atomic():
        workspace = _locked_workspace(workspace_id)
        blob = seal(value, workspace_id=workspace.pk, key=key)
        secret, created = WorkspaceSecret.objects.update_or_create(
            workspace=workspace, key=key, defaults={"value_encrypted": blob}
        )
        record_event(
            EventType.SECRET_SET,
            workspace=workspace,
            actor=actor,
            payload={"key": key, "created": created, **({"origin": origin} if origin else {})},
        )
        return secret, created


def add_new_secrets(secrets: Iterable[tuple[Workspace, str, str, str]], *, actor: str) -> int:
    """Secrets of workspaces created in the caller's transaction: (workspace, key, value,
    origin) each; returns how many.

    What :func:`put_secret` does for a first write of each, for a whole import: every name and
    value checked first (``ValidationError``, nothing written), then the sealed rows in one INSERT
    and their SECRET_SET events (the key, never the value) in another. The rows being new, no lock
    is needed: nothing else can see them before the caller commits, and a key given twice for one
    workspace breaks the unique constraint rather than being replaced.
    """
    secrets = list(secrets)
    for _, key, value, _ in secrets:
        _validate(key, value)
    WorkspaceSecret.objects.bulk_create(
        [
            WorkspaceSecret(
                workspace=workspace,
                key=key,
                value_encrypted=seal(value, workspace_id=workspace.pk, key=key),
            )
            for workspace, key, value, _ in secrets
        ],
        batch_size=1000,
    )
    record_many(
        Pending(
            EventType.SECRET_SET,
            actor=actor,
            workspace_id=workspace.pk,
            org_id=workspace.org_id,
            payload={"key": key, "created": True, **({"origin": origin} if origin else {})},
        )
        for workspace, key, _, origin in secrets
    )
    return len(secrets)


def delete_secret(*, workspace_id: Any, key: str, actor: str) -> None:
    """Delete one secret; writes SECRET_DELETED with the key. ``SecretNotFound`` if absent.

    Deleting is allowed on a removed workspace too: it only ever takes a credential away.
    """
    with transaction.atomic():
        workspace = Workspace.objects.for_change().get(pk=workspace_id)
        # No stored key holds a NUL (and PostgreSQL would refuse one even in the query).
        found = WorkspaceSecret.objects.filter(workspace=workspace, key=key)
        deleted, _ = (0, None) if fields.unstorable(str(key)) else found.delete()
        if not deleted:
            raise SecretNotFound(f"Workspace {workspace.name!r} has no secret {key!r}.")
        record_event(
            EventType.SECRET_DELETED,
            workspace=workspace,
            actor=actor,
            payload={"key": key},
        )


def secrets_of(workspace: Workspace) -> list[WorkspaceSecret]:
    """The workspace's secrets with their keys and times; their values stay sealed."""
    return list(WorkspaceSecret.objects.filter(workspace=workspace).defer("value_encrypted"))


def environment(workspace: Workspace) -> dict[str, str]:
    """Every secret of the workspace, opened: what dispatch puts in the agent's environment.

    Raises ``SecretsUnreadable`` when any of them cannot be opened, or when one has a name the
    name rule (:func:`key_problem`) no longer accepts (a row from before the rule, e.g. a
    lower-case name): an agent is better not started at all than started without a credential
    it was promised, or with a variable that could steer how it starts. The sentence names the
    secrets to delete (deleting works whatever the name).
    """
    rows = list(WorkspaceSecret.objects.filter(workspace=workspace).order_by("key"))
    refused = [(row.key, why) for row in rows if (why := key_problem(row.key))]
    if refused:
        names = ", ".join(repr(key) for key, _ in refused)
        raise SecretsUnreadable(
            f"Workspace {workspace.name!r} has secrets whose names no agent is started with: "
            f"{names} ({refused[0][0]!r} {refused[0][1]}). Delete them (set the value again "
            "under an upper-case name if the agent needs it), then start the workspace."
        )
    ring = keyring()
    return {
        row.key: open_blob(row.value_encrypted, workspace_id=workspace.pk, key=row.key, ring=ring)
        for row in rows
    }


def reveal(*, workspace_id: Any, key: str) -> str:
    """One secret's value. For tests and operators at a shell; no page or API calls it."""
    secret = WorkspaceSecret.objects.get(workspace_id=workspace_id, key=key)
    return open_blob(secret.value_encrypted, workspace_id=workspace_id, key=key)


def rotate(*, new_key: str, old_keys: Iterable[str] = ()) -> int:
    """Re-seal every secret under ``new_key``, all in one transaction; returns how many.

    Workspace secrets and the team secrets collapse set aside (``TeamSecret``) alike. Each row
    is opened with whichever key sealed it: ``old_keys``, the configured key or a fallback. If
    any row cannot be opened nothing is changed (``SecretsUnreadable``). Afterwards every
    process must run with ``SECRETS_ENCRYPTION_KEY`` set to ``new_key``.
    """
    new_raw = decode_key(new_key, name="the new key")
    ring = keyring(old_keys)
    ring.setdefault(key_id(new_raw), new_raw)  # rows a previous, interrupted run already moved
    with transaction.atomic():
        rows = list(WorkspaceSecret.objects.select_for_update().order_by("pk"))
        for row in rows:
            plain = open_blob(
                row.value_encrypted, workspace_id=row.workspace_id, key=row.key, ring=ring
            )
            row.value_encrypted = seal(
                plain, workspace_id=row.workspace_id, key=row.key, raw_key=new_raw
            )
        WorkspaceSecret.objects.bulk_update(rows, ["value_encrypted"], batch_size=500)
        team_rows = list(TeamSecret.objects.select_for_update().order_by("pk"))
        for team_row in team_rows:
            aad = team_aad(team_row.lead_id, team_row.member_path, team_row.key)
            where = f"the set-aside secret {team_row.key!r} of lead {team_row.lead_id}"
            plain = open_with(team_row.value_encrypted, aad=aad, where=where, ring=ring)
            team_row.value_encrypted = seal_with(plain, aad=aad, raw_key=new_raw)
        TeamSecret.objects.bulk_update(team_rows, ["value_encrypted"], batch_size=500)
        return len(rows) + len(team_rows)
