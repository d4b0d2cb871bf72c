"""The world every case runs in: org A with everything a URL can point at, org B beside it,
who may call what, and a digest of what a request could change.

Every name in A carries a marker (``World.markers``); an answer to a caller outside A must
contain none of them, and the same answer to A's owner must contain some, so the leak check
is shown to be able to fail.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group, Permission, User
from django.db import connection
from django.test import Client, override_settings
from django.utils import timezone

from orgs import api_tokens, partner_keys
from orgs.models import Org, OrgApiToken, OrgMembership, PartnerApiKey, Team
from tests.support.users import make_member
from workspaces import vault
from workspaces.bearer_secrets import hash_token
from workspaces.models import (
    EventType,
    OrphanSuspect,
    ParityRun,
    Status,
    StructureEvent,
    Workspace,
    WorkspaceSecret,
)

WS_TOKEN_A = "workspace-token-of-acme-" + "a" * 20
WS_TOKEN_B = "workspace-token-of-globex-" + "b" * 20
# Staff with every permission on the console's models: A's owner, A's viewer, B's owner.
STAFF = ("staff-a", "staff-viewer", "staff-b")


@dataclass
class World:
    """Org A with everything a URL can point at, org B beside it, and who may call what."""

    org_a: Org
    org_b: Org
    users: dict[str, User]
    ws_a: Workspace  # a team lead with no live children, online
    ws_a2: Workspace
    ws_b: Workspace
    team_a: Team
    membership_a: OrgMembership  # the viewer's
    secret_key: str
    import_a: StructureEvent  # A's ORG_IMPORTED event
    victim_token: OrgApiToken  # a live token of A that URLs point at (revoke)
    key_a: PartnerApiKey  # a partner key bound to A that URLs point at (revoke)
    orphan: OrphanSuspect
    group: Group
    sessions: dict[str, str]  # principal → the session cookie of its login
    bearers: dict[str, str]  # principal → the Authorization bearer it sends
    keys_without: dict[str | None, str]  # scope → a partner key with every scope but that one
    markers: dict[str, str]  # what only org A's data contains

    def marker_values(self) -> list[str]:
        return list(self.markers.values())


def build_world() -> World:
    """Create the world; every name of org A carries a marker (see ``World.markers``)."""
    # The default hasher is slow on purpose (tests/conftest.py swaps it per test, too late here).
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        return _build_world()


def _build_world() -> World:
    # Not "Acme Research": the import page's example YAML says that.
    org_a = Org.objects.create(slug="acme-canary", name="Acme Canary Labs")
    org_b = Org.objects.create(slug="globex-canary", name="Globex Corporation")
    owner = OrgMembership.Role.OWNER
    users = {
        "owner": make_member(org_a, "olivia-acme", owner),
        "viewer": make_member(org_a, "victor-acme", OrgMembership.Role.VIEWER),
        "staff-a": make_member(org_a, "stan-acme", owner),
        "staff-viewer": make_member(org_a, "vera-acme", OrgMembership.Role.VIEWER),
        "outsider": make_member(org_b, "oscar-globex", owner),
        "staff-b": make_member(org_b, "sybil-globex", owner),
    }
    users["member"] = users["owner"]
    # Staff with every permission on the console's own models: only org scoping keeps B's
    # staff out of A's rows. (The auth app's models are not granted: they are operators'.)
    console_perms = list(
        Permission.objects.filter(content_type__app_label__in=["orgs", "workspaces"])
    )
    for name in STAFF:
        users[name].is_staff = True
        users[name].save(update_fields=["is_staff"])
        users[name].user_permissions.set(console_perms)

    def workspace(org: Org, name: str, **extra: Any) -> Workspace:
        return Workspace.objects.create(
            org=org, name=name, role="Lead", status=Status.ONLINE, backend=org.backend, **extra
        )

    ws_a = workspace(org_a, "Acme-Lead-canary", token_hash=hash_token(WS_TOKEN_A))
    ws_a2 = workspace(org_a, "Acme-Scout-canary")
    ws_b = workspace(org_b, "Globex-Lead", token_hash=hash_token(WS_TOKEN_B))
    team_a = Team.objects.create(org=org_a, lead=ws_a, name="Acme-Team-canary")
    Team.objects.create(org=org_b, lead=ws_b, name="Globex-Team")
    actor_a = "actor-acme-canary"
    vault.set_secret(workspace_id=ws_a.pk, key="ACME_CANARY_KEY", value="s3cret", actor=actor_a)
    vault.set_secret(workspace_id=ws_b.pk, key="GLOBEX_KEY", value="s3cret", actor="actor-globex")
    import_a = StructureEvent.objects.create(
        event_type=EventType.ORG_IMPORTED,
        org=org_a,
        actor=actor_a,
        payload={
            "source": "pasted",
            "created_org": False,
            "workspaces": [str(ws_a.pk), str(ws_a2.pk)],
            "counts": {"workspaces": 2, "teams": 1},
            "required_env": [],
        },
    )
    StructureEvent.objects.create(
        event_type=EventType.ORG_IMPORTED,
        org=org_b,
        actor="actor-globex",
        payload={"source": "pasted", "created_org": False, "workspaces": [str(ws_b.pk)]},
    )

    def mint(org: Org, name: str) -> api_tokens.Minted:
        return api_tokens.mint(org=org, name=name, created_by="test")

    token_a = mint(org_a, "acme-caller")
    victim = mint(org_a, "acme-victim")
    revoked = mint(org_a, "acme-revoked")
    api_tokens.revoke(org=org_a, token_id=revoked.token.pk, actor="test")
    token_b = mint(org_b, "globex-caller")

    def key(scopes: Iterable[str], **extra: Any) -> partner_keys.MintedKey:
        return partner_keys.mint(
            name="partner", scopes=sorted(scopes), created_by="test", rate_limit=10_000, **extra
        )

    scopes = partner_keys.SCOPES
    expired = key(scopes)
    PartnerApiKey.objects.filter(pk=expired.key.pk).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    key_b = key(scopes, org=org_b)
    key_a = key(scopes, org=org_a)
    keys_without: dict[str | None, str] = {s: key(scopes - {s}).plaintext for s in scopes}
    # Partner keys may not call what needs no scope at all: the key "without it" has them all.
    keys_without[None] = key(scopes).plaintext
    return World(
        org_a=org_a,
        org_b=org_b,
        users=users,
        ws_a=ws_a,
        ws_a2=ws_a2,
        ws_b=ws_b,
        team_a=team_a,
        membership_a=OrgMembership.objects.get(org=org_a, user=users["viewer"]),
        secret_key="ACME_CANARY_KEY",
        import_a=import_a,
        victim_token=victim.token,
        key_a=key_a.key,
        orphan=OrphanSuspect.objects.create(
            backend="local", instance_id="orphan-1", first_seen_at=timezone.now()
        ),
        group=Group.objects.create(name="operators"),
        sessions={principal: _session_of(user) for principal, user in users.items()},
        bearers={
            "token-a": token_a.plaintext,
            "token-b": token_b.plaintext,
            "revoked-token": revoked.plaintext,
            "expired-key": expired.plaintext,
            "key-b": key_b.plaintext,
            "org-token": token_a.plaintext,
            "ws-token-a": WS_TOKEN_A,
            "ws-token-b": WS_TOKEN_B,
        },
        keys_without=keys_without,
        markers={
            "slug": org_a.slug,
            "org": org_a.name,
            "workspace": ws_a.name,
            "workspace2": ws_a2.name,
            "team": team_a.name,
            "secret": "ACME_CANARY_KEY",
            "actor": actor_a,
            "owner": "olivia-acme",
            "viewer": "victor-acme",
            "staff": "stan-acme",
            "staff-viewer": "vera-acme",
            "token": token_a.token.prefix,
            "victim": victim.token.prefix,
            "key": key_a.key.prefix,
        },
    )


def _session_of(user: User) -> str:
    """Log in once: each case sends this cookie (a case's own changes to it are rolled back)."""
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


# What a request could change, by model: the columns compared before and after a request.
# (Not last_used_at or a key's rate-limit window: reading with a credential rightly moves those.)
SNAPSHOT: dict[str, tuple[type[Any], tuple[str, ...]]] = {
    "events": (StructureEvent, ("id",)),
    "workspaces": (
        Workspace,
        (
            "id",
            "status",
            "name",
            "role",
            "tier",
            "parent_id",
            "url",
            "last_heartbeat_at",
            "agent_card",
        ),
    ),
    "secrets": (WorkspaceSecret, ("id", "key", "value_encrypted")),
    "tokens": (OrgApiToken, ("id", "revoked_at")),
    "partner keys": (PartnerApiKey, ("id", "revoked_at")),
    "memberships": (OrgMembership, ("id", "org_id", "user_id", "role")),
    "orgs": (Org, ("id", "slug", "name", "status")),
    "teams": (Team, ("id", "org_id", "lead_id", "name")),
    "parity runs": (ParityRun, ("id",)),
    "users": (User, ("id", "username", "is_staff", "is_superuser")),
}


def snapshot() -> dict[str, str]:
    """A digest of every table a request could change, in one round trip."""
    columns = []
    for name, (model, fields) in SNAPSHOT.items():
        row = ", ".join(f't."{f}"' for f in fields)
        columns.append(
            f"(SELECT md5(coalesce(string_agg(ROW({row})::text, '|' ORDER BY t.\"id\"), ''))"
            f' FROM "{model._meta.db_table}" t) AS "{name}"'
        )
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(columns))
        return dict(zip(SNAPSHOT, cursor.fetchone(), strict=True))
