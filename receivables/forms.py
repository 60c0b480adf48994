"""Forms for asking the customer for money: sending an invoice, a manager's chase
wording, the customer's answers on their link, and a new link. They check
input; the rules live in ``receivables.mail`` and ``receivables.links``."""

from datetime import timedelta

from django import forms
from django.conf import settings
from django.utils import timezone

from billing.forms import RefusesCardNumbers
from billing.models import Invoice
from pipeline.forms import DateInput
from pipeline.text import single_line
from receivables import chase


class InvoiceSendForm(forms.Form):
    """Email the invoice now, or on a day before the customer's accounting cut-off."""

    send_on = forms.DateField(
        label="Send on",
        required=False,
        widget=DateInput,
        help_text="Empty: now. A later day: it goes that morning.",
    )

    def __init__(self, *args, cutoff=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.cutoff = cutoff

    def clean_send_on(self):
        day = self.cleaned_data["send_on"]
        if day is None:
            return None
        if day < timezone.localdate():
            raise forms.ValidationError("That day has passed: leave it empty to send now.")
        if self.cutoff is not None and day > self.cutoff:
            raise forms.ValidationError(
                f"That is after the customer's accounting cut-off ({self.cutoff:%-d %b}): "
                "it would miss this month's payment run."
            )
        return day


class ChaseTemplateForm(RefusesCardNumbers, forms.Form):
    """A manager's wording for one rung: subject and body with the invoice's placeholders."""

    no_card_numbers = ("subject", "body")

    subject = forms.CharField(max_length=200)
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 9}), max_length=5000)
    auto_send = forms.BooleanField(
        required=False,
        label="Send by itself when due",
        help_text="Otherwise the rep previews and sends it from the reminder.",
    )

    def __init__(self, *args, last_rung: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if last_rung:
            # The last rung always waits for the manager's approval.
            del self.fields["auto_send"]

    def _placeholders(self, name: str) -> str:
        text = self.cleaned_data[name]
        unknown = chase.unknown_placeholders(text)
        if unknown:
            known = ", ".join(f"{{{key}}}" for key in chase.PLACEHOLDERS)
            raise forms.ValidationError(
                f"Unknown placeholder {{{unknown[0]}}}: use one of {known}."
            )
        return text

    def clean_subject(self):
        # A header is one line: a line break typed or pasted in becomes a space.
        return single_line(self._placeholders("subject"))

    def clean_body(self):
        return self._placeholders("body")


# --- The customer's link ---------------------------------------------------------


class PaidForm(RefusesCardNumbers, forms.Form):
    """The customer's "I've paid": the reference that lets us find the money."""

    reference = forms.CharField(
        label="Your payment reference",
        max_length=120,
        help_text="The transfer reference or check number — never a card number.",
    )
    no_card_numbers = ("reference",)
    # Words a customer understands: they know their bank's reference, not our processor.
    card_number_refusal = (
        "That looks like a card or account number: please don't send it to us. "
        "Type the reference your bank or your receipt shows (for a check, its number)."
    )


class PromiseForm(forms.Form):
    """The customer's "I'll pay on …": a day from today on (the service checks how far)."""

    promised_for = forms.DateField(label="I'll pay on", widget=DateInput())

    def __init__(self, *args, today=None, **kwargs):
        super().__init__(*args, **kwargs)
        today = today or timezone.localdate()
        widget = self.fields["promised_for"].widget
        widget.attrs["min"] = today.isoformat()
        latest = today + timedelta(days=settings.CLEARED_PROMISE_MAX_DAYS)
        widget.attrs["max"] = latest.isoformat()


class LinkNewForm(forms.Form):
    """Which link to make: to one of the customer's invoices, or (empty) their statement."""

    invoice = forms.ModelChoiceField(
        queryset=Invoice.objects.none(), required=False, empty_label="Their statement"
    )

    def __init__(self, *args, customer, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["invoice"].queryset = Invoice.objects.visible_to(user).filter(
            deal__customer=customer, voided_at__isnull=True
        )
