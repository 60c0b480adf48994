"""Forms of the account pages: the one-time code, and Django's password forms
with a help text people can read (Django's is an HTML list)."""

from django import forms
from django.contrib.auth import forms as auth_forms

STRENGTH_HINT = (
    "At least 8 characters, not only digits, not a common password "
    "and not close to your name or username."
)


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code",
        max_length=32,
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "autofocus": True,
                "autocapitalize": "off",
                "spellcheck": "false",
            }
        ),
    )


class SetPasswordForm(auth_forms.SetPasswordForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["new_password1"].help_text = STRENGTH_HINT


class PasswordChangeForm(auth_forms.PasswordChangeForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["new_password1"].help_text = STRENGTH_HINT
