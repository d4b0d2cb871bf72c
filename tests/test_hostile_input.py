"""Generated hostile values at every door that takes input, on PostgreSQL: never a 5xx, and a
refused request writes nothing.

Doors: every API route and method (found by walking ``api/urls.py``: a route this file does not
know fails ``test_every_api_route_is_covered``), with hostile URL arguments, query parameters
and JSON bodies; the agents' registry; and the main forms (workspace create and edit, secret
set, org import, token mint, the event log's filters).

Values: text with NUL, control characters and lone surrogates, long strings, digits that are
not ASCII, odd and out-of-calendar dates; huge, negative and non-finite numbers; wrong types;
deep nesting; bodies that are not JSON at all. Each is mixed with valid values, so the rules
behind the first check get reached too.

"Refused" is a 4xx (or, for the dashboard's create form, the redirect back to the dashboard
with its error); after one, every table but the session and cache tables must be exactly what it
was (``snapshot``; the last-used stamps of credentials aside). Issue 9's list, input by input,
is pinned in tests/api/test_bad_input.py, tests/orgs/test_bad_input.py and
tests/workspaces/test_registry_bad_input.py.

Budget: ``EXAMPLES`` per door, no deadline (PostgreSQL's latency is not the property); the whole
module runs in well under a minute. Hypothesis keeps no example database and its caches go under
var/ (nothing is written into the checkout); a failure prints the example and a blob to
reproduce it with.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from orgs.models import Org
from tests.support.a2a_agents import agent_server
from tests.support.keys import ADMIN_TOKEN
from workspaces import bearer_secrets, dispatch, vault
from workspaces.models import Status, Workspace

pytestmark = pytest.mark.django_db

# Hypothesis's caches (Unicode tables, constants) under var/, never in the checkout.
set_hypothesis_home_dir(django_settings.VAR_DIR / "hypothesis")

# HOSTILE_EXAMPLES=500 for a longer hunt than CI's.
EXAMPLES = int(os.environ.get("HOSTILE_EXAMPLES", "25"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)

# --- values -------------------------------------------------------------------------------------

ODD_TEXT = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\x01\x1f\x7f",
    "line\nbreak",
    "\ud800",
    "x\udfffy",
    "²",
    "٣",
    "9" * 5000,
    "x" * 5000,
    "../../etc/passwd",
    "/etc",
    "/tmp/a\x00b",
    "acme",
    "import",
    "bad slug!",
    "MOLECULE_TOKEN",
    "OPENAI_API_KEY",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "9999-12-31T23:59:59Z",
    "2024-02-30T00:00:00Z",
    "2030-01-01T00:00:00Z",
    "true",
    "none",
    "NaN",
    "Infinity",
    "-1",
    "99999999999999999999999999",
    "00000000-0000-0000-0000-000000000000",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "%00",
    ".auth_token",
    "a/../b",
    "./a",
    "a//b",
    "a\\b",
    "é/ü ☃.md",
    "d/" * 300,
]
ODD_NUMBERS: list[Any] = [
    0,
    -1,
    1,
    2,
    4,
    5,
    2**31 - 1,
    2**31,
    2**63,
    10**10,
    10**29,
    -(10**29),
    0.5,
    1e308,
    -1e308,
    1e-300,
    float("nan"),
    float("inf"),
    float("-inf"),
    True,
    False,
]

any_char = st.characters(exclude_categories=[])
text = st.one_of(
    st.sampled_from(ODD_TEXT),
    st.text(any_char, max_size=30),
    st.text(st.sampled_from("\x00\x01\n\t \ud800aZ9_-./"), max_size=12),
    st.text(min_size=190, max_size=260),
)
number = st.one_of(st.sampled_from(ODD_NUMBERS), st.integers(), st.floats())
scalar = st.one_of(st.none(), st.booleans(), number, text)
value = st.one_of(
    text,
    number,
    st.recursive(
        scalar,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
        max_leaves=6,
    ),
)
# Past the bound (64), past Python's recursion limit, and as deep as a 64 KiB body goes.
deep = st.sampled_from([65, 1200, 30_000]).map(lambda depth: ("[" * depth + "]" * depth).encode())
raw_body = st.one_of(
    st.sampled_from(
        [
            b"",
            b"[]",
            b"1",
            b"null",
            b'"x"',
            b"{",
            b"NaN",
            b'{"a": NaN}',
            b'{"a": Infinity}',
            b'{"a": 1e999}',
            b'{"a": ' + b"9" * 5000 + b"}",
            b"\xff\xfe",
            b'{"a": "\\ud800"}',
            b'{"a": "\\u0000"}',
            b"\xef\xbb\xbf{}",
        ]
    ),
    deep,
    deep.map(lambda nested: b'{"name": ' + nested + b"}"),
    st.binary(max_size=40),
)


def encode(item: str) -> str:
    """Percent-encoded, lone surrogates included (as the bytes a client could send)."""
    return quote(item.encode("utf-8", "surrogatepass"), safe="")


def query_string(params: dict[str, Any]) -> str:
    return "&".join(f"{encode(str(k))}={encode(str(v))}" for k, v in params.items())


def form_body(data: dict[str, Any]) -> bytes:
    return query_string(data).encode()


# --- what must hold -----------------------------------------------------------------------------

SKIPPED_TABLES = {"django_session", "molecule_cache", "django_migrations"}
# Stamps a credential's use writes before the request is judged: not a write of the input.
USE_STAMPS = ("last_used_at", "window_started_at", "window_count")


def snapshot() -> dict[str, str]:
    """A digest of every table's rows (the use stamps left out)."""
    tables = sorted(set(connection.introspection.table_names()) - SKIPPED_TABLES)
    minus = "".join(f" - '{column}'" for column in USE_STAMPS)
    parts = [
        f"SELECT '{table}', md5(coalesce(string_agg(j, '|' ORDER BY j), '')) "
        f'FROM (SELECT (to_jsonb(t){minus})::text AS j FROM "{table}" t) s'
        for table in tables
    ]
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts))
        return dict(cursor.fetchall())


def judge(response: Any, before: dict[str, str], *, json_only: bool, refused: bool) -> None:
    assert response.status_code < 500, response.content[:800]
    if json_only and response.status_code != 204:
        assert response["Content-Type"] == "application/json", response.content[:300]
        if response.status_code >= 400:
            error = response.json()["error"]
            assert isinstance(error, str) and error.strip(), response.content[:300]
    if refused:
        after = snapshot()
        changed = sorted(table for table in after if after[table] != before.get(table))
        assert not changed, f"a refused request ({response.status_code}) wrote to {changed}"


# --- the world ----------------------------------------------------------------------------------


@pytest.fixture
def world(recording: dict[str, Any], settings: Any) -> dict[str, Any]:
    settings.ADMIN_TOKEN = ADMIN_TOKEN
    org = Org.objects.create(slug="acme", name="Acme")
    Org.objects.create(slug="globex", name="Globex")
    lead = dispatch.create_workspace(
        org=org, name="PM", actor="test", spec={"children": [{"name": "A"}]}
    )
    agent_token = bearer_secrets.mint()
    Workspace.objects.filter(pk=lead.pk).update(
        status=Status.ONLINE, token_hash=bearer_secrets.hash_token(agent_token)
    )
    vault.set_secret(workspace_id=lead.pk, key="OPENAI_API_KEY", value="v", actor="test")
    root = User.objects.create_superuser("root", "root@localhost", "pw-root")
    browser = Client()
    browser.force_login(root)
    return {"workspace": lead, "agent_token": agent_token, "browser": browser}


# --- the JSON API -------------------------------------------------------------------------------

VALID: dict[str, st.SearchStrategy[Any]] = {
    "slug": st.sampled_from(["beta", "acme", "new-org"]),
    "name": st.sampled_from(["PM", "New", "A name"]),
    "plan": st.sampled_from(["free", "team"]),
    "backend": st.sampled_from(["local", "docker"]),
    "role": st.sampled_from(["", "Lead"]),
    "tier": st.sampled_from([1, 2, 3, 4]),
    "runtime": st.just("langgraph"),
    "workspace_dir": st.sampled_from(["", "/srv/acme"]),
    "spec": st.just({"children": [{"name": "B"}]}),
    "parent": st.none(),
    "value": st.just("secret-value"),
    "expires_at": st.just("2030-01-01T00:00:00Z"),
    "expires_in_days": st.sampled_from([1, 3650]),
    "scopes": st.just(["orgs:read"]),
    "org": st.sampled_from(["acme", None]),
    "rate_limit": st.just(60),
    # Query parameters (sent as text).
    "include_archived": st.just("true"),
    "include_removed": st.just("true"),
    "include_revoked": st.just("true"),
    "cascade": st.just("false"),
    "status": st.just("online"),
    "limit": st.just("10"),
    "offset": st.just("1"),
    "workspace": st.just("00000000-0000-0000-0000-000000000000"),
    "type": st.just("WORKSPACE_ONLINE"),
    "actor": st.just("test"),
    "since": st.just("2020-01-01T00:00:00Z"),
    "until": st.just("2030-01-01T00:00:00+02:00"),
    "cursor": st.just("100"),
    # A file's path in a workspace's storage, and a new one.
    "path": st.sampled_from(["notes.md", "a/b.txt", ""]),
    "to": st.sampled_from(["renamed.md", "c/d.txt"]),
    # An A2A JSON-RPC request's members.
    "jsonrpc": st.just("2.0"),
    "id": st.sampled_from(["req-1", 7]),
    "method": st.sampled_from(["message/send", "tasks/get"]),
    "params": st.just({"message": {"role": "user", "parts": [{"kind": "text", "text": "hi"}]}}),
}
BODIES = {
    ("api-orgs", "POST"): ["slug", "name", "plan", "backend"],
    ("api-workspaces", "POST"): [*dispatch.EDITABLE, "parent"],
    ("api-workspace", "PATCH"): [*dispatch.EDITABLE, "parent"],
    ("api-workspace-secret", "PUT"): ["value"],
    ("api-workspace-a2a", "POST"): ["jsonrpc", "id", "method", "params"],
    ("api-workspace-file-rename", "POST"): ["path", "to"],
    ("api-workspace-plugins", "POST"): ["name"],
    ("api-tokens", "POST"): ["name", "expires_at", "expires_in_days"],
    ("api-partner-keys", "POST"): [
        "name",
        "scopes",
        "org",
        "rate_limit",
        "expires_at",
        "expires_in_days",
    ],
}
QUERIES = {
    ("api-orgs", "GET"): ["include_archived"],
    ("api-org", "DELETE"): ["cascade"],
    ("api-workspaces", "GET"): [
        "status",
        "tier",
        "backend",
        "name",
        "parent",
        "include_removed",
        "limit",
        "offset",
    ],
    ("api-events", "GET"): [
        "org",
        "workspace",
        "type",
        "actor",
        "since",
        "until",
        "limit",
        "cursor",
    ],
    ("api-tokens", "GET"): ["include_revoked"],
    ("api-partner-keys", "GET"): ["include_revoked"],
    ("api-workspace-files", "GET"): ["path"],
    ("api-workspace-file", "GET"): ["path"],
    ("api-workspace-file", "PUT"): ["path"],
    ("api-workspace-file", "DELETE"): ["path"],
    ("api-workspace-file-download", "GET"): ["path"],
}
# Routes whose methods take neither a body nor a query parameter (their URL is their input).
PLAIN = {
    ("api-org", "GET"),
    ("api-provision-status", "GET"),
    ("api-workspace", "GET"),
    ("api-workspace", "DELETE"),
    ("api-workspace-secrets", "GET"),
    ("api-workspace-secret", "DELETE"),
    ("api-workspace-plugins", "GET"),
    ("api-workspace-plugin", "DELETE"),
    ("api-workspace-verb", "POST"),
    ("api-token", "DELETE"),
    ("api-partner-key", "DELETE"),
}


def api_routes() -> list[tuple[str, str, URLPattern]]:
    """(name, method, pattern) for every route of api/urls.py, by walking the resolver."""
    found = []

    def walk(patterns: list[Any]) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns)
            elif pattern.name and pattern.name.startswith("api-"):
                for method in pattern.callback.handlers:
                    found.append((pattern.name, method, pattern))

    walk(get_resolver().url_patterns)
    return sorted(found, key=lambda item: item[:2])


ROUTES = api_routes()


def test_every_api_route_is_covered() -> None:
    known = set(BODIES) | set(QUERIES) | PLAIN
    assert {(name, method) for name, method, _ in ROUTES} == known


def url_argument(name: str, world: dict[str, Any]) -> st.SearchStrategy[str]:
    """A value for one URL argument, as its converter would let it through."""
    workspace = world["workspace"]
    if name == "slug":
        return st.one_of(
            st.sampled_from(["acme", "globex", "nope"]), st.from_regex(r"\A[-a-zA-Z0-9_]+\Z")
        )
    if name == "workspace_id":
        return st.one_of(st.just(str(workspace.pk)), st.uuids().map(str))
    if name in ("token_id", "key_id"):
        return st.one_of(st.integers(0, 10), st.integers(0, 10**30)).map(str)
    if name == "verb":
        return st.one_of(
            st.sampled_from([*dispatch.VERBS, *dispatch.TEAM_VERBS, "nope"]),
            st.from_regex(r"\A[-a-zA-Z0-9_]+\Z"),
        )
    if name == "key":
        return st.one_of(
            st.sampled_from(["OPENAI_API_KEY", "NEW_KEY", "MOLECULE_X", "PATH"]),
            text.filter(lambda item: item and "/" not in item),
        )
    if name == "name":
        return st.one_of(
            st.sampled_from(["parity-probe", "web-search", "nope", "..", ".auth_token"]),
            text.filter(lambda item: item and "/" not in item),
        )
    if name == "root":
        return st.one_of(
            st.sampled_from(["configs", "workspace", "etc"]), st.from_regex(r"\A[-a-zA-Z0-9_]+\Z")
        )
    raise AssertionError(f"no strategy for the URL argument {name!r}: add one")


def fields_of(names: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Some of ``names`` (each valid or hostile), sometimes with an unknown field beside them."""
    picked = {name: st.one_of(VALID.get(name, st.nothing()), value) for name in names}
    return st.fixed_dictionaries({}, optional=picked).flatmap(
        lambda chosen: st.one_of(
            st.just(chosen), st.dictionaries(text, value, max_size=2).map(lambda x: {**x, **chosen})
        )
    )


def request_for(
    name: str, method: str, pattern: URLPattern, world: dict[str, Any]
) -> st.SearchStrategy[tuple[str, str, bytes | None]]:
    """(path with query, method, body) for one API route."""
    arguments = st.fixed_dictionaries(
        {arg: url_argument(arg, world) for arg in pattern.pattern.converters}
    )
    query_names = QUERIES.get((name, method), [])
    # Each known parameter valid or hostile (a valid org lets the others be reached), and at
    # times unknown ones beside them.
    query = st.fixed_dictionaries(
        {},
        optional={
            param: st.one_of(VALID[param].map(lambda v: "" if v is None else v), text, number)
            for param in query_names
        },
    ).flatmap(lambda known: st.dictionaries(text, text, max_size=1).map(lambda x: {**x, **known}))
    if (name, method) in BODIES:
        body = st.one_of(fields_of(BODIES[name, method]).map(json.dumps).map(str.encode), raw_body)
    else:
        body = st.one_of(st.none(), raw_body)

    def build(args: dict[str, str], params: dict[str, Any], data: bytes | None) -> Any:
        route = str(pattern.pattern)
        for arg in pattern.pattern.converters:
            route = _fill(route, arg, encode(args[arg]))
        path = "/api/v1/" + route
        if params:
            path += "?" + query_string(params)
        return path, method, data

    return st.builds(build, arguments, query, body)


def _fill(route: str, argument: str, value: str) -> str:
    """``orgs/<slug:slug>/…`` with ``<…:slug>`` replaced by ``value``."""
    start = route.index(f":{argument}>")
    opening = route.rindex("<", 0, start)
    return route[:opening] + value + route[start + len(argument) + 2 :]


@contextlib.contextmanager
def answering_agent(world: dict[str, Any], route: str) -> Iterator[None]:
    """For the message routes, an agent (the built-in agent's code) at the workspace's URL: a
    message that passes every check is answered, so only refusals are judged. An agent that
    fails is a 502 or 504 by design (tests/api/test_a2a_api.py)."""
    if route not in ("api-workspace-a2a", "message"):
        yield
        return
    with agent_server() as agent:
        Workspace.objects.filter(pk=world["workspace"].pk).update(url=agent.url)
        yield


@pytest.mark.parametrize(("name", "method", "pattern"), ROUTES, ids=lambda x: str(x)[:30])
def test_the_api_never_answers_5xx_and_refusals_write_nothing(
    world: dict[str, Any], name: str, method: str, pattern: URLPattern
) -> None:
    client = Client()
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    @SETTINGS
    @given(request_for(name, method, pattern, world))
    def hostile(request: tuple[str, str, bytes | None]) -> None:
        path, verb, body = request
        before = snapshot()
        response = client.generic(
            verb, path, data=body or b"", content_type="application/json", headers=headers
        )
        judge(response, before, json_only=True, refused=response.status_code >= 400)

    with answering_agent(world, name):
        hostile()


# --- the registry -------------------------------------------------------------------------------

REPORT_VALID: dict[str, st.SearchStrategy[Any]] = {
    "url": st.just("http://127.0.0.1:7000"),
    "agent_card": st.just({"name": "PM"}),
    "error_rate": st.sampled_from([0.0, 0.2]),
    "sample_error": st.just("timeout"),
    "active_tasks": st.just(3),
    "uptime_seconds": st.just(120),
    "current_task": st.just("summarize"),
    # Molecule's runtime's fields (docs/registry-protocol.md).
    "runtime_state": st.sampled_from(["wedged", ""]),
    "runtime_metadata": st.just({"capabilities": {"session": True}, "idle_timeout_seconds": 900}),
    "monthly_spend": st.sampled_from([0, 1234]),
}


@pytest.mark.parametrize(
    "path", ["/registry/register", "/registry/heartbeat", "/registry/update-card"]
)
def test_the_registry_never_answers_5xx_and_refusals_write_nothing(
    world: dict[str, Any], path: str
) -> None:
    workspace, token = world["workspace"], world["agent_token"]
    report = {field: st.one_of(valid, value) for field, valid in REPORT_VALID.items()}
    body = st.one_of(
        st.fixed_dictionaries(
            {"workspace_id": st.one_of(st.just(str(workspace.pk)), value)},
            optional={**report, "id": st.one_of(st.just(str(workspace.pk)), value)},
        )
        .map(json.dumps)
        .map(str.encode),
        raw_body,
    )
    bearer = st.one_of(st.just(token), text)
    client = Client()

    @SETTINGS
    @given(body, bearer)
    def hostile(data: bytes, credential: str) -> None:
        before = snapshot()
        header = f"Bearer {credential}".encode("utf-8", "replace").decode("latin-1")
        response = client.post(
            path, data=data, content_type="application/json", headers={"Authorization": header}
        )
        judge(response, before, json_only=True, refused=response.status_code >= 400)
        # The workspace stays where a heartbeat can reach it, so every example gets that far.
        Workspace.objects.filter(pk=workspace.pk).update(status=Status.ONLINE)

    hostile()


# --- the forms ----------------------------------------------------------------------------------

FORM_VALID: dict[str, st.SearchStrategy[Any]] = {
    "org": st.just("acme"),
    "name": st.just("New"),
    "role": st.just(""),
    "tier": st.just("2"),
    "runtime": st.just("langgraph"),
    "workspace_dir": st.just(""),
    "key": st.just("NEW_KEY"),
    "value": st.just("v"),
    "text": st.just("workspaces:\n  - name: Imported\n"),
    "into": st.just("acme"),
    "env": st.just(""),
    "expires_in_days": st.just("30"),
    "workspace": st.just(""),
    "type": st.just("WORKSPACE_ONLINE"),
    "actor": st.just("test"),
    "since": st.just("2020-01-01T00:00"),
    "until": st.just("2030-01-01"),
    "page": st.just("2"),
    "root": st.sampled_from(["configs", "workspace"]),
    "path": st.sampled_from(["notes.md", "a/b.txt"]),
    "to": st.just("renamed.md"),
}
YAML_TEXT = st.one_of(
    st.sampled_from(
        [
            "workspaces: [{name: A, tier: " + "9" * 5000 + "}]\n",
            "workspaces: [{name: 2024-02-30}]\n",
            "workspaces: [{name: A, tier: 190:20:30:40:50:60:70:80:90}]\n",
            'workspaces: [{name: "A\\0B"}]\n',
            "name: x\nslug: bad slug!\nworkspaces: [{name: A}]\n",
            "workspaces: &a [*a]\n",
            "workspaces:\n" + "".join(f"  - name: w{n}\n" for n in range(600)),
            "[" * 200 + "]" * 200,
            "workspaces: [{name: A, workspace_dir: /etc}]\n",
            "defaults: {runtime: ''}\nworkspaces: [{name: A}]\n",
        ]
    ),
    text,
)
FORMS = {
    "workspace-create": ("/workspaces/new/", ["org", "name", "role", "tier", "runtime"]),
    "workspace-edit": (
        "/workspaces/{id}/edit/",
        ["name", "role", "tier", "runtime", "workspace_dir"],
    ),
    "secret-set": ("/workspaces/{id}/secrets/", ["key", "value"]),
    "message": ("/workspaces/{id}/message/", ["text"]),
    "file-save": ("/workspaces/{id}/files/file/", ["root", "path", "text"]),
    "file-rename": ("/workspaces/{id}/files/rename/", ["root", "path", "to"]),
    "file-delete": ("/workspaces/{id}/files/delete/", ["root", "path"]),
    "plugin-install": ("/workspaces/{id}/plugins/install/", ["name"]),
    "plugin-uninstall": ("/workspaces/{id}/plugins/uninstall/", ["name"]),
    "org-import": ("/orgs/import/", ["text", "into", "env"]),
    "token-mint": ("/tokens/new/", ["org", "name", "expires_in_days"]),
    "event-log": ("/events/", ["org", "workspace", "type", "actor", "since", "until", "page"]),
}


@pytest.mark.parametrize("form", sorted(FORMS))
def test_the_forms_never_answer_5xx_and_refusals_write_nothing(
    world: dict[str, Any], form: str
) -> None:
    path, names = FORMS[form]
    path = path.format(id=world["workspace"].pk)
    client = world["browser"]
    hostile_field = {name: YAML_TEXT if name == "text" else text for name in names}
    data = st.fixed_dictionaries(
        {}, optional={n: st.one_of(FORM_VALID[n], hostile_field[n]) for n in names}
    )

    @SETTINGS
    @given(data)
    def hostile(fields: dict[str, Any]) -> None:
        before = snapshot()
        if form == "event-log":
            response = client.get(f"{path}?{query_string(fields)}")
            judge(response, before, json_only=False, refused=True)  # a read: never a write
            return
        htmx = (
            "secret-set",
            "message",
            "file-save",
            "file-rename",
            "file-delete",
            "plugin-install",
            "plugin-uninstall",
        )
        headers = {"HX-Request": "true"} if form in htmx else {}
        response = client.post(
            path,
            data=form_body(fields),
            content_type="application/x-www-form-urlencoded",
            headers=headers,
        )
        refused = response.status_code >= 400 or (
            form == "workspace-create" and response.get("Location") == "/"
        )
        judge(response, before, json_only=False, refused=refused)

    with answering_agent(world, form):
        hostile()


def test_the_snapshot_sees_a_write(world: dict[str, Any]) -> None:
    """The judge would notice: a write changes the digest of its table."""
    before = snapshot()
    Workspace.objects.filter(pk=world["workspace"].pk).update(role="changed")
    changed = [table for table, digest in snapshot().items() if digest != before[table]]
    assert changed == ["workspaces_workspace"]
