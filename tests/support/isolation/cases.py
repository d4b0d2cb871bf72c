"""The cases: for every route the walk finds, one request per principal and what it must get.

What the route's rightful caller gets is in the tables (pages.py, api.py, admin.py,
cross.py); what everyone else gets is derived here from the route's class and, for the API,
from each handler's ``access``. A route the tables do not describe becomes a failing case
whose message names the table, and the file, to add it to.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from orgs import bearer
from tests.support.isolation import admin, api, pages
from tests.support.isolation.admin import ADMIN_ACTIONS, ADMIN_MODELS, ADMIN_SITE, AdminModel
from tests.support.isolation.api import API_CALLS, Call
from tests.support.isolation.cross import CROSS
from tests.support.isolation.expect import (
    CHALLENGE,
    NOT_FOUND_API,
    NOT_FOUND_PAGE,
    UNAUTHORIZED_AGENT,
    UNAUTHORIZED_API,
    UNAUTHORIZED_BYTES,
    Expect,
    login_redirect,
)
from tests.support.isolation.fill import FILL, OBJECT_KWARGS, VERBS
from tests.support.isolation.pages import AUTH_PAGES, PAGES, REGISTRY, Page
from tests.support.isolation.request import Request, get, post
from tests.support.isolation.walk import FILL_HERE, Route, walk
from tests.support.isolation.world import STAFF


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
ADMIN_PRINCIPALS = ("anonymous", "member", *STAFF)
AUTH_PRINCIPALS = ("anonymous", "owner")
REGISTRY_PRINCIPALS = ("anonymous", "owner", "org-token", "ws-token-b", "ws-token-a")


def uncovered(route: Route, table: str, why: str, where: str = pages.HERE) -> Case:
    return Case(
        id=f"{route.label}:uncovered",
        route=route,
        problem=(
            f"new endpoint {route.label} is not covered by the isolation suite: add it to "
            f"{table} in {where} ({why})"
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
        return [
            uncovered(
                route,
                "FILL",
                where=FILL_HERE,
                why=f"no value for the URL kwarg(s) {', '.join(missing)}",
            )
        ]
    if "verb" in route.kwargs and route.key not in VERBS:
        return [uncovered(route, "VERBS", where=FILL_HERE, why="which verb to put in its URL")]
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
            return [
                uncovered(
                    route,
                    "API_CALLS",
                    where=api.HERE,
                    why=f"what a valid org token gets for {method}",
                )
            ]
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
            return [uncovered(route, "ADMIN_SITE", where=admin.HERE, why="an admin site view")]
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
        return [uncovered(route, "ADMIN_MODELS", where=admin.HERE, why=f"the admin of {label}")]
    if action is None:
        return [uncovered(route, "ADMIN_ACTIONS", where=admin.HERE, why=f"an admin URL of {label}")]
    requests = [get()]
    if action == "changelist":
        requests.append(get("?q=acme"))  # a search for A's names
    form = {"add": model.add_post, "change": model.change_post}.get(action)
    if form is not None:
        requests.append(post(lambda w: {**form(w), "_save": "Save"}))
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
    posting = request.method == "POST"
    if model.scope == "global":  # the same for every staff member: view only
        return Expect(200) if action in ("changelist", "change", "history") else Expect(403)
    sees = principal in ("staff-a", "staff-viewer")  # members of A
    acts = principal == "staff-a"  # A's owner
    if action == "changelist":
        return Expect(200, present=model.markers) if sees else Expect(200, leak_free=True)
    if action == "add":
        if not model.add or (model.add_needs_acting and principal == "staff-viewer"):
            return Expect(403)
        if posting:
            # Into org A: only A's owner may. The others' form does not offer org A: refused.
            return Expect(model.add_status, changes=True) if acts else Expect(200)
        return Expect(200) if sees else Expect(200, leak_free=True)
    if action == "delete" and not model.delete:
        return Expect(403)  # for every object, existing or not
    if not sees:
        # Outside get_queryset: Django's admin redirects to its index ("doesn't exist").
        return Expect(302, location="{admin}")
    if action == "change":
        if posting:
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
