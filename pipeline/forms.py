import re
import unicodedata
from datetime import timedelta
from decimal import Decimal

from django import forms
from django.conf import settings
from django.utils import timezone

from pipeline.account_forms import PersonFields
from pipeline.models import Customer, Deal, Touch, TouchKind
from pipeline.selectors import customer_terms
from pipeline.services import TermsRefused, promise_terms
from pipeline.stages import LostReason, Stage, next_moves
from pipeline.terms import PaymentOption
from pipeline.text import single_line


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, **kwargs):
        super().__init__(format="%Y-%m-%d", **kwargs)


class DateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, **kwargs):
        super().__init__(format="%Y-%m-%dT%H:%M", **kwargs)


def _not_in_past(value, what: str):
    if value is not None and value < timezone.localdate():
        raise forms.ValidationError(f"The {what} can't be in the past.")
    return value


# A missing next step or agreement is refused by the server with these words
# next to the field, not only by the browser's bubble (which is easy to miss).
NEXT_STEP_MISSING = "Write the next step: always have a reason to call back."
NEXT_STEP_DATE_MISSING = "Pick the day of the next step."
AGREED_TO_MISSING = "Write what the customer agreed to: always close on something, however small."


class FocusFirstError:
    """After validation, the first field with an error gets ``autofocus``.

    The page (or the htmx swap, which honours autofocus) then puts the cursor
    where the message is; Django links the message to the field with
    ``aria-invalid`` and ``aria-describedby="<id>_error"`` (field.html renders
    that id).
    """

    def full_clean(self):
        super().full_clean()
        for name in self.fields:
            if name in self.errors:
                self.fields[name].widget.attrs["autofocus"] = True
                break


SEARCH_MAX_CHARS = 100
_ID = re.compile(r"[0-9]{1,18}")  # ASCII digits that fit a bigint


def parse_id(text) -> int | None:
    """A row id or version from a query or form parameter, or None if it is not one.

    Not ``str.isdigit()``: "²" and 5,000 digits pass it, and int() then fails.
    """
    return int(text) if isinstance(text, str) and _ID.fullmatch(text) else None


def search_text(params) -> tuple[str, str]:
    """The search box's text from a query string, and a message if some of it was left out.

    Control characters (a NUL byte above all, which PostgreSQL refuses in any
    text) are dropped with a message rather than searched for; the rest is
    searched, at most ``SEARCH_MAX_CHARS`` characters of it.
    """
    raw = params.get("q", "")
    text = "".join(ch for ch in raw if unicodedata.category(ch) != "Cc")
    message = (
        "Search text can't contain control characters: they were left out." if text != raw else ""
    )
    return text.strip()[:SEARCH_MAX_CHARS], message


class CustomerForm(forms.ModelForm):
    class Meta:
        model = Customer
        fields = [
            "name",
            "company",
            "phone",
            "email",
            "billing_contact",
            "billing_email",
            "chase_by_email",
            "accounting_cutoff_day",
            "plans_notes",
            "technology_notes",
        ]
        widgets = {
            "plans_notes": forms.Textarea(attrs={"rows": 3}),
            "technology_notes": forms.Textarea(attrs={"rows": 3}),
            "phone": forms.TextInput(attrs={"type": "tel", "autocomplete": "tel"}),
        }
        labels = {
            "accounting_cutoff_day": "Accounting cut-off day",
            "billing_email": "Billing email",
            "chase_by_email": "Send payment reminders by email",
        }
        error_messages = {
            "accounting_cutoff_day": {
                "min_value": "A day of the month: 1 to 31.",
                "max_value": "A day of the month: 1 to 31.",
            }
        }

    # A customer's name and company end up in email headers (To, Subject): one line.
    def clean_name(self):
        return single_line(self.cleaned_data.get("name"))

    def clean_company(self):
        return single_line(self.cleaned_data.get("company"))

    def clean_phone(self):
        phone = self.cleaned_data["phone"].strip()
        if sum(ch.isdigit() for ch in phone) < 6:
            raise forms.ValidationError("Enter a phone number the customer can be called on.")
        return phone


class AmountField(forms.DecimalField):
    def __init__(self, **kwargs):
        super().__init__(
            max_digits=12,
            decimal_places=2,
            min_value=Decimal("0.01"),
            max_value=settings.MAX_DEAL_AMOUNT,
            error_messages={
                "min_value": "The amount must be more than zero.",
                "max_value": f"That is more than {settings.MAX_DEAL_AMOUNT:,.2f}: "
                "check for an extra zero.",
                "max_decimal_places": "Use at most 2 decimal places (cents).",
                "invalid": "Enter the amount as a number, e.g. 1250.00.",
            },
            widget=forms.NumberInput(attrs={"step": "0.01", "min": "0.01", "inputmode": "decimal"}),
            **kwargs,
        )


class DealForm(FocusFirstError, forms.ModelForm):
    """Logging a promise: the terms the customer's standing allows are checked here."""

    amount = AmountField(label=f"Amount ({settings.CURRENCY})")

    class Meta:
        model = Deal
        fields = [
            "customer",
            "title",
            "amount",
            "payment_option",
            "expected_delivery_date",
            "next_step",
            "next_step_date",
            "notes",
        ]
        widgets = {
            "expected_delivery_date": DateInput(),
            "next_step_date": DateInput(),
            "payment_option": forms.RadioSelect,
            "notes": forms.Textarea(attrs={"rows": 3}),
        }
        labels = {"next_step_date": "Next step date"}
        help_texts = {"next_step": "Always have a reason to call back: what happens next?"}
        error_messages = {
            "next_step": {"required": NEXT_STEP_MISSING},
            "next_step_date": {"required": NEXT_STEP_DATE_MISSING},
            "customer": {"required": "Choose the customer, or add a new one."},
            "expected_delivery_date": {"required": "Pick the expected delivery date."},
        }

    def __init__(self, *args, user, invoicing_asked: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        # "Ask my manager": invoicing a slow payer is asked for, not refused.
        self.invoicing_asked = invoicing_asked
        self.needs_manager = False
        customers = self.fields["customer"]
        customers.queryset = Customer.objects.visible_to(user).order_by("name")
        customers.error_messages["invalid_choice"] = "Pick one of your own customers."
        customers.empty_label = "Choose a customer…"
        self.fields["payment_option"].choices = PaymentOption.choices

    def clean_next_step_date(self):
        return _not_in_past(self.cleaned_data.get("next_step_date"), "next step date")

    def clean_expected_delivery_date(self):
        return _not_in_past(self.cleaned_data.get("expected_delivery_date"), "delivery date")

    def clean(self):
        cleaned = super().clean()
        customer, option = cleaned.get("customer"), cleaned.get("payment_option")
        if customer and option:
            try:  # deal_promise's own check, asked before the deal is logged
                promise_terms(
                    customer=customer, payment_option=option, invoicing_asked=self.invoicing_asked
                )
            except TermsRefused as exc:
                # A refusal the rep's manager can lift offers "Ask my manager".
                self.needs_manager = exc.needs_manager
                self.add_error("payment_option", str(exc))
        return cleaned


class AskManagerForm(FocusFirstError, forms.Form):
    """ "Ask my manager": the rep's reason, shown to the manager in the reminder."""

    ask_reason = forms.CharField(
        label="Why? Your manager reads this with the request",
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={
            "required": "Say why: your manager sees this with the request.",
            "max_length": "Keep it under 500 characters.",
        },
    )


class DealEditForm(FocusFirstError, forms.ModelForm):
    amount = AmountField(label=f"Amount ({settings.CURRENCY})")
    version = forms.IntegerField(widget=forms.HiddenInput)

    class Meta:
        model = Deal
        fields = [
            "title",
            "amount",
            "expected_delivery_date",
            "next_step",
            "next_step_date",
            "notes",
        ]
        widgets = {
            "expected_delivery_date": DateInput(),
            "next_step_date": DateInput(),
            "notes": forms.Textarea(attrs={"rows": 3}),
        }
        error_messages = {
            "next_step": {"required": NEXT_STEP_MISSING},
            "next_step_date": {"required": NEXT_STEP_DATE_MISSING},
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial["version"] = self.instance.version
        if self.instance.stage == Stage.PROMISED:
            # Before anything is at stake the payment option can be agreed again
            # (e.g. upfront or on file after a manager declined invoicing); the
            # options the customer's standing allows, and the current one.
            terms = customer_terms(self.instance.customer)
            self.fields["payment_option"] = forms.ChoiceField(
                label="Payment option",
                widget=forms.RadioSelect,
                choices=[
                    (value, label)
                    for value, label in PaymentOption.choices
                    if terms.allows(value) or value == self.instance.payment_option
                ],
                initial=self.instance.payment_option,
                # Not sent (an older page, a script): the option stays as it is.
                required=False,
            )

    def clean_payment_option(self):
        option = self.cleaned_data.get("payment_option") or self.instance.payment_option
        if option != self.instance.payment_option:
            try:  # deal_update's own check
                promise_terms(customer=self.instance.customer, payment_option=option)
            except TermsRefused as exc:
                raise forms.ValidationError(str(exc)) from exc
        return option

    def clean_next_step_date(self):
        value = self.cleaned_data.get("next_step_date")
        if value != self.instance.next_step_date:
            _not_in_past(value, "next step date")
        return value


class MoveForm(forms.Form):
    to_stage = forms.ChoiceField(label="Move to", choices=Stage.choices)
    lost_reason = forms.ChoiceField(
        label="Why was it lost?",
        choices=[("", "—")] + LostReason.choices,
        required=False,
    )
    reason = forms.CharField(label="Note", required=False, max_length=500, widget=forms.TextInput())
    version = forms.IntegerField(widget=forms.HiddenInput)

    def __init__(self, *args, deal=None, role: str = "", may_write_off: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if deal is not None:
            # Offer only the moves the transitions table allows this role now
            # (never Audit confirmed by hand, nothing while a dispute awaits).
            self.fields["to_stage"].choices = [
                (move.target.value, move.target.label) for move in next_moves(deal, role)
            ]
        else:
            # A POSTed move: not narrowed, so one from a stale page reaches the
            # service and is told the deal changed; the table decides.
            self.fields["to_stage"].choices = [
                (value, label)
                for value, label in Stage.choices
                if may_write_off or value != Stage.WRITTEN_OFF
            ]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("to_stage") == Stage.LOST and not cleaned.get("lost_reason"):
            self.add_error("lost_reason", "Say why the deal was lost.")
        if cleaned.get("to_stage") == Stage.WRITTEN_OFF and not cleaned.get("reason", "").strip():
            self.add_error("reason", "Say why the money is written off.")
        return cleaned


class TouchForm(FocusFirstError, forms.ModelForm):
    """A touch. Its ids start with ``touch-``: it shares the deal page with the
    payment form, whose "Kind" must not be the one this form's label names."""

    class Meta:
        model = Touch
        fields = ["kind", "happened_at", "discussed", "agreed_to", "next_step", "next_step_date"]
        widgets = {
            "happened_at": DateTimeInput(),
            "next_step_date": DateInput(),
            "discussed": forms.Textarea(attrs={"rows": 3}),
        }
        labels = {"happened_at": "When"}
        help_texts = {
            "agreed_to": "Always close on something, however small.",
            "next_step": "Always have a reason to call back.",
        }
        error_messages = {
            "agreed_to": {"required": AGREED_TO_MISSING},
            "next_step": {"required": NEXT_STEP_MISSING},
            "next_step_date": {"required": NEXT_STEP_DATE_MISSING},
            "discussed": {"required": "Write what was discussed."},
            "kind": {"required": "Choose how you were in touch: a call, a visit, an email…"},
        }

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "touch-%s")
        super().__init__(*args, **kwargs)
        # The customer's own answers come through their link, never typed by a rep.
        self.fields["kind"].choices = [
            choice for choice in self.fields["kind"].choices if choice[0] != TouchKind.CUSTOMER_LINK
        ]
        if not self.is_bound:
            self.initial.setdefault("happened_at", timezone.localtime().replace(second=0))

    def clean_happened_at(self):
        value = self.cleaned_data.get("happened_at")
        if value and value > timezone.now() + timedelta(minutes=5):
            raise forms.ValidationError("A touch is something that already happened.")
        return value

    def clean_next_step_date(self):
        return _not_in_past(self.cleaned_data.get("next_step_date"), "next step date")


class InviteForm(PersonFields, forms.Form):
    """A manager invites a rep to their team: the rep sets their own password."""

    email = forms.EmailField(max_length=254, help_text="The invitation link goes here.")
    first_name = forms.CharField(max_length=150, required=False)
    last_name = forms.CharField(max_length=150, required=False)
    username = forms.CharField(
        max_length=150, required=False, help_text="Leave empty to use the email address."
    )


class HandoverForm(forms.Form):
    """A leaver's open work goes to another rep of the same team."""

    successor = forms.ModelChoiceField(
        queryset=None,
        label="Who takes over their open deals, customers and reminders",
        empty_label="Choose a rep…",
        error_messages={"required": "Choose who takes over."},
    )

    def __init__(self, *args, successors, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["successor"].queryset = successors
