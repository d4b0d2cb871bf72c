"""What the tests share: helpers, fakes, real servers and fixture plugins, in one place.

Test modules import from here and never from each other or from a conftest; conftest.py files
hold fixtures only (tests/test_suite_layout.py checks both).

- ``users``: members of an org, as the ``owner``/``viewer``/``outsider`` fixtures make them.
- ``rows``: a workspace's state and events, fresh from the database; the ``make_workspace`` type.
- ``waiting``: ``wait_for``, polling until a condition holds.
- ``fakes``: the recording backends (the ``recording`` fixture).
- ``keys``: API tokens, partner keys and a JSON client for /api/v1/.
- ``services``: real PostgreSQL and Redis servers on loopback, and free ports.
- ``procs``: processes seen through /proc (agents, sidecars), and killing them.
- ``agents``: an ``InstanceSpec`` for backend-level tests, and an agent's /health.
- ``cpdouble``: talking to the control-plane double; ``cpdouble_fixtures`` runs it (a plugin).
- ``engine``: the test container engine; ``engine_fixtures`` provides it (a plugin).
- ``harness``: each backend seen from outside, for the contract tests.
- ``browser``: Chromium, logging in and the held registry, for the browser tests.
- ``org_pages``: org files, a logged-in client and the org pages' URLs (the org page tests).
- ``isolation``: the isolation suite's machinery (tests/test_isolation.py).

The fixture plugins are loaded with ``pytest_plugins = ["tests.support.engine_fixtures"]`` (or
``cpdouble_fixtures``) by the test modules that need them, and imported by nobody else.
"""
