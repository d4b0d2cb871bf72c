"""``manage.py partner_key {mint,list,revoke}``: partner API keys from the shell."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from orgs import partner_keys
from orgs.management.commands.token import ID, cli_actor, expiry, find_org
from orgs.models import PartnerApiKey
from workspaces.fields import unstorable


class Command(BaseCommand):
    help = "Mint, list or revoke partner API keys. A minted key is printed once; keep it."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        mint = sub.add_parser("mint", help="Mint a key and print it (only this once).")
        mint.add_argument("--name", required=True)
        mint.add_argument(
            "--scope",
            dest="scopes",
            action="append",
            default=[],
            choices=sorted(partner_keys.SCOPES),
            help="A scope to grant; repeat for several.",
        )
        mint.add_argument("--org", help="Bind the key to this org (slug).")
        mint.add_argument("--rate-limit", type=int, default=60, help="Requests per minute.")
        mint.add_argument("--expires-in-days", type=int)
        listing = sub.add_parser("list", help="List keys (prefixes and metadata, never keys).")
        listing.add_argument("--all", dest="include_revoked", action="store_true")
        revoke = sub.add_parser("revoke", help="Revoke a key now.")
        revoke.add_argument("key", help="Key id or prefix (mol_pk_live_xxxx).")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        getattr(self, action)(**options)

    def mint(
        self,
        *,
        name: str,
        scopes: list[str],
        org: str | None,
        rate_limit: int,
        expires_in_days: int | None,
        **_: Any,
    ) -> None:
        bound = find_org(org) if org else None
        try:
            minted = partner_keys.mint(
                name=name,
                scopes=scopes,
                org=bound,
                rate_limit=rate_limit,
                expires_at=expiry(expires_in_days),
                created_by=cli_actor(),
            )
        except ValidationError as invalid:
            raise CommandError(" ".join(invalid.messages)) from None
        self.stderr.write(f"Partner key {minted.key.prefix}… ({name}); shown only now:")
        self.stdout.write(minted.plaintext)

    def list(self, *, include_revoked: bool, **_: Any) -> None:
        rows = PartnerApiKey.objects.select_related("org")
        if not include_revoked:
            rows = rows.filter(revoked_at__isnull=True)
        self.stdout.write(f"{'ID':<6}{'PREFIX':<18}{'NAME':<22}{'STATUS':<9}{'ORG':<14}SCOPES")
        for k in rows:
            self.stdout.write(
                f"{k.pk:<6}{k.prefix:<18}{k.name[:21]:<22}{k.status:<9}"
                f"{k.org.slug if k.org else '(any)':<14}{','.join(k.scopes)}"
            )

    def revoke(self, *, key: str, **_: Any) -> None:
        rows = PartnerApiKey.objects.filter(revoked_at__isnull=True)
        matches = list(rows.filter(pk=int(key))) if ID.match(key) else []
        if not matches and not unstorable(key):
            matches = list(rows.filter(prefix=key))
        if len(matches) != 1:
            raise CommandError(
                f"{key!r} matches {len(matches)} live keys; use the id (`partner_key list`)."
            )
        partner_keys.revoke(key_id=matches[0].pk, actor=cli_actor())
        self.stdout.write(self.style.SUCCESS(f"Revoked {matches[0].prefix}… ({matches[0].name})."))
