"""Forwarding one A2A JSON-RPC request to an agent, for :meth:`Backend.send_a2a`.

The console does what Molecule's A2A proxy does (``POST /workspaces/:id/a2a`` there): it posts
the JSON-RPC body to the agent's URL itself, ``Content-Type: application/json``, and hands back
the agent's answer. Bounded both ways: a connect timeout, a deadline for the whole answer (a
per-read timeout alone lets an agent that dribbles a byte a second hold the console forever),
and a cap on the answer's size, read in chunks so a huge answer is never held whole.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from workspaces.backends.base import BackendError

# One client per process: building one loads the CA bundle (about 90 ms here), which would
# otherwise be most of every exchange's time. httpx's client is safe to share across threads;
# timeouts are given per request.
_client: httpx.Client | None = None
_client_lock = threading.Lock()


def _shared_client() -> httpx.Client:
    global _client
    with _client_lock:
        if _client is None:
            _client = httpx.Client(follow_redirects=False, trust_env=False)
        return _client


@dataclass(frozen=True)
class A2AReply:
    """The agent's HTTP answer: its status and body (at most the cap's bytes)."""

    status: int
    body: bytes
    content_type: str = ""


class A2AFailed(BackendError):
    """The agent could not be asked or did not answer. ``timeout``: it did not answer in time
    (the API's 504); otherwise it was unreachable or its answer unusable (502)."""

    def __init__(self, message: str, *, timeout: bool = False) -> None:
        super().__init__(message, permanent=False)
        self.timeout = timeout


def post_json_rpc(
    url: str, body: bytes, *, connect_timeout: float, timeout: float, max_answer: int
) -> A2AReply:
    """POST ``body`` to ``url`` and read the answer within ``timeout`` seconds in all."""
    if urlsplit(url).scheme not in ("http", "https"):
        raise A2AFailed(f"The agent's URL {url!r} is not an http(s) URL.")
    deadline = time.monotonic() + timeout
    limits = httpx.Timeout(timeout, connect=min(connect_timeout, timeout))
    try:
        with _shared_client().stream(
            "POST",
            url,
            content=body,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
            timeout=limits,
        ) as response:
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > max_answer:
                    raise A2AFailed(f"The agent's answer is larger than {max_answer} bytes.")
                if time.monotonic() > deadline:
                    raise A2AFailed(f"The agent did not answer within {timeout:g} s.", timeout=True)
                chunks.append(chunk)
            return A2AReply(
                response.status_code, b"".join(chunks), response.headers.get("content-type", "")
            )
    except httpx.ConnectTimeout:
        raise A2AFailed(
            f"The agent at {url} did not accept a connection within {connect_timeout:g} s."
        ) from None
    except httpx.TimeoutException:
        raise A2AFailed(f"The agent did not answer within {timeout:g} s.", timeout=True) from None
    except httpx.ConnectError as error:
        raise A2AFailed(f"Cannot reach the agent at {url}: {error}.") from None
    except httpx.HTTPError as error:
        raise A2AFailed(f"The exchange with the agent at {url} broke: {error}.") from None
