"""HTTP endpoints the agents call: ``POST /registry/register``, ``POST /registry/heartbeat`` and
``POST /registry/update-card`` (the protocol, field by field: docs/registry-protocol.md).

Two request shapes are spoken: the console's own agent's and Molecule's workspace runtime's
(register names the workspace ``id``, heartbeats may say ``runtime_state``, ``runtime_metadata``
and ``monthly_spend``). Authenticated by the workspace token (``Authorization: Bearer …``) that
dispatch minted when it started this instance; a token authorizes only its own workspace. Every
authentication failure gets the same 401 body so ids and tokens cannot be probed. Every answer is
JSON, a refusal a 400 with the field and why (each field's rule is in
``workspaces.fields.REPORT``), and nothing is written for a refused report.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from workspaces import fields, heartbeats
from workspaces.bearer_secrets import hash_token

MAX_BODY = 64 * 1024
UNAUTHORIZED = {"error": "invalid workspace credentials"}


class BadRequest(Exception):
    pass


def _body(
    request: HttpRequest, *, ids: tuple[str, ...] = ("workspace_id",)
) -> tuple[uuid.UUID, str, dict[str, Any]]:
    """The body as JSON (the parser every JSON door shares: bounded nesting, no NaN or
    Infinity), the workspace id (under any of ``ids``: register takes Molecule's ``id`` too) and
    the bearer token. Nothing is written before this passes."""
    if len(request.body) > MAX_BODY:
        raise BadRequest(f"body larger than {MAX_BODY} bytes")
    try:
        data = fields.json_body(request.body or b"{}")
    except fields.InvalidJson as error:
        raise BadRequest(f"body is not JSON: {error}") from None
    if not isinstance(data, dict):
        raise BadRequest("body must be a JSON object")
    found: dict[str, uuid.UUID] = {}
    for key in ids:
        if key not in data:
            continue
        try:
            if not isinstance(data[key], str):
                raise ValueError
            found[key] = uuid.UUID(data[key])
        except ValueError:
            raise BadRequest(f"{key} must be a UUID") from None
    if not found:
        raise BadRequest(f"{' or '.join(ids)} must be a UUID")
    if len(set(found.values())) > 1:
        raise BadRequest(f"{' and '.join(found)} name different workspaces; send one of them")
    auth = request.headers.get("Authorization", "")
    token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else ""
    return next(iter(found.values())), token, data


def _field(data: dict[str, Any], key: str, default: Any) -> Any:
    """One reported field, checked by its rule in ``workspaces.fields.REPORT``."""
    value = data.get(key)
    if value is None:
        return default
    if why := fields.REPORT[key](value):
        raise BadRequest(f"{key} {why}")
    return value


def _text(data: dict[str, Any], key: str, limit: int) -> str:
    # Longer text is cut to its column: an agent's chatty error sample is no reason to refuse.
    return str(_field(data, key, ""))[:limit]


def _number(data: dict[str, Any], key: str, kind: type) -> Any:
    return kind(_field(data, key, 0))


def _answer(call: Callable[[], str], status: str) -> JsonResponse:
    """200 with Molecule's platform's ``status`` word ("registered", "ok", "updated": its runtime
    reads nothing else, and only ``auth_token`` from a registration, which is never sent: the
    token is in the configs directory) and the console's own fields. ``call`` returns the
    workspace's status after the report."""
    try:
        workspace_status = call()
    except BadRequest as error:
        return JsonResponse({"error": str(error)}, status=400)
    except heartbeats.Unauthorized:
        return JsonResponse(UNAUTHORIZED, status=401)
    except heartbeats.Conflict as error:
        return JsonResponse({"error": str(error)}, status=409)
    return JsonResponse(
        {
            "status": status,
            "workspace_status": workspace_status,
            "heartbeat_interval": settings.MOLECULE_HEARTBEAT_INTERVAL,
        }
    )


def _not_post(request: HttpRequest) -> JsonResponse | None:
    if request.method == "POST":
        return None
    response = JsonResponse({"error": f"method {request.method} not allowed; use POST"}, status=405)
    response["Allow"] = "POST"
    return response


@csrf_exempt
def register(request: HttpRequest) -> JsonResponse:
    if refused := _not_post(request):
        return refused

    def call() -> str:
        workspace_id, token, data = _body(request, ids=("workspace_id", "id"))
        workspace = heartbeats.register(
            workspace_id=workspace_id,
            token_hash=hash_token(token),
            url=_text(data, "url", fields.MAX_URL),
            agent_card=_field(data, "agent_card", {}),
        )
        return workspace.status

    return _answer(call, "registered")


def _optional(data: dict[str, Any], key: str) -> Any:
    """A field whose absence means something of its own (None); null counts as absent."""
    return _field(data, key, None)


@csrf_exempt
def heartbeat(request: HttpRequest) -> JsonResponse:
    if refused := _not_post(request):
        return refused

    def call() -> str:
        workspace_id, token, data = _body(request)
        runtime_state = _optional(data, "runtime_state")
        spend = _optional(data, "monthly_spend")
        report = heartbeats.Report(
            error_rate=_number(data, "error_rate", float),
            sample_error=_text(data, "sample_error", fields.MAX_SAMPLE_ERROR),
            active_tasks=_number(data, "active_tasks", int),
            uptime_seconds=_number(data, "uptime_seconds", int),
            current_task=_text(data, "current_task", fields.MAX_CURRENT_TASK),
            runtime_state=(
                None if runtime_state is None else runtime_state[: fields.MAX_RUNTIME_STATE]
            ),
            runtime_metadata=_optional(data, "runtime_metadata"),
            monthly_spend=0 if spend is None else fields.monthly_spend(spend),
        )
        return heartbeats.heartbeat(
            workspace_id=workspace_id, token_hash=hash_token(token), report=report
        )

    return _answer(call, "ok")


@csrf_exempt
def update_card(request: HttpRequest) -> JsonResponse:
    if refused := _not_post(request):
        return refused

    def call() -> str:
        workspace_id, token, data = _body(request)
        card = _optional(data, "agent_card")
        if card is None:
            raise BadRequest("agent_card is required")
        workspace = heartbeats.update_card(
            workspace_id=workspace_id, token_hash=hash_token(token), agent_card=card
        )
        return workspace.status

    return _answer(call, "updated")
