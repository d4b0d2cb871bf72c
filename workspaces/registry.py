"""HTTP endpoints the agents call: ``POST /registry/register`` and ``POST /registry/heartbeat``.

Authenticated by the workspace token (``Authorization: Bearer …``) that dispatch minted when it
started this instance; a token authorizes only its own workspace. Every authentication failure
gets the same 401 body so ids and tokens cannot be probed.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from workspaces import heartbeats
from workspaces.bearer_secrets import hash_token

MAX_BODY = 64 * 1024
UNAUTHORIZED = {"error": "invalid workspace credentials"}


class BadRequest(Exception):
    pass


def _body(request: HttpRequest) -> tuple[uuid.UUID, str, dict[str, Any]]:
    if len(request.body) > MAX_BODY:
        raise BadRequest(f"body larger than {MAX_BODY} bytes")
    try:
        data = json.loads(request.body or b"{}")
    except ValueError as error:
        raise BadRequest(f"body is not JSON: {error}") from error
    if not isinstance(data, dict):
        raise BadRequest("body must be a JSON object")
    try:
        workspace_id = uuid.UUID(str(data.get("workspace_id")))
    except ValueError as error:
        raise BadRequest("workspace_id must be a UUID") from error
    auth = request.headers.get("Authorization", "")
    token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else ""
    return workspace_id, token, data


def _number(data: dict[str, Any], key: str, kind: type, low: float, high: float) -> Any:
    value = data.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequest(f"{key} must be a number")
    if kind is int and value != int(value):
        raise BadRequest(f"{key} must be a whole number")
    if not low <= value <= high:
        raise BadRequest(f"{key} must be between {low:g} and {high:g}")
    return kind(value)


def _text(data: dict[str, Any], key: str, limit: int) -> str:
    value = data.get(key) or ""
    if not isinstance(value, str):
        raise BadRequest(f"{key} must be a string")
    return value[:limit]


def _answer(call: Any) -> JsonResponse:
    try:
        workspace = call()
    except BadRequest as error:
        return JsonResponse({"error": str(error)}, status=400)
    except heartbeats.Unauthorized:
        return JsonResponse(UNAUTHORIZED, status=401)
    except heartbeats.Conflict as error:
        return JsonResponse({"error": str(error), "register": error.register}, status=409)
    return JsonResponse(
        {"status": workspace.status, "heartbeat_interval": settings.MOLECULE_HEARTBEAT_INTERVAL}
    )


@csrf_exempt
@require_POST
def register(request: HttpRequest) -> JsonResponse:
    def call() -> Any:
        workspace_id, token, data = _body(request)
        card = data.get("agent_card") or {}
        if not isinstance(card, dict):
            raise BadRequest("agent_card must be an object")
        return heartbeats.register(
            workspace_id=workspace_id,
            token_hash=hash_token(token),
            url=_text(data, "url", 500),
            agent_card=card,
        )

    return _answer(call)


@csrf_exempt
@require_POST
def heartbeat(request: HttpRequest) -> JsonResponse:
    def call() -> Any:
        workspace_id, token, data = _body(request)
        report = heartbeats.Report(
            error_rate=_number(data, "error_rate", float, 0, 1),
            sample_error=_text(data, "sample_error", 2000),
            active_tasks=_number(data, "active_tasks", int, 0, 1_000_000),
            uptime_seconds=_number(data, "uptime_seconds", int, 0, 10**10),
            current_task=_text(data, "current_task", 500),
        )
        return heartbeats.heartbeat(
            workspace_id=workspace_id, token_hash=hash_token(token), report=report
        )

    return _answer(call)
