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
