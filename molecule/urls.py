from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from workspaces import registry

admin.site.site_header = "Molecule console"
admin.site.site_title = "Molecule"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("registry/register", registry.register, name="registry-register"),
    path("registry/heartbeat", registry.heartbeat, name="registry-heartbeat"),
    path("api/v1/", include("api.urls")),
    path("tokens/", include("orgs.token_urls")),
    path("", include("orgs.urls")),
    path("", include("workspaces.urls")),
]
