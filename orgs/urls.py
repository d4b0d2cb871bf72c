from __future__ import annotations

from django.urls import path

from orgs import views

urlpatterns = [
    path("orgs/", views.org_list, name="org-list"),
    # Before orgs/<slug>/: "import" is a reserved slug (orgs.services.RESERVED_SLUGS).
    path("orgs/import/", views.org_import, name="org-import"),
    path("orgs/<slug:slug>/", views.org_detail, name="org"),
    path("orgs/<slug:slug>/move/", views.workspace_move, name="org-move"),
    path(
        "orgs/<slug:slug>/imports/<int:event_id>/",
        views.import_progress,
        name="org-import-progress",
    ),
    path(
        "orgs/<slug:slug>/workspaces/<uuid:workspace_id>/<slug:verb>/",
        views.team_verb,
        name="team-verb",
    ),
    path("events/", views.event_log, name="event-log"),
]
