"""The isolation suite's machinery (tests/test_isolation.py): every URL of the console, what to
put in it, and what each kind of caller must get back.

- **The walk** (walk.py): every pattern of the URL configuration, the admin's included, as a
  ``Route``.
- **The world** (world.py): the two orgs, their members, tokens and keys every case runs in.
- **The tables**: how to fill each URL kwarg (``FILL``, fill.py); for each route what a request
  looks like (request.py) and what its rightful caller gets (expect.py): ``PAGES``,
  ``AUTH_PAGES`` and ``REGISTRY`` (pages.py), ``API_CALLS`` (api.py), ``ADMIN_SITE`` and
  ``ADMIN_MODELS`` (admin.py), and requests that name another org's object (``CROSS``,
  cross.py).
- **The cases** (cases.py): what everyone else gets, derived from the route's class and, for
  the API, from each handler's ``access`` (api/http.py).
- **The check** (check.py): send one case's request as its principal; assert the status, the
  Location, the body, whose data the answer shows, and that a refused request changed nothing.

A route the tables do not describe is not skipped: it becomes a failing case whose message says
which table to add it to, so a new endpoint cannot escape the suite.

The world (``build_world``) is two orgs: A ("acme-canary", the one every URL points into) and
B ("globex-canary", the outsider's). Every name in A carries a marker; an answer to a caller
outside A must contain none of them, and the same answer to A's owner must contain some, so the
leak check is shown to be able to fail.
"""

from tests.support.isolation.api import API_CALLS, Call
from tests.support.isolation.cases import Case, all_cases, cases_for, problems
from tests.support.isolation.check import check
from tests.support.isolation.expect import Expect
from tests.support.isolation.pages import PAGES, Page
from tests.support.isolation.request import Request
from tests.support.isolation.walk import Route, walk
from tests.support.isolation.world import World, build_world

__all__ = [
    "API_CALLS",
    "PAGES",
    "Call",
    "Case",
    "Expect",
    "Page",
    "Request",
    "Route",
    "World",
    "all_cases",
    "build_world",
    "cases_for",
    "check",
    "problems",
    "walk",
]
