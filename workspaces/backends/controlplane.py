"""The ``controlplane`` backend: a control plane runs each workspace as its own VM (the SaaS path).

The console is an HTTP client (httpx) of the control plane; docs/controlplane-api.md is the
contract written out for whoever implements the other side. In short, every request carries
``Authorization: Bearer <MOLECULE_CONTROLPLANE_TOKEN>`` (one shared secret per console: the
control plane scopes instances to the credential that created them), and:

* ``POST /cp/workspaces/provision`` with ``{"workspace_id", "org", "name", "runtime", "image",
  "tier", "tier_settings", "env", "configs", "platform_url", "generation", "workspace_dir"}``
  and an ``Idempotency-Key: <workspace_id>:<generation>`` header → 201 (or 200 for a repeated
  key) ``{"instance_id", "url", "state", ...}``. ``configs`` is the agent contract's configs
  directory (docs/agent-contract.md), path → base64: the template's files, ``.auth_token`` and
  ``config.yaml`` (``a2a.port`` 8000, the port a VM exposes), for the VM's /configs; ``env``
  is the agent's environment: the contract's ``WORKSPACE_ID``, ``PLATFORM_URL``,
  ``CONFIGS_DIR`` and ``WORKSPACE_CONFIG_PATH`` (both /configs), heartbeat interval, secrets.
  The control plane may replace ``PLATFORM_URL`` with the console's address as its VMs reach
  it. The answer comes when the VM is created, not when the agent is up: the agent registers
  with the console by itself.
* ``DELETE /cp/workspaces/<instance_id>`` stops and destroys the VM, keeping its volume;
  404 means it is already gone, which is success (stop is idempotent).
* ``GET /cp/workspaces/<instance_id>/status`` → ``{"running": bool, "state", ...}``; a booting
  VM counts as running; 404 means not running.
* ``GET /cp/workspaces/<instance_id>/console?tail=N`` → the VM's boot and agent log as text.
* ``GET /cp/workspaces[?org=SLUG]`` → ``{"instances": [{"instance_id", "workspace_id", "org",
  "state", "running", ...}]}``: every instance this credential owns (the orphan sweep).
* ``DELETE /cp/volumes/<workspace_id>`` removes the workspace's /workspace volume (one per
  workspace, kept across restarts); 404 means already gone; 409 while an instance still uses it.

Failures: connection errors, timeouts and 5xx answers are retried
``MOLECULE_CONTROLPLANE_RETRIES`` times with exponential backoff (``MOLECULE_CONTROLPLANE_BACKOFF``,
doubled each time); a 4xx is never retried. Every failure is a :class:`BackendError` naming the
control plane's URL and what to check; a refused credential or a refused request is
``permanent`` (retrying cannot help until someone changes something), except 409, 423 and 429,
which may pass by themselves.

The provision retry is safe because of the idempotency key: a provision whose answer was lost
and that is sent again gets the same VM back, not a second one nobody records.
"""

from __future__ import annotations

import base64
import dataclasses
import time
from typing import Any, ClassVar
from urllib.parse import quote

import httpx
from django.conf import settings

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
    divergent,
    parity,
)
from workspaces.backends.controlplane_files import ControlPlaneFiles
from workspaces.runtimes import BUILTIN

MAX_BACKOFF_SECONDS = 30.0
# 4xx answers that are not retried here but are not permanent either.
LATER = frozenset({409, 423, 429})
DETAIL_LIMIT = 300
# The port the agent listens on inside a VM (config.yaml's a2a.port, as in a container).
VM_AGENT_PORT = 8000


def _detail(response: httpx.Response) -> str:
    """The control plane's own explanation of an error answer, short."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return body["error"][:DETAIL_LIMIT]
    return response.text.strip()[:DETAIL_LIMIT] or response.reason_phrase


class ControlPlaneBackend(ControlPlaneFiles, Backend):
    """A client of the control plane at ``MOLECULE_CONTROLPLANE_URL``.

    Each keyword overrides the setting of the same name (tests point one at a double).
    """

    name = "controlplane"
    capabilities: ClassVar[dict[str, Declared]] = {
        **at_parity(*LIFECYCLE_ROWS, *CONTRACT_ROWS),
        "a2a": parity(
            "The console posts to the VM's URL that the control plane returned at provision, as "
            "Molecule's platform posts to a workspace's recorded URL; the control plane is not "
            "in the path, so it needs no A2A endpoint."
        ),
        "files": divergent(
            "Through the control plane's files endpoints (/cp/files/<workspace id>/...): the "
            "/workspace volume outlives the VMs, but /configs is the current VM's, written anew "
            "from the provision request at every start, so a file written there lasts until "
            "the next start (on local and docker it stays), and a stopped workspace has none."
        ),
        "plugins": parity(
            "Live through the control plane's files endpoints into the VM's /configs; every "
            "start delivers the workspace's plugins again with the provision request's configs."
        ),
        "redaction": parity(),
        **{
            f"tier_{n}": divergent(
                "Each workspace is a VM: its isolation is the VM boundary, and the control plane "
                "applies the tier inside it. The console sends the tier's settings with every "
                "provision; host PID, host network and the engine socket mean the VM's own."
            )
            for n in (1, 2, 3, 4)
        },
    }

    def __init__(
        self,
        *,
        url: str | None = None,
        token: str | None = None,
        image: str | None = None,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        retries: int | None = None,
        backoff: float | None = None,
    ) -> None:
        def pick(value: Any, setting: str) -> Any:
            return getattr(settings, setting) if value is None else value

        self.url = str(pick(url, "MOLECULE_CONTROLPLANE_URL")).rstrip("/")
        self.token = str(pick(token, "MOLECULE_CONTROLPLANE_TOKEN"))
        self.image = str(pick(image, "MOLECULE_CONTROLPLANE_IMAGE"))
        self.connect_timeout = float(pick(connect_timeout, "MOLECULE_CONTROLPLANE_CONNECT_TIMEOUT"))
        self.read_timeout = float(pick(read_timeout, "MOLECULE_CONTROLPLANE_READ_TIMEOUT"))
        self.retries = max(0, int(pick(retries, "MOLECULE_CONTROLPLANE_RETRIES")))
        self.backoff = float(pick(backoff, "MOLECULE_CONTROLPLANE_BACKOFF"))
        self._client = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {self.token}", "User-Agent": "molecule-console"},
            timeout=httpx.Timeout(self.read_timeout, connect=self.connect_timeout),
            # The bearer secret goes to the control plane directly, never through whatever
            # proxy the environment of a worker happens to name.
            trust_env=False,
        )

    def close(self) -> None:
        """Close the connection pool (tests; a console keeps its backends for its lifetime)."""
        self._client.close()

    # --- HTTP ---------------------------------------------------------------------------------
    def _call(
        self,
        method: str,
        path: str,
        *,
        what: str,
        missing_ok: bool = False,
        answer: frozenset[int] = frozenset(),
        **request: Any,
    ) -> httpx.Response | None:
        """Send one request with bounded retries.

        Returns the 2xx response, or None for a 404 when ``missing_ok``. Connection errors,
        timeouts and 5xx answers are retried ``retries`` times, waiting ``backoff`` seconds and
        doubling; a 4xx is never retried. Raises BackendError: permanent for a refused
        credential or any other 4xx but 409/423/429, transient when the control plane was
        unreachable, slow or failing on every attempt. ``what`` completes "… failed to <what>"
        in the messages. ``answer``: 4xx statuses handed back to the caller, who reads them.
        """
        if not self.token:
            raise BackendError(
                f"MOLECULE_CONTROLPLANE_TOKEN is not set, so the console cannot {what} on the "
                f"control plane at {self.url}; set it to the control plane's shared secret.",
                permanent=True,
            )
        attempts = self.retries + 1
        failure = ""
        for attempt in range(attempts):
            if attempt:
                time.sleep(min(self.backoff * 2 ** (attempt - 1), MAX_BACKOFF_SECONDS))
            try:
                response = self._client.request(method, path, **request)
            except (httpx.ConnectError, httpx.ConnectTimeout) as error:
                reason = str(error) or type(error).__name__
                failure = (
                    f"Cannot reach the control plane at {self.url} to {what}: {reason} "
                    f"({attempts} attempts). Check MOLECULE_CONTROLPLANE_URL and that the "
                    "control plane is running."
                )
                continue
            except httpx.TimeoutException:
                failure = (
                    f"The control plane at {self.url} did not answer within "
                    f"{self.read_timeout:g}s when asked to {what} ({attempts} attempts). Check "
                    "its health, or raise MOLECULE_CONTROLPLANE_READ_TIMEOUT."
                )
                continue
            except httpx.TransportError as error:
                failure = (
                    f"The connection to the control plane at {self.url} broke when asked to "
                    f"{what}: {error or type(error).__name__} ({attempts} attempts). Check the "
                    "network between the console and the control plane."
                )
                continue
            status = response.status_code
            if status >= 500:
                failure = (
                    f"The control plane at {self.url} failed to {what}: it answered {status} "
                    f"({_detail(response)}) to {attempts} attempts. Retry later, or look at the "
                    "control plane's own logs."
                )
                continue
            if status in (401, 403):
                raise BackendError(
                    f"The control plane at {self.url} refused the console's credentials "
                    f"({status}) when asked to {what}: MOLECULE_CONTROLPLANE_TOKEN is wrong; set "
                    "it to the control plane's shared secret.",
                    permanent=True,
                )
            if status == 404 and missing_ok:
                return None
            if status in answer:
                return response
            if response.is_error:
                raise BackendError(
                    f"The control plane at {self.url} refused to {what} ({status}): "
                    f"{_detail(response)}.",
                    # A conflict (say a volume still in use) or a rate limit can pass: dispatch
                    # may try again later. Any other refusal stays a refusal.
                    permanent=status not in LATER,
                )
            return response
        raise BackendError(failure)

    def _json(self, response: httpx.Response, *, what: str, keys: tuple[str, ...]) -> Any:
        """The answer's JSON object, checked for ``keys``; raises a permanent BackendError."""
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict) or any(key not in data for key in keys):
            raise BackendError(
                f"The control plane at {self.url} answered the request to {what} with something "
                f"other than a JSON object with {', '.join(keys)}: "
                f"{response.text[:DETAIL_LIMIT]!r}. Is MOLECULE_CONTROLPLANE_URL the control "
                "plane's API?",
                permanent=True,
            )
        return data

    @staticmethod
    def _path(instance_id: str) -> str:
        return f"/cp/workspaces/{quote(instance_id, safe='')}"

    # --- contract -----------------------------------------------------------------------------
    def start(self, spec: InstanceSpec) -> Instance:
        """Ask the control plane for a VM running the agent; returns it as soon as it exists.

        The state records the workspace id and org, which locate the volume for a later delete.
        Raises BackendError (permanent when the control plane refused the request).
        """
        what = f"provision workspace {spec.org_slug}/{spec.name}"
        platform_url = configs.checked_platform_url(spec.platform_url)
        # Judged before anything is sent: a hostile template path refuses the whole start.
        content = configs.contents(spec, port=VM_AGENT_PORT)
        image = self.image if spec.image == BUILTIN else spec.image
        tier = dataclasses.asdict(spec.tier)
        body = {
            "workspace_id": spec.workspace_id,
            "org": spec.org_slug,
            "name": spec.name,
            "runtime": spec.runtime,
            "image": image,
            "tier": tier.pop("tier"),
            "tier_settings": tier,
            "env": spec.env
            | configs.contract_env(
                spec, platform_url=platform_url, configs_dir=configs.CONFIGS_MOUNT
            ),
            "configs": {
                path: base64.b64encode(data).decode("ascii") for path, data in content.items()
            },
            "platform_url": platform_url,
            "generation": spec.generation,
            "workspace_dir": spec.workspace_dir,
        }
        headers = {"Idempotency-Key": f"{spec.workspace_id}:{spec.generation}"}
        response = self._call(
            "POST", "/cp/workspaces/provision", what=what, json=body, headers=headers
        )
        assert response is not None
        data = self._json(response, what=what, keys=("instance_id", "url", "state"))
        if not isinstance(data["instance_id"], str) or not data["instance_id"]:
            raise BackendError(
                f"The control plane at {self.url} created no instance id for {what}.",
                permanent=True,
            )
        state = {
            "workspace_id": spec.workspace_id,
            "org": spec.org_slug,
            "booted_as": data["state"],
        }
        ran = data.get("image") if isinstance(data.get("image"), str) and data["image"] else image
        return Instance(data["instance_id"], str(data["url"] or ""), state, ran=ran)

    def stop(self, instance: Instance) -> None:
        """Destroy the VM (its volume stays). Idempotent: an unknown instance is already gone."""
        if instance.instance_id:
            self._call(
                "DELETE",
                self._path(instance.instance_id),
                what=f"stop instance {instance.instance_id}",
                missing_ok=True,
            )

    def is_running(self, instance: Instance) -> bool:
        """The control plane's ``running`` flag (true while booting); False for an unknown VM."""
        if not instance.instance_id:
            return False
        what = f"check instance {instance.instance_id}"
        response = self._call(
            "GET", f"{self._path(instance.instance_id)}/status", what=what, missing_ok=True
        )
        if response is None:
            return False
        return self._json(response, what=what, keys=("running",))["running"] is True

    def console(self, instance: Instance, *, tail: int = 200) -> str:
        """The VM's boot and agent log, last ``tail`` lines; "" when the VM is gone."""
        if not instance.instance_id:
            return ""
        response = self._call(
            "GET",
            f"{self._path(instance.instance_id)}/console",
            what=f"read the console of instance {instance.instance_id}",
            missing_ok=True,
            params={"tail": tail},
        )
        return "" if response is None else response.text

    def remove_storage(self, instance: Instance) -> None:
        """Delete the workspace's volume. Idempotent; a no-op when the state names no workspace."""
        workspace_id = instance.state.get("workspace_id")
        if workspace_id:
            self._call(
                "DELETE",
                f"/cp/volumes/{quote(str(workspace_id), safe='')}",
                what=f"remove the volume of workspace {workspace_id}",
                missing_ok=True,
            )

    def has_storage(self, instance: Instance) -> bool | None:
        """Whether the control plane still holds the workspace's volume (GET /cp/volumes/<id>)."""
        workspace_id = instance.state.get("workspace_id")
        if not workspace_id:
            return None
        response = self._call(
            "GET",
            f"/cp/volumes/{quote(str(workspace_id), safe='')}",
            what=f"look up the volume of workspace {workspace_id}",
            missing_ok=True,
        )
        return response is not None

    def list_instances(self, *, org: str | None = None) -> list[str]:
        """Ids of every instance the control plane holds for this console (optionally one org).

        Exited VMs are included: they still exist on the control plane until deleted.
        """
        return [item["instance_id"] for item in self._listed(org)]

    def running_instances(self) -> list[str] | None:
        """Ids of the VMs whose ``running`` flag is true (booting counts), in one request."""
        return [item["instance_id"] for item in self._listed(None) if item.get("running") is True]

    def _listed(self, org: str | None) -> list[dict[str, Any]]:
        what = "list instances" + (f" of org {org}" if org else "")
        params = {"org": org} if org else {}
        response = self._call("GET", "/cp/workspaces", what=what, params=params)
        assert response is not None
        listed = self._json(response, what=what, keys=("instances",))["instances"]
        if not isinstance(listed, list) or not all(
            isinstance(item, dict) and isinstance(item.get("instance_id"), str) for item in listed
        ):
            raise BackendError(
                f"The control plane at {self.url} listed instances without instance ids.",
                permanent=True,
            )
        return listed
