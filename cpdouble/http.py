"""The control-plane double's HTTP face: routes each request of the contract to the double.

docs/controlplane-api.md is the contract; cpdouble/server.py holds the VMs and what each
endpoint does to them.
"""

from __future__ import annotations

import hmac
import json
import sys
import time
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from cpdouble import files
from cpdouble.errors import MAX_BODY, RequestError

if TYPE_CHECKING:
    from cpdouble.server import ControlPlaneDouble


class DoubleServer(ThreadingHTTPServer):
    double: ControlPlaneDouble

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (a timeout test) leaves a broken pipe behind: not worth a trace.
        self.double.log(f"connection from {client_address[0]} broke: {sys.exc_info()[1]}")


def make_handler(double: ControlPlaneDouble) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, for the client's connection pool
        server_version = "cp-double/1"

        def _send(self, status: int, data: bytes, content_type: str) -> None:
            # Logged before answering, so a client that has its answer finds it logged.
            with double.lock:
                double.requests.append((self.command, urlsplit(self.path).path, status))
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            if status == 401:
                self.send_header("WWW-Authenticate", 'Bearer realm="control-plane"')
            self.end_headers()
            self.wfile.write(data)

        def _json(self, status: int, body: Any) -> None:
            self._send(status, json.dumps(body).encode(), "application/json")

        def _body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                raise RequestError(413, f"body larger than {MAX_BODY} bytes")
            try:
                data = json.loads(self.rfile.read(length) or b"{}")
            except ValueError as error:
                raise RequestError(400, f"body is not JSON: {error}") from error
            if not isinstance(data, dict):
                raise RequestError(400, "body must be a JSON object")
            return data

        def _raw(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            if length > files.MAX_FILE:
                raise RequestError(413, f"body larger than {files.MAX_FILE} bytes")
            return self.rfile.read(length)

        def _files(
            self,
            method: str,
            parts: list[str],
            query: dict[str, str],
            body: dict[str, Any],
            raw: bytes,
        ) -> None:
            if len(parts) != 3:
                raise RequestError(404, f"no route for {method} {self.path}")
            workspace_id, root, op = parts
            base = double.files_base(workspace_id, root)
            match method, op:
                case "GET", "list":
                    path = files.checked(query.get("path", ""), empty_ok=True)
                    self._json(200, files.listing(base, path))
                case "GET", "content":
                    try:
                        cap = int(query.get("max", str(files.MAX_FILE)))
                    except ValueError as error:
                        raise RequestError(400, "max must be a whole number") from error
                    data = files.read(base, files.checked(query.get("path")), cap)
                    self._send(200, data, "application/octet-stream")
                case "PUT", "content":
                    files.write(base, files.checked(query.get("path")), raw)
                    self._json(200, {"size": len(raw)})
                case "DELETE", "content":
                    files.delete(base, files.checked(query.get("path")))
                    self._json(200, {"deleted": query.get("path")})
                case "POST", "rename":
                    path, to = files.checked(body.get("path")), files.checked(body.get("to"))
                    files.rename(base, path, to)
                    self._json(200, {"renamed": path, "to": to})
                case _:
                    raise RequestError(404, f"no route for {method} {self.path}")

        def _authorized(self) -> bool:
            header = self.headers.get("Authorization", "")
            given = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
            return hmac.compare_digest(given.encode(), double.token.encode())

        def _handle(self) -> None:
            url = urlsplit(self.path)
            parts = [unquote(p) for p in url.path.strip("/").split("/")]
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            try:
                # Read the body first so an early answer never leaves it unread on the socket.
                body = self._body() if self.command == "POST" else {}
                raw = self._raw() if self.command == "PUT" else b""
                if not self._authorized():
                    raise RequestError(401, "invalid bearer token")
                if parts[0] == "cp":
                    if double.faults.stall:
                        time.sleep(double.faults.stall)
                    with double.lock:
                        injected = double.faults.fail_next > 0
                        if injected:
                            double.faults.fail_next -= 1
                    if injected:
                        raise RequestError(500, "injected fault: the control plane is failing")
                if parts[:2] == ["cp", "files"]:
                    self._files(self.command, parts[2:], query, body, raw)
                else:
                    self._route(self.command, parts, query, body)
            except RequestError as error:
                kind = {"kind": error.kind} if isinstance(error, files.Conflict) else {}
                self._json(error.status, {"error": error.message, **kind})

        def _route(
            self, method: str, parts: list[str], query: dict[str, str], body: dict[str, Any]
        ) -> None:
            match method, parts:
                case "GET", ["_faults"]:
                    self._json(200, asdict(double.faults))
                case "POST", ["_faults"]:
                    self._json(200, double.set_faults(**body))
                case "POST", ["cp", "workspaces", "provision"]:
                    key = self.headers.get("Idempotency-Key", "")
                    status, vm = double.provision(body, key)
                    self._json(status, vm.describe())
                case "GET", ["cp", "workspaces"]:
                    self._json(200, {"instances": double.instances(query.get("org"))})
                case "GET", ["cp", "workspaces", instance_id, "status"]:
                    self._json(200, double.get(instance_id).describe())
                case "GET", ["cp", "workspaces", instance_id, "console"]:
                    try:
                        tail = int(query.get("tail", "200"))
                    except ValueError as error:
                        raise RequestError(400, "tail must be a whole number") from error
                    text = double.console_text(instance_id, tail)
                    self._send(200, text.encode(), "text/plain; charset=utf-8")
                case "DELETE", ["cp", "workspaces", instance_id]:
                    double.delete(instance_id)
                    self._json(200, {"deleted": instance_id})
                case "GET", ["cp", "volumes", workspace_id]:
                    double.volume(workspace_id)
                    self._json(200, {"workspace_id": workspace_id})
                case "DELETE", ["cp", "volumes", workspace_id]:
                    double.delete_volume(workspace_id)
                    self._json(200, {"deleted": workspace_id})
                case _:
                    raise RequestError(404, f"no route for {method} {self.path}")

        do_GET = do_POST = do_DELETE = do_PUT = _handle

        def log_message(self, format: str, *args: Any) -> None:
            double.log(f"{self.address_string()} {format % args}")

    return Handler
