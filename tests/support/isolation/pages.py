"""The console's own pages (``PAGES``), Django's account pages (``AUTH_PAGES``) and the
agents' registry (``REGISTRY``): for each route, what a request looks like and what its
rightful caller gets. What everyone else gets follows from the ``Page``'s scope
(tests/support/isolation/cases.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile

from tests.support.isolation.expect import Expect
from tests.support.isolation.request import Request, get, partial, post
from tests.support.isolation.world import World

HERE = "tests/support/isolation/pages.py"


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


POST_ONLY = Page(get(), Expect(405), scope="post-only")


def upload() -> SimpleUploadedFile:
    return SimpleUploadedFile("a.md", b"hello", content_type="text/markdown")


SHOWN = Expect(200, present=("workspace",))

PAGES: dict[str, list[Page]] = {
    "dashboard": [
        Page(get(), SHOWN, scope="fleet"),
        Page(get(htmx=True), SHOWN, scope="fleet"),
        Page(get("?org=acme-canary"), SHOWN, scope="fleet"),
    ],
    "workspace-create": [
        POST_ONLY,
        Page(
            post(lambda w: {"org": w.org_a.slug, "name": "Made", "tier": 2, "runtime": "hermes"}),
            Expect(302, location="/workspaces/", location_prefix=True, changes=True),
            scope="fleet",
            # Like every write: a viewer's own org is 403, another org's slug 404.
            viewer=Expect(403),
            outsider=Expect(404),
        ),
    ],
    "parity": [
        Page(get(), Expect(200), scope="fleet"),
        Page(get(htmx=True), Expect(200), scope="fleet"),
    ],
    "parity-run": [POST_ONLY, Page(post(), Expect(403), scope="superuser")],
    "workspace": [
        Page(get(), Expect(200, present=("workspace", "secret"))),
        *[
            Page(partial(part), Expect(200, present=present))
            for part, present in [("state", ("workspace",)), ("events", ()), ("console", ())]
        ],
    ],
    "workspace-edit": [
        Page(get(), Expect(200, present=("workspace",)), write=True),
        Page(
            post(
                lambda w: {
                    "name": w.ws_a.name,
                    "role": "Edited role",
                    "tier": w.ws_a.tier,
                    "runtime": w.ws_a.runtime,
                    "workspace_dir": "",
                }
            ),
            Expect(302, location="/workspaces/{ws_a}/", changes=True),
            write=True,
        ),
    ],
    "workspace-secret-set": [
        POST_ONLY,
        Page(
            post(lambda w: {"key": "ANOTHER_KEY", "value": "v"}),
            Expect(302, location="/workspaces/{ws_a}/#secrets", changes=True),
            write=True,
        ),
    ],
    "workspace-secret-delete": [
        Page(get(), Expect(200, present=("secret",)), write=True),
        Page(post(), Expect(302, location="/workspaces/{ws_a}/#secrets", changes=True), write=True),
    ],
    # ws_a has no instance: through the access check, then refused by dispatch (nothing sent).
    "workspace-message": [
        POST_ONLY,
        Page(
            post(lambda w: {"text": "Hello"}),
            Expect(302, location="/workspaces/{ws_a}/#a2a"),
            write=True,
        ),
        Page(
            post(lambda w: {"text": "Hello"}, htmx=True),
            Expect(409, present=("workspace",)),
            write=True,
        ),
    ],
    # Files of A's workspace (the recording backend's, in memory): a.md and folder a do not
    # exist, so reads and changes of them are refused with the reason and change nothing.
    "workspace-files": [
        Page(get("?root=configs"), Expect(200, present=("workspace",))),
        Page(get("?root=workspace&path=a", htmx=True), Expect(409, present=("workspace",))),
    ],
    "workspace-file": [
        # A file that does not exist opens as a new one.
        Page(get("?root=configs&path=a.md"), Expect(200, present=("workspace",))),
        Page(get("?root=configs&path=a.md", htmx=True), Expect(200, present=("workspace",))),
        Page(
            post(lambda w: {"root": "configs", "path": "a.md", "text": "hello"}),
            Expect(
                302, location="/workspaces/{ws_a}/files/file/?root=configs&path=a.md", changes=True
            ),
            write=True,
        ),
        Page(
            post(lambda w: {"root": "configs", "path": "a.md", "text": "hello"}, htmx=True),
            Expect(200, present=("workspace",), changes=True),
            write=True,
        ),
    ],
    "workspace-file-upload": [
        POST_ONLY,
        Page(
            post(lambda w: {"root": "configs", "path": "", "file": upload()}),
            Expect(302, location="/workspaces/{ws_a}/files/?root=configs", changes=True),
            write=True,
        ),
    ],
    "workspace-file-rename": [
        POST_ONLY,
        Page(
            post(lambda w: {"root": "configs", "path": "a.md", "to": "b.md"}, htmx=True),
            Expect(409, present=("workspace",)),
            write=True,
        ),
    ],
    "workspace-file-delete": [
        Page(get("?root=configs&path=a.md"), Expect(200, present=("workspace",)), write=True),
        Page(
            post(lambda w: {"root": "configs", "path": "a.md"}),
            Expect(302, location="/workspaces/{ws_a}/files/?root=configs"),
            write=True,
        ),
    ],
    "workspace-file-download": [
        Page(get("?root=configs&path=a.md"), Expect(404, present=("workspace",))),
    ],
    # Plugins of A's workspace (files in the recording backend's memory): none installed.
    "workspace-plugins": [
        Page(get(), Expect(200, present=("workspace",))),
        Page(get(htmx=True), Expect(200, present=("workspace",))),
    ],
    "workspace-plugin-install": [
        POST_ONLY,
        Page(
            post(lambda w: {"name": "parity-probe"}, htmx=True),
            Expect(200, present=("workspace",), changes=True),
            write=True,
        ),
        Page(
            post(lambda w: {"name": "no-such-plugin"}),
            Expect(302, location="/workspaces/{ws_a}/plugins/"),
            write=True,
        ),
    ],
    "workspace-plugin-uninstall": [
        POST_ONLY,
        Page(
            post(lambda w: {"name": "parity-probe"}, htmx=True),
            Expect(409, present=("workspace",)),
            write=True,
        ),
    ],
    "workspace-verb": [
        Page(get(), Expect(200, present=("workspace",)), write=True),
        Page(post(), Expect(302, location="/workspaces/{ws_a}/"), write=True),
        Page(post(htmx=True), Expect(409, present=("workspace",)), write=True),
    ],
    "org-list": [Page(get(), Expect(200, present=("org",)), scope="fleet")],
    "org-import": [
        Page(
            get(),
            Expect(200, present=("slug",)),
            scope="fleet",
            # Importing needs an org one acts on: the viewer has none, the outsider has B.
            viewer=Expect(403),
        ),
        Page(get("?into=acme-canary"), Expect(200, present=("slug",)), "fleet", viewer=Expect(403)),
        Page(
            post(lambda w: {"text": "workspaces: [{name: Imported}]\n", "into": w.org_a.slug}),
            Expect(302, location="/orgs/acme-canary/imports/", location_prefix=True, changes=True),
            scope="fleet",
            viewer=Expect(403),
            outsider=Expect(400, leak_free=True),
        ),
    ],
    "org": [
        Page(get(), Expect(200, present=("org", "workspace"))),
        Page(partial("tree"), Expect(200, present=("workspace",))),
        Page(partial("table"), Expect(200, present=("workspace",))),
    ],
    "org-move": [
        POST_ONLY,
        # To the top level, where it already is: allowed, and changes nothing.
        Page(
            post(lambda w: {"workspace": str(w.ws_a.pk), "parent": ""}),
            Expect(302, location="/orgs/acme-canary/"),
            write=True,
        ),
    ],
    "org-import-progress": [
        Page(get(), Expect(200, present=("workspace",))),
        Page(get(htmx=True), Expect(200, present=("workspace",))),
    ],
    "team-verb": [
        Page(get(), Expect(200, present=("workspace",)), write=True),
        Page(post(), Expect(302, location="/orgs/acme-canary/"), write=True),
    ],
    "event-log": [
        Page(get(), Expect(200, present=("actor",)), scope="fleet"),
        Page(get(htmx=True), Expect(200, present=("actor",)), scope="fleet"),
        # Filters naming A's org or workspace: nothing of A for whoever is not in A.
        Page(get("?org=acme-canary"), Expect(200, present=("actor",)), scope="fleet"),
        Page(get("?workspace={ws_a}"), Expect(200, present=("actor",)), scope="fleet"),
    ],
    "tokens": [
        Page(get(), Expect(200, present=("token", "victim")), scope="fleet"),
        Page(get(htmx=True), Expect(200, present=("token",)), scope="fleet"),
        Page(get("?org=acme-canary"), Expect(200, present=("token",)), scope="fleet"),
    ],
    "token-mint": [
        POST_ONLY,
        Page(
            post(lambda w: {"org": w.org_a.slug, "name": "minted-here"}),
            Expect(201, changes=True),
            write=True,
        ),
    ],
    "token-revoke": [
        Page(get(), Expect(200, present=("victim",)), write=True),
        Page(post(), Expect(302, location="/tokens/", changes=True), write=True),
    ],
}


# Django's own account pages (and the favicon): ``public`` ones answer everyone, the others need
# a login.
AUTH_PAGES: dict[str, list[tuple[Request, bool, Expect]]] = {
    "login": [(get(), True, Expect(200))],
    "logout": [
        (get(), True, Expect(405)),
        (post(), True, Expect(302, location="/accounts/login/")),
    ],
    "password_change": [(get(), False, Expect(200))],
    "password_change_done": [(get(), False, Expect(200))],
    "password_reset": [(get(), True, Expect(200))],
    "password_reset_done": [(get(), True, Expect(200))],
    # A token that is not valid: the page says the link is invalid.
    "password_reset_confirm": [(get(), True, Expect(200))],
    "password_reset_complete": [(get(), True, Expect(200))],
    # Not an account page, but public like one: /favicon.ico redirects to the static icon.
    "favicon": [(get(), True, Expect(302, location="/static/favicon.svg"))],
    # Not a page either: a scraper's, behind MOLECULE_METRICS_TOKEN, which this world leaves
    # unset, so it is off for every caller, logged in or not. With a token set (and a session,
    # even a superuser's, that does not send it): tests/molecule/test_metrics.py.
    "metrics": [(get(), True, Expect(404))],
}

# The agents' endpoints: a workspace token of that very workspace, and nothing else.
REGISTRY: dict[str, Callable[[World], Any]] = {
    "registry-register": lambda w: {"workspace_id": str(w.ws_a.pk), "url": "http://x.invalid"},
    "registry-heartbeat": lambda w: {"workspace_id": str(w.ws_a.pk), "active_tasks": 3},
    "registry-update-card": lambda w: {
        "workspace_id": str(w.ws_a.pk),
        "agent_card": {"name": "Acme-Lead-canary", "skills": []},
    },
}
