from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import QuerySet

from orgs.models import Org
from workspaces import dispatch
from workspaces.tiers import DEFAULT_TIER, TIER_CHOICES


class NewWorkspaceForm(forms.Form):
    org = forms.ModelChoiceField(queryset=Org.objects.none(), to_field_name="slug")
    name = forms.CharField(max_length=200)
    role = forms.CharField(max_length=200, required=False)
    tier = forms.TypedChoiceField(choices=TIER_CHOICES, coerce=int, initial=DEFAULT_TIER)
    runtime = forms.CharField(max_length=64, initial="langgraph")

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

    name = forms.CharField(required=False, widget=forms.TextInput(attrs={"maxlength": 200}))
    role = forms.CharField(required=False, widget=forms.TextInput(attrs={"maxlength": 200}))
    tier = forms.IntegerField(widget=forms.Select(choices=TIER_CHOICES))
    runtime = forms.CharField(required=False, widget=forms.TextInput(attrs={"maxlength": 64}))
    workspace_dir = forms.CharField(
        required=False,
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
