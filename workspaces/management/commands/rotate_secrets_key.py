"""``manage.py rotate_secrets_key --new-key KEY``: re-encrypt every workspace secret."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from workspaces import vault


class Command(BaseCommand):
    help = (
        "Re-encrypt every workspace secret under a new key, in one transaction. Each row is "
        "opened with --old-key, SECRETS_ENCRYPTION_KEY or a SECRETS_ENCRYPTION_KEY_FALLBACKS "
        "key, whichever sealed it. Afterwards set SECRETS_ENCRYPTION_KEY to the new key on "
        "every web and worker process."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--new-key",
            required=True,
            help="32 bytes in base64 (`openssl rand -base64 32`); '-' reads it from stdin, "
            "which keeps it out of the shell history and the process list.",
        )
        parser.add_argument(
            "--old-key",
            action="append",
            default=[],
            help="A key that sealed some rows, if it is not configured any more (repeatable).",
        )

    def handle(self, *args: Any, new_key: str, old_key: list[str], **options: Any) -> None:
        if new_key == "-":
            new_key = sys.stdin.readline().strip()
        try:
            count = vault.rotate(new_key=new_key, old_keys=old_key)
        except vault.SecretsUnreadable as error:
            raise CommandError(f"Nothing was changed: {error.message}") from None
        kid = vault.key_id(vault.decode_key(new_key, name="--new-key"))
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted {count} secret(s) under key id {kid}."))
        self.stdout.write(
            "Now run every web and worker process with SECRETS_ENCRYPTION_KEY set to the new key "
            "(a process still on the old key refuses to start agents with a wrong-key error). "
            "To rotate without that gap, deploy the new key first with the old one in "
            "SECRETS_ENCRYPTION_KEY_FALLBACKS, then run this command, then drop the fallback."
        )
