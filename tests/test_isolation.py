"""Org isolation across every URL: pages, htmx partials, the JSON API, the admin, the agents'
registry and Django's account pages, each called as every kind of caller.

The cases are generated from the URL configuration (tests/support/isolation/ walks it): a route
the suite does not know fails with a message naming it, so a new endpoint cannot escape. The world
(two orgs, their members, tokens and keys) is built once for the module inside a transaction
that is rolled back at the end; each case runs in its own savepoint, so whatever one request
changes is gone before the next.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.admin import AdminSite
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path

import molecule.urls as molecule_urls
from api.http import endpoint, ok, route
from orgs import api_tokens, bearer
from orgs.access import check_visible, check_write, org_for
from orgs.models import Org, OrgApiToken
from tests.support import isolation
from tests.support.isolation import Call, Case, Expect, Page, Request, Route, World
from workspaces import secret_views
from workspaces.models import EventType, StructureEvent, Workspace

pytestmark = pytest.mark.django_db

# Known access bugs: what is wrong -> its case ids, marked xfail(strict=True) until fixed; a fix
# turns its cases into XPASS, which fails the run until the entry is removed. None are open: the
# admin holes this suite found first (orgs/admin.py) are fixed and covered by its cases.
BUGS: dict[str, list[str]] = {}
KNOWN_BUGS = {case: reason for reason, cases in BUGS.items() for case in cases}


def _params() -> list[Any]:
    params = []
    for case in isolation.all_cases():
        marks = []
        if reason := KNOWN_BUGS.get(case.id):
            marks.append(pytest.mark.xfail(strict=True, reason=reason, raises=AssertionError))
        params.append(pytest.param(case, id=case.id, marks=marks))
    return params


@pytest.fixture(scope="module")
def world(django_db_setup: None, django_db_blocker: Any) -> Iterator[World]:
    """The world, once for the module; rolled back when the module is done."""
    with django_db_blocker.unblock(), transaction.atomic():
        yield isolation.build_world()
        transaction.set_rollback(True)


@pytest.fixture(autouse=True)
def _no_real_agents(recording: dict[str, Any]) -> None:
    """Every request here runs on the recording backends; none starts a real agent."""


@pytest.mark.parametrize("case", _params())
def test_isolation(case: Case, world: World) -> None:
    isolation.check(case, world)


def test_every_route_is_covered() -> None:
    assert isolation.problems() == []


def test_case_ids_are_unique_and_known_bugs_name_real_cases() -> None:
    ids = [case.id for case in isolation.all_cases()]
    assert len(ids) == len(set(ids))
    assert set(KNOWN_BUGS) <= set(ids)


# --- the suite catches what it is for ----------------------------------------------------------
# Each test below plants a defect (a route in a URL configuration that extends the real one, or
# an access check monkeypatched away) and shows the suite reports it.


@login_required
def _org_page_without_access_check(request: HttpRequest, slug: str) -> HttpResponse:
    org = get_object_or_404(Org, slug=slug)  # forgets org_for(request.user, slug)
    return HttpResponse(org.name)


def _org_page_without_login(request: HttpRequest, slug: str) -> HttpResponse:
    org = org_for(request.user, slug)  # forgets @login_required
    return HttpResponse(org.name)


@login_required
def _page_that_writes_before_refusing(request: HttpRequest, slug: str) -> HttpResponse:
    org = org_for(request.user, slug)
    StructureEvent.objects.create(event_type=EventType.ORG_CREATED, org=org, actor="planted")
    check_write(request.user, org.pk)  # refuses the viewer, too late
    return HttpResponse(org.name)


@endpoint()
def _api_org_without_reach(request: HttpRequest, principal: Any, slug: str) -> HttpResponse:
    return ok({"slug": get_object_or_404(Org, slug=slug).slug})  # forgets org_in_reach


# An admin site whose Workspace admin forgets to filter get_queryset by the user's orgs.
leaky_admin = AdminSite(name="leaky")
leaky_admin.register(Workspace)

PAGE = "org-export"
PLANTED_PAGE = path("orgs/<slug:slug>/export/", _org_page_without_access_check, name=PAGE)


@pytest.fixture
def plant(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Callable[..., dict[str, Route]]:
    """Serve the real URLs plus ``patterns``; returns every route of that configuration."""

    def plant(*patterns: Any) -> dict[str, Route]:
        module = types.ModuleType("tests.planted_urls")
        module.urlpatterns = [*patterns, *molecule_urls.urlpatterns]  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, module.__name__, module)
        settings.ROOT_URLCONF = module.__name__
        return {route.name or route.pattern: route for route in isolation.walk()}

    return plant


def _cases(route: Route) -> dict[str, Case]:
    return {case.principal: case for case in isolation.cases_for(route)}


def test_a_new_endpoint_fails_until_the_suite_knows_it(plant: Any, world: World) -> None:
    routes = plant(PLANTED_PAGE)
    assert isolation.problems() == [
        "new endpoint orgs/<slug:slug>/export/ (org-export) is not covered by the isolation "
        "suite: add it to PAGES (a console page), AUTH_PAGES or REGISTRY in "
        "tests/support/isolation/pages.py (the suite cannot tell who may call it)"
    ]
    [case] = isolation.cases_for(routes[PAGE])
    with pytest.raises(AssertionError, match="new endpoint orgs/<slug:slug>/export/"):
        isolation.check(case, world)


def test_a_url_kwarg_the_suite_cannot_fill_fails(plant: Any) -> None:
    plant(path("orgs/<slug:slug>/reports/<int:report_id>/", _org_page_without_access_check))
    assert isolation.problems() == [
        "new endpoint orgs/<slug:slug>/reports/<int:report_id>/ is not covered by the isolation "
        "suite: add it to FILL in tests/support/isolation/fill.py (no value for the URL kwarg(s) "
        "report_id)"
    ]


def test_a_page_that_forgets_its_access_check_fails_for_the_outsider(
    plant: Any, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    routes = plant(PLANTED_PAGE)
    monkeypatch.setitem(isolation.PAGES, PAGE, [Page(Request(), Expect(200, present=("org",)))])
    cases = _cases(routes[PAGE])
    for principal in ("owner", "viewer", "anonymous"):
        isolation.check(cases[principal], world)
    with pytest.raises(AssertionError, match="expected 404, got 200"):
        isolation.check(cases["outsider"], world)


def test_a_page_that_forgets_login_required_fails_for_the_anonymous(
    plant: Any, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    routes = plant(path("orgs/<slug:slug>/export/", _org_page_without_login, name=PAGE))
    monkeypatch.setitem(isolation.PAGES, PAGE, [Page(Request(), Expect(200, present=("org",)))])
    cases = _cases(routes[PAGE])
    for principal in ("owner", "viewer", "outsider"):
        isolation.check(cases[principal], world)
    with pytest.raises(AssertionError, match="expected 302, got 404"):
        isolation.check(cases["anonymous"], world)


def test_a_refusal_after_a_write_is_caught_by_the_snapshot(
    plant: Any, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    routes = plant(path("orgs/<slug:slug>/export/", _page_that_writes_before_refusing, name=PAGE))
    write = Page(Request("POST", form=lambda w: {}), Expect(200, changes=True), write=True)
    monkeypatch.setitem(isolation.PAGES, PAGE, [write])
    cases = _cases(routes[PAGE])
    isolation.check(cases["owner"], world)
    with pytest.raises(AssertionError, match="changed something: events"):
        isolation.check(cases["viewer"], world)


def test_a_view_that_lets_the_viewer_act_fails(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    [case] = [c for c in isolation.all_cases() if c.id == "workspace-secret-set:POST:viewer"]
    isolation.check(case, world)
    monkeypatch.setattr(secret_views, "check_write", check_visible)
    with pytest.raises(AssertionError, match="expected 403, got 302"):
        isolation.check(case, world)


def test_an_api_handler_that_ignores_reach_fails_for_another_orgs_token(
    plant: Any, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = "api-org-export"
    routes = plant(
        path("api/v1/orgs/<slug:slug>/export", route(GET=_api_org_without_reach), name=name)
    )
    with pytest.raises(AssertionError, match="add it to API_CALLS"):
        isolation.check(isolation.cases_for(routes[name])[0], world)
    monkeypatch.setitem(isolation.API_CALLS, (name, "GET"), Call(Expect(200, present=("slug",))))
    cases = {case.id: case for case in isolation.cases_for(routes[name])}
    isolation.check(cases[f"{name}:GET:token-a"], world)
    isolation.check(cases[f"{name}:GET:anonymous"], world)
    with pytest.raises(AssertionError, match="expected 404, got 200"):
        isolation.check(cases[f"{name}:GET:token-b"], world)


def test_a_revoked_token_told_apart_from_no_token_fails(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    cases = {c.id: c for c in isolation.all_cases() if c.id.startswith("api-org:GET:")}
    real = bearer.authenticate

    def telling(header: str) -> Any:
        plaintext = bearer.bearer_of(header)
        if OrgApiToken.objects.filter(
            token_hash=api_tokens.hash_token(plaintext), revoked_at__isnull=False
        ).exists():
            raise bearer.Unauthorized("this token was revoked")
        return real(header)

    monkeypatch.setattr(bearer, "authenticate", telling)
    isolation.check(cases["api-org:GET:anonymous"], world)
    with pytest.raises(AssertionError, match="this token was revoked"):
        isolation.check(cases["api-org:GET:revoked-token"], world)


def test_an_admin_that_forgets_to_scope_its_rows_fails_for_another_orgs_staff(
    plant: Any, world: World
) -> None:
    routes = plant(path("leaky-admin/", leaky_admin.urls))
    cases = _cases(routes["leaky:workspaces_workspace_changelist"])
    isolation.check(cases["staff-a"], world)
    isolation.check(cases["anonymous"], world)
    with pytest.raises(AssertionError, match="shows org A's"):
        isolation.check(cases["staff-b"], world)
