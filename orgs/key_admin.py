"""Admin for org API tokens and partner keys: list, mint (plaintext shown once), revoke.

Both are adapters over orgs/api_tokens.py and orgs/partner_keys.py. A key row is never edited and
never deleted (revoking keeps the audit trail); its hash is not shown at all. Minting answers
with a page that shows the plaintext once (admin views are never cached); nothing else keeps
it. Org tokens follow org roles like every admin page; partner keys are console-wide, so only
superusers see them.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from orgs import api_tokens, partner_keys
from orgs import fields as org_fields
from orgs.access import actable_orgs, actor, visible_orgs
from orgs.models import OrgApiToken, PartnerApiKey

SHOWN = (
    "prefix",
    "name",
    "created_by",
    "created_at",
    "last_used_at",
    "expires_at",
    "revoked_at",
    "status",
)


def _future(value: Any) -> Any:
    # The rule every door shares (orgs/fields.py): in the future, at most ten years ahead.
    if why := org_fields.expires_at_problem(value):
        raise forms.ValidationError(f"The expiry {why}.")
    return value


def _name(value: Any) -> Any:
    if why := org_fields.credential_name_problem(value):
        raise forms.ValidationError(f"The name: {why}.")
    return value


class MintTokenForm(forms.ModelForm):
    class Meta:
        model = OrgApiToken
        fields = ("org", "name", "expires_at")

    def clean_expires_at(self) -> Any:
        return _future(self.cleaned_data.get("expires_at"))

    def clean_name(self) -> Any:
        return _name(self.cleaned_data.get("name"))


class MintPartnerKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=PartnerApiKey.Scope.choices, widget=forms.CheckboxSelectMultiple, required=False
    )

    class Meta:
        model = PartnerApiKey
        fields = ("name", "scopes", "org", "rate_limit", "expires_at")

    def clean_expires_at(self) -> Any:
        return _future(self.cleaned_data.get("expires_at"))

    def clean_name(self) -> Any:
        return _name(self.cleaned_data.get("name"))

    def clean_rate_limit(self) -> Any:
        value = self.cleaned_data.get("rate_limit")
        if value is not None and not 1 <= value <= partner_keys.MAX_RATE_LIMIT:
            limit = partner_keys.MAX_RATE_LIMIT
            raise forms.ValidationError(f"Use 1 to {limit} requests a minute.")
        return value


class KeyAdmin(admin.ModelAdmin):
    """What both key admins share: mint on add, read-only afterwards, revoke as the action."""

    actions = ["revoke_action"]
    kind = ""
    shown: tuple[str, ...] = ()

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.form._meta.fields if obj is None else self.shown

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return () if obj is None else self.shown

    def get_form(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = self.form
        return super().get_form(request, obj, **kwargs)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # No edits: a key's name, scopes and binding are what it was minted with.
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def response_add(
        self, request: HttpRequest, obj: Any, post_url_continue: str | None = None
    ) -> HttpResponse:
        return TemplateResponse(
            request,
            "admin/orgs/minted.html",
            {
                **self.admin_site.each_context(request),
                "title": f"{self.kind} minted",
                "kind": self.kind,
                "obj": obj,
                "plaintext": request._minted_plaintext,  # type: ignore[attr-defined]
                "opts": self.model._meta,
            },
        )

    def _revoke(self, request: HttpRequest, row: Any) -> bool:
        raise NotImplementedError

    @admin.action(permissions=["change"], description="Revoke selected (immediately)")
    def revoke_action(self, request: HttpRequest, queryset: QuerySet) -> None:
        done = []
        for row in queryset.filter(revoked_at__isnull=True):
            if self._revoke(request, row):
                done.append(row.prefix)
        if done:
            self.message_user(request, f"Revoked: {', '.join(done)}.")
        else:
            self.message_user(request, "Nothing revoked.", messages.WARNING)


@admin.register(OrgApiToken)
class OrgApiTokenAdmin(KeyAdmin):
    form = MintTokenForm
    kind = "Org API token"
    shown = ("org", *SHOWN)
    list_display = ("prefix", "name", "org", *SHOWN[2:])
    # Related-only: the stock filter would list every org, other tenants' slugs included.
    list_filter = (("org", admin.RelatedOnlyFieldListFilter),)
    search_fields = ("prefix", "name", "created_by")

    def get_queryset(self, request: HttpRequest) -> QuerySet[OrgApiToken]:
        return super().get_queryset(request).filter(org__in=visible_orgs(request.user))

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "org":
            kwargs["queryset"] = actable_orgs(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if change:
            return
        minted = api_tokens.mint(
            org=obj.org, name=obj.name, created_by=actor(request.user), expires_at=obj.expires_at
        )
        obj.pk, obj._state = minted.token.pk, minted.token._state
        request._minted_plaintext = minted.plaintext  # type: ignore[attr-defined]

    def _revoke(self, request: HttpRequest, row: Any) -> bool:
        if not actable_orgs(request.user).filter(pk=row.org_id).exists():
            self.message_user(
                request,
                f"Not allowed to revoke {row.prefix}: you can only view {row.org}.",
                messages.ERROR,
            )
            return False
        api_tokens.revoke(org=row.org, token_id=row.pk, actor=actor(request.user))
        return True


@admin.register(PartnerApiKey)
class PartnerApiKeyAdmin(KeyAdmin):
    form = MintPartnerKeyForm
    kind = "Partner API key"
    shown = ("scopes", "org", "rate_limit", *SHOWN)
    list_display = ("prefix", "name", "scopes", "org", "rate_limit", *SHOWN[2:])
    # Related-only: the stock filter would list every org, other tenants' slugs included.
    list_filter = (("org", admin.RelatedOnlyFieldListFilter),)
    search_fields = ("prefix", "name", "created_by")

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser and obj is None

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if change:
            return
        minted = partner_keys.mint(
            name=obj.name,
            scopes=form.cleaned_data["scopes"],
            org=obj.org,
            rate_limit=obj.rate_limit,
            expires_at=obj.expires_at,
            created_by=actor(request.user),
        )
        obj.pk, obj._state = minted.key.pk, minted.key._state
        request._minted_plaintext = minted.plaintext  # type: ignore[attr-defined]

    def _revoke(self, request: HttpRequest, row: Any) -> bool:
        partner_keys.revoke(key_id=row.pk, actor=actor(request.user))
        return True
