from __future__ import annotations

from django.urls import path

from workspaces import a2a_views, file_views, parity_views, plugin_views, secret_views, views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("workspaces/new/", views.workspace_create, name="workspace-create"),
    path("parity/", parity_views.parity_matrix, name="parity"),
    path("parity/run/", parity_views.parity_run, name="parity-run"),
    path("workspaces/<uuid:workspace_id>/", views.workspace_detail, name="workspace"),
    # Before the verb pattern, which "edit", "secrets" and "message" would otherwise match.
    path("workspaces/<uuid:workspace_id>/edit/", views.workspace_edit, name="workspace-edit"),
    path(
        "workspaces/<uuid:workspace_id>/secrets/",
        secret_views.secret_set,
        name="workspace-secret-set",
    ),
    path(
        "workspaces/<uuid:workspace_id>/secrets/<str:key>/delete/",
        secret_views.secret_delete,
        name="workspace-secret-delete",
    ),
    path(
        "workspaces/<uuid:workspace_id>/message/",
        a2a_views.message_send,
        name="workspace-message",
    ),
    path("workspaces/<uuid:workspace_id>/files/", file_views.files_browse, name="workspace-files"),
    path("workspaces/<uuid:workspace_id>/files/file/", file_views.file_open, name="workspace-file"),
    path(
        "workspaces/<uuid:workspace_id>/files/upload/",
        file_views.file_upload,
        name="workspace-file-upload",
    ),
    path(
        "workspaces/<uuid:workspace_id>/files/rename/",
        file_views.file_rename,
        name="workspace-file-rename",
    ),
    path(
        "workspaces/<uuid:workspace_id>/files/delete/",
        file_views.file_delete,
        name="workspace-file-delete",
    ),
    path(
        "workspaces/<uuid:workspace_id>/files/download/",
        file_views.file_download,
        name="workspace-file-download",
    ),
    path(
        "workspaces/<uuid:workspace_id>/plugins/",
        plugin_views.plugins_panel,
        name="workspace-plugins",
    ),
    path(
        "workspaces/<uuid:workspace_id>/plugins/install/",
        plugin_views.plugin_install,
        name="workspace-plugin-install",
    ),
    path(
        "workspaces/<uuid:workspace_id>/plugins/uninstall/",
        plugin_views.plugin_uninstall,
        name="workspace-plugin-uninstall",
    ),
    path(
        "workspaces/<uuid:workspace_id>/<slug:verb>/",
        views.workspace_verb,
        name="workspace-verb",
    ),
]
