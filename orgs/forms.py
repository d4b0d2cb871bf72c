"""Forms for the org pages, the import page and the event log's filters."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import QuerySet

from orgs import fields as org_fields
from orgs.archive import MAX_ARCHIVE, ArchiveError, is_archive, unpack
from orgs.importer import ENV_NAME
from orgs.models import Backend, Org
from orgs.orgfile import MAX_BYTES
from orgs.tree import Tree
from workspaces.models import EventType, Status, Workspace
from workspaces.tiers import TIER_CHOICES

DATETIME_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"]


def _blank(label: str, choices: list[tuple[Any, str]]) -> list[tuple[Any, str]]:
    return [("", label), *choices]


class OrgChoiceField(forms.ModelChoiceField):
    """An org chosen by its slug; a value no slug can be (a NUL, which PostgreSQL would refuse
    even in the lookup) is an invalid choice like any unknown slug, without a query."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(queryset=Org.objects.none(), to_field_name="slug", **kwargs)

    def to_python(self, value: Any) -> Any:
        if value not in self.empty_values and org_fields.slug_problem(str(value)):
            raise forms.ValidationError(
                self.error_messages["invalid_choice"], code="invalid_choice"
            )
        return super().to_python(value)


class ImportForm(forms.Form):
    file = forms.FileField(
        required=False,
        label="YAML file, or a template directory as .zip or .tar.gz",
        widget=forms.ClearableFileInput(
            attrs={"accept": ".yaml,.yml,.zip,.tar.gz,.tgz,application/zip,application/gzip"}
        ),
    )
    text = forms.CharField(
        required=False,
        label="…or paste it",
        widget=forms.Textarea(attrs={"rows": 14, "cols": 70, "spellcheck": "false"}),
        max_length=MAX_BYTES,
        strip=False,
    )
    into = OrgChoiceField(required=False, label="Into org")
    env = forms.CharField(
        required=False,
        label="Environment values for required_env (NAME=value, one a line; never shown again)",
        widget=forms.Textarea(attrs={"rows": 3, "cols": 70, "spellcheck": "false"}),
    )

    def __init__(self, *args: Any, orgs: QuerySet[Org], allow_new: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.allow_new = allow_new
        field = self.fields["into"]
        field.queryset = orgs
        # Creating an org is a platform operator's act; owners and admins import into theirs.
        field.required = not allow_new
        field.empty_label = "(a new org, from the file's name and slug)" if allow_new else None

    def clean_file(self) -> str | Tree:
        """A YAML file's text, or the template directory inside an archive (orgs/archive.py:
        unpacked in memory, bounded, entries confined)."""
        upload = self.cleaned_data.get("file")
        if not upload:
            return ""
        if upload.size > MAX_ARCHIVE:
            raise forms.ValidationError(f"The file is larger than {MAX_ARCHIVE} bytes.")
        data = upload.read(MAX_ARCHIVE + 1)
        if is_archive(data):
            try:
                return unpack(data, label=upload.name or "")
            except ArchiveError as error:
                raise forms.ValidationError(str(error)) from None
        if len(data) > MAX_BYTES:
            raise forms.ValidationError(f"The file is larger than {MAX_BYTES} bytes.")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise forms.ValidationError("The file is not UTF-8 text.") from None

    def clean_env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for number, line in enumerate(self.cleaned_data.get("env", "").splitlines(), 1):
            if not line.strip():
                continue
            name, sep, value = line.strip().partition("=")
            if not sep or not ENV_NAME.match(name.strip()):
                # The line may hold a value: say which line, never echo it.
                raise forms.ValidationError(f"Line {number} is not NAME=value.")
            values[name.strip()] = value
        return values

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        file, text = cleaned.get("file"), cleaned.get("text")
        if "file" in cleaned and "text" in cleaned:
            if file and text and text.strip():
                raise forms.ValidationError("Upload a file or paste one, not both.")
            if not file and not (text or "").strip():
                raise forms.ValidationError(
                    "Upload a YAML file or a template archive, or paste one."
                )
        cleaned["yaml"] = file or text
        cleaned["source"] = getattr(self.files.get("file"), "name", "") or "pasted"
        return cleaned


class WorkspaceFilterForm(forms.Form):
    """The org page's table filters; bad values are ignored rather than refused."""

    status = forms.ChoiceField(required=False, choices=_blank("any state", list(Status.choices)))
    tier = forms.TypedChoiceField(
        required=False, coerce=int, empty_value=None, choices=_blank("any tier", TIER_CHOICES)
    )
    backend = forms.ChoiceField(
        required=False, choices=_blank("any backend", list(Backend.choices))
    )
    q = forms.CharField(required=False, max_length=200, label="Name or role")

    def filters(self) -> dict[str, Any]:
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        return {
            "status": data.get("status") or None,
            "tier": data.get("tier"),
            "backend": data.get("backend") or None,
            "search": (data.get("q") or "").strip() or None,
        }


class MoveForm(forms.Form):
    workspace = forms.UUIDField(widget=forms.Select)
    parent = forms.UUIDField(required=False, widget=forms.Select, label="Under")

    def __init__(self, *args: Any, workspaces: list[Workspace], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = [(str(w.pk), w.name) for w in workspaces]
        self.fields["workspace"].widget.choices = choices
        self.fields["parent"].widget.choices = [("", "(top level: no parent)"), *choices]


class EventFilterForm(forms.Form):
    org = OrgChoiceField(required=False, empty_label="any org")
    workspace = forms.UUIDField(required=False, label="Workspace id")
    type = forms.ChoiceField(
        required=False, choices=_blank("any type", list(EventType.choices)), label="Event type"
    )
    actor = forms.CharField(required=False, max_length=200)
    since = forms.DateTimeField(
        required=False,
        input_formats=DATETIME_FORMATS,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_FORMATS[0]),
    )
    until = forms.DateTimeField(
        required=False,
        input_formats=DATETIME_FORMATS,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_FORMATS[0]),
    )

    def __init__(self, *args: Any, orgs: QuerySet[Org], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["org"].queryset = orgs

    def filters(self) -> dict[str, Any]:
        """The filters as keyword arguments for ``selectors.events_for``; call when valid."""
        data = self.cleaned_data
        org = data.get("org")
        return {
            "org_slug": org.slug if org else None,
            "workspace_id": data.get("workspace"),
            "event_type": data.get("type") or None,
            "actor": (data.get("actor") or "").strip() or None,
            "since": data.get("since"),
            "until": data.get("until"),
        }
