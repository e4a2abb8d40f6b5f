from django import forms

from .models import Plan
from .restore import restore_target_problem
from .roots import import_root_problem


class ImportForm(forms.Form):
    path = forms.CharField(max_length=1024, help_text="A folder on the server (or a mounted share).")
    couple = forms.CharField(max_length=200)
    date = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    country = forms.CharField(min_length=2, max_length=2, help_text="ISO code, e.g. FR")
    city = forms.CharField(max_length=120, required=False)
    plan = forms.ChoiceField(choices=Plan.choices, initial=Plan.STANDARD)
    requires_ml_analysis = forms.BooleanField(required=False, label="Needs ML analysis")

    def clean_path(self) -> str:
        value = self.cleaned_data["path"].strip()
        problem = import_root_problem(value)
        if problem:
            raise forms.ValidationError(problem)
        return value

    def clean_country(self) -> str:
        value = self.cleaned_data["country"].upper()
        if not value.isalpha():
            raise forms.ValidationError("Use a two-letter ISO country code.")
        return value


class RestoreForm(forms.Form):
    path = forms.CharField(max_length=1024, label="Restore to",
                           help_text="An empty (or new) folder on the worker's machine, absolute path.")
    only = forms.CharField(max_length=255, required=False, label="Only files matching",
                           help_text="A glob on the path inside the wedding, e.g. ceremony/*")

    def clean_path(self) -> str:
        value = self.cleaned_data["path"].strip()
        problem = restore_target_problem(value)
        if problem:
            raise forms.ValidationError(problem)
        return value
