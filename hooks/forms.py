from django import forms

from hooks.models import EventType, Format
from hooks.targets import TargetRefused, check_target


class SubscriptionForm(forms.Form):
    url = forms.URLField(
        label="Receiver URL",
        max_length=500,
        assume_scheme="https",
        help_text=(
            "Cleared POSTs each event here. For Slack or Teams: the channel's incoming-webhook URL."
        ),
    )
    description = forms.CharField(label="Name (optional)", max_length=120, required=False)
    events = forms.MultipleChoiceField(
        choices=EventType.choices, widget=forms.CheckboxSelectMultiple
    )
    format = forms.ChoiceField(
        choices=Format.choices, initial=Format.JSON, widget=forms.RadioSelect
    )

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        try:
            check_target(url)
        except TargetRefused as refused:
            raise forms.ValidationError(str(refused)) from refused
        return url
