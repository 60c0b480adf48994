"""Forms of the account pages: the one-time code, Django's password forms with
a help text people can read (Django's is an HTML list), and the rules every
form that creates or edits a person follows (``PersonFields``)."""

from django import forms
from django.contrib.auth import forms as auth_forms

from pipeline.accounts import validate_no_card_number
from pipeline.text import single_line

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


class CurrentPasswordForm(forms.Form):
    """The account's password, typed again: with an enrollment link after a reset,
    the link alone does not set up a new phone."""

    password = forms.CharField(
        label="Your password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password", "autofocus": True}),
    )

    def __init__(self, user, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_password(self):
        password = self.cleaned_data["password"]
        if not self.user.check_password(password):
            raise forms.ValidationError("That isn't your password.")
        return password


class SetPasswordForm(auth_forms.SetPasswordForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["new_password1"].help_text = STRENGTH_HINT


class PasswordChangeForm(auth_forms.PasswordChangeForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["new_password1"].help_text = STRENGTH_HINT


class PersonFields:
    """Mixed into every form that creates or edits a person (the team's invitation,
    the operators' user forms in the admin).

    A username or email holding a card number is refused next to the field
    (``accounts.validate_no_card_number``); first and last names are made one
    line (``pipeline.text.single_line``): a rep's name is the From of the
    emails they send.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("username", "email"):
            if name in self.fields:
                self.fields[name].validators.append(validate_no_card_number)

    def clean_first_name(self):
        return single_line(self.cleaned_data.get("first_name"))

    def clean_last_name(self):
        return single_line(self.cleaned_data.get("last_name"))
