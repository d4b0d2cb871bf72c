from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import QuerySet

from orgs.models import Org
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
