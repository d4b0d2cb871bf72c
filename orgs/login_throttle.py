"""Login throttling: after ``MOLECULE_LOGIN_FAILURES`` failed logins for one username from one
address, that pair is refused for ``MOLECULE_LOGIN_LOCKOUT`` seconds, the right password too.

Counted in Django's default cache, which settings make one every web process and machine share
(the database's, unless ``CACHE_URL`` names another shared one), keyed by a hash of the
username (case-folded) and the client's address. Both login doors use it: the console's
(``/accounts/login/``) and the admin's. The refusal says the same whether the user exists or
not, and is logged (``molecule.login``, a warning: username and address, never a password).

The address is ``REMOTE_ADDR``: behind a reverse proxy it is the proxy's, so the throttle then
holds per username across all clients (still a throttle; it never locks out other usernames).
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse

log = logging.getLogger("molecule.login")
THROTTLED = "throttled"


def _keys(username: str, request: HttpRequest | None) -> tuple[str, str]:
    address = request.META.get("REMOTE_ADDR", "") if request is not None else ""
    digest = hashlib.sha256(f"{username.casefold()}\n{address}".encode()).hexdigest()
    return f"login-failures:{digest}", f"login-locked:{digest}"


def wait_seconds(username: str, request: HttpRequest | None) -> int:
    """Seconds until this username may try again from this address; 0 when it may now."""
    _, locked = _keys(username, request)
    until = cache.get(locked)
    return max(0, math.ceil(until - time.time())) if until else 0


def record_failure(username: str, request: HttpRequest | None) -> None:
    failures, locked = _keys(username, request)
    lockout = settings.MOLECULE_LOGIN_LOCKOUT
    cache.add(failures, 0, lockout)
    try:
        count = cache.incr(failures)
    except ValueError:  # expired between add and incr
        cache.set(failures, count := 1, lockout)
    if count >= settings.MOLECULE_LOGIN_FAILURES:
        cache.set(locked, time.time() + lockout, lockout)
        cache.delete(failures)
        address = request.META.get("REMOTE_ADDR", "") if request is not None else ""
        log.warning(
            "Login locked for %d s after %d failures: username %r from %s",
            lockout,
            count,
            username[:150],
            address,
        )


def forget_failures(username: str, request: HttpRequest | None) -> None:
    cache.delete(_keys(username, request)[0])


def refusal(seconds: int) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return (
        "Too many failed logins for this username from your address. Try again in "
        f"{minutes} minute{'s' if minutes != 1 else ''}."
    )


class ThrottledLogin:
    """Mixed into an authentication form: refuse a locked pair before asking for the
    password's check; count every failure; a success clears the count."""

    request: HttpRequest | None
    cleaned_data: dict[str, Any]

    def clean(self) -> dict[str, Any]:
        username = str(self.cleaned_data.get("username") or "")
        if wait := wait_seconds(username, self.request):
            address = self.request.META.get("REMOTE_ADDR", "") if self.request else ""
            log.warning("Login refused, locked: username %r from %s", username[:150], address)
            raise forms.ValidationError(refusal(wait), code=THROTTLED)
        try:
            cleaned = super().clean()  # type: ignore[misc]
        except forms.ValidationError:
            record_failure(username, self.request)
            raise
        forget_failures(username, self.request)
        return cleaned


class ThrottledAuthenticationForm(ThrottledLogin, AuthenticationForm):
    pass


class ThrottledAdminAuthenticationForm(ThrottledLogin, AdminAuthenticationForm):
    pass


class ThrottledLoginView(LoginView):
    """The console's login page: a locked pair answers 429 with Retry-After."""

    authentication_form = ThrottledAuthenticationForm

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        form = context.get("form")
        errors = form.non_field_errors().as_data() if form is not None and form.is_bound else []
        context["throttled"] = next((e.messages[0] for e in errors if e.code == THROTTLED), "")
        return context

    def form_invalid(self, form: Any) -> HttpResponse:
        response = super().form_invalid(form)
        if form.has_error(forms.forms.NON_FIELD_ERRORS, THROTTLED):
            username = str(form.data.get("username") or "")
            response.status_code = 429
            response["Retry-After"] = str(max(1, wait_seconds(username, self.request)))
        return response
