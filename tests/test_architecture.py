"""AST pins for the dispatcher rule (docs/architecture.md §5).

``workspaces/dispatch/`` is the only way to a backend and the only writer of a workspace's state.
import-linter (``tests/test_import_contracts.py``) pins who imports the backends, the SDKs and the
parity probes. The pins here (``tests/support/architecture/pins.py``) see the rest, in every module
on disk, new ones included: SDK and backend imports however written (relative, by dotted string, as
an attribute), a branch on a backend's name, a state transition or a ``status`` written outside
dispatch and the agent registry, a structure event not written by ``events.record``, a Team row
written outside dispatch's team code.

Each pin is shown to fail on planted violations, and to stay quiet on the look-alikes the code
base really has.
"""

from __future__ import annotations

import shutil
from functools import cache
from pathlib import Path

import pytest

from tests.support.architecture.pins import PINS, Violation, violations
from tests.support.architecture.tree import (
    BRAND_NEW_MODULES,
    ROOT,
    root_packages,
    template_tree_violations,
    template_violations,
    tree_violations,
)


@cache
def _tree() -> tuple[Violation, ...]:
    return (*tree_violations(), *template_tree_violations())


@pytest.mark.parametrize("pin", sorted(PINS))
def test_no_module_breaks_the_pin(pin: str) -> None:
    assert [str(v) for v in _tree() if v.pin == pin] == []


# (pin, where the module is, its source): each must be caught. Several spellings per pin, because
# a pin that catches only the obvious one is the gap the incident came through; some are planted
# next door to where the thing is allowed, to show the allowance is no wider than it says.
PLANTED = [
    ("backend-import", "workspaces/views.py", "from workspaces.backends.local import Local\n"),
    ("backend-import", "api/workspaces.py", "import workspaces.backends\n"),
    ("backend-import", "orgs/views.py", "from workspaces import backends\n"),
    ("backend-import", "workspaces/editing.py", "from .backends import docker\n"),
    ("backend-import", "workspaces/management/commands/run.py", "from ...backends import local\n"),
    (
        "backend-import",
        "api/keys.py",
        "import workspaces.dispatch\n\nworkspaces.backends.get('local')\n",
    ),
    (
        "backend-import",
        "orgs/services.py",
        "from importlib import import_module\n\n"
        "m = import_module('.backends.local', 'workspaces')\n",
    ),
    ("probes-import", "workspaces/parity_views.py", "from workspaces.dispatch import probes\n"),
    (
        "probes-import",
        "workspaces/dispatch/verbs.py",
        "from .probes import enable_in_this_process\n",
    ),
    ("sdk-import", "workspaces/heartbeats.py", "import docker\n"),
    ("sdk-import", "workspaces/dispatch/reconciler.py", "import httpx\n"),
    ("sdk-import", "orgs/importer.py", "from requests.adapters import HTTPAdapter\n"),
    ("sdk-import", "api/http.py", "import urllib3.util\n"),
    (
        "sdk-import",
        "workspaces/tasks.py",
        "import importlib\n\nengine = importlib.import_module('podman')\n",
    ),
    (
        "backend-string",
        "workspaces/views.py",
        "from django.utils.module_loading import import_string\n\n"
        "Local = import_string('workspaces.backends.local.LocalBackend')\n",
    ),
    (
        "backend-string",
        "api/workspaces.py",
        "def path(name):\n    return f'workspaces.backends.{name}'\n",
    ),
    ("backend-string", "orgs/services.py", "PATH = 'workspaces.' + 'backends.docker'\n"),
    ("backend-call", "workspaces/views.py", "def f(ws):\n    ws.backend_obj.stop(ws)\n"),
    ("backend-call", "orgs/importer.py", "def f(backend, spec):\n    return backend.start(spec)\n"),
    (
        "backend-list",
        "workspaces/selectors.py",
        "from django.conf import settings\n\nok = bool(settings.MOLECULE_BACKENDS)\n",
    ),
    ("backend-list", "api/orgs.py", "names = getattr(settings, 'MOLECULE_BACKEND_CLASSES')\n"),
    ("backend-name", "api/fresh.py", "def f(ws):\n    return ws.backend == 'docker'\n"),
    (
        "backend-name",
        "workspaces/views.py",
        "from orgs.models import Backend\n\n\n"
        "def f(ws):\n    return ws.backend != Backend.CONTROLPLANE\n",
    ),
    ("backend-name", "orgs/views.py", "def f(ws):\n    return ws.backend in ('local', 'docker')\n"),
    (
        "backend-name",
        "workspaces/admin.py",
        "def f(ws):\n"
        "    match ws.backend:\n"
        "        case 'docker' | 'controlplane':\n"
        "            return 1\n",
    ),
    (
        "backend-name",
        "workspaces/tasks.py",
        "def f(ws):\n    return {'docker': 1, 'local': 2}[ws.backend]\n",
    ),
    (
        "state-change",
        "workspaces/views.py",
        "from workspaces import lifecycle\n\n\n"
        "def f(ws):\n    lifecycle.apply(ws, 'stop', actor='a')\n",
    ),
    ("state-change", "api/workspaces.py", "from workspaces.lifecycle import create_event\n"),
    (
        # registry.py is the agents' HTTP adapter; heartbeats.py is the service allowed to move.
        "state-change",
        "workspaces/registry.py",
        "from workspaces.dispatch.core import transition as go\n\n\n"
        "def f(ws):\n    go(ws, 'stop', actor='a')\n",
    ),
    (
        "state-change",
        "workspaces/admin.py",
        "def f(queryset):\n    queryset.update(status='offline')\n",
    ),
    (
        "state-change",
        "orgs/services.py",
        "from workspaces.models import Status, Workspace\n\n\n"
        "def f(org):\n    Workspace.objects.filter(org=org).update(status=Status.OFFLINE)\n",
    ),
    (
        "state-change",
        "workspaces/tasks.py",
        "def f(ws):\n    ws.status = 'online'\n    ws.save()\n",
    ),
    (
        "state-change",
        "workspaces/models.py",
        "class Workspace:\n    def fail(self):\n        self.status = 'failed'\n",
    ),
    (
        "state-change",
        "workspaces/scenarios.py",
        "def f(ws):\n    setattr(ws, 'status', 'online')\n",
    ),
    (
        "state-change",
        "workspaces/editing.py",
        "def f(rows):\n    Workspace.objects.bulk_update(rows, ['status'])\n",
    ),
    ("state-change", "orgs/importer.py", "ws = Workspace(name='x', status='online')\n"),
    (
        "state-change",
        "api/workspaces.py",
        "def f(ws):\n    ws.children.update(**{'status': 'paused'})\n",
    ),
    (
        "event-write",
        "workspaces/lifecycle.py",
        "StructureEvent.objects.create(event_type='X', actor='a')\n",
    ),
    (
        "event-write",
        "orgs/importer.py",
        "from workspaces.models import StructureEvent\n\nStructureEvent.objects.bulk_create([])\n",
    ),
    (
        "event-write",
        "api/events.py",
        "from workspaces.models import StructureEvent as Event\n\nEvent(event_type='X').save()\n",
    ),
    (
        "event-write",
        "workspaces/vault.py",
        "def f(ws):\n    ws.events.get_or_create(event_type='X')\n",
    ),
    (
        "team-write",
        "orgs/importer.py",
        "from orgs.models import Team\n\nTeam.objects.create(name='t')\n",
    ),
    (
        "team-write",
        "workspaces/management/commands/demo.py",
        "Team.objects.update_or_create(name='t')\n",
    ),
    ("team-write", "workspaces/dispatch/verbs.py", "Team.objects.filter(pk=1).delete()\n"),
    ("team-write", "orgs/services.py", "from orgs import models\n\nmodels.Team(name='t').save()\n"),
    ("team-write", "api/orgs.py", "def f(org):\n    org.teams.get_or_create(name='t')\n"),
    ("team-write", "orgs/views.py", "def f(lead):\n    lead.team.delete()\n"),
]


@pytest.mark.parametrize(
    ("pin", "path", "source"),
    PLANTED,
    ids=[f"{pin}:{path}:{i}" for i, (pin, path, _) in enumerate(PLANTED)],
)
def test_each_pin_catches_a_planted_violation(pin: str, path: str, source: str) -> None:
    found = violations(source, path)
    assert pin in {v.pin for v in found}, [str(v) for v in found]


def test_every_pin_has_a_planted_violation() -> None:
    assert {pin for pin, _, _ in PLANTED} == set(PINS)


# Look-alikes the code base has for good reasons, and each pin's allowed home: no violation.
ALLOWED = [
    (
        "api/orgs.py",
        "from orgs.models import Backend\n\n\ndef ok(b):\n    return b in Backend.values\n",
    ),
    ("orgs/models.py", "backend = models.CharField(choices=Backend, default=Backend.LOCAL)\n"),
    (
        "workspaces/management/commands/parity.py",
        "from workspaces.dispatch import probes\n\nprobes.enable_in_this_process('controlplane')\n",
    ),
    ("orgs/services.py", "def f(org):\n    org.status = Org.OrgStatus.ARCHIVED\n"),
    (
        "workspaces/scenarios.py",
        "Org.objects.filter(pk=1).update(status=Org.OrgStatus.ARCHIVED)\n",
    ),
    (
        "api/http.py",
        "class ApiError(Exception):\n"
        "    def __init__(self, status):\n"
        "        self.status = status\n",
    ),
    ("api/http.py", "def f(body):\n    return JsonResponse(body, status=201)\n"),
    ("orgs/selectors.py", "def f(org):\n    return Workspace.objects.exclude(status='removed')\n"),
    ("workspaces/views.py", '"""Nothing here imports workspaces.backends: dispatch does."""\n'),
    ("orgs/selectors.py", "def f(org):\n    return StructureEvent.objects.filter(org=org)\n"),
    ("workspaces/vault.py", "def f():\n    TeamSecret.objects.filter(pk=1).delete()\n"),
    ("api/orgs.py", "def f(teams, extra):\n    teams.update(extra)\n"),
    (
        "workspaces/views.py",
        "from workspaces import dispatch\n\n\n"
        "def f(ws):\n    dispatch.stop(workspace_id=ws.pk, actor='a')\n",
    ),
    (
        "workspaces/heartbeats.py",
        "from workspaces import lifecycle\n\nlifecycle.apply(ws, 'register', actor='a')\n",
    ),
    ("workspaces/events.py", "StructureEvent.objects.create(event_type='X', actor='a')\n"),
    ("workspaces/dispatch/teams.py", "Team.objects.get_or_create(lead=lead)\n"),
    (
        "workspaces/dispatch/verbs.py",
        "from workspaces import backends\n\nbackends.get(ws.backend).stop(i)\n",
    ),
    ("workspaces/backends/docker.py", "import docker\n\nif name == 'docker':\n    pass\n"),
    ("molecule/settings.py", "CLASSES = {'local': 'workspaces.backends.local.LocalBackend'}\n"),
]


@pytest.mark.parametrize(("path", "source"), ALLOWED, ids=[p for p, _ in ALLOWED])
def test_the_pins_leave_look_alikes_and_allowed_homes_alone(path: str, source: str) -> None:
    assert [str(v) for v in violations(source, path)] == []


def test_a_brand_new_module_in_another_app_is_caught(tmp_path: Path) -> None:
    # The walk finds modules on disk: nobody has to add the new one to a list first.
    for package in root_packages():
        shutil.copytree(ROOT / package, tmp_path / package)
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    for path, source in BRAND_NEW_MODULES.items():
        (tmp_path / path).write_text(source)
    found = {(v.path, v.pin) for v in tree_violations(tmp_path)}
    assert {
        ("orgs/newthing.py", "sdk-import"),
        ("orgs/newthing.py", "backend-import"),
        ("orgs/newthing.py", "backend-call"),
        ("api/fresh.py", "probes-import"),
        ("api/fresh.py", "backend-name"),
    } <= found


@pytest.mark.parametrize(
    "template",
    [
        '{% if workspace.backend == "docker" %}<button>Logs</button>{% endif %}',
        "{% elif ws.backend != 'controlplane' %}",
        '{% if "local" in org.backend %}',
        "{% if ws.backend not in 'docker' %}",
    ],
)
def test_a_template_branch_on_a_backend_name_is_caught(template: str) -> None:
    assert [v.pin for v in template_violations(f"<p>\n{template}\n", "templates/x.html")] == [
        "backend-name"
    ]


@pytest.mark.parametrize(
    "template",
    [
        "{{ ws.backend }}",
        "{% if ws.backend %}{{ ws.get_backend_display }}{% endif %}",
        "{% for backend in backends %}<th>{{ backend }}</th>{% endfor %}",
        '{% if ws.status == "online" %}',
    ],
)
def test_a_template_that_only_shows_the_backend_is_not_caught(template: str) -> None:
    assert template_violations(template, "templates/x.html") == []
