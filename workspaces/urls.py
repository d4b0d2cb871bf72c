from __future__ import annotations

from django.urls import path

from workspaces import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("workspaces/new/", views.workspace_create, name="workspace-create"),
    path("workspaces/<uuid:workspace_id>/", views.workspace_detail, name="workspace"),
    path(
        "workspaces/<uuid:workspace_id>/<slug:verb>/",
        views.workspace_verb,
        name="workspace-verb",
    ),
]
