from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, HttpResponseRedirect
from django.templatetags.static import static
from django.urls import include, path
from django.views.decorators.http import require_safe

from workspaces import registry

admin.site.site_header = "Molecule console"
admin.site.site_title = "Molecule"


@require_safe
def favicon(request: HttpRequest) -> HttpResponseRedirect:
    """Browsers ask for /favicon.ico whatever the page says; the icon is static/favicon.svg."""
    return HttpResponseRedirect(static("favicon.svg"))


urlpatterns = [
    path("favicon.ico", favicon, name="favicon"),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("registry/register", registry.register, name="registry-register"),
    path("registry/heartbeat", registry.heartbeat, name="registry-heartbeat"),
    path("api/v1/", include("api.urls")),
    path("tokens/", include("orgs.token_urls")),
    path("", include("orgs.urls")),
    path("", include("workspaces.urls")),
]
