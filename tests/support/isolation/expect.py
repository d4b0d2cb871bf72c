"""What an answer must be (``Expect``), and the answers many routes share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orgs import bearer

UNAUTHORIZED_API = {"error": bearer.UNAUTHORIZED}
UNAUTHORIZED_AGENT = {"error": "invalid workspace credentials"}
NOT_FOUND_API = {"error": "Not found."}
# Byte for byte what a request with no credentials gets: every bad token must get exactly this.
UNAUTHORIZED_BYTES = b'{"error": "' + bearer.UNAUTHORIZED.encode() + b'"}'
CHALLENGE = ("WWW-Authenticate", 'Bearer realm="molecule"')
LOGIN = "/accounts/login/?next={path}"


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
