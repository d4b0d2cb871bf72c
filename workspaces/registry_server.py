"""A short-lived in-process web server for agents to register with during a parity check.

``manage.py parity --check`` runs on its own, often with no console web server up, yet the
scenarios need agents that really register and heartbeat. This serves the console's own WSGI
application on a free port for the length of the check. It listens on loopback, or on every
address when containers must reach it through their network's gateway (the docker backend maps
the loopback registry URL to that gateway); it is never a request to anywhere else.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from django.core.servers.basehttp import (
    ThreadedWSGIServer,
    WSGIRequestHandler,
    get_internal_wsgi_application,
)


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass  # heartbeats every half second would bury the check's own output


@contextlib.contextmanager
def serving(*, host: str = "127.0.0.1") -> Iterator[int]:
    """Serve the console on ``host`` and a free port; yields the port."""
    server = ThreadedWSGIServer((host, 0), QuietHandler, allow_reuse_address=False)
    server.daemon_threads = True
    server.set_app(get_internal_wsgi_application())
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True
    )
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
