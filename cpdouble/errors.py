"""What the double's handlers and its bookkeeping share."""

from __future__ import annotations

# A provision carries the configs (at most 4 MiB of files, base64): room for them.
MAX_BODY = 8 * 1024 * 1024


class RequestError(Exception):
    """A request the double refuses; ``status`` is the HTTP status it answers."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
