"""What a case sends (``Request``), and shorthands for the tables: ``get``, ``partial``,
``post``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.support.isolation.world import World


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


def get(query: str = "", *, htmx: bool = False) -> Request:
    """A GET; ``query`` may name ``{ws_a}``, A's workspace."""
    return Request("GET", query, htmx=htmx)


def partial(name: str) -> Request:
    return Request("GET", f"?partial={name}", htmx=True)


def post(form: Callable[[World], dict[str, Any]] | None = None, *, htmx: bool = False) -> Request:
    return Request("POST", htmx=htmx, form=form or (lambda w: {}))
