"""Forms for money: they check input; the rules live in billing.services."""

from datetime import timedelta

from django import forms
from django.conf import settings
from django.utils import timezone

from billing.models import (
    Instalment,
    Invoice,
    MethodKind,
    PaymentKind,
    PaymentMethodKind,
    PaymentStatus,
)
from billing.services import BillingError, refuse_full_number
from pipeline.forms import AmountField, DateInput


class RefusesCardNumbers:
    """Refuse a full card or account number in the named fields, and never echo it back.

    The refused value is blanked in the bound data, so the page that shows
    the error does not put the number back into the field.
    """

    no_card_numbers: tuple[str, ...] = ()
    # The words of the refusal, when the form is not for staff (the customer's link).
    card_number_refusal: str = ""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.is_bound:
            self.data = self.data.copy()

    def clean(self):
        cleaned = super().clean()
        for name in self.no_card_numbers:
            value = self.data.get(name, "")
            try:
                refuse_full_number(value, name)
            except BillingError as exc:
                self.data[name] = ""
                cleaned.pop(name, None)
                self.add_error(name, self.card_number_refusal or str(exc))
        return cleaned


class PaymentForm(RefusesCardNumbers, forms.Form):
    kind = forms.ChoiceField(choices=PaymentKind.choices, initial=PaymentKind.DEPOSIT)
    method = forms.ChoiceField(choices=PaymentMethodKind.choices)
    amount = AmountField(label=f"Amount ({settings.CURRENCY})")
    reference = forms.CharField(
        max_length=120,
        required=False,
        help_text="Check number, transfer reference or receipt — never a card number.",
    )
    invoice = forms.ModelChoiceField(
        queryset=Invoice.objects.none(), required=False, empty_label="No invoice"
    )
    instalment = forms.ModelChoiceField(
        queryset=Instalment.objects.none(), required=False, empty_label="Not an instalment"
    )
    no_card_numbers = ("reference",)

    def __init__(self, *args, deal, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["invoice"].queryset = Invoice.objects.filter(
            deal=deal, voided_at__isnull=True
        ).order_by("number")
        self.fields["instalment"].queryset = Instalment.objects.filter(plan__deal=deal)
        if not self.fields["invoice"].queryset.exists():
            del self.fields["invoice"]
        if not self.fields["instalment"].queryset.exists():
            del self.fields["instalment"]


class PaymentMethodForm(RefusesCardNumbers, forms.Form):
    kind = forms.ChoiceField(label="What is on file", choices=MethodKind.choices)
    processor_token = forms.CharField(
        label="Processor token",
        max_length=120,
        help_text="The token the payment processor gave back, e.g. tok_1Nx…",
    )
    brand = forms.CharField(label="Card brand or bank", max_length=60)
    last4 = forms.CharField(
        label="Last 4 digits",
        max_length=40,  # a longer entry is refused with a message, not cut silently
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )
    no_card_numbers = ("processor_token", "brand", "last4")

    def clean_last4(self):
        value = self.cleaned_data["last4"].strip()
        if not (len(value) == 4 and value.isdigit()):
            self.data["last4"] = ""
            raise forms.ValidationError("Enter exactly the last 4 digits, nothing more.")
        return value


class InvoiceForm(RefusesCardNumbers, forms.Form):
    amount = AmountField(label=f"Amount ({settings.CURRENCY})")
    issue_date = forms.DateField(widget=DateInput())
    terms_days = forms.IntegerField(
        label="Terms: net days", min_value=0, max_value=180, help_text="Net 15, net 30…"
    )

    def clean_issue_date(self):
        value = self.cleaned_data["issue_date"]
        if value > timezone.localdate() + timedelta(days=31):
            raise forms.ValidationError("Issue it within the next month.")
        return value


class PaymentStatusForm(forms.Form):
    to_status = forms.ChoiceField(
        label="The payment has",
        choices=[
            (PaymentStatus.CLEARED, "Cleared"),
            (PaymentStatus.BOUNCED, "Bounced"),
            (PaymentStatus.CHARGED_BACK, "Been charged back"),
        ],
        widget=forms.RadioSelect,
    )
    reason = forms.CharField(
        max_length=500,
        required=False,
        help_text="Required for a bounce or charge-back: it goes on the ledger.",
    )

    def clean(self):
        cleaned = super().clean()
        bad_news = cleaned.get("to_status") in (PaymentStatus.BOUNCED, PaymentStatus.CHARGED_BACK)
        if bad_news and not cleaned.get("reason", "").strip():
            self.add_error("reason", "Say why: the reason goes on the ledger.")
        return cleaned


class PaymentPlanForm(forms.Form):
    count = forms.IntegerField(label="Number of instalments", min_value=2, max_value=24)
    first_due = forms.DateField(label="First instalment due", widget=DateInput())
    every_days = forms.IntegerField(
        label="Then every (days)", min_value=7, max_value=92, initial=30
    )
    note = forms.CharField(
        max_length=300, required=False, help_text="What the customer agreed to, in a line."
    )

    def clean_first_due(self):
        value = self.cleaned_data["first_due"]
        today = timezone.localdate()
        if value < today:
            raise forms.ValidationError("The first instalment can't be due in the past.")
        # A plan starts soon; a far date is a typo (and 9999-12-01 has no second instalment).
        if value > today + timedelta(days=366):
            raise forms.ValidationError("The first instalment must be due within a year.")
        return value


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 2}))


class AllowInvoicingForm(ReasonForm):
    valid_until = forms.DateField(
        required=False, widget=DateInput(), help_text="Empty: until a manager says otherwise."
    )

    def clean_valid_until(self):
        value = self.cleaned_data.get("valid_until")
        if value is not None and value < timezone.localdate():
            raise forms.ValidationError("The exception can't end in the past.")
        return value


class CommissionRateForm(forms.Form):
    """A rep's commission rate, as a percent, from a day on."""

    percent = forms.DecimalField(
        label="Commission rate (%)",
        min_value=0,
        max_value=100,
        max_digits=5,
        decimal_places=2,
        help_text="Of cleared money, e.g. 12.50 for 12.50 %.",
        error_messages={
            "required": "Type a rate from 0 to 100.",
            "invalid": "A number from 0 to 100, e.g. 12.50.",
            "min_value": "A rate from 0 to 100 %%.",  # %% : Django formats these with params
            "max_value": "A rate from 0 to 100 %%.",
            "max_decimal_places": "At most two decimals, e.g. 12.50.",
            "max_digits": "A rate from 0 to 100 %%.",
        },
    )
    effective_from = forms.DateField(
        label="In force from",
        widget=DateInput(),
        help_text="Today or later. Commission already earned does not change.",
        error_messages={"required": "Choose the first day.", "invalid": "A date, e.g. 2026-12-01."},
    )


class DecisionForm(forms.Form):
    """A manager's answer to a rep's "Ask my manager" request."""

    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("decline", "Decline")])
    note = forms.CharField(max_length=300, required=False)


class RefundForm(RefusesCardNumbers, forms.Form):
    amount = AmountField(
        label=f"Amount to give back ({settings.CURRENCY})",
        help_text="The whole payment, or part of it.",
    )
    reason = forms.CharField(
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Goes on the ledger and the deal's timeline.",
    )
    no_card_numbers = ("reason",)
