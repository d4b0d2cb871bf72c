"""The backend contract. Only ``workspaces.dispatch`` calls these methods.

A backend runs workspace agents somewhere (child processes, containers, VMs). To add one, subclass
:class:`Backend` and override every method below; register its dotted path under a name in
``settings.MOLECULE_BACKEND_CLASSES`` and enable the name in ``MOLECULE_BACKENDS``.

Rules every backend keeps:

* Methods are idempotent: stopping a stopped instance, or removing storage that is already gone,
  succeeds quietly.
* Every failure is a :class:`BackendError` whose message an operator can act on. ``permanent=True``
  means retrying cannot help (a missing image, a refused spec); otherwise dispatch retries.
* The backend owns ``Instance.state``, a small JSON-serializable dict that dispatch stores on the
  workspace row and hands back on every later call, so a restarted console still finds and can
  stop what an earlier process started (like JupyterHub's ``get_state``/``load_state``).
* A failed ``start`` leaves nothing running behind it.
* Backends never touch the database: they get plain data and return plain data.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar

from workspaces.tiers import TierSettings

if TYPE_CHECKING:
    from workspaces.backends.a2a import A2AReply
    from workspaces.backends.files import Listing, Storage


def free_loopback_port() -> int:
    """A TCP port free on 127.0.0.1 right now, for an agent to listen on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class BackendError(Exception):
    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent


class Verdict(StrEnum):
    PARITY = "parity"
    DIVERGENT = "divergent"
    UNSUPPORTED = "unsupported"


@dataclass(frozen=True)
class Declared:
    """What a backend declares for one feature row of the parity matrix, and why."""

    verdict: Verdict
    note: str = ""


def parity(note: str = "") -> Declared:
    return Declared(Verdict.PARITY, note)


def divergent(note: str) -> Declared:
    return Declared(Verdict.DIVERGENT, note)


def unsupported(note: str) -> Declared:
    return Declared(Verdict.UNSUPPORTED, note)


# The rows every backend is expected to match exactly (ids of workspaces/parity.py ROWS).
LIFECYCLE_ROWS = (
    "provision",
    "stop",
    "restart",
    "pause_resume",
    "delete_storage",
    "org_import",
    "team",
    "secrets",
    "console",
    "liveness",
    "orphans",
    "url",
    "runtime_from_db",
)


# The agent contract's rows (docs/agent-contract.md): what a template carries reaches the agent.
CONTRACT_ROWS = (
    "template_files",
    "memories",
    "config_restart",
)


def at_parity(*rows: str) -> dict[str, Declared]:
    return {row: parity() for row in rows}


@dataclass(frozen=True)
class InstanceSpec:
    """Everything a backend needs to start one workspace's agent (docs/agent-contract.md).

    Every backend delivers the same contract, whatever program runs: a configs directory holding
    ``.auth_token`` (``token``, mode 0600, rewritten at every start), ``config.yaml`` (``config``
    plus the A2A port the backend exposes, as ``a2a.port``) and the template's ``files``; and in
    the environment ``WORKSPACE_ID``, ``PLATFORM_URL`` (``platform_url`` made reachable from
    where the agent runs), ``CONFIGS_DIR`` and ``WORKSPACE_CONFIG_PATH`` (the configs directory
    as the agent sees it), over ``env``.
    """

    workspace_id: str
    name: str
    org_slug: str
    runtime: str
    tier: TierSettings
    generation: int
    # The rest of the agent's environment: the workspace's secrets, heartbeat interval, names.
    env: dict[str, str]
    workspace_dir: str = ""
    token: str = ""
    platform_url: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    # Relative path -> content, written under the configs directory before config.yaml.
    files: dict[str, bytes] = field(default_factory=dict)
    # What runs it (workspaces/runtimes.py): argv for local (("builtin",): the console's agent),
    # an image for containers and VMs ("builtin": MOLECULE_WORKSPACE_IMAGE).
    command: tuple[str, ...] = ("builtin",)
    image: str = "builtin"


@dataclass
class Instance:
    instance_id: str
    url: str = ""
    state: dict[str, Any] = field(default_factory=dict)
    # What the backend ran (a command line, an image), for the workspace page.
    ran: str = ""


class Backend:
    """Base class: override every method. ``name`` is what workspaces record as their backend."""

    name: ClassVar[str] = ""
    # Feature row id (workspaces/parity.py ROWS) -> what this backend declares for it. The parity
    # check runs each row's scenario and shows a declared "parity" that fails as drift.
    capabilities: ClassVar[dict[str, Declared]] = {}
    # Whether agents reach the console's registry from outside the host's loopback (a
    # container on a bridge network comes in through the network's gateway): a registry served
    # for them must then listen on every address, not only on 127.0.0.1.
    agents_call_in_from_outside_loopback: ClassVar[bool] = False
    # The highest tier whose instance stays inside this backend's isolation. Tiers above it reach
    # the host (privileges, host namespaces, the engine's socket): dispatch refuses them unless
    # an operator trusted the org with them (Org.privileged_tiers).
    max_tenant_tier: ClassVar[int] = 4

    def start(self, spec: InstanceSpec) -> Instance:
        """Start the agent for ``spec`` and return the new instance.

        Called by dispatch with the workspace row locked, after any previous instance has been
        stopped. Returns as soon as the instance is started; the agent registers by itself.
        Raises BackendError; on error nothing is left running.
        """
        raise NotImplementedError

    def stop(self, instance: Instance) -> None:
        """Stop the instance and everything it started. Idempotent. Keeps storage."""
        raise NotImplementedError

    def is_running(self, instance: Instance) -> bool:
        """True when the instance is alive as far as the backend can tell (the liveness probe)."""
        raise NotImplementedError

    def console(self, instance: Instance, *, tail: int = 200) -> str:
        """The last ``tail`` lines of the instance's boot and run log, as text."""
        raise NotImplementedError

    def remove_storage(self, instance: Instance) -> None:
        """Delete the instance's /workspace storage. Called on delete, after stop. Idempotent."""
        raise NotImplementedError

    def has_storage(self, instance: Instance) -> bool | None:
        """Whether the instance's /workspace storage still exists (None: cannot tell).

        Only the parity check asks, to verify that delete really removed the storage.
        """
        return None

    def list_instances(self) -> list[str]:
        """Instance ids of every instance this console started that still exists (orphan sweep)."""
        raise NotImplementedError

    def a2a_url(self, instance: Instance) -> str:
        """Where the console posts A2A JSON-RPC for this instance ("" when nowhere).

        The URL the backend recorded at start: the child's loopback port, the container's
        published port, the VM's address from the control plane. Agents serve A2A at that URL
        itself, as Molecule's proxy expects. Override when the console must go another way.
        """
        return instance.url

    def send_a2a(
        self,
        instance: Instance,
        body: bytes,
        *,
        connect_timeout: float,
        timeout: float,
        max_answer: int,
    ) -> A2AReply:
        """Post one A2A JSON-RPC request (``body``, JSON) to the agent and return its answer.

        Called by dispatch for a workspace that is online or degraded. Reads at most
        ``max_answer`` bytes within ``timeout`` seconds in all. Raises ``A2AFailed`` (a
        BackendError; ``timeout`` says which) when the agent cannot be reached, does not answer
        in time or answers too much. Implemented here once, over HTTP; every backend uses it.
        """
        from workspaces.backends.a2a import A2AFailed, post_json_rpc

        url = self.a2a_url(instance)
        if not url:
            raise A2AFailed("The backend recorded no URL for this instance's agent.")
        return post_json_rpc(
            url, body, connect_timeout=connect_timeout, timeout=timeout, max_answer=max_answer
        )

    # --- files (workspaces/backends/files.py) ---------------------------------------------------
    # ``root`` is "workspace" or "configs"; ``path`` a plain relative path, judged already by
    # dispatch (never ".auth_token" in configs for a change). Each raises FileProblem (a
    # BackendError with a ``kind``) for what the storage refuses, BackendError when the backend
    # cannot be reached. Writes leave new files 0600 and folders 0700, the agent's.

    def list_files(self, storage: Storage, root: str, path: str) -> Listing:
        """The entries of the folder ``path`` ("" for the root itself); links are not followed."""
        raise self._no_files()

    def read_file(self, storage: Storage, root: str, path: str, *, max_bytes: int) -> bytes:
        """The bytes of the file ``path``; ``too_large`` past ``max_bytes``, never read whole."""
        raise self._no_files()

    def write_file(self, storage: Storage, root: str, path: str, data: bytes) -> None:
        """Replace (or create, with its folders) the file ``path`` with ``data``, whole or not
        at all; a folder there is a ``conflict``."""
        raise self._no_files()

    def rename_file(self, storage: Storage, root: str, path: str, new_path: str) -> None:
        """Move ``path`` (file or folder) to ``new_path`` in the same root; ``conflict`` when
        something is there already."""
        raise self._no_files()

    def delete_file(self, storage: Storage, root: str, path: str) -> None:
        """Remove the file, link or whole folder ``path``; ``missing`` when nothing is there."""
        raise self._no_files()

    def _no_files(self) -> BackendError:
        from workspaces.backends.files import FileProblem

        return FileProblem("unavailable", f"The {self.name} backend cannot reach files.")

    def running_instances(self) -> list[str] | None:
        """Instance ids of the instances that run now (``is_running`` true), in one listing.

        The health sweep compares it with the recorded instances instead of asking about each
        one. None: this backend cannot list them in one call, and the sweep asks ``is_running``
        for each recorded instance.
        """
        return None
