"""The workspace agent: the small program every backend starts, one per workspace.

Standard library only, so it runs unchanged as a child process, in a container or in a VM.

It reads the agent contract (docs/agent-contract.md) and nothing else of the backend that
started it, exactly like Molecule's workspace runtime: ``WORKSPACE_ID`` and ``PLATFORM_URL`` from
the environment, its token from ``$CONFIGS_DIR/.auth_token`` and its name, port and the rest from
``$WORKSPACE_CONFIG_PATH/config.yaml`` (JSON, which is YAML). It serves ``GET /health``,
``GET /agent-card`` (also at ``/.well-known/agent.json`` and ``/.well-known/agent-card.json``) and
``GET /configs`` (what it found in its configs directory at start), ``GET /configs/file?path=P``
(one file of it as it reads it now: sha256, size and UTF-8 text) on ``a2a.port``, and answers A2A
JSON-RPC 2.0 ``message/send`` at ``POST /``, where Molecule's A2A proxy forwards (the agent's URL
itself), with a deterministic reply (:func:`a2a_reply`). It registers with the console
(``POST {PLATFORM_URL}/registry/register``) and then heartbeats (``POST /registry/heartbeat``)
every ``MOLECULE_HEARTBEAT_INTERVAL`` seconds with its token.
``MOLECULE_AGENT_HOST`` (not part of the contract) is the address it listens on: every address
unless the backend says otherwise (a process on the host's network listens on loopback only).

Its error rate is real: a work loop runs a small self-check task twice a second and the
rate is the share of failures among the last 20. ``MOLECULE_AGENT_FAIL_RATIO`` (or
``POST /control/faults {"fail_ratio": x}``) makes that share of tasks fail, which is how tests and
demos drive a workspace into degraded and back.

``MOLECULE_AGENT_SIDECAR`` names an optional command (a tool server, an MCP server) that the agent
starts beside itself in its own process group; stopping the workspace stops it too.

Exit codes: 0 on SIGTERM, 3 when the console no longer accepts its token (a newer instance took
over, or the workspace was stopped), 2 on bad configuration.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WINDOW = 20
TASK_PERIOD = 0.5
DEFAULT_CONFIGS = "/configs"
TOKEN_FILE = ".auth_token"
CONFIG_FILE = "config.yaml"
# What the agent reports of its configs directory stays well inside the registry's card limit.
REPORT_BYTES = 16 * 1024
# The largest A2A request it reads (Molecule's proxy forwards at most 1 MiB).
A2A_MAX_BYTES = 1 << 20
# JSON-RPC 2.0's error codes, and A2A's own for an unsupported operation.
PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS = -32700, -32600, -32601, -32602


def _read(path: str) -> str:
    try:
        with open(path) as handle:
            return handle.read().strip()
    except OSError:
        return ""


def _cgroup_files(name_v2: str, controller: str, name_v1: str) -> list[str]:
    """The cgroup files that may hold a limit, for cgroup v2 and v1 (hybrid hosts have both)."""
    paths = []
    for line in _read("/proc/self/cgroup").splitlines():
        hierarchy, controllers, path = line.split(":", 2)
        if hierarchy == "0":
            paths.append(f"/sys/fs/cgroup{path.rstrip('/')}/{name_v2}")
            paths.append(f"/sys/fs/cgroup/unified{path.rstrip('/')}/{name_v2}")
        elif controller in controllers.split(","):
            paths.append(f"/sys/fs/cgroup/{controllers}{path.rstrip('/')}/{name_v1}")
    # Inside a container the cgroup namespace hides the path: the limit sits at the root.
    paths += [f"/sys/fs/cgroup/{name_v2}", f"/sys/fs/cgroup/{controller}/{name_v1}"]
    return paths


def _memory_limit() -> int | None:
    limits = []
    for path in _cgroup_files("memory.max", "memory", "memory.limit_in_bytes"):
        value = _read(path)
        if value.isdigit() and int(value) < 1 << 60:
            limits.append(int(value))
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        limits.append(soft)
    return min(limits) if limits else None


def _cpu_limit() -> float:
    limits = [float(len(os.sched_getaffinity(0)))]
    for path in _cgroup_files("cpu.max", "cpu", "cpu.cfs_quota_us"):
        value = _read(path)
        if path.endswith("cpu.max") and value and not value.startswith("max"):
            quota, period = value.split()[:2]
            limits.append(int(quota) / int(period))
        elif path.endswith("cpu.cfs_quota_us") and value.lstrip("-").isdigit() and int(value) > 0:
            period = _read(path.replace("cpu.cfs_quota_us", "cpu.cfs_period_us"))
            if period.isdigit():
                limits.append(int(value) / int(period))
    return min(limits)


def _effective_capabilities() -> str:
    # Reported raw: "privileged" means "as much as the console's host has", which only the
    # console can judge by comparing with its own set.
    for line in _read("/proc/self/status").splitlines():
        if line.startswith("CapEff:"):
            return line.split()[1]
    return ""


def isolation_facts(environ: dict[str, str]) -> dict[str, object]:
    """What isolation this agent actually got, seen from inside, for the parity matrix's tier
    checks. Reads only: nothing is written to probe writability (os.access sees read-only
    mounts)."""
    workspace = environ.get("MOLECULE_WORKSPACE_DIR") or "/workspace"
    return {
        "root_writable": os.access("/", os.W_OK),
        "tmp_writable": os.access(environ.get("TMPDIR", "/tmp"), os.W_OK),
        "workspace_dir": workspace if os.path.isdir(workspace) else "",
        "memory_limit": _memory_limit(),
        "cpu_limit": _cpu_limit(),
        "capabilities": _effective_capabilities(),
        "pid_namespace": os.readlink("/proc/self/ns/pid"),
        "net_namespace": os.readlink("/proc/self/ns/net"),
        "engine_socket": os.path.exists("/var/run/docker.sock"),
    }


def log(message: str) -> None:
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} agent: {message}", flush=True)


def read_token(configs_dir: str) -> str:
    """The instance's token from ``.auth_token`` ("" when there is none: no bearer is sent)."""
    try:
        with open(os.path.join(configs_dir, TOKEN_FILE)) as handle:
            return handle.read().strip()
    except OSError:
        return ""


def load_config(config_dir: str) -> dict:
    """config.yaml, which the console writes as JSON; exits 2 when it is missing or unreadable."""
    path = os.path.join(config_dir, CONFIG_FILE)
    try:
        with open(path, encoding="utf-8") as handle:
            config = json.load(handle)
    except (OSError, ValueError) as error:
        log(f"cannot read {path}: {error}")
        raise SystemExit(2) from None
    if not isinstance(config, dict):
        log(f"{path} is not a mapping")
        raise SystemExit(2)
    return config


def _digest(path: str) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(65536), b""):
            sha.update(block)
    return sha.hexdigest()


def configs_report(configs_dir: str, config: dict) -> dict[str, object]:
    """What this agent found in its configs directory: each file's sha256 (the template's files,
    markers it wrote itself), the token file's mode, and what config.yaml carries."""
    files: dict[str, str] = {}
    count = 0
    size = 0
    for folder, folders, names in os.walk(configs_dir):
        folders.sort()
        for name in sorted(names):
            path = os.path.join(folder, name)
            relative = os.path.relpath(path, configs_dir)
            if relative in (TOKEN_FILE, CONFIG_FILE):
                continue
            try:
                if not stat.S_ISREG(os.lstat(path).st_mode):
                    continue
                digest = _digest(path)
            except OSError:
                continue
            count += 1
            size += len(relative) + len(digest) + 8
            if size <= REPORT_BYTES:
                files[relative] = digest
    try:
        token_mode = f"{stat.S_IMODE(os.stat(os.path.join(configs_dir, TOKEN_FILE)).st_mode):04o}"
    except OSError:
        token_mode = ""
    memories = config.get("initial_memories")
    plugins = config.get("plugins")
    return {
        "files": files,
        "file_count": count,
        "token_mode": token_mode,
        "initial_memories": len(memories) if isinstance(memories, list) else 0,
        "plugins": [str(plugin) for plugin in plugins] if isinstance(plugins, list) else [],
        "prompt_files": config.get("prompt_files") or [],
        "model": str(config.get("model", "")),
        "role": str(config.get("role", "")),
    }


def read_config_file(configs_dir: str, request_path: str) -> tuple[int, dict]:
    """One file of the configs directory as the agent reads it now (never the token, never
    outside the directory), for whoever checks that a change reached the agent."""
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(request_path).query)
    relative = (query.get("path") or [""])[-1]
    base = os.path.realpath(configs_dir)
    target = os.path.realpath(os.path.join(base, relative))
    if not relative or relative == TOKEN_FILE or not target.startswith(base + os.sep):
        return 400, {"error": "path must name a file of the configs directory"}
    try:
        with open(target, "rb") as handle:
            data = handle.read(REPORT_BYTES + 1)
    except OSError as error:
        return 404, {"error": f"cannot read {relative}: {error.strerror}"}
    return 200, {
        "path": relative,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "text": data[:REPORT_BYTES].decode("utf-8", errors="replace"),
    }


def _rpc_error(request_id: object, code: int, message: str) -> dict:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}


def message_text(message: object) -> str | None:
    """The text of an A2A message's text parts, joined (None: not a message with text).

    Parts name their kind ``kind`` (A2A 0.3) or ``type`` (earlier drafts); both are read.
    """
    if not isinstance(message, dict) or not isinstance(message.get("parts"), list):
        return None
    texts = [
        part["text"]
        for part in message["parts"]
        if isinstance(part, dict)
        and (part.get("kind") or part.get("type")) == "text"
        and isinstance(part.get("text"), str)
    ]
    return "\n".join(texts) if texts else None


def a2a_reply(name: str, request: object) -> dict:
    """The JSON-RPC response to one A2A request: ``message/send`` answers an agent message
    saying ``<name> heard: <text>``, so a test can predict it; anything else is a JSON-RPC
    error, as the A2A SDK's server answers it."""
    if not isinstance(request, dict) or request.get("jsonrpc") != "2.0":
        return _rpc_error(None, INVALID_REQUEST, "not a JSON-RPC 2.0 request")
    request_id = request.get("id")
    if request.get("method") != "message/send":
        method = request.get("method")
        return _rpc_error(request_id, METHOD_NOT_FOUND, f"method {method!r} not found")
    params = request.get("params")
    message = params.get("message") if isinstance(params, dict) else None
    text = message_text(message)
    if text is None:
        return _rpc_error(request_id, INVALID_PARAMS, "params.message has no text part")
    # Its log says what it heard, as an agent's transcript would: what it was told (a secret
    # pasted into a message, say) reaches its console output, which the console masks.
    log(f"heard: {text}")
    reply = {
        "kind": "message",
        "role": "agent",
        "messageId": f"{message.get('messageId') or 'message'}-reply",
        "parts": [{"kind": "text", "text": f"{name} heard: {text}"}],
    }
    if isinstance(message.get("contextId"), str):
        reply["contextId"] = message["contextId"]
    return {"jsonrpc": "2.0", "id": request_id, "result": reply}


class Agent:
    def __init__(self, environ: dict[str, str]) -> None:
        self.workspace_id = environ.get("WORKSPACE_ID", "")
        if not self.workspace_id:
            log("FATAL: WORKSPACE_ID is not set")
            raise SystemExit(2)
        # No PLATFORM_URL: the agent serves, but has no console to register with.
        self.platform = environ.get("PLATFORM_URL", "").rstrip("/")
        self.configs_dir = environ.get("CONFIGS_DIR") or DEFAULT_CONFIGS
        config_dir = environ.get("WORKSPACE_CONFIG_PATH") or DEFAULT_CONFIGS
        self.token = read_token(self.configs_dir)
        self.config = load_config(config_dir)
        a2a = self.config.get("a2a") if isinstance(self.config.get("a2a"), dict) else {}
        try:
            self.port = int(a2a.get("port", 8000))
        except (TypeError, ValueError):
            self.port = 0
        if not 0 < self.port < 65536:
            log(f"a2a.port in config.yaml must be 1..65535, not {a2a.get('port')!r}")
            raise SystemExit(2)
        self.host = environ.get("MOLECULE_AGENT_HOST") or "0.0.0.0"
        # The URL it registers, as Molecule's runtime does: its host name when it listens on
        # every address (the backend records the URL it exposes; the console keeps that one).
        advertised = self.host
        if advertised in ("0.0.0.0", "::"):
            advertised = environ.get("HOSTNAME") or socket.gethostname()
        self.url = f"http://{advertised}:{self.port}"
        self.interval = float(environ.get("MOLECULE_HEARTBEAT_INTERVAL", "30"))
        self.fail_ratio = float(environ.get("MOLECULE_AGENT_FAIL_RATIO", "0"))
        self.configs = configs_report(self.configs_dir, self.config)
        config = self.config
        self.card = {
            "name": str(config.get("name") or self.workspace_id),
            "description": str(config.get("description", "")),
            "version": str(config.get("version", "1.0.0")),
            "url": self.url,
            "skills": [
                {"id": "echo", "name": "echo", "description": "Echoes a message.", "tags": []}
            ],
            "capabilities": {
                "streaming": bool(a2a.get("streaming", True)),
                "pushNotifications": bool(a2a.get("push_notifications", True)),
            },
            "runtime": str(config.get("runtime", "")),
            "tier": str(config.get("tier", "")),
            # Names only, never values: which of the secrets the console injected arrived.
            "secrets": sorted(
                key
                for key in environ.get("MOLECULE_SECRET_KEYS", "").split(",")
                if key and key in environ
            ),
            "isolation": isolation_facts(environ),
            "configs": self.configs,
        }
        self.started = time.monotonic()
        self.outcomes: deque[bool] = deque(maxlen=WINDOW)
        self.sample_error = ""
        self.tasks_done = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.registered = False

    # --- work -----------------------------------------------------------------------------
    def run_task(self) -> None:
        with self.lock:
            self.tasks_done += 1
            # Deterministic spread: exactly fail_ratio of every run of tasks fails.
            failed = int(self.tasks_done * self.fail_ratio) > int(
                (self.tasks_done - 1) * self.fail_ratio
            )
            self.outcomes.append(not failed)
            if failed:
                self.sample_error = f"self-check #{self.tasks_done} failed: injected fault"

    def error_rate(self) -> float:
        with self.lock:
            if not self.outcomes:
                return 0.0
            return round(self.outcomes.count(False) / len(self.outcomes), 3)

    def set_faults(self, fail_ratio: float) -> None:
        with self.lock:
            self.fail_ratio = min(max(fail_ratio, 0.0), 1.0)
            # A new fault setting is measured afresh rather than averaged with the old one.
            self.outcomes.clear()
            self.tasks_done = 0
            if self.fail_ratio == 0:
                self.sample_error = ""

    def work_loop(self) -> None:
        while not self.stopping.wait(TASK_PERIOD):
            self.run_task()

    # --- console --------------------------------------------------------------------------
    def post(self, path: str, body: dict) -> tuple[int, dict]:
        headers = {"Content-Type": "application/json"}
        if self.token:
            # No token file, no header, as Molecule's runtime does.
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(
            self.platform + path,
            data=json.dumps(body).encode(),
            headers=headers,
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            try:
                return error.code, json.loads(error.read() or b"{}")
            except ValueError:
                return error.code, {}

    def register_body(self) -> dict:
        # Molecule's shape is {"id", "url", "agent_card"}. "workspace_id" is sent too until the
        # registry accepts "id" everywhere (it is being extended to); both name this workspace.
        return {
            "id": self.workspace_id,
            "workspace_id": self.workspace_id,
            "url": self.url,
            "agent_card": self.card,
        }

    def heartbeat_body(self) -> dict:
        # Heartbeats name the workspace "workspace_id", as Molecule's do.
        return {
            "workspace_id": self.workspace_id,
            "error_rate": self.error_rate(),
            "sample_error": self.sample_error,
            "active_tasks": 1 if self.fail_ratio < 1 else 0,
            "uptime_seconds": int(time.monotonic() - self.started),
            "current_task": f"self-check #{self.tasks_done}",
        }

    def talk_loop(self) -> None:
        backoff = 0.5
        if not self.platform:
            log("no PLATFORM_URL: serving without a console to register with")
            return
        while not self.stopping.is_set():
            try:
                if not self.registered:
                    status, body = self.post("/registry/register", self.register_body())
                else:
                    status, body = self.post("/registry/heartbeat", self.heartbeat_body())
            except (OSError, ValueError) as error:
                log(f"console unreachable ({error}); retrying in {backoff:.1f}s")
                self.stopping.wait(backoff)
                backoff = min(backoff * 2, self.interval)
                continue
            backoff = 0.5
            if status == 200:
                if not self.registered:
                    log("registered with the console")
                self.registered = True
                self.interval = float(body.get("heartbeat_interval", self.interval))
                self.stopping.wait(self.interval)
            elif status == 401:
                log("the console no longer accepts this agent's token; exiting")
                os._exit(3)
            elif status == 409 and body.get("register"):
                log("the console asks this agent to register again")
                self.registered = False
            else:
                log(f"console answered {status}: {body.get('error', body)}")
                self.stopping.wait(self.interval)


def make_handler(agent: Agent) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def reply(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/health":
                self.reply(200, {"status": "ok", "error_rate": agent.error_rate()})
            elif self.path in (
                "/agent-card",
                "/.well-known/agent.json",
                "/.well-known/agent-card.json",
            ):
                self.reply(200, agent.card)
            elif self.path == "/configs":
                self.reply(200, agent.configs)
            elif self.path.startswith("/configs/file?"):
                status, body = read_config_file(agent.configs_dir, self.path)
                self.reply(status, body)
            else:
                self.reply(404, {"error": "not found"})

        def do_POST(self) -> None:
            if self.path == "/":
                self.answer_a2a()
                return
            if self.path != "/control/faults":
                self.reply(404, {"error": "not found"})
                return
            try:
                length = int(self.headers.get("Content-Length", "0"))
                ratio = float(json.loads(self.rfile.read(length))["fail_ratio"])
            except (ValueError, KeyError, TypeError):
                self.reply(400, {"error": 'send {"fail_ratio": <0..1>}'})
                return
            agent.set_faults(ratio)
            self.reply(200, {"fail_ratio": agent.fail_ratio})

        def answer_a2a(self) -> None:
            try:
                length = int(self.headers.get("Content-Length", "0"))
            except ValueError:
                length = -1
            if not 0 <= length <= A2A_MAX_BYTES:
                self.reply(413, _rpc_error(None, INVALID_REQUEST, "request too large"))
                return
            try:
                request = json.loads(self.rfile.read(length))
            except ValueError:
                self.reply(200, _rpc_error(None, PARSE_ERROR, "the body is not JSON"))
                return
            self.reply(200, a2a_reply(agent.card["name"], request))

        def log_message(self, format: str, *args: object) -> None:
            pass  # health probes every few seconds would drown the console log

    return Handler


def main() -> None:
    agent = Agent(dict(os.environ))
    server = ThreadingHTTPServer((agent.host, agent.port), make_handler(agent))
    server.daemon_threads = True

    def shutdown(signum: int, frame: object) -> None:
        log("SIGTERM received; shutting down")
        agent.stopping.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    log(
        f"workspace {agent.workspace_id} serving on {agent.host}:{server.server_address[1]}, "
        f"heartbeat every {agent.interval:g}s to {agent.platform or '(no PLATFORM_URL)'}"
    )
    if sidecar := os.environ.get("MOLECULE_AGENT_SIDECAR"):
        child = subprocess.Popen(shlex.split(sidecar), stdin=subprocess.DEVNULL)
        log(f"sidecar started: pid {child.pid}: {sidecar}")
    threading.Thread(target=agent.work_loop, daemon=True).start()
    threading.Thread(target=agent.talk_loop, daemon=True).start()
    server.serve_forever(poll_interval=0.2)
    log("stopped")
    sys.exit(0)


if __name__ == "__main__":
    main()
