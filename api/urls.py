"""``/api/v1/``: every endpoint, one ``route`` per URL joining its handlers by method."""

from __future__ import annotations

from django.urls import path

from api import a2a, events, files, keys, orgs, plugins, workspace_secrets, workspaces
from api.http import route

WS = "orgs/<slug:slug>/workspaces/<uuid:workspace_id>"

urlpatterns = [
    path("orgs", route(GET=orgs.list_orgs, POST=orgs.create_org), name="api-orgs"),
    path("orgs/<slug:slug>", route(GET=orgs.get_org, DELETE=orgs.delete_org), name="api-org"),
    path(
        "orgs/<slug:slug>/provision-status",
        route(GET=orgs.provision_status),
        name="api-provision-status",
    ),
    path(
        "orgs/<slug:slug>/workspaces",
        route(GET=workspaces.list_workspaces, POST=workspaces.create_workspace),
        name="api-workspaces",
    ),
    path(
        WS,
        route(
            GET=workspaces.get_workspace,
            PATCH=workspaces.patch_workspace,
            DELETE=workspaces.delete_workspace,
        ),
        name="api-workspace",
    ),
    path(f"{WS}/secrets", route(GET=workspace_secrets.list_secrets), name="api-workspace-secrets"),
    path(
        f"{WS}/secrets/<str:key>",
        route(PUT=workspace_secrets.put_secret, DELETE=workspace_secrets.delete_secret),
        name="api-workspace-secret",
    ),
    # Before the verb pattern, which "a2a" would otherwise match.
    path(f"{WS}/a2a", route(POST=a2a.send), name="api-workspace-a2a"),
    path(
        f"{WS}/plugins",
        route(GET=plugins.list_plugins, POST=plugins.install),
        name="api-workspace-plugins",
    ),
    path(
        f"{WS}/plugins/<str:name>",
        route(DELETE=plugins.uninstall),
        name="api-workspace-plugin",
    ),
    path(f"{WS}/files/<slug:root>", route(GET=files.list_files), name="api-workspace-files"),
    path(
        f"{WS}/files/<slug:root>/content",
        route(GET=files.read_file, PUT=files.put_file, DELETE=files.delete_file),
        name="api-workspace-file",
    ),
    path(
        f"{WS}/files/<slug:root>/download",
        route(GET=files.download),
        name="api-workspace-file-download",
    ),
    path(
        f"{WS}/files/<slug:root>/rename",
        route(POST=files.rename),
        name="api-workspace-file-rename",
    ),
    path(f"{WS}/<slug:verb>", route(POST=workspaces.run_verb), name="api-workspace-verb"),
    path(
        "orgs/<slug:slug>/tokens",
        route(GET=keys.list_tokens, POST=keys.mint_token),
        name="api-tokens",
    ),
    path(
        "orgs/<slug:slug>/tokens/<int:token_id>",
        route(DELETE=keys.revoke_token),
        name="api-token",
    ),
    path("events", route(GET=events.list_events), name="api-events"),
    path(
        "partner-keys",
        route(GET=keys.list_partner_keys, POST=keys.mint_partner_key),
        name="api-partner-keys",
    ),
    path(
        "partner-keys/<int:key_id>",
        route(DELETE=keys.revoke_partner_key),
        name="api-partner-key",
    ),
]
