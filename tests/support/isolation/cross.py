"""Requests to a URL of B's (the caller's own org) whose body names A's object (``CROSS``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.support.isolation.expect import Expect
from tests.support.isolation.request import Request
from tests.support.isolation.world import World

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
