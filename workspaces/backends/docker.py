"""The ``docker`` backend: each workspace's agent runs in a container on a Docker-API engine.

Through the ``docker`` SDK, so it works against Docker Engine and against Podman's compatible
API (what ``scripts/engine`` starts on machines without Docker). Per workspace:

* container ``ws-<first 12 hex digits of the id>``, from the runtime's image (``spec.image``;
  ``"builtin"`` is ``MOLECULE_WORKSPACE_IMAGE``, built by ``scripts/agent-image``; never pulled
  at run time), with ``init=True`` (except in the host's PID namespace) so the agent gets SIGTERM
  from a real PID 1 and stop takes well under a second;
* labels that mark it as this console's (``molecule.console``), and name its workspace and org;
  the orphan sweep lists containers by the console label only, so two consoles (or two test runs)
  sharing one engine never sweep each other's containers;
* network ``molecule-net`` (created when missing), port 8000 published on 127.0.0.1 at a port the
  engine picks, read back after start: ``http://127.0.0.1:<port>`` is the workspace URL;
* volume ``ws-<id>-workspace`` at /workspace, or the workspace's own ``workspace_dir`` bound there
  (validated: absolute, no ``..``, not a system path); removed by ``remove_storage`` on delete,
  except an operator's own directory, which is theirs;
* volume ``ws-<id>-configs`` at /configs, the agent contract's configs directory
  (docs/agent-contract.md): the container is created, the template's files, ``.auth_token`` and
  ``config.yaml`` (``a2a.port`` 8000, or the host port a host-network tier listens on) are
  unpacked into it through the engine's archive API, and only then is the container started.
  The engine replaces whatever stands at a delivered path (a link the last agent left
  included); what the agent wrote there itself stays. Removed on delete with the workspace
  volume, and labelled like it;
* the tier's isolation from :func:`container_options`, a pure function of the tier settings.

How an agent in a container reaches the console (the registry): a container on a bridge network
cannot reach the host's 127.0.0.1, and test traffic may only go to loopback or to the engine's
own networks. So the console also listens on the gateway address of ``molecule-net`` (the host
end of the engine's bridge), and when ``MOLECULE_REGISTRY_URL`` names a loopback or wildcard
host, containers get the same URL with the host ``molecule-console``, which ``extra_hosts`` maps
to that gateway in each container's /etc/hosts (a name rather than the address, so
``ALLOWED_HOSTS`` can list it before the network exists). ``MOLECULE_DOCKER_REGISTRY_URL``
overrides all of this when the console is reachable some other way. T4 containers share the
host's network and use ``MOLECULE_REGISTRY_URL`` as it is. That URL is the agent's
``PLATFORM_URL``; its host must be one ``ALLOWED_HOSTS`` accepts, or the start is refused.

Instance state: container id and name, volume or bind directory, published port, workspace id.
The instance id is the container id, new at every start.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import ClassVar
from urllib.parse import urlsplit

import docker
import requests
from django.conf import settings
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.models.containers import Container

from workspaces.backends import configs
from workspaces.backends.base import (
    CONTRACT_ROWS,
    LIFECYCLE_ROWS,
    Backend,
    BackendError,
    Declared,
    Instance,
    InstanceSpec,
    at_parity,
    free_loopback_port,
    parity,
)
from workspaces.backends.containers import (
    AGENT_PORT,
    CONSOLE_HOST_ALIAS,
    LABEL_CONSOLE,
    LABEL_GENERATION,
    LABEL_ORG,
    LABEL_TIER,
    LABEL_WORKSPACE,
    SOCKET_IN_CONTAINER,
    MiB,
    configs_archive,
    configs_volume_name,
    container_name,
    container_options,
    is_conflict,
    is_gone,
    is_loopback_or_wildcard,
    unless_gone,
    validated_workspace_dir,
    volume_name,
    with_host,
)
from workspaces.backends.docker_files import DockerFiles
from workspaces.envnames import start_problem
from workspaces.runtimes import BUILTIN

log = logging.getLogger(__name__)


class DockerBackend(DockerFiles, Backend):
    name = "docker"
    capabilities: ClassVar[dict[str, Declared]] = {
        **at_parity(*LIFECYCLE_ROWS, *CONTRACT_ROWS, "tier_1", "tier_2", "tier_3", "tier_4"),
        # The console posts to the container's published port (Backend.send_a2a).
        "a2a": parity(),
        # The archive API, on the container or a helper mounting its volumes (docker_files.py).
        "files": parity(),
        # Written into the /configs volume through the archive API (live, no restart).
        "plugins": parity(),
        "redaction": parity(),
    }
    agents_call_in_from_outside_loopback = True  # through molecule-net's gateway
    # T3 runs privileged in the host's PID namespace and T4 holds the engine's socket: both are
    # root on the host, so they are for trusted orgs only.
    max_tenant_tier = 2

    def __init__(self) -> None:
        self.base_url: str = settings.MOLECULE_DOCKER_HOST or "unix:///var/run/docker.sock"
        self.image: str = settings.MOLECULE_WORKSPACE_IMAGE
        self.network: str = settings.MOLECULE_DOCKER_NETWORK
        self.console_id: str = settings.MOLECULE_DOCKER_CONSOLE_ID
        self.registry_url: str = settings.MOLECULE_DOCKER_REGISTRY_URL
        self.stop_timeout = int(settings.MOLECULE_DOCKER_STOP_TIMEOUT)
        self.engine_socket: str = settings.MOLECULE_DOCKER_SOCKET or (
            self.base_url.removeprefix("unix://")
            if self.base_url.startswith("unix://")
            else SOCKET_IN_CONTAINER
        )
        # Why each exited container ended, by container id (see _exit_reason).
        self._exit_reasons: dict[str, str] = {}
        # One SDK client per thread: Celery's thread pool calls backends concurrently, and the
        # SDK's HTTP session is not meant to be shared between threads.
        self._local = threading.local()

    # --- engine plumbing --------------------------------------------------------------------
    @contextlib.contextmanager
    def _engine(self, doing: str) -> Iterator[docker.DockerClient]:
        """The SDK client, with every engine failure turned into a BackendError an operator reads.

        Callers catch ``NotFound`` themselves where a missing object has a meaning; one that gets
        here (say, removed by someone else midway) is transient like a conflict: a retry sees
        the new situation. Other refusals of a request (4xx) are permanent.
        """
        try:
            client = getattr(self._local, "client", None)
            if client is None:
                client = docker.DockerClient(base_url=self.base_url, timeout=60)
                self._local.client = client
            yield client
        except APIError as error:
            raise BackendError(
                f"The container engine refused to {doing}: {error.explanation or error}.",
                permanent=error.is_client_error() and error.status_code not in (404, 409),
            ) from error
        except (DockerException, requests.exceptions.RequestException) as error:
            self._local.client = None
            raise BackendError(
                f"Cannot reach the container engine at {self.base_url} to {doing} ({error}). "
                "Start it (scripts/engine up) or point DOCKER_HOST at a running one."
            ) from error

    def _network_gateway(self, client: docker.DockerClient) -> str:
        """Create ``molecule-net`` when missing; returns its gateway address (the host's end)."""
        try:
            network = client.networks.get(self.network)
        except NotFound:
            try:
                network = client.networks.create(
                    self.network, driver="bridge", labels={"molecule.network": "workspaces"}
                )
            except APIError as error:
                if not is_conflict(error):
                    raise
                network = client.networks.get(self.network)  # another worker created it first
        for config in (network.attrs.get("IPAM") or {}).get("Config") or []:
            if config.get("Gateway"):
                return config["Gateway"]
        raise BackendError(
            f"The network {self.network!r} has no gateway address, so containers cannot reach "
            "the console. Remove it (docker network rm) and let the console create it again.",
            permanent=True,
        )

    def _ensure_volume(self, client: docker.DockerClient, spec: InstanceSpec, name: str) -> str:
        try:
            client.volumes.get(name)
        except NotFound:
            labels = {LABEL_CONSOLE: self.console_id, LABEL_WORKSPACE: spec.workspace_id}
            try:
                client.volumes.create(name, labels=labels)
            except APIError as error:
                if not is_conflict(error):
                    raise
        return name

    def _clear_name(self, client: docker.DockerClient, spec: InstanceSpec) -> None:
        """Remove a leftover container of this workspace that holds its name; refuse others'."""
        name = container_name(spec.workspace_id)
        try:
            stale = client.containers.get(name)
        except NotFound:
            return
        if stale.labels.get(LABEL_WORKSPACE) != spec.workspace_id:
            raise BackendError(
                f"A container named {name} already exists and is not workspace "
                f"{spec.workspace_id}'s; remove or rename it (docker rm -f {name}), then retry.",
                permanent=True,
            )
        # Dispatch stopped the previous instance it knew of; this one it did not know (a start
        # whose result was never recorded). Only one instance per workspace may run.
        with unless_gone():
            stale.remove(force=True)

    def _platform_url(self, spec: InstanceSpec, gateway: str) -> tuple[str, dict[str, str]]:
        """(PLATFORM_URL as the container reaches the console, extra_hosts to make it so)."""
        url = spec.platform_url
        host = urlsplit(url).hostname or ""
        if spec.tier.host_network:
            return (with_host(url, "127.0.0.1") if is_loopback_or_wildcard(host) else url), {}
        if self.registry_url:
            return self.registry_url, {}
        if is_loopback_or_wildcard(host):
            return with_host(url, CONSOLE_HOST_ALIAS), {CONSOLE_HOST_ALIAS: gateway}
        return url, {}

    def _agent_env(self, spec: InstanceSpec, gateway: str) -> tuple[dict[str, str], str, dict, int]:
        """(environment, url for host-network tiers or "", extra_hosts, a2a port) for the agent.

        Raises a permanent BackendError when the console would turn the agent's calls away.
        """
        platform_url, extra_hosts = self._platform_url(spec, gateway)
        configs.checked_platform_url(platform_url)
        # The image runs the agent with ``python3 -I`` (scripts/agent-image): no PYTHON*
        # variable steers it, so none is set here either.
        env = {**spec.env, "LANG": "C.UTF-8"}
        contract = configs.contract_env(
            spec, platform_url=platform_url, configs_dir=configs.CONFIGS_MOUNT
        )
        if spec.tier.host_network:
            port = free_loopback_port()
            env |= {
                # Not the contract: on the host's network the agent listens on loopback only.
                "MOLECULE_AGENT_HOST": "127.0.0.1",
                "DOCKER_HOST": f"unix://{SOCKET_IN_CONTAINER}",
                **contract,
            }
            return env, f"http://127.0.0.1:{port}", extra_hosts, port
        if spec.tier.workspace_volume:
            env["MOLECULE_WORKSPACE_DIR"] = "/workspace"
        if spec.tier.read_only_rootfs:
            env["HOME"] = "/tmp"
        return env | contract, "", extra_hosts, AGENT_PORT

    def _container(self, client: docker.DockerClient, instance: Instance) -> Container:
        """The instance's container (raises NotFound when it is gone)."""
        try:
            return client.containers.get(instance.state.get("container") or instance.instance_id)
        except APIError as error:
            if is_gone(error) and not isinstance(error, NotFound):
                raise NotFound(str(error), response=error.response) from error
            raise

    # --- contract -----------------------------------------------------------------------------
    def start(self, spec: InstanceSpec) -> Instance:
        """Create and start the workspace's container; returns it with its published URL.

        Raises BackendError: permanent when the image is missing, the workspace_dir is refused or
        a foreign container holds the name; transient when the engine cannot be reached. A
        container created before a failure is removed again, so nothing is left running.
        """
        if problem := start_problem(spec.env):
            raise BackendError(f"The agent cannot be started: {problem}.", permanent=True)
        # Judged before anything is created: a hostile template path refuses the whole start.
        # The port is only known for host-network tiers once the environment is built: judged
        # here with the bridge port, rendered again below.
        configs.contents(spec, port=AGENT_PORT)
        name = container_name(spec.workspace_id)
        image = self.image if spec.image == BUILTIN else spec.image
        bind = ""
        if spec.tier.workspace_volume and spec.workspace_dir:
            bind = validated_workspace_dir(spec.workspace_dir)
        with self._engine(f"start container {name}") as client:
            try:
                image_id = client.images.get(image).id
            except NotFound as error:
                raise BackendError(
                    f"The workspace image {image!r} is not in the container engine, and "
                    "images are never pulled at run time. Build it with scripts/agent-image, or "
                    "set MOLECULE_WORKSPACE_IMAGE (or the runtime's image in "
                    "MOLECULE_RUNTIMES_FILE) to an image the engine has.",
                    permanent=True,
                ) from error
            gateway = "" if spec.tier.host_network else self._network_gateway(client)
            env, url, extra_hosts, port = self._agent_env(spec, gateway)
            content = configs.contents(spec, port=port)
            storage = bind
            if spec.tier.workspace_volume and not bind:
                storage = self._ensure_volume(client, spec, volume_name(spec.workspace_id))
            configs_volume = self._ensure_volume(
                client, spec, configs_volume_name(spec.workspace_id)
            )
            self._clear_name(client, spec)
            labels = {
                LABEL_CONSOLE: self.console_id,
                LABEL_WORKSPACE: spec.workspace_id,
                LABEL_ORG: spec.org_slug,
                LABEL_GENERATION: str(spec.generation),
                LABEL_TIER: str(spec.tier.tier),
            }
            options = container_options(
                spec.tier,
                storage=storage,
                network=self.network,
                engine_socket=self.engine_socket,
                configs=configs_volume,
            )
            try:
                container = client.containers.create(
                    image,
                    name=name,
                    hostname=name,
                    labels=labels,
                    environment=env,
                    extra_hosts=extra_hosts or None,
                    # A real PID 1 forwards SIGTERM, so stop takes well under a second. In the
                    # host's PID namespace there is a PID 1 already (the engine refuses an init
                    # there); the agent handles SIGTERM itself.
                    init=not spec.tier.host_pid,
                    detach=True,
                    **options,
                )
            except ImageNotFound as error:  # removed between the check and the create
                raise BackendError(
                    f"The workspace image {image!r} disappeared from the engine; "
                    "build it again with scripts/agent-image.",
                    permanent=True,
                ) from error
            except NotFound as error:
                raise BackendError(
                    f"The engine cannot create {name}: {error.explanation}. If the workspace "
                    f"directory {bind!r} does not exist on the engine's host, create it.",
                    permanent=True,
                ) from error
            except APIError as error:
                if is_conflict(error):
                    raise BackendError(
                        f"Another container took the name {name} while this one was being "
                        "created (a concurrent start?); the start will be retried."
                    ) from error
                raise
            try:
                # Into the created container's /configs volume, before the agent can look.
                archive = configs_archive(content, mtime=time.time())
                if not container.put_archive(configs.CONFIGS_MOUNT, archive):
                    raise BackendError(
                        f"The engine did not unpack the configs into {name}'s /configs."
                    )
                container.start()
                container.reload()
                if not spec.tier.host_network:
                    url = f"http://127.0.0.1:{self._published_port(container)}"
            except BaseException:
                with contextlib.suppress(DockerException, requests.exceptions.RequestException):
                    container.remove(force=True)
                raise
        state = {
            "container": container.id,
            "name": name,
            "workspace_id": spec.workspace_id,
            "volume": storage if storage and not bind else "",
            "configs": configs_volume,
            "bind": bind,
            "port": int(url.rsplit(":", 1)[1]),
            "image": image,
            "tier": spec.tier.tier,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        return Instance(container.id, url, state, ran=f"{image} ({image_id[:19]})")

    @staticmethod
    def _published_port(container: Container) -> int:
        ports = (container.attrs.get("NetworkSettings") or {}).get("Ports") or {}
        bindings = ports.get(f"{AGENT_PORT}/tcp") or []
        if not bindings or not bindings[0].get("HostPort"):
            raise BackendError(
                f"The engine started {container.name} but published no port for the agent "
                f"({ports}); check the engine's port forwarding (netavark, iptables)."
            )
        return int(bindings[0]["HostPort"])

    def stop(self, instance: Instance) -> None:
        """Stop the container (SIGTERM, then SIGKILL after the timeout) and remove it.

        Idempotent: a container that is already gone is fine. Keeps the /workspace volume.
        Raises BackendError when the engine cannot be reached or refuses.
        """
        name = instance.state.get("name", instance.instance_id[:12])
        with self._engine(f"stop container {name}") as client:
            try:
                container = self._container(client, instance)
            except NotFound:
                return
            with unless_gone():
                if container.status == "running":
                    container.stop(timeout=self.stop_timeout)
                container.remove(force=True)

    def is_running(self, instance: Instance) -> bool:
        """True while the container runs. Raises BackendError when the engine cannot be asked."""
        with self._engine("inspect a container") as client:
            try:
                container = self._container(client, instance)
            except NotFound:
                return False
            return bool((container.attrs.get("State") or {}).get("Running"))

    def console(self, instance: Instance, *, tail: int = 200) -> str:
        """The container's log (the agent's stdout and stderr) as text.

        Led by a line saying what was started and, once the container has exited, followed by a
        line saying how (out of memory, killed, exit code). "" when the container is gone.
        Raises BackendError when the engine cannot be reached.
        """
        with self._engine("read a container's log") as client:
            try:
                container = self._container(client, instance)
                log = self._log_tail(container, tail)
            except APIError as error:
                if is_gone(error):
                    return ""
                raise
            lines = [
                f"--- {instance.state.get('started_at', '')} molecule: container "
                f"{container.name} ({instance.state.get('image', '')}, "
                f"tier {instance.state.get('tier', '?')}) on {instance.url}",
                *log,
            ]
            if ended := self._exit_reason(client, container):
                lines.append(ended)
        return "\n".join(lines[-tail:])

    @staticmethod
    def _log_tail(container: Container, tail: int) -> list[str]:
        # Podman 4.3 answers the API's ``tail`` with lines missing (it mis-counts partial
        # lines), so the whole log is streamed and only the last lines are kept. Agents log
        # little: state changes and errors, not heartbeats.
        last: deque[str] = deque(maxlen=tail)
        pending = b""
        for chunk in container.logs(stream=True, follow=False):
            pending += chunk
            *complete, pending = pending.split(b"\n")
            last.extend(line.decode(errors="replace") for line in complete)
        if pending:
            last.append(pending.decode(errors="replace"))
        return list(last)

    def _exit_reason(self, client: docker.DockerClient, container: Container) -> str:
        state = container.attrs.get("State") or {}
        if state.get("Running") or state.get("Status") in ("created", "configured"):
            return ""
        if known := self._exit_reasons.get(container.id):
            return known
        code = state.get("ExitCode")
        memory = (container.attrs.get("HostConfig") or {}).get("Memory") or 0
        if code == 137 and memory and not state.get("OOMKilled"):
            # Podman never sets OOMKilled; a SIGKILL that nobody sent through the engine, under
            # a memory cap, is the kernel's OOM killer.
            killed = self._killed(client, container)
            oom = killed is False
        else:
            killed, oom = True, bool(state.get("OOMKilled"))
        if oom:
            reason = (
                f"--- molecule: the agent was killed for using more than its {memory // MiB} MiB "
                "memory limit (exit 137, out of memory). Reduce what it loads, or move the "
                "workspace to a tier without the cap (T3) and restart it."
            )
        elif code == 137 and killed is None:
            reason = (
                "--- molecule: the container was killed (SIGKILL, exit 137): by hand, or for "
                "going over its memory limit (the engine's event log could not tell which)."
            )
        elif code == 137:
            reason = "--- molecule: the container was killed (SIGKILL, exit 137)."
        else:
            reason = f"--- molecule: the container exited with code {code}."
        if killed is not None:
            # An exited container's story does not change; the page asks every few seconds.
            if len(self._exit_reasons) > 1000:
                self._exit_reasons.clear()
            self._exit_reasons[container.id] = reason
        return reason

    @staticmethod
    def _killed(client: docker.DockerClient, container: Container) -> bool | None:
        """Whether someone sent the container a kill through the engine (its event log says).

        None when the log cannot tell: unreadable, or rotated since the container was created
        (its "create" event is gone too, so a missing "kill" proves nothing).
        """
        try:
            created = datetime.strptime(container.attrs["Created"][:19], "%Y-%m-%dT%H:%M:%S")
        except (KeyError, ValueError):
            return None
        for attempt in range(3):
            try:
                events = client.api.events(
                    since=int(created.replace(tzinfo=UTC).timestamp()) - 1,
                    until=int(time.time()) + 1,
                    filters={"container": container.id},
                    decode=True,
                )
                seen = {event.get("status") or event.get("Action") for event in events}
            except (ValueError, DockerException, requests.exceptions.RequestException) as error:
                log.warning("reading the engine's events for %s: %s", container.name, error)
                time.sleep(0.2 * (attempt + 1))
                continue
            if "kill" in seen:
                return True
            return False if "create" in seen else None
        return None

    def remove_storage(self, instance: Instance) -> None:
        """Remove the workspace's /workspace and /configs volumes (never an operator's own
        directory).

        Called on delete, after stop. Idempotent. Works from the workspace id alone too, so a
        workspace whose instance state was already forgotten still loses its volumes.
        """
        workspace_id = instance.state.get("workspace_id")
        names = [instance.state.get("volume"), instance.state.get("configs")]
        if workspace_id:
            if not instance.state.get("bind"):
                names.append(volume_name(workspace_id))
            names.append(configs_volume_name(workspace_id))
        for name in dict.fromkeys(name for name in names if name):
            with self._engine(f"remove volume {name}") as client, unless_gone():
                client.volumes.get(name).remove(force=True)

    def has_storage(self, instance: Instance) -> bool | None:
        """Whether the workspace's volume still exists (None for an operator's own directory,
        which lives on the engine's host and is never removed)."""
        if instance.state.get("bind"):
            return None
        name = instance.state.get("volume") or volume_name(instance.state.get("workspace_id", ""))
        with self._engine(f"inspect volume {name}") as client:
            try:
                client.volumes.get(name)
            except APIError as error:
                if is_gone(error):
                    return False
                raise
            return True

    def list_instances(self) -> list[str]:
        """Ids of every container labelled as this console's, running or exited."""
        return self._listed(everything=True)

    def running_instances(self) -> list[str] | None:
        """Ids of this console's running containers (``docker ps``): one call for the fleet."""
        return self._listed(everything=False)

    def _listed(self, *, everything: bool) -> list[str]:
        with self._engine("list containers") as client:
            # The plain listing: the SDK's containers.list() inspects each container it finds,
            # which fails for one removed in between.
            found = client.api.containers(
                all=everything, filters={"label": f"{LABEL_CONSOLE}={self.console_id}"}
            )
            return [summary["Id"] for summary in found]
