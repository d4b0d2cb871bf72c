"""The JSON API's plumbing: authenticate, rate-limit, check access, JSON in and out, errors.

Every endpoint is a small function ``handler(request, principal, **url_kwargs)`` wrapped by
:func:`endpoint`, which declares who may call it. :func:`route` joins the handlers of one URL by
HTTP method. The order of checks for every request is fixed:

1. bearer authentication: 401, one body for every failure ("API key expired" for a partner key
   past its expiry); session cookies are not accepted, so the API needs no CSRF token;
2. the partner key's rate limit: 429 with Retry-After;
3. the method: 405 with Allow;
4. access: 403 when the credential may not do this (a missing scope names the scope);
5. the handler; an org or object outside the caller's reach is 404, as if it did not exist.

Errors map in one place: ``ApiError`` → its status; ``ValidationError`` → 400 with field errors;
``dispatch.InvalidRequest`` → 400; ``Refused``/``TransitionRefused`` → 409 with the reason;
``Http404``/``ObjectDoesNotExist`` → 404. Anything else escapes to Django, which logs it with
its traceback (``django.request``) and answers through ``api/errors.py``: a JSON 500, as an
unknown URL under ``/api/`` is a JSON 404. Every value is checked by its field's shared rule
(``workspaces/fields.py``, ``orgs/fields.py``): bodies by ``fields.json_body`` (bounded
nesting, no NaN or Infinity), moments by ``fields.moment``, text filters by ``query_text``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import wraps
from typing import Any

from django.core.exceptions import ImproperlyConfigured, ObjectDoesNotExist, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from orgs import bearer, partner_keys
from orgs import fields as org_fields
from orgs.bearer import Principal
from orgs.models import Org
from workspaces import dispatch, fields

log = logging.getLogger("molecule.api")

# Requests carry names, tiers and secret values, never files: 64 KiB is far above any of them.
MAX_BODY = 64 * 1024
Handler = Callable[..., HttpResponse]


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        fields: Mapping[str, list[str]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message = status, message
        self.fields, self.headers = dict(fields or {}), dict(headers or {})


def error(
    status: int,
    message: str,
    *,
    fields: Mapping[str, list[str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JsonResponse:
    body: dict[str, Any] = {"error": message}
    if fields:
        body["fields"] = dict(fields)
    response = JsonResponse(body, status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def ok(data: Any, status: int = 200, *, secret: bool = False) -> JsonResponse:
    response = JsonResponse(data, status=status, safe=not isinstance(data, list))
    if secret:
        # The one response that holds a plaintext token: no proxy or browser may keep a copy.
        response["Cache-Control"] = "no-store"
    return response


def no_content() -> HttpResponse:
    return HttpResponse(status=204)


# --- who may call what ------------------------------------------------------------------------


@dataclass(frozen=True)
class Access:
    """Who may call one endpoint.

    ``scope``: the scope a partner key needs; None when partner keys may not call it at all
    (the workspaces of an org are driven with that org's tokens). ``org_tokens``: whether an
    org token may call it (inside its own org). ``ADMIN_TOKEN`` may call everything.
    """

    scope: str | None = None
    org_tokens: bool = True

    def refusal(self, principal: Principal) -> str | None:
        if principal.is_admin:
            return None
        if principal.is_org_token:
            if self.org_tokens:
                return None
            return (
                "An org API token cannot do this: it needs a partner key with the scope "
                f"{self.scope} (or ADMIN_TOKEN)."
            )
        if self.scope is None:
            return (
                "Partner keys manage orgs; use an org API token of this org for its "
                "workspaces, secrets and events."
            )
        if self.scope not in principal.scopes:
            return f"This key lacks the scope {self.scope}."
        return None


def endpoint(*, scope: str | None = None, org_tokens: bool = True) -> Callable[[Handler], Handler]:
    def mark(handler: Handler) -> Handler:
        handler.access = Access(scope, org_tokens)  # type: ignore[attr-defined]
        return handler

    return mark


def route(**handlers: Handler) -> Callable[..., HttpResponse]:
    """One view for one URL: ``route(GET=list_things, POST=create_thing)``.

    Every handler must say who may call it (:func:`endpoint`); one that does not is refused here,
    when the URLs load, rather than left open.
    """
    for method, handler in handlers.items():
        if not isinstance(getattr(handler, "access", None), Access):
            raise ImproperlyConfigured(f"{method} {handler.__name__} has no @endpoint(...) access.")
    allowed = ", ".join(sorted(handlers))

    @csrf_exempt
    @wraps(next(iter(handlers.values())))
    def view(request: HttpRequest, **kwargs: Any) -> HttpResponse:
        try:
            principal = bearer.authenticate(request.headers.get("Authorization", ""))
        except bearer.Unauthorized as refused:
            return error(
                401, refused.message, headers={"WWW-Authenticate": 'Bearer realm="molecule"'}
            )
        if principal.is_admin:
            # The break-glass credential: every use leaves a line in the log, not only events.
            log.warning("ADMIN_TOKEN used: %s %s", request.method, request.path)
        if principal.partner_key is not None and (
            wait := partner_keys.take_request(principal.partner_key)
        ):
            return error(
                429,
                f"Rate limit of {principal.partner_key.rate_limit} requests per minute "
                f"exceeded; retry in {wait} s.",
                headers={"Retry-After": str(wait)},
            )
        handler = handlers.get(request.method or "")
        if handler is None:
            response = error(405, f"Method {request.method} not allowed; allowed: {allowed}.")
            response["Allow"] = allowed
            return response
        if refusal := handler.access.refusal(principal):  # type: ignore[attr-defined]
            return error(403, refusal)
        try:
            return handler(request, principal, **kwargs)
        except ApiError as failure:
            return error(
                failure.status, failure.message, fields=failure.fields, headers=failure.headers
            )
        except ValidationError as invalid:
            fields = invalid.message_dict if hasattr(invalid, "error_dict") else {}
            message = "Invalid fields." if fields else " ".join(invalid.messages)
            return error(400, message, fields=fields)
        except dispatch.InvalidRequest as invalid:
            return error(400, str(invalid))
        except dispatch.Refused as refused:
            return error(409, str(refused))
        except (Http404, ObjectDoesNotExist):
            return error(404, "Not found.")

    view.handlers = handlers  # type: ignore[attr-defined]
    return view


# --- reach ------------------------------------------------------------------------------------


def org_in_reach(principal: Principal, slug: str) -> Org:
    """The org called ``slug`` if this credential reaches it; 404 otherwise, existing or not."""
    if org_fields.slug_problem(slug):
        raise Http404  # no org can have it, and PostgreSQL would refuse a NUL in the query
    org = principal.orgs().filter(slug=slug).first()
    if org is None:
        raise Http404
    return org


def require_active(org: Org) -> None:
    if org.status != Org.OrgStatus.ACTIVE:
        raise dispatch.Refused(f"Org {org.slug!r} is {org.status}: nothing can be added to it.")


# --- JSON in ----------------------------------------------------------------------------------


def read_bounded(request: HttpRequest, cap: int) -> bytes:
    """The raw body, refused with 413 past ``cap`` bytes: a stated length over it is refused
    before anything is read, and a body that runs past it (no or a false length) at ``cap + 1``."""
    too_big = ApiError(413, f"Request body larger than {cap} bytes.")
    try:
        length = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        length = 0
    if length > cap:
        raise too_big
    body = request.read(cap + 1)
    if len(body) > cap:
        raise too_big
    return body


def read_json(request: HttpRequest) -> dict[str, Any]:
    """The request body as a JSON object; 413 when too large, 400 when not a JSON object."""
    try:
        length = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        length = 0
    if length > MAX_BODY:
        raise ApiError(413, f"Request body larger than {MAX_BODY} bytes.")
    body = request.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        raise ApiError(413, f"Request body larger than {MAX_BODY} bytes.")
    if not body.strip():
        return {}
    try:
        data = fields.json_body(body)
    except fields.InvalidJson as bad:
        raise ApiError(400, f"The body is not valid JSON: {bad}.") from None
    if not isinstance(data, dict):
        raise ApiError(400, "The body must be a JSON object.")
    return data


class Fields:
    """Explicit validation of a JSON object: each field read once, every problem collected.

    Unknown fields are errors too, so a misspelt field is never silently ignored.
    """

    def __init__(self, data: Mapping[str, Any], allowed: set[str]) -> None:
        self.data = data
        self.errors: dict[str, list[str]] = {
            name: ["unknown field"] for name in data if name not in allowed
        }

    def _fail(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)

    def present(self, name: str) -> bool:
        return name in self.data

    def rule(
        self, name: str, problem: Callable[[Any], str | None], *, required: bool = False
    ) -> Any:
        """The field checked by a shared rule (``workspaces.fields``, ``orgs.fields``)."""
        if name not in self.data:
            if required:
                self._fail(name, "this field is required")
            return None
        if why := problem(self.data[name]):
            self._fail(name, why)
            return None
        return self.data[name]

    def integer(self, name: str, *, choices: tuple[int, ...] | None = None) -> int | None:
        if name not in self.data:
            return None
        value = self.data[name]
        if isinstance(value, bool) or not isinstance(value, int):
            self._fail(name, "must be a whole number")
            return None
        if choices is not None and value not in choices:
            self._fail(name, f"must be one of {', '.join(map(str, choices))}")
        return value

    def boolean(self, name: str) -> bool | None:
        if name not in self.data:
            return None
        value = self.data[name]
        if not isinstance(value, bool):
            self._fail(name, "must be true or false")
            return None
        return value

    def moment(self, name: str) -> datetime | None:
        if name not in self.data or self.data[name] is None:
            return None
        parsed = fields.moment(self.data[name])
        if parsed is None:
            self._fail(name, fields.MOMENT_PROBLEM)
        return parsed

    def string_list(self, name: str, *, required: bool = False) -> list[str] | None:
        if name not in self.data:
            if required:
                self._fail(name, "this field is required")
            return None
        value = self.data[name]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self._fail(name, "must be a list of strings")
            return None
        return value

    def add(self, name: str, message: str) -> None:
        self._fail(name, message)

    def check(self) -> None:
        if self.errors:
            raise ApiError(400, "Invalid fields.", fields=self.errors)


# --- query strings ----------------------------------------------------------------------------


def query_int(request: HttpRequest, name: str, *, default: int, low: int, high: int) -> int:
    raw = request.GET.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ApiError(
            400, "Invalid query.", fields={name: [f"must be a whole number, {low} to {high}"]}
        )
    return value


def query_moment(request: HttpRequest, name: str) -> datetime | None:
    raw = request.GET.get(name)
    if not raw:
        return None
    parsed = fields.moment(raw)
    if parsed is None:
        raise ApiError(400, "Invalid query.", fields={name: [fields.MOMENT_PROBLEM]})
    return parsed


def query_text(request: HttpRequest, name: str, errors: dict[str, list[str]]) -> str | None:
    """A text filter, or None when absent; a problem (a NUL, say) goes into ``errors``."""
    raw = request.GET.get(name)
    if not raw:
        return None
    if why := fields.filter_problem(raw):
        errors[name] = [why]
        return None
    return raw


def query_bool(request: HttpRequest, name: str) -> bool:
    raw = request.GET.get(name, "").lower()
    if raw in ("", "0", "false", "no"):
        return False
    if raw in ("1", "true", "yes"):
        return True
    raise ApiError(400, "Invalid query.", fields={name: ["must be true or false"]})


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
