from __future__ import annotations

import json

from django import forms

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

    def save(self, commit: bool = True) -> Provider:
        new = self.cleaned_data.get("new_credentials")
        if new is not None:
            self.instance.credentials = new
        return super().save(commit=commit)
