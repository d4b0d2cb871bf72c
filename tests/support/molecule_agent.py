"""A stand-in for Molecule's workspace runtime, on the wire: the requests it sends, field for field.

Standard library only (it runs as a local process, in the docker agent image, in a control-plane
VM). It does what Molecule's runtime (``molecule-ai-workspace-runtime``, read at commit 7cf77f2)
does towards the platform, and nothing of the console's own agent protocol:

- reads ``WORKSPACE_ID`` (required), ``PLATFORM_URL`` (default ``http://localhost:8080``, or
  ``http://host.docker.internal:8080`` in a container), the token from
  ``$CONFIGS_DIR/.auth_token`` (read once and cached; no file, no ``Authorization`` header) and
  ``$WORKSPACE_CONFIG_PATH/config.yaml`` (JSON is YAML; ``name``, ``description``, ``version``,
  ``a2a.port``/``streaming``/``push_notifications``); both directories default to ``/configs``;
- registers **once**: ``POST /registry/register`` ``{"id", "url", "agent_card"}`` with a 10 s
  timeout, never retried whatever the answer; from a 200 it reads only ``auth_token`` and saves
  it (0600) when present;
- heartbeats right after and then every 30 s, Molecule's fixed period (shortened by
  ``MOLECULE_HEARTBEAT_INTERVAL``, which every backend sets for the console's own agent and
  Molecule's runtime does not read, so that tests run in seconds): ``{"workspace_id",
  "error_rate", "sample_error", "active_tasks", "current_task", "uptime_seconds"}``, plus
  ``runtime_state: "wedged"`` with the reason as ``sample_error`` while wedged, plus
  ``runtime_metadata`` (its capabilities, idle timeout); the answer is never read;
- sends the "mini-heartbeats" of a task's start and end (``executor_helpers.set_current_task``):
  ``{"workspace_id", "current_task", "active_tasks", "error_rate": 0, "sample_error": "",
  "uptime_seconds": 0}``;
- serves its card at ``/.well-known/agent-card.json`` and ``/.well-known/agent.json`` on
  ``0.0.0.0:<a2a.port>``, and answers JSON-RPC ``message/send`` at ``/``.

What a test steers (none of it Molecule's), each answered only to the agent's own bearer token:

- ``POST /control/wedge`` ``{"reason": …}`` / ``POST /control/unwedge`` (the adapter's
  ``mark_wedged``, first reason wins, and ``clear_wedge``); the same through a file:
  ``$CONFIGS_DIR/.wedge`` existing means wedged, its text the reason;
- ``POST /control/task`` ``{"task": …}`` (empty: the task ended): a mini-heartbeat at once;
- ``GET /control/sent``: every request sent to the platform so far (path, headers, raw body,
  and the status it got, which the runtime itself never looks at).

Exit: 0 on SIGTERM, 1 without ``WORKSPACE_ID`` or ``config.yaml`` (as Molecule's runtime).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Molecule's RuntimeCapabilities.to_dict() keys, in its order (workspace/adapter_base.py).
CAPABILITIES = (
    "heartbeat",
    "scheduler",
    "session",
    "status_mgmt",
    "retry",
    "activity_decoration",
    "channel_dispatch",
)
NATIVE = {"session"}  # what this stand-in's "adapter" declares
IDLE_TIMEOUT_SECONDS = 900
REQUEST_TIMEOUT = 10.0


def log(message: str) -> None:
    print(f"[molecule-agent] {message}", flush=True)


def in_container() -> bool:
    return os.path.exists("/.dockerenv") or bool(os.environ.get("DOCKER_VERSION"))


def machine_ip() -> str:
    """Molecule's way: the address a UDP socket towards 8.8.8.8 would use (nothing is sent)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("8.8.8.8", 80))
            return probe.getsockname()[0]
    except OSError:
        return "127.0.0.1"


def dumps(body: object) -> bytes:
    # httpx's json= encoding: compact, UTF-8, no NaN.
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


class Runtime:
    def __init__(self) -> None:
        self.workspace_id = os.environ.get("WORKSPACE_ID", "")
        if not self.workspace_id:
            print("FATAL: WORKSPACE_ID env var is not set", flush=True)
            sys.exit(1)
        default_platform = (
            "http://host.docker.internal:8080" if in_container() else "http://localhost:8080"
        )
        self.platform_url = os.environ.get("PLATFORM_URL", default_platform).rstrip("/")
        self.configs_dir = os.environ.get("CONFIGS_DIR", "/configs")
        config_path = os.environ.get("WORKSPACE_CONFIG_PATH", "/configs")
        config_file = os.path.join(config_path, "config.yaml")
        try:
            with open(config_file) as handle:
                raw = json.load(handle) or {}
        except FileNotFoundError:
            print(f"Config file not found: {config_file}", flush=True)
            sys.exit(1)
        except ValueError as error:
            print(f"config.yaml is not the JSON this stand-in reads: {error}", flush=True)
            sys.exit(1)
        a2a = raw.get("a2a") or {}
        self.name = str(raw.get("name", "Workspace"))
        self.description = str(raw.get("description", ""))
        self.version = str(raw.get("version", "1.0.0"))
        self.port = int(a2a.get("port", 8000))
        self.streaming = bool(a2a.get("streaming", True))
        self.push_notifications = bool(a2a.get("push_notifications", True))
        self.interval = float(os.environ.get("MOLECULE_HEARTBEAT_INTERVAL") or 30)
        self.url = f"http://{os.environ.get('HOSTNAME') or machine_ip()}:{self.port}"
        self.card = {
            "name": self.name,
            "description": self.description,
            "version": self.version,
            "url": self.url,
            "skills": [],
            "capabilities": {
                "streaming": self.streaming,
                "pushNotifications": self.push_notifications,
            },
        }
        # HeartbeatLoop's state (workspace/heartbeat.py).
        self.start_time = time.time()
        self.error_count = 0
        self.request_count = 0
        self.active_tasks = 0
        self.current_task = ""
        self.sample_error = ""
        self._token: str | None = None
        self._wedge: str | None = None
        self._wedge_from_file = False
        self.lock = threading.Lock()
        self.sent: list[dict] = []
        self.stopping = threading.Event()

    # --- platform_auth.py -------------------------------------------------------------------
    def token_file(self) -> str:
        return os.path.join(self.configs_dir, ".auth_token")

    def token(self) -> str | None:
        """Read once, then cached for the life of the process, as Molecule's runtime does."""
        if self._token is not None:
            return self._token
        try:
            with open(self.token_file()) as handle:
                value = handle.read().strip()
        except OSError:
            return None
        self._token = value or None
        return self._token

    def save_token(self, token: str) -> None:
        token = token.strip()
        if not token or token == self.token():
            return
        os.makedirs(self.configs_dir, exist_ok=True)
        fd = os.open(self.token_file(), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, token.encode())
        finally:
            os.close(fd)
        self._token = token

    def auth_headers(self) -> dict[str, str]:
        token = self.token()
        return {"Authorization": f"Bearer {token}"} if token else {}

    # --- runtime_wedge.py -------------------------------------------------------------------
    def mark_wedged(self, reason: str) -> None:
        with self.lock:
            if self._wedge is None:  # first write wins
                self._wedge = reason
                log(f"runtime wedge detected: {reason}")

    def clear_wedge(self) -> None:
        with self.lock:
            if self._wedge is not None:
                self._wedge = None
                log("runtime wedge cleared")
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(self.configs_dir, ".wedge"))

    def wedge_reason(self) -> str | None:
        """The wedge, if any; the ``.wedge`` file marks it while it exists and clears it once
        it is gone (a wedge marked over HTTP lasts until ``/control/unwedge``)."""
        try:
            with open(os.path.join(self.configs_dir, ".wedge")) as handle:
                reason = handle.read().strip() or "wedged (a test said so)"
        except OSError:
            reason = None
        if reason is not None and self._wedge is None:
            self.mark_wedged(reason)
            self._wedge_from_file = True
        elif reason is None and self._wedge_from_file:
            self._wedge_from_file = False
            self.clear_wedge()
        with self.lock:
            return self._wedge

    # --- the wire ---------------------------------------------------------------------------
    def post(self, path: str, body: dict, headers: dict[str, str]) -> tuple[int, bytes]:
        """POST JSON like httpx: any status is an answer; only a network failure raises."""
        data = dumps(body)
        all_headers = {"Content-Type": "application/json", **headers}
        record = {"path": path, "headers": all_headers, "body": data.decode(), "answer": None}
        with self.lock:
            self.sent.append(record)
        request = urllib.request.Request(
            self.platform_url + path, data=data, headers=all_headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
        # Kept for the tests only: Molecule's runtime never looks at a heartbeat's answer.
        record["answer"] = status
        return status, raw

    def register(self) -> None:
        """main.py step 8: once, never retried."""
        body = {"id": self.workspace_id, "url": self.url, "agent_card": self.card}
        try:
            status, raw = self.post("/registry/register", body, self.auth_headers())
        except OSError as error:
            print(f"Warning: failed to register with platform: {error}", flush=True)
            return
        print(f"Registered with platform: {status}", flush=True)
        if status == 200:
            try:
                token = json.loads(raw).get("auth_token")
            except (ValueError, AttributeError) as error:
                print(f"Warning: couldn't parse register response for token: {error}", flush=True)
                return
            if token:
                self.save_token(token)

    def error_rate(self) -> float:
        return self.error_count / self.request_count if self.request_count else 0.0

    def heartbeat_body(self) -> dict:
        body = {
            "workspace_id": self.workspace_id,
            "error_rate": self.error_rate(),
            "sample_error": self.sample_error,
            "active_tasks": self.active_tasks,
            "current_task": self.current_task,
            "uptime_seconds": int(time.time() - self.start_time),
        }
        reason = self.wedge_reason()
        if reason is not None:
            body.update({"runtime_state": "wedged", "sample_error": reason})
        capabilities = {name: name in NATIVE for name in CAPABILITIES}
        body.update(
            {
                "runtime_metadata": {
                    "capabilities": capabilities,
                    "idle_timeout_seconds": IDLE_TIMEOUT_SECONDS,
                }
            }
        )
        return body

    def heartbeat_loop(self) -> None:
        failures = 0
        while not self.stopping.is_set():
            try:
                self.post("/registry/heartbeat", self.heartbeat_body(), self.auth_headers())
                self.error_count = self.request_count = 0
                failures = 0
            except OSError as error:
                failures += 1
                if failures <= 3 or failures % 10 == 0:
                    log(f"heartbeat failed ({failures}): {error}")
            self.stopping.wait(self.interval)

    def set_current_task(self, task: str) -> None:
        """executor_helpers.set_current_task: count, then push a mini-heartbeat at once."""
        with self.lock:
            if task:
                self.active_tasks += 1
                self.current_task = task
            else:
                self.active_tasks = max(0, self.active_tasks - 1)
                if self.active_tasks == 0:
                    self.current_task = ""
            body = {
                "workspace_id": self.workspace_id,
                "current_task": self.current_task,
                "active_tasks": self.active_tasks,
                "error_rate": 0,
                "sample_error": "",
                "uptime_seconds": 0,
            }
        try:
            self.post("/registry/heartbeat", body, self.auth_headers())
        except OSError as error:
            log(f"set_current_task: heartbeat push failed: {error}")


def make_handler(runtime: Runtime) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def reply(self, status: int, body: object) -> None:
            data = dumps(body)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def body(self) -> dict:
            length = int(self.headers.get("Content-Length") or 0)
            try:
                data = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                return {}
            return data if isinstance(data, dict) else {}

        def trusted(self) -> bool:
            token = runtime.token()
            if token and self.headers.get("Authorization") == f"Bearer {token}":
                return True
            self.reply(401, {"error": "unauthorized"})
            return False

        def do_GET(self) -> None:
            if self.path in ("/.well-known/agent-card.json", "/.well-known/agent.json"):
                self.reply(200, runtime.card)
            elif self.path == "/control/sent":
                if self.trusted():
                    with runtime.lock:
                        self.reply(200, list(runtime.sent))
            else:
                self.reply(404, {"error": "not found"})

        def do_POST(self) -> None:
            body = self.body()
            if self.path == "/":
                text = "ok"
                if body.get("method") == "message/send":
                    text = f"{runtime.name} received the message"
                self.reply(
                    200,
                    {
                        "jsonrpc": "2.0",
                        "id": body.get("id"),
                        "result": {"role": "agent", "parts": [{"kind": "text", "text": text}]},
                    },
                )
            elif self.path.startswith("/control/") and not self.trusted():
                return
            elif self.path == "/control/wedge":
                runtime.mark_wedged(str(body.get("reason") or "wedged (a test said so)"))
                self.reply(200, {"wedged": True})
            elif self.path == "/control/unwedge":
                runtime.clear_wedge()
                self.reply(200, {"wedged": False})
            elif self.path == "/control/task":
                runtime.set_current_task(str(body.get("task") or ""))
                self.reply(200, {"active_tasks": runtime.active_tasks})
            else:
                self.reply(404, {"error": "not found"})

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


def main() -> None:
    runtime = Runtime()
    server = ThreadingHTTPServer(("0.0.0.0", runtime.port), make_handler(runtime))
    server.daemon_threads = True

    def stop(signum: int, frame: object) -> None:
        runtime.stopping.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log(f"workspace {runtime.workspace_id} serving A2A on :{runtime.port}, {runtime.url}")
    runtime.register()
    threading.Thread(target=runtime.heartbeat_loop, daemon=True).start()
    server.serve_forever()
    log("stopped")


if __name__ == "__main__":
    main()
