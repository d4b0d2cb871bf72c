from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import urls as auth_urls
from django.http import HttpRequest, HttpResponseRedirect
from django.templatetags.static import static
from django.urls import include, path
from django.views.decorators.http import require_safe

from molecule.metrics import counted, metrics_view
from orgs.login_throttle import ThrottledAdminAuthenticationForm, ThrottledLoginView
from workspaces import registry

admin.site.site_header = "Molecule console"
admin.site.site_title = "Molecule"
# Both login doors count failures alike (orgs/login_throttle.py).
admin.site.login_form = ThrottledAdminAuthenticationForm


@require_safe
def favicon(request: HttpRequest) -> HttpResponseRedirect:
    """Browsers ask for /favicon.ico whatever the page says; the icon is static/favicon.svg."""
    return HttpResponseRedirect(static("favicon.svg"))


# Django's account pages, with the login page that throttles failed logins in its place.
ACCOUNTS = [
    path("login/", ThrottledLoginView.as_view(), name="login"),
    *(page for page in auth_urls.urlpatterns if page.name != "login"),
]

urlpatterns = [
    path("favicon.ico", favicon, name="favicon"),
    path("admin/", admin.site.urls),
    path("accounts/", include(ACCOUNTS)),
    path("metrics", metrics_view, name="metrics"),
    path("registry/register", counted("register", registry.register), name="registry-register"),
    path("registry/heartbeat", counted("heartbeat", registry.heartbeat), name="registry-heartbeat"),
    path(
        "registry/update-card",
        counted("update_card", registry.update_card),
        name="registry-update-card",
    ),
    path("api/v1/", include("api.urls")),
    path("tokens/", include("orgs.token_urls")),
    path("", include("orgs.urls")),
    path("", include("workspaces.urls")),
]

# JSON under /api/ and /registry/, the console's own pages elsewhere (api/errors.py).
handler400 = "api.errors.bad_request"
handler403 = "api.errors.permission_denied"
handler404 = "api.errors.page_not_found"
handler500 = "api.errors.server_error"
