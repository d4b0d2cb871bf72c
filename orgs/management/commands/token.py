"""``manage.py token {mint,list,revoke}``: org API tokens from the shell (orgs/api_tokens.py)."""

from __future__ import annotations

import getpass
import json
import re
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from orgs import api_tokens
from orgs import fields as org_fields
from orgs.models import Org, OrgApiToken
from workspaces.fields import unstorable

# A row id as `token list` shows it ("²".isdigit() is true too).
ID = re.compile(r"^[0-9]{1,18}\Z")


def cli_actor() -> str:
    return f"cli:{getpass.getuser()}"


def find_org(slug: str) -> Org:
    """The org with this slug, or a ``CommandError`` saying there is none."""
    org = None if org_fields.slug_problem(slug) else Org.objects.filter(slug=slug).first()
    if org is None:
        raise CommandError(f"No org has the slug {slug!r}.")
    return org


def expiry(days: int | None) -> datetime | None:
    """``--expires-in-days`` by the rule every door shares (orgs/fields.py)."""
    if days is None:
        return None
    if why := org_fields.expires_in_days_problem(days):
        raise CommandError(f"--expires-in-days {why}.")
    return org_fields.expiry_in_days(days)


class Command(BaseCommand):
    help = "Mint, list or revoke org API api_tokens. A minted token is printed once; keep it."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        mint = sub.add_parser("mint", help="Mint a token and print it (only this once).")
        mint.add_argument("--org", required=True, help="Org slug.")
        mint.add_argument("--name", required=True, help="What or who will use it.")
        mint.add_argument("--expires-in-days", type=int, help="Expire after this many days.")
        listing = sub.add_parser("list", help="List tokens (prefixes and metadata, never tokens).")
        listing.add_argument("--org", help="Only this org's api_tokens.")
        listing.add_argument(
            "--all", dest="include_revoked", action="store_true", help="Include revoked api_tokens."
        )
        listing.add_argument("--json", dest="as_json", action="store_true", help="Print JSON.")
        revoke = sub.add_parser("revoke", help="Revoke a token now.")
        revoke.add_argument("token", help="Token id or prefix.")
        revoke.add_argument("--org", help="Org slug, to tell same-prefix tokens apart.")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        getattr(self, action)(**options)

    def mint(self, *, org: str, name: str, expires_in_days: int | None, **_: Any) -> None:
        expires_at = expiry(expires_in_days)
        try:
            minted = api_tokens.mint(
                org=find_org(org), name=name, created_by=cli_actor(), expires_at=expires_at
            )
        except ValidationError as invalid:
            raise CommandError(" ".join(invalid.messages)) from None
        self.stderr.write(
            f"Token {minted.token.prefix}… ({minted.token.name}) for {org}; shown only now:"
        )
        self.stdout.write(minted.plaintext)

    def list(self, *, org: str | None, include_revoked: bool, as_json: bool, **_: Any) -> None:
        orgs = Org.objects.filter(pk=find_org(org).pk) if org else Org.objects.all()
        rows = api_tokens.tokens_of(orgs, include_revoked=include_revoked)
        if as_json:
            self.stdout.write(json.dumps([api_tokens.as_dict(t) for t in rows], indent=2))
            return
        self.stdout.write(
            f"{'ID':<6}{'PREFIX':<10}{'ORG':<14}{'NAME':<22}{'STATUS':<9}{'LAST USED':<22}"
            "CREATED BY"
        )
        for t in rows:
            used = t.last_used_at.strftime("%Y-%m-%d %H:%M:%S") if t.last_used_at else "never"
            self.stdout.write(
                f"{t.pk:<6}{t.prefix:<10}{t.org.slug:<14}{t.name[:21]:<22}{t.status:<9}"
                f"{used:<22}{t.created_by}"
            )

    def revoke(self, *, token: str, org: str | None, **_: Any) -> None:
        rows = OrgApiToken.objects.select_related("org").filter(revoked_at__isnull=True)
        if org:
            rows = rows.filter(org=find_org(org))
        matches = list(rows.filter(pk=int(token))) if ID.match(token) else []
        if not matches and not unstorable(token):
            matches = list(rows.filter(prefix=token))
        if not matches:
            raise CommandError(f"No live token has the id or prefix {token!r}.")
        if len(matches) > 1:
            raise CommandError(f"{token!r} matches several tokens; use the id (`token list`).")
        row = matches[0]
        api_tokens.revoke(org=row.org, token_id=row.pk, actor=cli_actor())
        self.stdout.write(self.style.SUCCESS(f"Revoked {row.prefix}… ({row.name}) of {row.org}."))
