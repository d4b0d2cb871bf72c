"""The isolation suite's machinery (tests/test_isolation.py): every URL of the console, what to
put in it, and what each kind of caller must get back.

- **The walk**: every pattern of the URL configuration, the admin's included, as a ``Route``.
- **The tables**: how to fill each URL kwarg (``FILL``); for each route what a request looks like
  and what its rightful caller gets (``PAGES``, ``API_CALLS``, ``ADMIN_SITE``, ``ADMIN_MODELS``,
  ``AUTH_PAGES``, ``REGISTRY``). What everyone else gets follows from the route's class and, for
  the API, from each handler's ``access`` (api/http.py).
- **The check**: send one case's request as its principal; assert the status, the Location, the
  body, whose data the answer shows, and that a refused request changed nothing.

A route the tables do not describe is not skipped: it becomes a failing case whose message says
which table to add it to, so a new endpoint cannot escape the suite.

The world (``build_world``) is two orgs: A ("acme-canary", the one every URL points into) and
B ("globex-canary", the outsider's). Every name in A carries a marker; an answer to a caller
outside A must contain none of them, and the same answer to A's owner must contain some, so the
leak check is shown to be able to fail.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any
from urllib.parse import unquote

from django.conf import settings
from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.http import HttpResponse
from django.test import Client, override_settings
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.resolvers import RoutePattern
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from orgs import api_tokens, bearer, partner_keys
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

HERE = "tests/isolation.py"
WS_TOKEN_A = "workspace-token-of-acme-" + "a" * 20
WS_TOKEN_B = "workspace-token-of-globex-" + "b" * 20
UNAUTHORIZED_API = {"error": bearer.UNAUTHORIZED}
UNAUTHORIZED_AGENT = {"error": "invalid workspace credentials"}
NOT_FOUND_API = {"error": "Not found."}
# Byte for byte what a request with no credentials gets: every bad token must get exactly this.
UNAUTHORIZED_BYTES = b'{"error": "' + bearer.UNAUTHORIZED.encode() + b'"}'
CHALLENGE = ("WWW-Authenticate", 'Bearer realm="molecule"')
LOGIN = "/accounts/login/?next={path}"


# --- the walk ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """One URL pattern with the prefixes of the resolvers above it."""

    pattern: str  # joined, e.g. "workspaces/<uuid:workspace_id>/"
    name: str | None  # with its namespace, e.g. "admin:orgs_org_change"
    callback: Callable[..., Any]
    pieces: tuple[Any, ...]  # each level's pattern object, outermost first
    app_name: str  # "admin" for every admin site

    @property
    def kwargs(self) -> tuple[str, ...]:
        return tuple(name for piece in self.pieces for name in piece.regex.groupindex)

    @property
    def label(self) -> str:
        return f"{self.pattern} ({self.name})" if self.name else self.pattern

    @property
    def key(self) -> str:
        """What the tables call it: its name, or for an unnamed pattern its last piece."""
        if self.name:
            return self.name.rpartition(":")[2]
        return str(self.pieces[-1])


def walk(
    patterns: Iterable[Any] | None = None,
    pieces: tuple[Any, ...] = (),
    namespace: str = "",
    app_name: str = "",
) -> list[Route]:
    """Every URL pattern reachable from ``patterns`` (the root URL configuration by default)."""
    if patterns is None:
        patterns = get_resolver().url_patterns
    found: list[Route] = []
    for entry in patterns:
        if isinstance(entry, URLResolver):
            inner = entry.namespace or ""
            joined = f"{namespace}:{inner}" if namespace and inner else (inner or namespace)
            found += walk(
                entry.url_patterns, (*pieces, entry.pattern), joined, entry.app_name or app_name
            )
        elif isinstance(entry, URLPattern):
            name = f"{namespace}:{entry.name}" if namespace and entry.name else entry.name
            chain = (*pieces, entry.pattern)
            found.append(
                Route(
                    pattern="".join(str(p) for p in chain),
                    name=name,
                    callback=entry.callback,
                    pieces=chain,
                    app_name=app_name,
                )
            )
        else:  # pragma: no cover - Django has only these two
            raise TypeError(f"unknown URL entry {entry!r}")
    return found


_ROUTE_PARAM = re.compile(r"<(?:\w+:)?(\w+)>")
_REGEX_GROUP = re.compile(r"\(\?P<(\w+)>[^()]*\)")


def url_for(route: Route, values: dict[str, Any]) -> str:
    """The path of ``route`` with ``values`` in its kwargs; checked to resolve back to it."""
    parts = []
    for piece in route.pieces:
        text = str(piece)
        if isinstance(piece, RoutePattern):
            parts.append(_ROUTE_PARAM.sub(lambda m: str(values[m[1]]), text))
        else:
            parts.append(_REGEX_GROUP.sub(lambda m: str(values[m[1]]), text).strip("^$"))
    path = "/" + "".join(parts)
    match = resolve(path)
    if match.func is not route.callback:
        raise AssertionError(
            f"the isolation suite filled {route.label} as {path}, which resolves to "
            f"{match.route!r} instead: fix FILL in {HERE}"
        )
    return path


# --- the world ---------------------------------------------------------------------------------


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
        ("id", "status", "name", "role", "tier", "parent_id", "url", "last_heartbeat_at"),
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


# --- expectations ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expect:
    """What one answer must be."""

    status: int
    # The Location, unquoted. "{path}": the request's path and query; "{ws_a}": A's workspace;
    # "{admin}": the admin site's root.
    location: str | None = None
    location_prefix: bool = False  # the Location only starts with ``location``
    json: Any = None  # the exact JSON body
    raw: bytes | None = None  # the exact bytes of the body
    header: tuple[str, str] | None = None  # a header the answer must carry, with its value
    error_has: str | None = None  # a phrase the JSON body's "error" must contain
    present: tuple[str, ...] = ()  # names of A's markers the answer must show (the control)
    leak_free: bool = False  # the answer must show none of A's markers
    changes: bool = False  # True: the request must change something; False: nothing at all


# Another org's object: as if it did not exist, and the page says nothing of it.
NOT_FOUND_PAGE = Expect(404, leak_free=True)


def login_redirect(location: str = LOGIN) -> Expect:
    return Expect(302, location=location)


# --- the tables --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    method: str = "GET"
    query: str = ""  # "?partial=state"
    htmx: bool = False
    form: Callable[[World], dict[str, Any]] | None = None  # a form POST's fields
    body: Callable[[World], Any] | None = None  # a JSON body
    own_org: bool = False  # the slug is the caller's own org (B); the other ids stay A's
    # URL kwargs to use instead of FILL's (CROSS: a URL of B's that names A's object elsewhere).
    kwargs: Callable[[World], dict[str, Any]] | None = None
    tag: str = ""  # tells this request apart from the others to the same URL in the case ids

    @property
    def label(self) -> str:
        htmx = " htmx" if self.htmx and not self.query.startswith("?partial") else ""
        suffix = "@own-org" if self.own_org else (f"@{self.tag}" if self.tag else "")
        return f"{self.method}{self.query}{htmx}{suffix}"


# How to fill each URL kwarg: a value pointing into org A (``own_org``: the slug of B).
FILL: dict[str, Callable[[World, Route, bool], Any]] = {
    "slug": lambda w, r, own: (w.org_b if own else w.org_a).slug,
    "workspace_id": lambda w, r, own: w.ws_a.pk,
    "event_id": lambda w, r, own: w.import_a.pk,
    "token_id": lambda w, r, own: w.victim_token.pk,
    "key_id": lambda w, r, own: w.key_a.pk,
    "key": lambda w, r, own: w.secret_key,
    "verb": lambda w, r, own: VERBS[r.key],
    # The admin's.
    "object_id": lambda w, r, own: _admin_object(w, r),
    "content_type_id": lambda w, r, own: ContentType.objects.get_for_model(Org).pk,
    "app_label": lambda w, r, own: "orgs",
    "url": lambda w, r, own: "no-such-page/",
    "id": lambda w, r, own: w.users["owner"].pk,  # the admin's user password page
    # Django's password reset confirmation: A's owner, a token that is not valid.
    "uidb64": lambda w, r, own: urlsafe_base64_encode(force_bytes(w.users["owner"].pk)),
    "token": lambda w, r, own: "set-password",
}
# A verb per route: refused from the workspace's state (online), so the owner passes the access
# check and the state machine then refuses: nothing changes.
VERBS = {"workspace-verb": "resume", "team-verb": "collapse", "api-workspace-verb": "resume"}
# URL kwargs whose value is a second object of org A beside the org in the slug: with these, the
# outsider also calls with their own org's slug (an object id from another org must not pass).
OBJECT_KWARGS = {"workspace_id", "event_id", "token_id"}


@dataclass(frozen=True)
class Page:
    """One request to a console page and what org A's owner gets.

    ``scope`` says what the others get: "org" (an object of A: the viewer reads it, the
    outsider gets 404), "fleet" (a list of what the caller may see: everyone 200, the outsider
    sees none of A), "superuser" (everyone here 403), "post-only" (a GET: 405).
    ``write``: acting, so the viewer gets 403. ``viewer``/``outsider`` override the defaults.
    """

    request: Request
    owner: Expect
    scope: str = "org"
    write: bool = False
    viewer: Expect | None = None
    outsider: Expect | None = None


def _get(query: str = "", *, htmx: bool = False) -> Request:
    """A GET; ``query`` may name ``{ws_a}``, A's workspace."""
    return Request("GET", query, htmx=htmx)


def _partial(name: str) -> Request:
    return Request("GET", f"?partial={name}", htmx=True)


def _post(form: Callable[[World], dict[str, Any]] | None = None, *, htmx: bool = False) -> Request:
    return Request("POST", htmx=htmx, form=form or (lambda w: {}))


POST_ONLY = Page(_get(), Expect(405), scope="post-only")
SHOWN = Expect(200, present=("workspace",))

PAGES: dict[str, list[Page]] = {
    "dashboard": [
        Page(_get(), SHOWN, scope="fleet"),
        Page(_get(htmx=True), SHOWN, scope="fleet"),
        Page(_get("?org=acme-canary"), SHOWN, scope="fleet"),
    ],
    "workspace-create": [
        POST_ONLY,
        Page(
            _post(lambda w: {"org": w.org_a.slug, "name": "Created", "tier": 2, "runtime": "x"}),
            Expect(302, location="/workspaces/", location_prefix=True, changes=True),
            scope="fleet",
            # Like every write: a viewer's own org is 403, another org's slug 404.
            viewer=Expect(403),
            outsider=Expect(404),
        ),
    ],
    "parity": [
        Page(_get(), Expect(200), scope="fleet"),
        Page(_get(htmx=True), Expect(200), scope="fleet"),
    ],
    "parity-run": [POST_ONLY, Page(_post(), Expect(403), scope="superuser")],
    "workspace": [
        Page(_get(), Expect(200, present=("workspace", "secret"))),
        *[
            Page(_partial(part), Expect(200, present=present))
            for part, present in [("state", ("workspace",)), ("events", ()), ("console", ())]
        ],
    ],
    "workspace-secret-set": [
        POST_ONLY,
        Page(
            _post(lambda w: {"key": "ANOTHER_KEY", "value": "v"}),
            Expect(302, location="/workspaces/{ws_a}/#secrets", changes=True),
            write=True,
        ),
    ],
    "workspace-secret-delete": [
        Page(_get(), Expect(200, present=("secret",)), write=True),
        Page(
            _post(), Expect(302, location="/workspaces/{ws_a}/#secrets", changes=True), write=True
        ),
    ],
    "workspace-verb": [
        Page(_get(), Expect(200, present=("workspace",)), write=True),
        Page(_post(), Expect(302, location="/workspaces/{ws_a}/"), write=True),
        Page(_post(htmx=True), Expect(409, present=("workspace",)), write=True),
    ],
    "org-list": [Page(_get(), Expect(200, present=("org",)), scope="fleet")],
    "org-import": [
        Page(
            _get(),
            Expect(200, present=("slug",)),
            scope="fleet",
            # Importing needs an org one acts on: the viewer has none, the outsider has B.
            viewer=Expect(403),
        ),
        Page(
            _get("?into=acme-canary"), Expect(200, present=("slug",)), "fleet", viewer=Expect(403)
        ),
        Page(
            _post(lambda w: {"text": "workspaces: [{name: Imported}]\n", "into": w.org_a.slug}),
            Expect(302, location="/orgs/acme-canary/imports/", location_prefix=True, changes=True),
            scope="fleet",
            viewer=Expect(403),
            outsider=Expect(400, leak_free=True),
        ),
    ],
    "org": [
        Page(_get(), Expect(200, present=("org", "workspace"))),
        Page(_partial("tree"), Expect(200, present=("workspace",))),
        Page(_partial("table"), Expect(200, present=("workspace",))),
    ],
    "org-move": [
        POST_ONLY,
        # To the top level, where it already is: allowed, and changes nothing.
        Page(
            _post(lambda w: {"workspace": str(w.ws_a.pk), "parent": ""}),
            Expect(302, location="/orgs/acme-canary/"),
            write=True,
        ),
    ],
    "org-import-progress": [
        Page(_get(), Expect(200, present=("workspace",))),
        Page(_get(htmx=True), Expect(200, present=("workspace",))),
    ],
    "team-verb": [
        Page(_get(), Expect(200, present=("workspace",)), write=True),
        Page(_post(), Expect(302, location="/orgs/acme-canary/"), write=True),
    ],
    "event-log": [
        Page(_get(), Expect(200, present=("actor",)), scope="fleet"),
        Page(_get(htmx=True), Expect(200, present=("actor",)), scope="fleet"),
        # Filters naming A's org or workspace: nothing of A for whoever is not in A.
        Page(_get("?org=acme-canary"), Expect(200, present=("actor",)), scope="fleet"),
        Page(_get("?workspace={ws_a}"), Expect(200, present=("actor",)), scope="fleet"),
    ],
    "tokens": [
        Page(_get(), Expect(200, present=("token", "victim")), scope="fleet"),
        Page(_get(htmx=True), Expect(200, present=("token",)), scope="fleet"),
        Page(_get("?org=acme-canary"), Expect(200, present=("token",)), scope="fleet"),
    ],
    "token-mint": [
        POST_ONLY,
        Page(
            _post(lambda w: {"org": w.org_a.slug, "name": "minted-here"}),
            Expect(201, changes=True),
            write=True,
        ),
    ],
    "token-revoke": [
        Page(_get(), Expect(200, present=("victim",)), write=True),
        Page(_post(), Expect(302, location="/tokens/", changes=True), write=True),
    ],
}


@dataclass(frozen=True)
class Call:
    """One JSON API call and what a valid org token of A gets (when its ``access`` lets it).

    ``foreign``: for a route with no org in its URL, what a credential of org B gets (a list of
    its own things, or a refusal); routes with an org in the URL answer 404 to B, derived.
    ``key_b``: the same for a partner key bound to B, when it differs from ``foreign``.
    """

    owner: Expect
    body: Callable[[World], Any] | None = None
    foreign: Expect | None = None
    key_b: Expect | None = None
    query: str = ""  # may name {ws_a}


LIST_OF_OWN = Expect(200, leak_free=True)

API_CALLS: dict[tuple[str, str], Call | tuple[Call, ...]] = {
    ("api-orgs", "GET"): (
        Call(Expect(200, present=("slug",)), foreign=LIST_OF_OWN),
        Call(Expect(200, present=("slug",)), foreign=LIST_OF_OWN, query="?include_archived=1"),
    ),
    ("api-orgs", "POST"): Call(
        Expect(403),
        body=lambda w: {"slug": "new-org", "name": "New"},
        # A key bound to one org cannot create orgs.
        foreign=Expect(403),
    ),
    ("api-org", "GET"): Call(Expect(200, present=("slug",))),
    ("api-org", "DELETE"): Call(Expect(403)),
    ("api-provision-status", "GET"): Call(Expect(200)),
    ("api-workspaces", "GET"): Call(Expect(200, present=("workspace",))),
    ("api-workspaces", "POST"): Call(
        Expect(201, changes=True), body=lambda w: {"name": "From-API"}
    ),
    ("api-workspace", "GET"): Call(Expect(200, present=("workspace",))),
    ("api-workspace", "PATCH"): Call(Expect(200, changes=True), body=lambda w: {"role": "Tester"}),
    ("api-workspace", "DELETE"): Call(Expect(202, changes=True)),
    ("api-workspace-secrets", "GET"): Call(Expect(200, present=("secret",))),
    ("api-workspace-secret", "PUT"): Call(Expect(200, changes=True), body=lambda w: {"value": "x"}),
    ("api-workspace-secret", "DELETE"): Call(Expect(204, changes=True)),
    # Resume an online workspace: through the access check, then refused by the state machine.
    ("api-workspace-verb", "POST"): Call(Expect(409, error_has="resume")),
    ("api-tokens", "GET"): Call(Expect(200, present=("token", "victim"))),
    ("api-tokens", "POST"): Call(Expect(201, changes=True), body=lambda w: {"name": "from-api"}),
    ("api-token", "DELETE"): Call(Expect(204, changes=True)),
    ("api-events", "GET"): (
        Call(Expect(200, present=("actor",)), foreign=LIST_OF_OWN),
        # Filters naming A's org (not in B's reach: 404) or A's workspace (none of B's events).
        Call(
            Expect(200, present=("actor",)),
            foreign=Expect(404, json=NOT_FOUND_API),
            query="?org=acme-canary",
        ),
        Call(Expect(200, present=("actor",)), foreign=LIST_OF_OWN, query="?workspace={ws_a}"),
    ),
    ("api-partner-keys", "GET"): Call(Expect(403), foreign=LIST_OF_OWN),
    ("api-partner-keys", "POST"): Call(
        Expect(403),
        body=lambda w: {"name": "minted-by-b", "scopes": ["orgs:read"], "org": w.org_a.slug},
        # A's slug is "no such org" to B's key, exactly as a slug that does not exist.
        foreign=Expect(400, json={"error": "Invalid fields.", "fields": {"org": ["no such org"]}}),
    ),
    ("api-partner-key", "DELETE"): Call(Expect(403), foreign=Expect(404, json=NOT_FOUND_API)),
}


@dataclass(frozen=True)
class AdminModel:
    """A model admin's rules. ``scope``: "org" (rows of one org: staff see their orgs' only),
    "global" (rows of no org, for every staff with the permission), "locked" (nothing for the
    staff here: superuser-only, or permissions they do not hold).
    ``add``/``delete``: whether staff with the permission may add / delete at all.
    ``markers``: A's markers its changelist shows A's staff. ``add_post``: a form adding a row
    into org A, which only A's owner may do (the status they get: ``add_status``);
    ``change_post``: a form changing A's object, which only A's owner may do."""

    scope: str
    obj: Callable[[World], Any]
    add: bool = True
    delete: bool = True
    markers: tuple[str, ...] = ()
    add_post: Callable[[World], dict[str, Any]] | None = None
    add_status: int = 302
    change_post: Callable[[World], dict[str, Any]] | None = None
    # The add form opens only for staff who may act on some org (a viewer-only staff: 403).
    add_needs_acting: bool = False


ADMIN_MODELS: dict[str, AdminModel] = {
    "orgs.org": AdminModel(
        "org",
        lambda w: w.org_a.pk,
        # Creating and deleting orgs is for superusers; a tenant's staff archive through the API.
        add=False,
        delete=False,
        markers=("slug", "org"),
        change_post=lambda w: {
            "slug": w.org_a.slug,
            "name": "Renamed",
            "plan": w.org_a.plan,
            "backend": w.org_a.backend,
            "status": w.org_a.status,
            # The membership inline, sent empty: the rows it has stay as they are.
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
            "memberships-MIN_NUM_FORMS": "0",
            "memberships-MAX_NUM_FORMS": "1000",
        },
    ),
    "orgs.orgmembership": AdminModel(
        "org",
        lambda w: w.membership_a.pk,
        markers=("viewer",),
        add_post=lambda w: {
            "org": w.org_a.pk,
            "user": w.users["outsider"].pk,
            "role": OrgMembership.Role.OWNER,
        },
        add_needs_acting=True,
        # The viewer's own membership, made an owner.
        change_post=lambda w: {
            "org": w.org_a.pk,
            "user": w.users["viewer"].pk,
            "role": OrgMembership.Role.OWNER,
        },
    ),
    "orgs.team": AdminModel(
        "org",
        lambda w: w.team_a.pk,
        markers=("team",),
        add_post=lambda w: {"org": w.org_a.pk, "lead": w.ws_a2.pk, "name": "Added"},
        add_needs_acting=True,
        change_post=lambda w: {"org": w.org_a.pk, "lead": w.ws_a.pk, "name": "Renamed"},
    ),
    "orgs.orgapitoken": AdminModel(
        "org",
        lambda w: w.victim_token.pk,
        delete=False,
        markers=("victim", "token"),
        add_post=lambda w: {"org": w.org_a.pk, "name": "added"},
        add_status=200,  # the page that shows the plaintext once
    ),
    "orgs.partnerapikey": AdminModel("locked", lambda w: w.key_a.pk),
    "workspaces.workspace": AdminModel(
        "org",
        lambda w: w.ws_a.pk,
        delete=False,
        markers=("workspace", "workspace2"),
        add_post=lambda w: {
            "org": w.org_a.pk,
            "name": "Added",
            "role": "",
            "tier": "2",
            "runtime": "langgraph",
            "parent": "",
            "workspace_dir": "",
            "spec": "{}",
        },
        change_post=lambda w: {
            "name": "Renamed",
            "role": "",
            "tier": "2",
            "runtime": "langgraph",
            "workspace_dir": "",
            "spec": "{}",
        },
    ),
    "workspaces.structureevent": AdminModel(
        "org", lambda w: w.import_a.pk, add=False, delete=False, markers=("actor",)
    ),
    "workspaces.orphansuspect": AdminModel(
        "global", lambda w: w.orphan.pk, add=False, delete=False
    ),
    "auth.user": AdminModel("locked", lambda w: w.users["owner"].pk),
    "auth.group": AdminModel("locked", lambda w: w.group.pk),
}

# The model admin URLs Django makes, by their last piece.
ADMIN_ACTIONS = {
    "": "changelist",
    "add/": "add",
    "<path:object_id>/history/": "history",
    "<path:object_id>/delete/": "delete",
    "<path:object_id>/change/": "change",
    "<path:object_id>/": "redirect",  # the pre-1.9 change URL, redirected
    "<id>/password/": "password",  # UserAdmin's
}

# The admin site's own views: what its staff get (B's staff, when 200, see nothing of A's),
# and what a logged-out caller or a member who is not staff gets (the admin's login if None).
ADMIN_SITE: dict[str, tuple[Request, Expect, Expect | None]] = {
    "index": (_get(), Expect(200), None),
    "login": (_get(), Expect(302, location="{admin}"), Expect(200)),
    # Logged out, logging out goes to the index (then the login); staff must POST.
    "logout": (_get(), Expect(405), Expect(302, location="{admin}")),
    "password_change": (_get(), Expect(200), None),
    "password_change_done": (_get(), Expect(200), None),
    # Users are the auth app's, whose permissions the staff here do not hold.
    "autocomplete": (
        Request("GET", "?app_label=orgs&model_name=orgmembership&field_name=user&term="),
        Expect(403),
        None,
    ),
    "jsi18n": (_get(), Expect(200), None),
    # The console's models have no get_absolute_url: nothing to redirect to, for anyone.
    "view_on_site": (_get(), Expect(404), None),
    "app_list": (_get(), Expect(200), None),
    "(?P<url>.*)$": (_get(), Expect(404), None),
}

# Django's own account pages (and the favicon): ``public`` ones answer everyone, the others need
# a login.
AUTH_PAGES: dict[str, list[tuple[Request, bool, Expect]]] = {
    "login": [(_get(), True, Expect(200))],
    "logout": [
        (_get(), True, Expect(405)),
        (_post(), True, Expect(302, location="/accounts/login/")),
    ],
    "password_change": [(_get(), False, Expect(200))],
    "password_change_done": [(_get(), False, Expect(200))],
    "password_reset": [(_get(), True, Expect(200))],
    "password_reset_done": [(_get(), True, Expect(200))],
    # A token that is not valid: the page says the link is invalid.
    "password_reset_confirm": [(_get(), True, Expect(200))],
    "password_reset_complete": [(_get(), True, Expect(200))],
    # Not an account page, but public like one: /favicon.ico redirects to the static icon.
    "favicon": [(_get(), True, Expect(302, location="/static/favicon.svg"))],
}

# The agents' endpoints: a workspace token of that very workspace, and nothing else.
REGISTRY: dict[str, Callable[[World], Any]] = {
    "registry-register": lambda w: {"workspace_id": str(w.ws_a.pk), "url": "http://x.invalid"},
    "registry-heartbeat": lambda w: {"workspace_id": str(w.ws_a.pk), "active_tasks": 3},
}


# Requests to a URL of B's (the caller's own org) whose body names A's object: an id from
# another org must not pass, in the URL or beside it. Only the principals named are sent.
NO_SUCH_PARENT = {
    "error": "Invalid fields.",
    "fields": {"parent": ["no live workspace of this org has that id"]},
}


def _in_b(**ids: Callable[[World], Any]) -> Callable[[World], dict[str, Any]]:
    return lambda w: {"slug": w.org_b.slug, **{name: get(w) for name, get in ids.items()}}


CROSS: dict[str, list[tuple[Request, dict[str, Expect]]]] = {
    "org-move": [
        (
            Request(
                "POST",
                form=lambda w: {"workspace": str(w.ws_b.pk), "parent": str(w.ws_a.pk)},
                kwargs=_in_b(),
                tag="a-parent",
            ),
            {"outsider": Expect(404, leak_free=True), "owner": Expect(404)},
        ),
        (
            Request(
                "POST",
                form=lambda w: {"workspace": str(w.ws_a.pk), "parent": ""},
                kwargs=_in_b(),
                tag="a-workspace",
            ),
            {"outsider": Expect(404, leak_free=True)},
        ),
    ],
    "api-workspace": [
        (
            Request(
                "PATCH",
                body=lambda w: {"parent": str(w.ws_a.pk)},
                kwargs=_in_b(workspace_id=lambda w: w.ws_b.pk),
                tag="a-parent",
            ),
            # Exactly what a parent id that does not exist gets.
            {"token-b": Expect(400, json=NO_SUCH_PARENT), "token-a": Expect(404)},
        ),
    ],
    "api-workspaces": [
        (
            Request(
                "POST",
                body=lambda w: {"name": "Child", "parent": str(w.ws_a.pk)},
                kwargs=_in_b(),
                tag="a-parent",
            ),
            {"token-b": Expect(400, json=NO_SUCH_PARENT)},
        ),
    ],
}


# --- cases -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One request to one route as one principal, and what it must get."""

    id: str
    route: Route | None
    kind: str = ""  # page, api, admin, auth, registry
    principal: str = ""
    request: Request = field(default_factory=Request)
    expect: Expect | None = None
    problem: str = ""  # set: the route is not covered, and the case fails with this


PAGE_PRINCIPALS = ("owner", "viewer", "outsider", "anonymous")
API_PRINCIPALS = (
    "anonymous",
    "revoked-token",
    "expired-key",
    "key-without-scope",
    "token-a",
    "token-b",
    "key-b",
)
# Staff with every permission on the console's models: A's owner, A's viewer, B's owner.
STAFF = ("staff-a", "staff-viewer", "staff-b")
ADMIN_PRINCIPALS = ("anonymous", "member", *STAFF)
AUTH_PRINCIPALS = ("anonymous", "owner")
REGISTRY_PRINCIPALS = ("anonymous", "owner", "org-token", "ws-token-b", "ws-token-a")


def uncovered(route: Route, table: str, why: str) -> Case:
    return Case(
        id=f"{route.label}:uncovered",
        route=route,
        problem=(
            f"new endpoint {route.label} is not covered by the isolation suite: add it to "
            f"{table} in {HERE} ({why})"
        ),
    )


def cases_for(route: Route) -> list[Case]:
    """Every case of one route; a single failing case when the suite does not know it."""
    found = _cases_for(route)
    if found and found[0].problem:
        return found
    kind = found[0].kind if found else ""
    for request, expects in CROSS.get(route.key, []):
        for principal, expect in expects.items():
            found.append(_case(route, kind, principal, request, expect))
    return found


def _cases_for(route: Route) -> list[Case]:
    if missing := [k for k in route.kwargs if k not in FILL]:
        return [uncovered(route, "FILL", f"no value for the URL kwarg(s) {', '.join(missing)}")]
    if "verb" in route.kwargs and route.key not in VERBS:
        return [uncovered(route, "VERBS", "which verb to put in its URL")]
    if hasattr(route.callback, "handlers"):
        return _api_cases(route)
    if route.app_name == "admin":
        return _admin_cases(route)
    if route.key in PAGES:
        return _page_cases(route)
    if route.key in AUTH_PAGES:
        return _auth_cases(route)
    if route.key in REGISTRY:
        return _registry_cases(route)
    return [
        uncovered(
            route,
            "PAGES (a console page), AUTH_PAGES or REGISTRY",
            "the suite cannot tell who may call it",
        )
    ]


def all_cases(routes: Iterable[Route] | None = None) -> list[Case]:
    return [case for route in (walk() if routes is None else routes) for case in cases_for(route)]


def problems(routes: Iterable[Route] | None = None) -> list[str]:
    return [case.problem for case in all_cases(routes) if case.problem]


def _case(route: Route, kind: str, principal: str, request: Request, expect: Expect) -> Case:
    return Case(
        id=f"{route.name or route.pattern}:{request.label}:{principal}",
        route=route,
        kind=kind,
        principal=principal,
        request=request,
        expect=expect,
    )


def _with_object_and_slug(route: Route) -> bool:
    return "slug" in route.kwargs and bool(OBJECT_KWARGS & set(route.kwargs))


def _page_cases(route: Route) -> list[Case]:
    found = []
    for page in PAGES[route.key]:
        for principal in PAGE_PRINCIPALS:
            found.append(
                _case(route, "page", principal, page.request, _page_expect(page, principal))
            )
        if _with_object_and_slug(route) and page.scope == "org":
            own = replace(page.request, own_org=True)
            found.append(_case(route, "page", "outsider", own, NOT_FOUND_PAGE))
    return found


def _page_expect(page: Page, principal: str) -> Expect:
    if principal == "anonymous":
        return login_redirect()
    if page.scope == "post-only":
        return Expect(405)
    if page.scope == "superuser":
        return Expect(403)
    if principal == "owner":
        return page.owner
    if principal == "viewer":
        if page.viewer is not None:
            return page.viewer
        if page.write:
            return Expect(403)
        return Expect(page.owner.status, present=page.owner.present)
    if page.outsider is not None:
        return page.outsider
    if page.scope == "org":
        return NOT_FOUND_PAGE
    return replace(page.owner, present=(), leak_free=True, changes=False)


def _api_cases(route: Route) -> list[Case]:
    found = []
    for method, handler in route.callback.handlers.items():
        calls = API_CALLS.get((route.key, method))
        if calls is None:
            return [uncovered(route, "API_CALLS", f"what a valid org token gets for {method}")]
        access = handler.access
        for call in calls if isinstance(calls, tuple) else (calls,):
            request = Request(method, call.query, body=call.body)
            for principal in API_PRINCIPALS:
                expect = _api_expect(route, call, access, principal)
                found.append(_case(route, "api", principal, request, expect))
            if _with_object_and_slug(route):
                own = Request(method, call.query, body=call.body, own_org=True)
                for principal in ("token-b", "key-b"):
                    refused = _api_refusal(access, principal)
                    expect = refused or Expect(404, json=NOT_FOUND_API)
                    found.append(_case(route, "api", principal, own, expect))
    return found


def _api_refusal(access: Any, principal: str) -> Expect | None:
    """The 403 a credential gets from the handler's access rules, before anything is looked up."""
    if principal in ("token-a", "token-b") and not access.org_tokens:
        return Expect(403, error_has="org API token cannot")
    if principal == "key-b" and access.scope is None:
        return Expect(403, error_has="Partner keys manage orgs")
    return None


def _api_expect(route: Route, call: Call, access: Any, principal: str) -> Expect:
    if principal in ("anonymous", "revoked-token"):
        # One body for every failure: a revoked token is told nothing more than no token.
        return Expect(401, json=UNAUTHORIZED_API, raw=UNAUTHORIZED_BYTES, header=CHALLENGE)
    if principal == "expired-key":
        return Expect(401, json={"error": bearer.EXPIRED}, header=CHALLENGE)
    if principal == "key-without-scope":
        return Expect(403, error_has=access.scope or "Partner keys manage orgs")
    if refused := _api_refusal(access, principal):
        return refused
    if principal == "token-a":
        return call.owner
    if "slug" in route.kwargs:
        return Expect(404, json=NOT_FOUND_API)
    found = call.key_b if principal == "key-b" and call.key_b else call.foreign
    if found is None:
        raise AssertionError(f"API_CALLS[{route.key!r}] needs foreign= (no org in its URL)")
    return found


def _admin_cases(route: Route) -> list[Case]:
    login = "{admin}login/?next={path}"
    if len(route.pieces) == 2:  # the site's own views
        entry = ADMIN_SITE.get(route.key)
        if entry is None:
            return [uncovered(route, "ADMIN_SITE", "an admin site view")]
        request, staff, outside = entry
        expect = {
            "anonymous": outside or login_redirect(login),
            "member": outside or login_redirect(login),
            "staff-a": staff,
            "staff-viewer": staff,
            "staff-b": replace(staff, leak_free=staff.status == 200),
        }
        return [
            _case(route, "admin", principal, request, expect[principal])
            for principal in ADMIN_PRINCIPALS
        ]
    label = str(route.pieces[-2]).strip("/").replace("/", ".")
    model = ADMIN_MODELS.get(label)
    action = ADMIN_ACTIONS.get(str(route.pieces[-1]))
    if model is None:
        return [uncovered(route, "ADMIN_MODELS", f"the admin of {label}")]
    if action is None:
        return [uncovered(route, "ADMIN_ACTIONS", f"an admin URL of {label}")]
    requests = [_get()]
    if action == "changelist":
        requests.append(_get("?q=acme"))  # a search for A's names
    form = {"add": model.add_post, "change": model.change_post}.get(action)
    if form is not None:
        requests.append(_post(lambda w: {**form(w), "_save": "Save"}))
    return [
        _case(
            route,
            "admin",
            principal,
            request,
            _admin_expect(model, action, principal, request, login),
        )
        for request in requests
        for principal in ADMIN_PRINCIPALS
    ]


def _admin_expect(
    model: AdminModel, action: str, principal: str, request: Request, login: str
) -> Expect:
    """What one principal gets from one model admin URL pointing at org A's object."""
    if principal not in STAFF:
        return login_redirect(login)
    if action == "redirect":
        return Expect(302, location="{path}change/")
    if model.scope == "locked":
        return Expect(403)
    post = request.method == "POST"
    if model.scope == "global":  # the same for every staff member: view only
        return Expect(200) if action in ("changelist", "change", "history") else Expect(403)
    sees = principal in ("staff-a", "staff-viewer")  # members of A
    acts = principal == "staff-a"  # A's owner
    if action == "changelist":
        return Expect(200, present=model.markers) if sees else Expect(200, leak_free=True)
    if action == "add":
        if not model.add or (model.add_needs_acting and principal == "staff-viewer"):
            return Expect(403)
        if post:
            # Into org A: only A's owner may. The others' form does not offer org A: refused.
            return Expect(model.add_status, changes=True) if acts else Expect(200)
        return Expect(200) if sees else Expect(200, leak_free=True)
    if action == "delete" and not model.delete:
        return Expect(403)  # for every object, existing or not
    if not sees:
        # Outside get_queryset: Django's admin redirects to its index ("doesn't exist").
        return Expect(302, location="{admin}")
    if action == "change":
        if post:
            return Expect(302, changes=True) if acts else Expect(403)
        return Expect(200, present=model.markers[:1])
    if action == "history":
        return Expect(200)
    if action == "delete":
        return Expect(200) if model.delete and acts else Expect(403)
    raise AssertionError(f"no admin expectation for {action}")


def _auth_cases(route: Route) -> list[Case]:
    return [
        _case(
            route,
            "auth",
            principal,
            request,
            login_redirect() if principal == "anonymous" and not public else expect,
        )
        for request, public, expect in AUTH_PAGES[route.key]
        for principal in AUTH_PRINCIPALS
    ]


def _registry_cases(route: Route) -> list[Case]:
    body = REGISTRY[route.key]
    found = []
    for principal in REGISTRY_PRINCIPALS:
        expect = (
            Expect(200, changes=True)
            if principal == "ws-token-a"
            else Expect(401, json=UNAUTHORIZED_AGENT)
        )
        found.append(_case(route, "registry", principal, Request("POST", body=body), expect))
    found.append(_case(route, "registry", "ws-token-a", Request("GET"), Expect(405)))
    return found


def _admin_object(world: World, route: Route) -> Any:
    if route.key == "view_on_site":
        return world.org_a.pk
    label = str(route.pieces[-2]).strip("/").replace("/", ".")
    return ADMIN_MODELS[label].obj(world)


# --- the check ---------------------------------------------------------------------------------


def client_for(principal: str, world: World) -> tuple[Client, dict[str, str]]:
    """A client for ``principal`` and the headers it sends (a bearer, for API callers)."""
    client = Client()
    if principal in world.sessions:
        client.cookies[settings.SESSION_COOKIE_NAME] = world.sessions[principal]
        return client, {}
    if principal in world.bearers:
        return client, {"Authorization": f"Bearer {world.bearers[principal]}"}
    if principal == "anonymous":
        return client, {}
    raise AssertionError(f"unknown principal {principal!r}")


def send(case: Case, world: World) -> tuple[HttpResponse, str]:
    assert case.route is not None
    request = case.request
    values = {name: FILL[name](world, case.route, request.own_org) for name in case.route.kwargs}
    if request.kwargs is not None:
        values.update(request.kwargs(world))
    path = url_for(case.route, values)
    query = request.query.format(ws_a=world.ws_a.pk)
    principal = case.principal
    if principal == "key-without-scope":
        handler = case.route.callback.handlers[request.method]
        client, headers = (
            Client(),
            {"Authorization": f"Bearer {world.keys_without[handler.access.scope]}"},
        )
    else:
        client, headers = client_for(principal, world)
    if request.htmx:
        headers["HX-Request"] = "true"
    if request.body is not None or case.kind in ("api", "registry"):
        data = json.dumps(request.body(world)) if request.body else ""
        response = client.generic(
            request.method,
            path + query,
            data=data,
            content_type="application/json",
            headers=headers,
        )
    elif request.method == "POST":
        response = client.post(path + query, request.form(world), headers=headers)
    else:
        response = client.generic(request.method, path + query, headers=headers)
    return response, path + query


def check(case: Case, world: World) -> None:
    """Send the case's request and assert everything it must get; AssertionError otherwise."""
    if case.problem:
        raise AssertionError(case.problem)
    expect = case.expect
    assert expect is not None
    before = snapshot()
    response, path = send(case, world)
    text = response.content.decode(errors="replace")
    where = f"{case.id} ({case.request.method} {path})"
    assert response.status_code == expect.status, (
        f"{where}: expected {expect.status}, got {response.status_code}: {text[:400]!r}"
    )
    if expect.location is not None:
        wanted = expect.location.format(
            path=path, ws_a=world.ws_a.pk, admin=f"/{case.route.pieces[0]}"
        )
        got = unquote(response.get("Location", ""))
        ok = got.startswith(wanted) if expect.location_prefix else got == wanted
        assert ok, f"{where}: redirected to {got!r}, not {wanted!r}"
    if expect.json is not None:
        assert response.json() == expect.json, f"{where}: body {text[:400]!r}"
    if expect.raw is not None:
        assert response.content == expect.raw, f"{where}: body {response.content!r}"
    if expect.header is not None:
        name, value = expect.header
        assert response.get(name) == value, f"{where}: {name} is {response.get(name)!r}"
    if expect.error_has is not None:
        error = response.json().get("error", "")
        assert expect.error_has in error, f"{where}: error {error!r} lacks {expect.error_has!r}"
    for name in expect.present:
        marker = world.markers[name]
        assert marker in text, f"{where}: the answer does not show {name} ({marker!r})"
    if expect.leak_free:
        # What the caller sent itself may be echoed ("Tokens of acme-canary"); nothing else.
        sent = path + json.dumps(_payload(case.request, world), default=str)
        leaked = [m for m in world.marker_values() if m in text and m not in sent]
        assert not leaked, f"{where}: the answer shows org A's {leaked}"
    after = snapshot()
    if expect.changes:
        assert after != before, f"{where}: the request was to change something and did not"
    else:
        assert after == before, f"{where}: the request changed something: {_diff(before, after)}"


def _payload(request: Request, world: World) -> Any:
    if request.body is not None:
        return request.body(world)
    return request.form(world) if request.form is not None else None


def _diff(before: dict[str, str], after: dict[str, str]) -> str:
    return ", ".join(name for name in SNAPSHOT if before[name] != after[name])
