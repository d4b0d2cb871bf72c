"""The browser tests' machinery: Debian's Chromium, logging in through the real form, a page
marker that shows whether htmx updated a page in place, and a registry that holds agents back.

The fixtures that use these are in tests/browser/conftest.py.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import httpx
import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page

from tests.support.users import password_of

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


# --- the browser -------------------------------------------------------------------------------


def is_local(url: str) -> bool:
    parts = urlsplit(url)
    # data:, blob: and about: URLs never leave the browser.
    return parts.scheme not in ("http", "https", "ws", "wss") or parts.hostname in LOCAL_HOSTS


# --- logging in --------------------------------------------------------------------------------


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


# --- pages htmx updates ------------------------------------------------------------------------


def mark_page(page: Page) -> None:
    # Survives htmx swaps, not a reload: checking it afterwards proves the page was not reloaded.
    page.evaluate("window.__marker = 1")


def still_marked(page: Page) -> bool:
    return page.evaluate("window.__marker") == 1


# --- agents ------------------------------------------------------------------------------------


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
