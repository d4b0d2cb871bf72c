from __future__ import annotations

from typing import Any

from django import forms
from django.core.validators import ProhibitNullCharactersValidator
from django.db.models import QuerySet

from orgs.forms import OrgChoiceField
from orgs.models import Org
from workspaces import dispatch
from workspaces.tiers import DEFAULT_TIER, TIER_CHOICES


class TextField(forms.CharField):
    """A text field that leaves every check to the shared rule, NUL included: Django's own
    ("Null characters are not allowed.") would answer a NUL differently from the API."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(required=False, **kwargs)
        self.validators = [
            v for v in self.validators if not isinstance(v, ProhibitNullCharactersValidator)
        ]


class NewWorkspaceForm(forms.Form):
    """The dashboard's create form. Like the edit form, its text fields check nothing
    themselves: ``clean`` asks the rule every door shares (``workspaces.fields``)."""

    org = OrgChoiceField()
    name = TextField(widget=forms.TextInput(attrs={"maxlength": 200}))
    role = TextField(widget=forms.TextInput(attrs={"maxlength": 200}))
    tier = forms.TypedChoiceField(choices=TIER_CHOICES, coerce=int, initial=DEFAULT_TIER)
    runtime = TextField(initial="langgraph", widget=forms.TextInput(attrs={"maxlength": 64}))

    def __init__(self, *args: Any, orgs: QuerySet[Org], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["org"].queryset = orgs

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        # The rule every door shares (workspaces.fields), beyond what the form fields check.
        given = {name: data[name] for name in ("name", "role", "tier", "runtime") if name in data}
        for name, whys in dispatch.edit_problems(given).items():
            for why in whys:
                self.add_error(name, why)
        return data


class EditWorkspaceForm(forms.Form):
    """The workspace page's edit form; dispatch.edit_workspace applies it.

    The fields check nothing themselves (no required, no max_length): ``clean`` asks the rule
    every door shares, so this page answers a bad value with the same sentence as the API, the
    admin and the command.
    """

    name = TextField(widget=forms.TextInput(attrs={"maxlength": 200}))
    role = TextField(widget=forms.TextInput(attrs={"maxlength": 200}))
    tier = forms.IntegerField(widget=forms.Select(choices=TIER_CHOICES))
    runtime = TextField(widget=forms.TextInput(attrs={"maxlength": 64}))
    workspace_dir = TextField(
        widget=forms.TextInput(attrs={"maxlength": 500}),
        help_text="Empty: the backend's default.",
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        given = {name: data[name] for name in self.fields if name in data}
        for name, whys in dispatch.edit_problems(given).items():
            for why in whys:
                self.add_error(name if name in self.fields else None, why)
        return data
