"""Loopback stand-ins for an agent's A2A server, for the tests of what the console does when
an agent answers well, badly or not at all.

``echo`` answers with the built-in agent's own code (workspaces/agent/main.py ``a2a_reply``),
so a test sees exactly what a real agent would say; the others misbehave in one way each.
Each server records the bodies it was sent. Loopback only.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from workspaces.agent.main import a2a_reply


@dataclass
class AgentServer:
    url: str
    received: list[bytes] = field(default_factory=list)


@contextlib.contextmanager
def agent_server(behaviour: str = "echo", *, name: str = "Stand-in") -> Iterator[AgentServer]:
    """A server on 127.0.0.1 answering POST / as ``behaviour`` says: ``echo``, ``silent``
    (reads the request, never answers), ``huge`` (a 64 KiB JSON answer), ``not_json``,
    ``http_500``."""
    release = threading.Event()
    server_ref: list[AgentServer] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            server_ref[0].received.append(body)
            if behaviour == "silent":
                release.wait(30)
                return
            status, data = 200, b""
            if behaviour == "echo":
                data = json.dumps(a2a_reply(name, json.loads(body))).encode()
            elif behaviour == "huge":
                data = json.dumps({"jsonrpc": "2.0", "id": 1, "result": "x" * 65536}).encode()
            elif behaviour == "not_json":
                data = b"<html>not an agent</html>"
            elif behaviour == "http_500":
                status, data = 500, b'{"error": "boom"}'
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    server_ref.append(AgentServer(f"http://127.0.0.1:{httpd.server_address[1]}"))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server_ref[0]
    finally:
        release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
