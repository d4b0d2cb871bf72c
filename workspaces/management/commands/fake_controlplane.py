"""``manage.py fake_controlplane``: run the control-plane double in the foreground, for demos.

The double (``cpdouble/``) is a stand-in for an external system, not part of the console; this
command only starts it with the console's settings as defaults, so the two agree on the token.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from cpdouble import serve


class Command(BaseCommand):
    help = (
        "Run a fake control plane on 127.0.0.1 whose VMs are local agent processes; switch its "
        "faults with POST /_faults. Ctrl-C stops it and every VM it booted."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=9100, help="Port (default 9100).")
        parser.add_argument(
            "--token",
            default="",
            help="Bearer token it accepts (default MOLECULE_CONTROLPLANE_TOKEN).",
        )
        parser.add_argument(
            "--root",
            type=Path,
            default=None,
            help="Where VM logs and volumes live (default var/cpdouble).",
        )

    def _say(self, message: str) -> None:
        self.stdout.write(message)
        self.stdout.flush()  # a line per request, visible at once even when piped to a file

    def handle(self, *args: Any, port: int, token: str, root: Path | None, **options: Any) -> None:
        token = token or settings.MOLECULE_CONTROLPLANE_TOKEN
        if not token:
            raise CommandError(
                "No token: pass --token or set MOLECULE_CONTROLPLANE_TOKEN, the shared secret "
                "the console will send."
            )
        root = root or Path(settings.VAR_DIR) / "cpdouble"
        try:
            serve(port=port, token=token, root=root, say=self._say)
        except OSError as error:
            raise CommandError(
                f"Cannot listen on 127.0.0.1:{port}: {error.strerror}. Is another double running? "
                "Pick another --port and set MOLECULE_CONTROLPLANE_URL to match."
            ) from error
