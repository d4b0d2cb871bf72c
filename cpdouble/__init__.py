"""A control-plane double: a stand-in for the external system the ``controlplane`` backend calls.

It is not part of the console. It implements the HTTP contract in docs/controlplane-api.md over
real HTTP (stdlib ``http.server``) and "boots a VM" by starting the workspace agent as a local
child process in its own process group, so workspaces on the controlplane backend really
register and heartbeat. Its faults (slow boot, 500s, a lost VM, a DELETE that does nothing, a
stalled answer) are switchable at runtime through ``POST /_faults``.

It deliberately imports nothing from the console (``workspaces``, ``orgs``, ``molecule``,
Django): the only thing it shares with the console is the agent program, which it runs by path.
Run it with ``manage.py fake_controlplane`` or ``python -m cpdouble``; tests start it in a thread.
"""

from __future__ import annotations

from cpdouble.server import AGENT, ControlPlaneDouble, Faults, serve

__all__ = ["AGENT", "ControlPlaneDouble", "Faults", "serve"]
