"""The API tokens page: list the tokens of the user's orgs, mint one (shown once), revoke one.

Members see their orgs' tokens (metadata only: prefix, name, who minted it, when, last use);
owners and admins mint and revoke; other orgs' tokens answer 404. The plaintext of a new
token is in the response to the mint POST and nowhere else: not in a redirect, a message or
the session, and the response says ``Cache-Control: no-store``.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from orgs import api_tokens
from orgs import fields as org_fields
from orgs.access import actable_orgs, actor, check_write, visible_orgs
from orgs.forms import OrgChoiceField
from orgs.models import Org, OrgApiToken


class MintTokenForm(forms.Form):
    """The fields check nothing but their type: ``clean`` asks the rule every door shares
    (orgs/fields.py), so this page answers like the API and the command."""

    org = OrgChoiceField()
    name = forms.CharField(
        widget=forms.TextInput(attrs={"maxlength": org_fields.MAX_CREDENTIAL_NAME})
    )
    expires_in_days = forms.IntegerField(
        required=False,
        widget=forms.NumberInput(attrs={"min": 1, "max": org_fields.MAX_EXPIRY_DAYS}),
        label="Expires in (days, optional)",
    )

    def __init__(self, *args: Any, orgs: QuerySet[Org], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["org"].queryset = orgs

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if "name" in data and (why := org_fields.credential_name_problem(data["name"])):
            self.add_error("name", why)
        days = data.get("expires_in_days")
        if days is not None and (why := org_fields.expires_in_days_problem(days)):
            self.add_error("expires_in_days", why)
        return data


def _context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    org = request.GET.get("org") or ""
    rows = api_tokens.tokens_of(visible_orgs(request.user))
    if org:
        # A slug no org can have matches nothing (and PostgreSQL would refuse a NUL in it).
        rows = rows.none() if org_fields.slug_problem(org) else rows.filter(org__slug=org)
    actable = set(actable_orgs(request.user).values_list("pk", flat=True))
    return {
        "tokens": [(token, token.org_id in actable) for token in rows],
        "orgs": visible_orgs(request.user).order_by("slug"),
        "filter_org": org,
        "form": MintTokenForm(orgs=actable_orgs(request.user).order_by("slug")),
        **extra,
    }


@login_required
def token_list(request: HttpRequest) -> HttpResponse:
    context = _context(request)
    if request.htmx:
        return render(request, "orgs/tokens.html#tokens", context)
    return render(request, "orgs/tokens.html", context)


@never_cache
@login_required
@require_POST
def token_mint(request: HttpRequest) -> HttpResponse:
    form = MintTokenForm(request.POST, orgs=visible_orgs(request.user))
    minted = None
    if form.is_valid():
        org = form.cleaned_data["org"]
        check_write(request.user, org.pk)  # a viewer of the org: 403
        days = form.cleaned_data["expires_in_days"]
        try:
            minted = api_tokens.mint(
                org=org,
                name=form.cleaned_data["name"],
                created_by=actor(request.user),
                expires_at=org_fields.expiry_in_days(days) if days else None,
            )
        except ValidationError as invalid:
            messages.error(request, f"Token not minted: {' '.join(invalid.messages)}")
    else:
        if "org" in form.errors and request.POST.get("org"):
            # An org the user cannot see: as if it did not exist.
            raise Http404("No such org.")
        messages.error(request, f"Token not minted: {form.errors.as_text()}")
    context = _context(request, minted=minted)
    if minted is not None:
        context["form"] = MintTokenForm(orgs=actable_orgs(request.user).order_by("slug"))
    template = "orgs/tokens.html#tokens" if request.htmx else "orgs/tokens.html"
    # htmx swaps only 2xx answers: a refused mint still answers 200 there, with its message.
    status = 201 if minted else (200 if request.htmx else 400)
    response = render(request, template, context, status=status)
    if request.htmx and minted:
        response["HX-Trigger"] = "token-minted"
    return response


def _token_for(request: HttpRequest, token_id: int) -> OrgApiToken:
    return get_object_or_404(
        OrgApiToken.objects.select_related("org").filter(org__in=visible_orgs(request.user)),
        pk=token_id,
    )


@login_required
@require_http_methods(["GET", "POST"])
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    token = _token_for(request, token_id)
    check_write(request.user, token.org_id)
    if token.revoked_at is not None:
        raise Http404("This token is already revoked.")
    if request.method == "GET":
        return render(request, "orgs/token_revoke.html", {"token": token})
    try:
        api_tokens.revoke(org=token.org, token_id=token.pk, actor=actor(request.user))
    except api_tokens.TokenNotFound:
        raise Http404("This token is already revoked.") from None
    messages.success(
        request, f"Token {token.prefix}… ({token.name}) is revoked; it no longer authenticates."
    )
    if request.htmx:
        response = render(request, "orgs/tokens.html#tokens", _context(request))
        response["HX-Trigger"] = "token-revoked"
        return response
    return redirect("tokens")
