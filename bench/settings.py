"""Settings for the measurements that run inside the bench's own processes (admin, sweeps,
import): the console's settings, with every backend replaced by the seeded stand-in.

The web server the heartbeats and pages are measured through runs on ``molecule.settings``
itself, unchanged: only the database comes from the environment, as in production.
"""

from __future__ import annotations

from molecule.settings import *  # noqa: F403
from molecule.settings import ALLOWED_HOSTS

# The health and orphan sweeps ask the backends which instances run. The bench has no machines:
# bench.machines answers from the rule the seed wrote the rows by, for every backend name.
MOLECULE_BACKEND_CLASSES = {
    name: f"bench.machines.{name.capitalize()}Machines"
    for name in ("local", "docker", "controlplane")
}
MOLECULE_BACKENDS = list(MOLECULE_BACKEND_CLASSES)
# The Django test client's host, for the admin changelists measured in-process.
ALLOWED_HOSTS = [*ALLOWED_HOSTS, "testserver"]
