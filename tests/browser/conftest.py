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

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Browser, BrowserContext, Error, Page, Playwright, sync_playwright

CHROMIUM = "/usr/bin/chromium"
# Playwright cannot download its own browsers here; these flags keep Debian's Chromium headless
# and quiet, with no traffic of its own (updates, sync, QUIC probes) beside the test's.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]", "::1"})
# Long enough for a busy machine, short enough that a broken page fails fast; tests pass longer
# timeouts where they wait for an agent.
ACTION_TIMEOUT_MS = 10_000

LogIn = Callable[..., Page]


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


def is_local(url: str) -> bool:
    parts = urlsplit(url)
    # data:, blob: and about: URLs never leave the browser.
    return parts.scheme not in ("http", "https", "ws", "wss") or parts.hostname in LOCAL_HOSTS


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


def password_of(user: User) -> str:
    """The password tests/conftest.py gives every user it makes ("pw-" + username)."""
    return f"pw-{user.get_username()}"


def log_in(page: Page, user: User, password: str | None = None) -> Page:
    """Log ``user`` in through the login form; fails with the page's reason if it refuses."""
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(user.get_username())
    page.get_by_label("Password").fill(password or password_of(user))
    with page.expect_navigation():
        page.get_by_role("button", name="Log in", exact=True).click()
    if refused := page.locator("main .msg-error").all_inner_texts():
        pytest.fail(f"login as {user.get_username()!r} refused: {refused}")
    # The header names whoever is logged in; it is absent for anonymous visitors.
    assert page.locator("form.logout span").inner_text() == user.get_username()
    return page


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


class RegistryGate:
    """A registry URL for agents that answers 503 until released, then forwards to the console.

    The agents retry a 503 every heartbeat interval, so a workspace stays provisioning (and an
    online one stops reporting) while the gate is held, and registers within one interval of
    ``release()``.
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.released = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def release(self) -> None:
        self.released.set()

    def hold(self) -> None:
        self.released.clear()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        gate = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if not gate.released.is_set():
                    self.reply(503, json.dumps({"error": "registry held by the test"}).encode())
                    return
                headers = {
                    name: self.headers[name]
                    for name in ("Authorization", "Content-Type")
                    if name in self.headers
                }
                answer = httpx.post(
                    gate.upstream + self.path,
                    content=body,
                    headers=headers,
                    timeout=10,
                    trust_env=False,
                )
                self.reply(answer.status_code, answer.content)

            def reply(self, status: int, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass  # the agents retry twice a second; pytest's output is not the place

        return Handler

    def __enter__(self) -> RegistryGate:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def held_registry(local_fleet: Path, live_server: Any, settings: Any) -> Iterator[RegistryGate]:
    """The local fleet (tests/conftest.py), its agents reaching the console through a held gate."""
    with RegistryGate(live_server.url) as gate:
        # Read when an agent starts (dispatch._spec), so every agent started from now on uses it.
        settings.MOLECULE_REGISTRY_URL = gate.url
        yield gate
