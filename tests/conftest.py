"""Test-suite wiring: a real PostgreSQL for the whole session, eager Celery, backends, users.

PostgreSQL is started by ``tests.support.services`` (as the ``postgres`` user when running as
root) on a port picked now, and pytest-postgresql's ``postgresql_noproc`` fixture checks and
describes it; pytest-django then creates the test database on it.

Fixtures only: the helpers the tests share are in tests/support/.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from pytest_postgresql import factories

from molecule.celery import app as celery_app
from orgs.models import Org, OrgMembership
from tests.support import services
from tests.support.procs import kill_local_agents
from tests.support.rows import MakeWorkspace
from tests.support.users import make_member
from workspaces import backends, dispatch
from workspaces.models import Status, Workspace

PG_PORT = services.free_port()
PG_USER = "postgres" if os.geteuid() == 0 else os.environ.get("USER", "postgres")
pg_noproc = factories.postgresql_noproc(host="127.0.0.1", port=PG_PORT, user=PG_USER)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[services.PostgresServer]:
    with services.postgres(PG_PORT) as server:
        yield server


@pytest.fixture(scope="session")
def django_db_modify_db_settings(pg_server: services.PostgresServer, pg_noproc: Any) -> None:
    from django.conf import settings
    from django.db import connections

    settings.DATABASES["default"] = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "molecule",
        "HOST": pg_noproc.host,
        "PORT": str(pg_noproc.port),
        "USER": pg_noproc.user,
        "PASSWORD": "",
        "TEST": {"NAME": "test_molecule"},
    }
    # The connection handler reads DATABASES once; make it read the PostgreSQL settings.
    connections.close_all()
    connections.__dict__.pop("settings", None)
    with contextlib.suppress(AttributeError):
        del connections["default"]


@pytest.fixture(scope="session", autouse=True)
def _celery_eager() -> None:
    # Tasks run inline when their transaction commits; tests/workspaces/test_celery_redis.py
    # runs them through a real Redis broker and worker instead.
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True


@pytest.fixture(scope="session")
def _agents_base() -> Iterator[Path]:
    # Not under tmp_path: pytest keeps /tmp/pytest-of-<user> at 0700, and local agents, which run
    # as users of their own when the suite runs as root, must pass through their root's parents.
    base = Path(tempfile.mkdtemp(prefix="molecule-agents-"))
    base.chmod(0o711)
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def local_root(_agents_base: Path, tmp_path: Path) -> Path:
    """A fresh directory for a local backend's root that the agents' own users can reach."""
    root = Path(tempfile.mkdtemp(dir=_agents_base, prefix=f"{tmp_path.name[:40]}-"))
    root.chmod(0o711)
    return root


@pytest.fixture(autouse=True)
def _fresh_backends(settings: Any, local_root: Path) -> Iterator[None]:
    # The default hasher is slow on purpose; every user fixture hashes a password.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MOLECULE_LOCAL_ROOT = local_root / "local-workspaces"
    backends.reset()
    yield
    backends.reset()


@pytest.fixture
def recording(settings: Any) -> dict[str, Any]:
    """Every backend replaced by an in-memory recorder, keyed by backend name."""
    from tests.support.fakes import RECORDING

    settings.MOLECULE_BACKEND_CLASSES = {**settings.MOLECULE_BACKEND_CLASSES, **RECORDING}
    settings.MOLECULE_BACKENDS = ["local", "docker", "controlplane"]
    backends.reset()
    found = {name: backends.get(name) for name in RECORDING}
    for backend in found.values():
        backend.reset()
    return found


@pytest.fixture
def make_workspace(django_capture_on_commit_callbacks: Any) -> MakeWorkspace:
    """A workspace brought to ``status`` the way the fleet would get there, through dispatch.

    For tests of the adapters around dispatch (with the ``recording`` backends): registering is
    the agent's part (tests/workspaces/test_registry.py), so here it is simply taken as done.
    """

    def make(
        org: Org, status: str = Status.ONLINE, *, name: str = "PM", **fields: Any
    ) -> Workspace:
        with django_capture_on_commit_callbacks(execute=True):
            workspace = dispatch.create_workspace(org=org, name=name, actor="test", **fields)
        if status != Status.PROVISIONING:
            Workspace.objects.filter(pk=workspace.pk).update(status=Status.ONLINE)
        verb = {Status.OFFLINE: "stop", Status.PAUSED: "pause", Status.REMOVED: "delete"}
        if status in verb:
            with django_capture_on_commit_callbacks(execute=True):
                dispatch.VERBS[verb[status]](workspace_id=workspace.pk, actor="test")
        workspace.refresh_from_db()
        assert workspace.status == status
        return workspace

    return make


@pytest.fixture
def local_fleet(settings: Any, live_server: Any, local_root: Path) -> Iterator[Path]:
    """The real local backend, agents calling back to a live server, fast heartbeats."""
    root = local_root / "local-workspaces"
    settings.MOLECULE_BACKENDS = ["local"]
    settings.MOLECULE_LOCAL_ROOT = root
    settings.MOLECULE_REGISTRY_URL = live_server.url
    settings.MOLECULE_HEARTBEAT_INTERVAL = 0.5
    backends.reset()
    yield root
    kill_local_agents(root)


@pytest.fixture
def org(db: None) -> Org:
    return Org.objects.create(slug="acme", name="Acme Research")


@pytest.fixture
def other_org(db: None) -> Org:
    return Org.objects.create(slug="globex", name="Globex")


@pytest.fixture
def owner(org: Org) -> User:
    return make_member(org, "olivia", OrgMembership.Role.OWNER)


@pytest.fixture
def viewer(org: Org) -> User:
    return make_member(org, "victor", OrgMembership.Role.VIEWER)


@pytest.fixture
def outsider(other_org: Org) -> User:
    return make_member(other_org, "oscar", OrgMembership.Role.OWNER)


@pytest.fixture
def superuser(db: None) -> User:
    return User.objects.create_superuser("root", "root@localhost", "pw-root")
