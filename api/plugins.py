"""``/api/v1/orgs/<slug>/workspaces/<id>/plugins``: install, uninstall and list plugins.

* ``GET …/plugins``: ``{"installed": [{"name", "version", "description"}], "catalogue": [...]}``
  (installed: read back from the workspace's configs; catalogue: ``MOLECULE_PLUGINS_DIR``);
* ``POST …/plugins`` ``{"name"}``: install it from the catalogue (201), live;
* ``DELETE …/plugins/<name>``: uninstall it (204; 404 when it is not installed).

Refusals: 400 for a name that is not a plugin name or not in the catalogue, 409 when the storage
cannot be reached that way (no storage yet; a control plane VM that is not running), 502 when
the backend fails. Org tokens of the workspace's org and ADMIN_TOKEN.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import asdict

from django.http import Http404, HttpRequest, HttpResponse

from api.http import ApiError, endpoint, no_content, ok, org_in_reach, read_json
from orgs.bearer import Principal
from workspaces.dispatch import files, plugins
from workspaces.models import Workspace


def _workspace_id(principal: Principal, slug: str, workspace_id: uuid.UUID) -> uuid.UUID:
    org = org_in_reach(principal, slug)
    if not Workspace.objects.filter(org=org, pk=workspace_id).exists():
        raise Http404
    return workspace_id


def _failures[T](call: Callable[[], T]) -> T:
    try:
        return call()
    except files.FileNotFound as missing:
        raise ApiError(404, str(missing)) from None
    except files.FilesFailed as failed:
        raise ApiError(502, str(failed)) from None


def _described(plugin: plugins.catalogue.Plugin) -> dict[str, object]:
    return {
        "name": plugin.name,
        "version": plugin.version,
        "description": plugin.description,
        "files": len(plugin.files),
        "size": plugin.size,
    }


@endpoint()
def list_plugins(
    request: HttpRequest, principal: Principal, slug: str, workspace_id: uuid.UUID
) -> HttpResponse:
    wid = _workspace_id(principal, slug, workspace_id)
    installed = _failures(lambda: plugins.installed_plugins(workspace_id=wid))
    return ok(
        {
            "installed": [asdict(plugin) for plugin in installed],
            "catalogue": [_described(plugin) for plugin in plugins.available()],
        }
    )


@endpoint()
def install(
    request: HttpRequest, principal: Principal, slug: str, workspace_id: uuid.UUID
) -> HttpResponse:
    wid = _workspace_id(principal, slug, workspace_id)
    name = read_json(request).get("name")
    if not isinstance(name, str):
        raise ApiError(400, 'The body must be {"name": "<plugin>"}.')
    plugin = _failures(
        lambda: plugins.install_plugin(workspace_id=wid, actor=principal.actor, name=name)
    )
    return ok(_described(plugin), status=201)


@endpoint()
def uninstall(
    request: HttpRequest, principal: Principal, slug: str, workspace_id: uuid.UUID, name: str
) -> HttpResponse:
    wid = _workspace_id(principal, slug, workspace_id)
    _failures(lambda: plugins.uninstall_plugin(workspace_id=wid, actor=principal.actor, name=name))
    return no_content()
