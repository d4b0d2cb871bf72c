"""Talking to the control-plane double (cpdouble/) the way the tests do: a backend pointed at
it, its faults switched over HTTP, the requests it answered and the VMs it booted.

The double itself runs in the fixtures of tests/support/cpdouble_fixtures.py (``cp_double``,
``cp_fleet``), which accept ``CP_TOKEN``.
"""

from __future__ import annotations

from typing import Any

import httpx

from cpdouble import ControlPlaneDouble
from tests.support.waiting import wait_for
from workspaces.backends import Instance
from workspaces.backends.controlplane import ControlPlaneBackend

CP_TOKEN = "cp-shared-secret-for-tests"
PROVISION = ("POST", "/cp/workspaces/provision")


def client(double: ControlPlaneDouble | None = None, **overrides: Any) -> ControlPlaneBackend:
    """A backend pointed at ``double``, with quick retries; keywords override the options."""
    options: dict[str, Any] = {
        "url": double.url if double else "",
        "token": double.token if double else "no-double-to-check-it",
        "image": "molecule-agent:test",
        "connect_timeout": 2,
        "read_timeout": 10,
        "retries": 2,
        "backoff": 0.05,
    }
    return ControlPlaneBackend(**(options | overrides))


def post_faults(double: ControlPlaneDouble, **faults: Any) -> dict[str, Any]:
    """Switch the double's faults over HTTP, as a demo or another process would."""
    response = httpx.post(
        f"{double.url}/_faults",
        json=faults,
        headers={"Authorization": f"Bearer {double.token}"},
        timeout=10,
        trust_env=False,
    )
    assert response.status_code == 200, response.text
    return response.json()


def requests_to(double: ControlPlaneDouble, method: str, path: str) -> list[int]:
    """Statuses the double answered to ``method path``, in order."""
    with double.lock:
        return [status for m, p, status in double.requests if (m, p) == (method, path)]


def vm_of(double: ControlPlaneDouble, instance: Instance) -> dict[str, Any]:
    (vm,) = [vm for vm in double.vms() if vm["instance_id"] == instance.instance_id]
    return vm


def agent_pid(double: ControlPlaneDouble, instance: Instance) -> int:
    return wait_for(lambda: vm_of(double, instance)["pid"], timeout=20)
