"""The control-plane double's HTTP server and its "VMs" (agent processes).

Endpoints (the contract is docs/controlplane-api.md; every one needs ``Authorization: Bearer``):

    POST   /cp/workspaces/provision            boot a VM            -> 201 {instance_id, url, state}
    GET    /cp/workspaces[?org=SLUG]           list VMs             -> 200 {"instances": [...]}
    GET    /cp/workspaces/<instance_id>/status                      -> 200 {"running": bool, ...}
    GET    /cp/workspaces/<instance_id>/console[?tail=N]            -> 200 text/plain
    DELETE /cp/workspaces/<instance_id>        stop and forget it   -> 200, or 404 when unknown
    GET    /cp/volumes/<workspace_id>          does its /workspace volume exist -> 200 or 404
    DELETE /cp/volumes/<workspace_id>          remove its /workspace volume -> 200, 404, 409
    GET    /cp/files/<workspace_id>/<root>/list?path=P         a folder's entries -> 200 JSON
    GET    /cp/files/<workspace_id>/<root>/content?path=P&max=N  a file's bytes   -> 200, 413
    PUT    /cp/files/<workspace_id>/<root>/content?path=P      write it (raw body) -> 200
    DELETE /cp/files/<workspace_id>/<root>/content?path=P      remove it (a folder whole)
    POST   /cp/files/<workspace_id>/<root>/rename {"path", "to"}                -> 200, 409
    GET    /_faults                            the faults switched on
    POST   /_faults  {"slow_boot": s, "fail_next": n, "stall": s, "delete_noop": bool,
                      "lose": instance_id, "clear": true}

A VM is the agent (``workspaces/agent/main.py``, whatever image the request names) run with this
interpreter, in its own process group, listening on 127.0.0.1 and a free port, with the
environment the provision request sent. Its configs (the request's ``configs``, path → base64)
are written into the VM's ``configs/`` directory before it boots, which stands for the VM's
/configs: ``CONFIGS_DIR`` and ``WORKSPACE_CONFIG_PATH`` name that directory, and config.yaml's
``a2a.port`` becomes the port the VM was given (VMs share one host here). Files live under
``root``: ``vms/<instance_id>/`` (its console.log, tmp and configs) and
``volumes/<workspace_id>/`` (its /workspace, kept across restarts until deleted).

Faults, for tests and demos:

* ``slow_boot``: seconds between the provision answer (state "booting") and the agent starting.
* ``fail_next``: the next n requests to /cp/ are answered 500 before doing anything.
* ``stall``: seconds every /cp/ request waits before it is handled (to exercise client timeouts).
* ``delete_noop``: DELETE /cp/workspaces/<id> answers 200 and does nothing (a drifting backend).
* ``lose``: the VM disappears at once: its processes are killed and every endpoint answers 404.

State is in memory: closing the double stops every VM it started, so nothing it booted outlives it.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import re
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from cpdouble import files
from cpdouble.errors import RequestError
from cpdouble.http import DoubleServer, make_handler

AGENT = Path(__file__).resolve().parent.parent / "workspaces" / "agent" / "main.py"
# Loopback only: the double hands out no isolation and trusts its one bearer token.
HOST = "127.0.0.1"
STOP_GRACE_SECONDS = 5.0
# Ids end up in file paths: a conservative alphabet keeps them inside ``root``.
SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
CONFIG_FILE = "config.yaml"
MAX_CONFIG_PATH = 500


@dataclass
class Faults:
    slow_boot: float = 0.0
    fail_next: int = 0
    stall: float = 0.0
    delete_noop: bool = False


@dataclass
class VM:
    instance_id: str
    key: str
    workspace_id: str
    org: str
    name: str
    generation: int
    image: str
    tier: int
    runtime: str
    port: int
    home: Path
    volume: Path | None
    memory_bytes: int | None
    env: dict[str, str]
    configs: dict[str, bytes] = field(default_factory=dict)
    state: str = "booting"  # booting -> running -> exited; or failed
    process: subprocess.Popen[bytes] | None = None
    boot_timer: threading.Timer | None = None
    created_at: float = field(default_factory=time.time)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def configs_dir(self) -> Path:
        """Where the VM's /configs lives on this host."""
        return self.home / "configs"

    def refresh(self) -> None:
        if self.state == "running" and self.process is not None and _exited(self.process):
            self.state = "exited"

    @property
    def running(self) -> bool:
        return self.state in ("booting", "running")

    def describe(self) -> dict[str, Any]:
        self.refresh()
        return {
            "instance_id": self.instance_id,
            "workspace_id": self.workspace_id,
            "org": self.org,
            "name": self.name,
            "generation": self.generation,
            "image": self.image,
            "tier": self.tier,
            "url": self.url,
            "state": self.state,
            "running": self.running,
            "pid": self.process.pid if self.process else None,
            "configs_dir": str(self.configs_dir),
            "created_at": self.created_at,
        }


def _exited(process: subprocess.Popen[bytes]) -> bool:
    """Whether the agent exited, without reaping it.

    WNOWAIT leaves the zombie in place, so its pid (and process group id) cannot be recycled
    before stop signals the group: a later killpg never reaches somebody else's processes.
    """
    if process.returncode is not None:
        return True
    try:
        return os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _require(body: dict[str, Any], key: str, kind: type, *, default: Any = None) -> Any:
    value = body.get(key, default)
    # bool is an int to Python but not to the contract: a tier of true is refused.
    wrong_bool = isinstance(value, bool) is not (kind is bool)
    if value is None or wrong_bool or not isinstance(value, kind):
        raise RequestError(422, f"{key} must be a {kind.__name__}")
    return value


def _config_path(path: object) -> str:
    """A path in the configs: relative, no '.', '..' or empty segment, no NUL or backslash."""
    if (
        not isinstance(path, str)
        or not path
        or len(path) > MAX_CONFIG_PATH
        or path.startswith("/")
        or "\\" in path
        or any(ord(char) < 32 or ord(char) == 127 for char in path)
        or any(part in ("", ".", "..") for part in path.split("/"))
    ):
        raise RequestError(422, f"configs path {str(path)[:80]!r} is not a plain relative path")
    return path


def _configs(body: dict[str, Any]) -> dict[str, bytes]:
    """The request's ``configs`` (path -> base64), decoded and checked."""
    raw = body.get("configs", {})
    if not isinstance(raw, dict):
        raise RequestError(422, "configs must map paths to base64 strings")
    found = {}
    for path, encoded in raw.items():
        if not isinstance(encoded, str):
            raise RequestError(422, f"configs[{path!r}] must be a base64 string")
        try:
            found[_config_path(path)] = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as error:
            raise RequestError(422, f"configs[{path!r}] is not base64: {error}") from error
    return found


def _write_configs(vm: VM) -> None:
    """Write the VM's configs into its fresh directory: folders 0700, files 0600.

    config.yaml's ``a2a.port`` becomes the VM's own port: every VM of the double shares this
    host, where a real VM would expose the port the console wrote.
    """
    root = vm.configs_dir
    root.mkdir(mode=0o700)
    for path, data in vm.configs.items():
        target = root / path
        # Checked again on the real path: nothing may land outside the VM's directory.
        if not target.resolve().is_relative_to(root.resolve()):
            raise RequestError(422, f"configs path {path!r} leaves the configs directory")
        if path == CONFIG_FILE:
            try:
                config = json.loads(data)
                config["a2a"] = {**(config.get("a2a") or {}), "port": vm.port}
                data = (json.dumps(config, indent=2) + "\n").encode()
            except (ValueError, TypeError, AttributeError) as error:
                raise RequestError(422, f"config.yaml is not a JSON mapping: {error}") from error
        for folder in reversed(target.relative_to(root).parents[:-1]):
            (root / folder).mkdir(mode=0o700, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)


def _safe_id(value: str, what: str) -> str:
    if not SAFE_ID.fullmatch(value):
        raise RequestError(422, f"{what} {value!r} is not a valid id (letters, digits, _ . -)")
    return value


class ControlPlaneDouble:
    """The double: an HTTP server on 127.0.0.1 plus the VMs (agent processes) it booted.

    Use it as a context manager, or call :meth:`start` (serve in a thread) / :meth:`serve_forever`
    (serve in this thread) and then :meth:`close`, which stops every VM.
    """

    def __init__(
        self,
        *,
        token: str,
        root: Path,
        port: int = 0,
        agent: Path = AGENT,
        python: str = sys.executable,
        log: Callable[[str], None] | None = None,
    ) -> None:
        if not token:
            raise ValueError("the control-plane double needs a bearer token to check")
        self.token = token
        self.root = Path(root)
        self.agent = Path(agent)
        self.python = python
        self.log = log or (lambda message: None)
        self.faults = Faults()
        self.lock = threading.RLock()
        self._vms: dict[str, VM] = {}
        # (method, path, status) of the requests answered, for tests to count retries; bounded
        # so a double left running for a long demo does not grow without end.
        self.requests: deque[tuple[str, str, int]] = deque(maxlen=100_000)
        (self.root / "vms").mkdir(parents=True, exist_ok=True)
        (self.root / "volumes").mkdir(parents=True, exist_ok=True)
        self._server = DoubleServer((HOST, port), make_handler(self))
        self._server.double = self
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # --- running the server -----------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{HOST}:{self._server.server_address[1]}"

    def start(self) -> ControlPlaneDouble:
        """Serve in a background thread; returns self."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted (KeyboardInterrupt, SystemExit)."""
        self._server.serve_forever(poll_interval=0.2)

    def close(self) -> None:
        """Stop serving and stop every VM (its whole process group). Idempotent."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self._server.server_close()
        with self.lock:
            vms, self._vms = list(self._vms.values()), {}
        for vm in vms:
            self._halt(vm)

    def __enter__(self) -> ControlPlaneDouble:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- what tests look at ------------------------------------------------------------------
    def vms(self) -> list[dict[str, Any]]:
        """A snapshot of every VM the double knows, as the list endpoint describes them."""
        with self.lock:
            return [vm.describe() for vm in self._vms.values()]

    def set_faults(self, **changes: Any) -> dict[str, Any]:
        """Switch faults on or off (the same keys as ``POST /_faults``); returns them all.

        Raises RequestError (400) for an unknown key or a bad value, before changing anything,
        and (404) for ``lose`` of an unknown instance.
        """
        clear = changes.pop("clear", False) is True
        lost = changes.pop("lose", None)
        known = asdict(Faults())
        updates: dict[str, Any] = {}
        for key, value in changes.items():
            if key not in known:
                raise RequestError(400, f"unknown fault {key!r}; known: {', '.join(known)}, lose")
            kind = type(known[key])
            accepted = (int, float) if kind is float else kind
            if isinstance(value, bool) is not (kind is bool) or not isinstance(value, accepted):
                raise RequestError(400, f"fault {key} must be a {kind.__name__}")
            if kind is not bool and value < 0:
                raise RequestError(400, f"fault {key} must not be negative")
            updates[key] = kind(value)
        with self.lock:
            if clear:
                self.faults = Faults()
            for key, value in updates.items():
                setattr(self.faults, key, value)
        if lost is not None:
            self.lose(str(lost))
        with self.lock:
            return asdict(self.faults)

    def lose(self, instance_id: str) -> None:
        """Make a VM disappear: kill it and forget it, as if its host died. Keeps its volume."""
        with self.lock:
            vm = self._vms.pop(instance_id, None)
        if vm is None:
            raise RequestError(404, f"no instance {instance_id!r} to lose")
        self._halt(vm)
        self.log(f"fault: instance {instance_id} lost")

    # --- the contract -------------------------------------------------------------------------
    def provision(self, body: dict[str, Any], key: str) -> tuple[int, VM]:
        """Boot a VM for the request; (201, new VM), or (200, existing VM) for a repeated key."""
        workspace_id = _safe_id(_require(body, "workspace_id", str), "workspace_id")
        org = _require(body, "org", str)
        env = _require(body, "env", dict)
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
            raise RequestError(422, "env must map names to strings")
        tier = _require(body, "tier", int)
        generation = _require(body, "generation", int, default=0)
        tier_settings = _require(body, "tier_settings", dict, default={})
        memory = tier_settings.get("memory_bytes")
        configs = _configs(body)
        with self.lock:
            if key:
                # A retried provision (the answer was lost on the way) gets the same VM back
                # rather than a second one nobody records.
                for vm in self._vms.values():
                    if vm.key == key:
                        return 200, vm
            instance_id = f"vm-{secrets.token_hex(6)}"
            volume = None
            if tier_settings.get("workspace_volume", True):
                volume = self.root / "volumes" / workspace_id
            vm = VM(
                instance_id=instance_id,
                key=key,
                workspace_id=workspace_id,
                org=org,
                name=str(body.get("name", "")),
                generation=generation,
                image=str(body.get("image", "")),
                tier=tier,
                runtime=str(body.get("runtime", "")),
                port=_free_port(),
                home=self.root / "vms" / instance_id,
                volume=volume,
                memory_bytes=memory if isinstance(memory, int) and memory > 0 else None,
                env=env,
                configs=configs,
            )
            vm.home.mkdir(parents=True)
            try:
                _write_configs(vm)
            except (RequestError, OSError):
                shutil.rmtree(vm.home, ignore_errors=True)
                raise
            self._vms[instance_id] = vm
            self._console(vm, f"VM {instance_id} created for workspace {workspace_id} ({org})")
            if self.faults.slow_boot:
                self._console(vm, f"booting slowly: {self.faults.slow_boot:g}s")
                vm.boot_timer = threading.Timer(self.faults.slow_boot, self._boot, args=(vm,))
                vm.boot_timer.daemon = True
                vm.boot_timer.start()
            else:
                self._boot(vm)
                if vm.state == "failed":
                    del self._vms[instance_id]
                    shutil.rmtree(vm.home, ignore_errors=True)
                    raise RequestError(500, f"the VM failed to boot: see {vm.home}/console.log")
        self.log(f"provisioned {instance_id} for {org}/{vm.name} on {vm.url}")
        return 201, vm

    def get(self, instance_id: str) -> VM:
        with self.lock:
            vm = self._vms.get(instance_id)
        if vm is None:
            raise RequestError(404, f"no instance {instance_id!r}")
        return vm

    def instances(self, org: str | None) -> list[dict[str, Any]]:
        return [vm for vm in self.vms() if org is None or vm["org"] == org]

    def delete(self, instance_id: str) -> None:
        if self.faults.delete_noop:
            self.log(f"fault: DELETE {instance_id} answered 200 and did nothing")
            return
        with self.lock:
            vm = self._vms.pop(instance_id, None)
        if vm is None:
            raise RequestError(404, f"no instance {instance_id!r}")
        self._halt(vm)
        shutil.rmtree(vm.home, ignore_errors=True)
        self.log(f"deleted {instance_id}")

    def volume(self, workspace_id: str) -> Path:
        path = self.root / "volumes" / _safe_id(workspace_id, "workspace_id")
        if not path.exists():
            raise RequestError(404, f"no volume for workspace {workspace_id!r}")
        return path

    def delete_volume(self, workspace_id: str) -> None:
        path = self.root / "volumes" / _safe_id(workspace_id, "workspace_id")
        with self.lock:
            users = [vm.instance_id for vm in self._vms.values() if vm.volume == path]
        if users:
            raise RequestError(409, f"volume of {workspace_id} is in use by {', '.join(users)}")
        if not path.exists():
            raise RequestError(404, f"no volume for workspace {workspace_id!r}")
        shutil.rmtree(path)
        self.log(f"deleted the volume of {workspace_id}")

    def files_base(self, workspace_id: str, root: str) -> Path:
        """Where a workspace's files of ``root`` live: its volume, or its current VM's configs."""
        _safe_id(workspace_id, "workspace_id")
        if root == "workspace":
            path = self.root / "volumes" / workspace_id
            if not path.is_dir():
                raise files.Conflict(f"workspace {workspace_id} has no volume", "unavailable")
            return path
        if root != "configs":
            raise RequestError(404, f"no root {root!r}: workspace or configs")
        with self.lock:
            current = [
                vm
                for vm in self._vms.values()
                if vm.workspace_id == workspace_id and vm.running and vm.configs_dir.is_dir()
            ]
        if not current:
            raise files.Conflict(
                f"workspace {workspace_id} has no VM, so no /configs: start it", "unavailable"
            )
        return max(current, key=lambda vm: vm.created_at).configs_dir

    def console_text(self, instance_id: str, tail: int) -> str:
        vm = self.get(instance_id)
        try:
            lines = (vm.home / "console.log").read_bytes().decode(errors="replace").splitlines()
        except FileNotFoundError:
            return ""
        return "\n".join(lines[-tail:]) if tail > 0 else ""

    # --- VMs ----------------------------------------------------------------------------------
    @staticmethod
    def _console(vm: VM, message: str) -> None:
        with (vm.home / "console.log").open("a") as log:
            log.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} cp-double: {message}\n")

    def _boot(self, vm: VM) -> None:
        with self.lock:
            if self._vms.get(vm.instance_id) is not vm or vm.state != "booting":
                return  # deleted or lost while it was still booting
            tmp = vm.home / "tmp"
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "LANG": "C.UTF-8",
                "HOME": str(vm.home),
                "TMPDIR": str(tmp),
                "PYTHONDONTWRITEBYTECODE": "1",
                **vm.env,
                # The VM's /configs is its directory here.
                "CONFIGS_DIR": str(vm.configs_dir),
                "WORKSPACE_CONFIG_PATH": str(vm.configs_dir),
                # Not the contract: the double's VMs share the host, so they listen on loopback.
                "MOLECULE_AGENT_HOST": HOST,
            }
            try:
                tmp.mkdir(exist_ok=True)
                if vm.volume is not None:
                    vm.volume.mkdir(parents=True, exist_ok=True)
                    env["MOLECULE_WORKSPACE_DIR"] = str(vm.volume)
                self._console(
                    vm,
                    f"booting image {vm.image or '(none)'}, tier {vm.tier}, runtime {vm.runtime}, "
                    f"generation {vm.generation}, on {vm.url}",
                )
                with (vm.home / "console.log").open("ab") as log:
                    # Isolated mode, like the console's own backends: a workspace's secrets
                    # (PYTHON* variables among them) must not steer the interpreter.
                    vm.process = subprocess.Popen(
                        [self.python, "-I", "-u", "-B", str(self.agent)],
                        cwd=vm.volume or tmp,
                        env=env,
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        process_group=0,
                        close_fds=True,
                    )
            except OSError as error:
                vm.state = "failed"
                with contextlib.suppress(OSError):
                    self._console(vm, f"boot failed: {error}")
                return
            if vm.memory_bytes:
                # The VM's memory size, as closely as a process can be given one.
                with contextlib.suppress(OSError):
                    limit = (vm.memory_bytes, vm.memory_bytes)
                    resource.prlimit(vm.process.pid, resource.RLIMIT_AS, limit)
            vm.state = "running"

    def _halt(self, vm: VM) -> None:
        """Stop a VM's whole process group: SIGTERM, a grace period, then SIGKILL; reap it."""
        if vm.boot_timer is not None:
            vm.boot_timer.cancel()
        vm.state = "stopped" if vm.state != "failed" else vm.state
        process = vm.process
        if process is None or process.returncode is not None:
            return
        # The leader is not reaped until the end, so its pid still names our group throughout.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        while not _exited(process) and time.monotonic() < deadline:
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)  # a sidecar that ignored SIGTERM
        process.wait()


def _print(message: str) -> None:
    print(message, flush=True)


def serve(*, port: int, token: str, root: Path, say: Callable[[str], None] = _print) -> None:
    """Serve until Ctrl-C or SIGTERM, then stop every VM. Raises OSError if the port is taken."""
    double = ControlPlaneDouble(token=token, root=root, port=port, log=say)

    def terminate(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminate)
    say(f"Control-plane double on {double.url}; VMs under {root}. Ctrl-C stops it and its VMs.")
    try:
        double.serve_forever()
    except KeyboardInterrupt:
        say("Stopping the double and every VM it booted…")
    finally:
        double.close()
        signal.signal(signal.SIGTERM, previous)
