"""The JSON API (``API_CALLS``): for each route and method, the call and what a valid org
token of A gets. What the other credentials get follows from each handler's ``access``
(api/http.py; tests/support/isolation/cases.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.support.isolation.expect import NOT_FOUND_API, Expect
from tests.support.isolation.world import World
from workspaces.dispatch.a2a import text_request

HERE = "tests/support/isolation/api.py"


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
    # A message to a workspace without an instance: through the access check, then refused.
    ("api-workspace-a2a", "POST"): Call(
        Expect(409, error_has="running instance"), body=lambda w: text_request("Hello")
    ),
    # Files of A's workspace (the recording backend's, in memory): a.md does not exist.
    ("api-workspace-files", "GET"): Call(Expect(200), query="?path="),
    ("api-workspace-file", "GET"): Call(Expect(404, error_has="a.md"), query="?path=a.md"),
    ("api-workspace-file", "PUT"): Call(
        Expect(200, changes=True), body=lambda w: "hello", query="?path=a.md"
    ),
    ("api-workspace-file", "DELETE"): Call(Expect(404, error_has="a.md"), query="?path=a.md"),
    ("api-workspace-file-download", "GET"): Call(Expect(404, error_has="a.md"), query="?path=a.md"),
    ("api-workspace-file-rename", "POST"): Call(
        Expect(404, error_has="a.md"), body=lambda w: {"path": "a.md", "to": "b.md"}
    ),
    # Plugins of A's workspace: none installed; parity-probe is in the shipped catalogue.
    ("api-workspace-plugins", "GET"): Call(Expect(200)),
    ("api-workspace-plugins", "POST"): Call(
        Expect(201, changes=True), body=lambda w: {"name": "parity-probe"}
    ),
    ("api-workspace-plugin", "DELETE"): Call(Expect(404, error_has="not installed")),
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
