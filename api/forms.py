from django import forms

from api.models import Scope


class ApiTokenForm(forms.Form):
    name = forms.CharField(
        max_length=80,
        help_text="What uses it, e.g. “Accounting sync”: you see it in the list.",
        error_messages={"required": "Name the token: what will use it?"},
    )
    scope = forms.ChoiceField(
        choices=Scope.choices,
        initial=Scope.READ,
        widget=forms.RadioSelect,
        error_messages={"required": "Choose what the token may do."},
    )

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Name the token: what will use it?")
        return name
