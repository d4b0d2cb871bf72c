"""The fleet dashboard and its polled partials, fetched through the web server as a browser
would: the superuser's session (who sees every workspace), with and without gzip."""

from __future__ import annotations

import html
import http.client
import re
import time
from dataclasses import dataclass
from typing import Any

# An element that polls: its hx-trigger says "every …", its hx-get says what it fetches.
_TAG = re.compile(r"<[^>]*\bhx-trigger=\"[^\"]*\bevery\b[^>]*>", re.S)
_GET = re.compile(r"\bhx-get=\"([^\"]*)\"")
WARM_UP_BELOW = 2.0  # seconds


@dataclass(frozen=True)
class Fetch:
    status: int
    bytes: int
    seconds: float
    etag: str
    body: bytes = b""


def fetch(
    host: str, port: int, path: str, *, session: str, gzip: bool, htmx: bool = False, etag: str = ""
) -> Fetch:
    headers = {"Cookie": f"sessionid={session}", "Host": "127.0.0.1"}
    if gzip:
        headers["Accept-Encoding"] = "gzip"
    if htmx:
        headers["HX-Request"] = "true"
    if etag:
        headers["If-None-Match"] = etag
    conn = http.client.HTTPConnection(host, port, timeout=300)
    started = time.perf_counter()
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read()
    except OSError as error:
        return Fetch(0, 0, time.perf_counter() - started, str(error))
    finally:
        conn.close()
    seconds = time.perf_counter() - started
    return Fetch(response.status, len(body), seconds, response.getheader("ETag") or "", body)


def polled_paths(page: str) -> list[str]:
    """What the dashboard polls, read from the page itself (``/`` as htmx if it names none)."""
    found = []
    for tag in _TAG.findall(page):
        if (get := _GET.search(tag)) and (path := html.unescape(get.group(1))) not in found:
            found.append(path)
    return found or ["/"]


def median_fetch(host: str, port: int, path: str, **how: Any) -> Fetch:
    """The median of three fetches (one alone is at the mercy of whatever else runs on the
    machine), or the one fetch when it took seconds."""
    fetches = [fetch(host, port, path, **how)]
    if fetches[0].seconds < WARM_UP_BELOW:
        fetches += [fetch(host, port, path, **how) for _ in range(2)]
    return sorted(fetches, key=lambda f: f.seconds)[len(fetches) // 2]


@dataclass(frozen=True)
class Dashboard:
    size: int
    page_plain: Fetch
    page_gzip: Fetch
    # Every polled partial: its first answer (gzip) and, sent again with its ETag, the next.
    polls: list[tuple[str, Fetch, Fetch]]

    @property
    def poll_bytes(self) -> int:
        return sum(first.bytes for _, first, _ in self.polls)

    @property
    def poll_seconds(self) -> float:
        return sum(first.seconds for _, first, _ in self.polls)

    @property
    def repoll_bytes(self) -> int:
        return sum(again.bytes for _, _, again in self.polls)

    @property
    def ok(self) -> bool:
        fetches = [self.page_plain, self.page_gzip, *(f for _, f, _ in self.polls)]
        return all(f.status == 200 for f in fetches)


def measure_dashboard(host: str, port: int, session: str, size: int) -> Dashboard:
    # Unmeasured fetches first, one per web worker roughly: a worker's first request compiles
    # the templates. Only one when the page is slow enough for that to be noise next to it.
    warm = fetch(host, port, "/", session=session, gzip=True)
    if warm.seconds < WARM_UP_BELOW:
        fetch(host, port, "/", session=session, gzip=True)
    plain = median_fetch(host, port, "/", session=session, gzip=False)
    gzip = median_fetch(host, port, "/", session=session, gzip=True)
    polls = []
    for path in polled_paths(plain.body.decode("utf-8", "replace")):
        first = median_fetch(host, port, path, session=session, gzip=True, htmx=True)
        again = fetch(host, port, path, session=session, gzip=True, htmx=True, etag=first.etag)
        polls.append((path, first, again))
    return Dashboard(size, plain, gzip, polls)
