from __future__ import annotations

import json

from django import forms
from django.conf import settings

from .backends import backend_from_config
from .backends.base import BackendConfig, ProviderError
from .endpoints import endpoint_problem
from .identity import location_taken
from .models import Provider


class ProviderForm(forms.ModelForm):
    """Credentials are write-only: typed in as JSON, never rendered back."""

    endpoint = forms.URLField(required=False, assume_scheme="https",
                              help_text="Override of the provider's API endpoint (local servers).")

    new_credentials = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password", "size": 80}),
        label="Credentials",
        help_text='JSON, e.g. {"access_key_id": "...", "secret_access_key": "..."}. '
        "Leave empty to keep the stored ones.",
    )

    check_connection = forms.BooleanField(
        required=False, initial=True,
        help_text="Before saving, write, read back and delete a small test object with these settings.",
    )

    class Meta:
        model = Provider
        fields = ["name", "kind", "region", "endpoint", "bucket", "default_storage_class", "options", "enabled",
                  "capacity_bytes", "status", "notes"]

    def clean_new_credentials(self) -> dict | None:
        raw = self.cleaned_data["new_credentials"].strip()
        if not raw:
            return None
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(
                f"Credentials must be a JSON object ({exc.msg} at character {exc.pos})."
            ) from None
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise forms.ValidationError("Credentials must be a JSON object of names to values.")
        return value

    def clean_endpoint(self) -> str:
        value = self.cleaned_data["endpoint"]
        problem = endpoint_problem(value)
        if problem:
            raise forms.ValidationError(problem)
        return value

    def clean(self) -> dict:
        data = super().clean()
        if self.errors:
            return data
        moved = self.instance.pk and {"endpoint", "bucket", "kind"} & set(self.changed_data)
        if moved and data.get("new_credentials") is None and self.instance.credentials:
            raise forms.ValidationError("The endpoint, bucket or kind changed: enter the credentials again (stored "
                                        "credentials are never sent to a place other than the one they were "
                                        "entered for).")
        twin = location_taken(config=_config(data, data.get("new_credentials") or self.instance.credentials or {}),
                              exclude_pk=self.instance.pk)
        if twin is not None:
            raise forms.ValidationError(f"Provider {twin.name} already writes to this bucket/folder: two providers "
                                        "on one place would count one copy twice.")
        if not data.get("check_connection") or not data.get("enabled"):
            return data
        problem = connection_problem(data, data.get("new_credentials") or self.instance.credentials or {})
        if problem:
            raise forms.ValidationError(f"Connection check failed: {problem}")
        return data

    def save(self, commit: bool = True) -> Provider:
        new = self.cleaned_data.get("new_credentials")
        if new is not None:
            self.instance.credentials = new
        return super().save(commit=commit)


def _config(data: dict, credentials: dict) -> BackendConfig:
    return BackendConfig(
        name=data.get("name") or "new provider", kind=data["kind"], bucket=data.get("bucket", ""),
        region=data.get("region", ""), endpoint=data.get("endpoint", ""), credentials=credentials,
        default_storage_class=data.get("default_storage_class", ""), options=data.get("options") or {},
        part_size=settings.WEDBACKUP_PART_SIZE,
    )


def connection_problem(data: dict, credentials: dict) -> str:
    """Empty when a probe with these settings succeeds; otherwise the backend's own message (never secrets)."""
    try:
        backend = backend_from_config(_config(data, credentials))
    except ProviderError as exc:
        return str(exc)
    probe = backend.probe()
    return "" if probe.ok else probe.error
