"""Browser-test harness: Debian's Chromium, driven by Playwright, against the live server.

- ``browser`` (session): one headless Chromium for the whole run.
- ``context`` / ``page`` (per test): a fresh profile whose base URL is the live server, so tests
  write ``page.goto("/")``. The browser may talk to the live server only: a request to any other
  host is aborted and fails the test, as does an uncaught JavaScript error.
- ``log_in`` / ``logged_in_page``: a user logged in through the real login form.
- ``held_registry``: the agents' calls to the registry held back until the test lets them
  through, so a test can look at a workspace while it is still provisioning.

Browser tests need ``@pytest.mark.browser`` and ``@pytest.mark.django_db(transaction=True)``: the
live server and the agent processes only see committed rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Browser, BrowserContext, Error, Page, Playwright, sync_playwright

from tests.support.browser import (
    ACTION_TIMEOUT_MS,
    CHROMIUM,
    CHROMIUM_ARGS,
    LogIn,
    RegistryGate,
    is_local,
    log_in,
)

# --- the browser --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    # Playwright's sync API keeps an asyncio event loop running in this thread, and Django then
    # refuses ORM calls from it as "async context". Tests and fixtures here use the ORM between
    # browser steps on purpose (set-up rows, assertions), never from a coroutine, so allow it for
    # as long as the loop runs.
    with pytest.MonkeyPatch.context() as env, sync_playwright() as driver:
        env.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium); browser tests need it")
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
    )
    yield browser
    browser.close()


@pytest.fixture
def context(browser: Browser, live_server: Any) -> Iterator[BrowserContext]:
    """A fresh profile (no cookies, no storage) pointed at the live server."""
    context = browser.new_context(base_url=live_server.url)
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    foreign: list[str] = []

    def refuse(route: Any) -> None:
        foreign.append(route.request.url)
        route.abort("blockedbyclient")

    # A page that reaches for a CDN or any other host would work here only by luck; refuse it.
    context.route(lambda url: not is_local(url), refuse)
    yield context
    context.close()
    if foreign:
        pytest.fail(f"the browser tried to reach hosts other than the live server: {foreign}")


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    page = context.new_page()
    errors: list[Error] = []
    # A plain function: Playwright cannot wrap a builtin like ``errors.append``.
    page.on("pageerror", lambda error: errors.append(error))
    yield page
    if errors:
        pytest.fail(f"uncaught JavaScript errors on the page: {[str(e) for e in errors]}")


# --- logging in ---------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _fast_passwords(settings: Any) -> None:
    # Users are created and logged in every test; the default hasher is slow on purpose.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(name="log_in")
def log_in_fixture(page: Page) -> LogIn:
    """``log_in(user, password=None)``: this test's page, logged in as ``user``."""

    def log_in_as(user: User, password: str | None = None) -> Page:
        return log_in(page, user, password)

    return log_in_as


@pytest.fixture
def logged_in_page(log_in: LogIn, superuser: User) -> Page:
    """This test's page, logged in as the superuser (sees and acts on every org)."""
    return log_in(superuser)


# --- agents -------------------------------------------------------------------------------------


@pytest.fixture
def held_registry(local_fleet: Path, live_server: Any, settings: Any) -> Iterator[RegistryGate]:
    """The local fleet (tests/conftest.py), its agents reaching the console through a held gate."""
    with RegistryGate(live_server.url) as gate:
        # Read when an agent starts (dispatch._spec), so every agent started from now on uses it.
        settings.MOLECULE_REGISTRY_URL = gate.url
        yield gate
