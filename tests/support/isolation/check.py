"""The check: send one case's request as its principal, then assert the status, the Location,
the body, whose data the answer shows, and that a refused request changed nothing.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

from django.conf import settings
from django.http import HttpResponse
from django.test import Client

from tests.support.isolation.cases import Case
from tests.support.isolation.fill import FILL
from tests.support.isolation.request import Request
from tests.support.isolation.walk import url_for
from tests.support.isolation.world import SNAPSHOT, World, snapshot


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
