"""Messages to a workspace's agent: one A2A JSON-RPC ``message/send``, forwarded and recorded.

Molecule's platform proxies A2A at ``POST /workspaces/:id/a2a``: it resolves the workspace's
URL, posts the JSON-RPC body there and hands back the agent's JSON-RPC answer. The console does
the same through the workspace's backend (``Backend.send_a2a``, which posts to the URL the
backend recorded at start), so every door (the page, the API, the command, the parity check)
takes one path and gets one set of refusals:

* the body is checked before anything is sent (``InvalidRequest``): a JSON-RPC 2.0 request,
  method ``message/send``, ``params.message`` with at least one text part, at most
  ``MOLECULE_A2A_MAX_REQUEST_BYTES`` (``RequestTooLarge``). A missing ``messageId`` is added,
  as Molecule's proxy adds it;
* the workspace must be online or degraded, have a configured backend that does not declare
  the row unsupported, and a running instance (``Refused``);
* the backend call is bounded (``MOLECULE_A2A_CONNECT_TIMEOUT``, ``MOLECULE_A2A_TIMEOUT`` for
  the whole answer, ``MOLECULE_A2A_MAX_ANSWER_BYTES``); an agent that cannot be reached, does
  not answer in time or answers something that is not a JSON object is ``AgentFailed``.

Every exchange that reached the point of sending is one ``A2A_MESSAGE`` event: who, the
method, the request's and answer's sizes, the agent's HTTP status or the failure, and the
latency. Never the text: messages are the operator's and the agent's, not the log's. The answer
handed back has the workspace's secrets masked (workspaces/redaction.py).
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction

from workspaces import backends, events, fields, redaction
from workspaces.backends import BackendError, Verdict
from workspaces.dispatch.core import InvalidRequest, no_backend_reason, recorded_instance
from workspaces.lifecycle import Refused
from workspaces.models import EventType, Status, Workspace

METHOD = "message/send"
ROW = "a2a"
# The longest text a person types into the page or the command: far under the byte cap.
MAX_TEXT = 64 * 1024


class RequestTooLarge(InvalidRequest):
    """The request is over MOLECULE_A2A_MAX_REQUEST_BYTES (the API's 413)."""


class AgentFailed(Exception):
    """The agent could not be reached, did not answer in time (``timeout``) or answered
    something unusable. The exchange's event is written before this is raised."""

    def __init__(self, message: str, *, timeout: bool = False) -> None:
        super().__init__(message)
        self.message, self.timeout = message, timeout


@dataclass(frozen=True)
class Exchange:
    """One answered message: the agent's JSON-RPC response (secrets masked) and its text."""

    answer: dict[str, Any]
    status: int
    latency_ms: int

    @property
    def text(self) -> str:
        """The text parts of the answer's message (or of a task's messages), or the error."""
        if isinstance(error := self.answer.get("error"), dict):
            return f"Error {error.get('code', '')}: {error.get('message', '')}".strip()
        result = self.answer.get("result")
        return _text_of(result) if isinstance(result, dict) else ""


def _text_of(result: dict[str, Any]) -> str:
    # A message carries parts; a task carries its status message and artifacts' parts.
    holders = [result]
    if isinstance(status := result.get("status"), dict) and isinstance(status.get("message"), dict):
        holders.append(status["message"])
    holders += [a for a in result.get("artifacts") or [] if isinstance(a, dict)]
    texts = []
    for holder in holders:
        for part in holder.get("parts") or []:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                texts.append(part["text"])
    return "\n".join(texts)


def text_request(text: str) -> dict[str, Any]:
    """A ``message/send`` request carrying ``text`` from the operator."""
    return {
        "jsonrpc": "2.0",
        "id": str(uuid.uuid4()),
        "method": METHOD,
        "params": {
            "message": {
                "role": "user",
                "parts": [{"kind": "text", "text": text}],
                "messageId": str(uuid.uuid4()),
            }
        },
    }


def parse_body(raw: bytes) -> dict[str, Any]:
    """A request body (the API's) as a JSON-RPC object; refused when it is not one."""
    if len(raw) > settings.MOLECULE_A2A_MAX_REQUEST_BYTES:
        raise RequestTooLarge(
            f"The request is larger than {settings.MOLECULE_A2A_MAX_REQUEST_BYTES} bytes."
        )
    try:
        data = fields.json_body(raw)
    except fields.InvalidJson as bad:
        raise InvalidRequest(f"The body is not valid JSON: {bad}.") from None
    if not isinstance(data, dict):
        raise InvalidRequest("The body must be a JSON-RPC 2.0 request object.")
    return data


def _checked(request: dict[str, Any]) -> bytes:
    if request.get("jsonrpc") != "2.0":
        raise InvalidRequest('The request must be JSON-RPC 2.0 ("jsonrpc": "2.0").')
    if request.get("method") != METHOD:
        raise InvalidRequest(f'The method must be "{METHOD}", not {request.get("method")!r}.')
    request_id = request.get("id")
    if isinstance(request_id, bool) or not isinstance(request_id, str | int | None):
        raise InvalidRequest("The request's id must be a string or a whole number.")
    params = request.get("params")
    message = params.get("message") if isinstance(params, dict) else None
    if not isinstance(message, dict):
        raise InvalidRequest("params.message must be an A2A message object.")
    parts = message.get("parts")
    if not isinstance(parts, list) or not any(
        isinstance(p, dict) and isinstance(p.get("text"), str) for p in parts
    ):
        raise InvalidRequest("params.message.parts must hold at least one text part.")
    message.setdefault("messageId", str(uuid.uuid4()))
    request.setdefault("id", str(uuid.uuid4()))
    body = json.dumps(request, ensure_ascii=False).encode()
    if len(body) > settings.MOLECULE_A2A_MAX_REQUEST_BYTES:
        raise RequestTooLarge(
            f"The request is larger than {settings.MOLECULE_A2A_MAX_REQUEST_BYTES} bytes."
        )
    return body


def _target(workspace: Workspace) -> tuple[backends.Backend, backends.Instance]:
    if workspace.status not in (Status.ONLINE, Status.DEGRADED):
        raise Refused(
            f"Workspace {workspace.name!r} is {workspace.status}: only an online or degraded "
            "workspace's agent can take a message."
        )
    backend = backends.get(workspace.backend)
    if backend is None:
        raise Refused(no_backend_reason(workspace.backend))
    declared = backend.capabilities.get(ROW)
    if declared is not None and declared.verdict == Verdict.UNSUPPORTED:
        raise Refused(f"The {workspace.backend} backend cannot forward messages: {declared.note}")
    instance = recorded_instance(workspace)
    if instance is None or not backend.a2a_url(instance):
        raise Refused(f"Workspace {workspace.name!r} has no running instance to take a message.")
    return backend, instance


def _record(workspace: Workspace, actor: str, payload: dict[str, Any]) -> None:
    with transaction.atomic():
        events.record(EventType.A2A_MESSAGE, actor=actor, workspace=workspace, payload=payload)


def send_message(
    *,
    workspace_id: Any,
    actor: str,
    text: str | None = None,
    request: dict[str, Any] | bytes | None = None,
) -> Exchange:
    """Send ``text`` (or a JSON-RPC ``request``: an object, or the raw bytes of one) to the
    workspace's agent and return its answer.

    Raises InvalidRequest (RequestTooLarge), Refused, Workspace.DoesNotExist or AgentFailed;
    only an exchange that was sent writes its event.
    """
    if (text is None) == (request is None):
        raise InvalidRequest("Send either a text or a JSON-RPC request.")
    if isinstance(request, bytes):
        request = parse_body(request)
    if text is not None:
        if not text.strip():
            raise InvalidRequest("The message is empty.")
        if len(text) > MAX_TEXT or fields.unstorable(text):
            raise InvalidRequest(f"The message must be text of at most {MAX_TEXT} characters.")
        request = text_request(text)
    if not isinstance(request, dict):
        raise InvalidRequest("The body must be a JSON-RPC 2.0 request object.")
    body = _checked(request)
    workspace = Workspace.objects.get(pk=workspace_id)
    backend, instance = _target(workspace)
    payload: dict[str, Any] = {
        "method": METHOD,
        "backend": workspace.backend,
        "request_bytes": len(body),
    }
    started = time.monotonic()
    try:
        reply = backend.send_a2a(
            instance,
            body,
            connect_timeout=settings.MOLECULE_A2A_CONNECT_TIMEOUT,
            timeout=settings.MOLECULE_A2A_TIMEOUT,
            max_answer=settings.MOLECULE_A2A_MAX_ANSWER_BYTES,
        )
    except BackendError as error:
        timeout = bool(getattr(error, "timeout", False))
        payload |= {
            "status": "timeout" if timeout else "failed",
            "answer_bytes": 0,
            "latency_ms": round((time.monotonic() - started) * 1000),
            "error": error.message,
        }
        _record(workspace, actor, payload)
        raise AgentFailed(error.message, timeout=timeout) from None
    latency = round((time.monotonic() - started) * 1000)
    payload |= {"status": reply.status, "answer_bytes": len(reply.body), "latency_ms": latency}
    failure = ""
    try:
        answer = json.loads(reply.body)
    except ValueError:
        answer = None
    if not 200 <= reply.status < 300:
        failure = f"The agent answered HTTP {reply.status}."
    elif not isinstance(answer, dict):
        failure = "The agent's answer is not a JSON-RPC response object."
    if failure:
        _record(workspace, actor, payload | {"error": failure})
        raise AgentFailed(failure)
    if isinstance(error := answer.get("error"), dict):
        payload["rpc_error"] = error.get("code")
    _record(workspace, actor, payload)
    masked = redaction.for_workspace(workspace).value(answer)
    return Exchange(answer=masked, status=reply.status, latency_ms=latency)
