from django import forms
from django.utils import timezone

from audits.models import SCRIPT_QUESTIONS, DisputeDecision, Outcome, WrapUpChecklist
from audits.services import default_call_window
from pipeline.forms import DateTimeInput

# What a rep sees next to a box left unticked.
_TICK_MESSAGES = {
    "customer_will_answer": "Ask the customer to confirm they will pick up, then tick this.",
    "rep_gave_contact": "Give the customer your name and direct number, then tick this.",
    "call_time_reconfirmed": "Reconfirm the call time with the customer, then tick this.",
    "reconfirmed_third_time": "Reconfirm it a third time: flakes come from loose wrap-ups.",
}


class WrapUpForm(forms.ModelForm):
    """The wrap-up checklist: every item required before the deal is handed to audit."""

    class Meta:
        model = WrapUpChecklist
        fields = [
            "call_window_start",
            "call_window_end",
            "confirmed_phone",
            "customer_will_answer",
            "rep_gave_contact",
            "concerns",
            "call_time_reconfirmed",
            "reconfirmed_third_time",
        ]
        widgets = {
            "call_window_start": DateTimeInput(),
            "call_window_end": DateTimeInput(),
            "confirmed_phone": forms.TextInput(attrs={"type": "tel", "autocomplete": "off"}),
            "concerns": forms.Textarea(attrs={"rows": 2}),
        }
        help_texts = {
            "confirmed_phone": "Type the number the customer confirmed, read back to them.",
            "concerns": "Ask, and write what they said — “none” if none.",
        }
        error_messages = {
            "call_window_start": {
                "required": "When may the auditor call? Give the window's start."
            },
            "call_window_end": {"required": "Give the end of the call window."},
            "confirmed_phone": {"required": "Confirm the number the auditor will call."},
            "concerns": {"required": "Ask about concerns and write the answer (or “none”)."},
        }

    def __init__(self, *args, deal, **kwargs):
        super().__init__(*args, **kwargs)
        self.deal = deal
        for name, message in _TICK_MESSAGES.items():
            self.fields[name].required = True
            self.fields[name].error_messages["required"] = message
        # Nothing is pre-filled: the window and the number are what the
        # customer confirmed, typed by the rep, never assumed (issue 15).
        start, end = default_call_window()
        self.fields["call_window_start"].help_text = (
            "When the customer agreed to take the auditor's call, e.g. "
            f"{timezone.localtime(start):%H:%M}–{timezone.localtime(end):%H:%M}."
        )
        if deal.customer.phone:
            self.fields["confirmed_phone"].help_text = (
                f"On file: {deal.customer.phone}. Read it back to the customer and type "
                "the number they confirm."
            )

    def clean_confirmed_phone(self):
        phone = self.cleaned_data["confirmed_phone"].strip()
        if sum(ch.isdigit() for ch in phone) < 6:
            raise forms.ValidationError("Enter a phone number the auditor can call.")
        return phone

    def clean_concerns(self):
        concerns = self.cleaned_data["concerns"].strip()
        if not concerns:
            raise forms.ValidationError("Ask about concerns and write the answer (or “none”).")
        return concerns

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("call_window_start"), cleaned.get("call_window_end")
        if start and end:
            if end <= start:
                self.add_error("call_window_end", "The window must end after it starts.")
            elif end <= timezone.now():
                self.add_error("call_window_end", "That window is already over.")
        return cleaned


YES_NO = [("yes", "Yes"), ("no", "No")]


class CallOutcomeForm(forms.Form):
    """One audit call: an answer per script question, then what happened."""

    outcome = forms.ChoiceField(
        label="Outcome of the call",
        choices=Outcome.choices,
        widget=forms.RadioSelect,
        error_messages={"required": "Choose what happened on the call."},
        help_text="Confirmed needs a Yes to every script question above; if the customer "
        "said no to any, record Disputed or Declined.",
    )
    callback_at = forms.DateTimeField(
        label="Call back at",
        required=False,
        widget=DateTimeInput(),
        help_text="Only for a call-back: the time the customer named.",
    )
    recording_ref = forms.CharField(
        label="Recording reference",
        required=False,
        max_length=500,
        help_text="The recording's URL or id in the phone system.",
    )
    notes = forms.CharField(
        label="Notes",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Required for disputed or declined: what the customer said.",
    )
    version = forms.IntegerField(widget=forms.HiddenInput)
    script_version = forms.IntegerField(widget=forms.HiddenInput)

    def __init__(self, *args, questions=(), no_answer_from=None, **kwargs):
        super().__init__(*args, **kwargs)
        # Say, next to each outcome, what it needs before the auditor submits.
        labels = {
            Outcome.CONFIRMED: "Confirmed — every question above answered Yes",
            Outcome.CALL_BACK: "Call back — at the time the customer gave",
            Outcome.DISPUTED: "Disputed — the customer does not recognise the sale",
        }
        if no_answer_from is not None:
            until = timezone.localtime(no_answer_from).strftime("%H:%M")
            labels[Outcome.NO_ANSWER] = f"No answer — can be recorded again from {until}"
        self.fields["outcome"].choices = [
            (value, labels.get(value, label)) for value, label in Outcome.choices
        ]
        # One yes/no per script question, labelled with the question as read.
        texts = {q["key"]: q["text"] for q in questions}
        self.answer_fields = []
        for key, label in SCRIPT_QUESTIONS:
            self.fields[f"answer_{key}"] = forms.ChoiceField(
                label=texts.get(key, label),
                choices=YES_NO,
                required=False,
                widget=forms.RadioSelect,
            )
            self.answer_fields.append(f"answer_{key}")

    @property
    def answers(self) -> dict[str, str]:
        return {
            key: self.cleaned_data.get(f"answer_{key}")
            for key, _ in SCRIPT_QUESTIONS
            if self.cleaned_data.get(f"answer_{key}")
        }

    def answer_bound_fields(self):
        return [self[name] for name in self.answer_fields]

    def clean(self):
        cleaned = super().clean()
        outcome = cleaned.get("outcome")
        if outcome == Outcome.CONFIRMED:
            for key, _ in SCRIPT_QUESTIONS:
                answer = cleaned.get(f"answer_{key}")
                if answer != "yes":
                    self.add_error(
                        f"answer_{key}",
                        "Ask this question: a confirmed sale needs a yes here."
                        if not answer
                        else "The customer said no: record disputed or declined, not confirmed.",
                    )
        if outcome == Outcome.CALL_BACK:
            when = cleaned.get("callback_at")
            if when is None:
                self.add_error("callback_at", "Give the time the customer asked to be called back.")
            elif when <= timezone.now():
                self.add_error("callback_at", "The call-back time must be in the future.")
        if outcome in (Outcome.DISPUTED, Outcome.DECLINED) and not cleaned.get("notes", "").strip():
            self.add_error("notes", "Write what the customer said.")
        return cleaned


class DisputeDecisionForm(forms.Form):
    """The manager's decision on a sale disputed at audit, with the reason."""

    decision = forms.ChoiceField(
        label="Your decision",
        widget=forms.RadioSelect,
        choices=[
            (DisputeDecision.LOST, "Mark it lost — disputed at audit"),
            (
                DisputeDecision.RE_CLOSE,
                "Send it back to the rep to re-close (a new wrap-up and audit)",
            ),
        ],
        error_messages={"required": "Choose: lost, or back to the rep to re-close."},
    )
    reason = forms.CharField(
        label="Why",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Goes on the deal's timeline; the rep reads it.",
        error_messages={"required": "Say why: the rep reads it on the deal's timeline."},
    )

    def __init__(self, *args, final: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if final:
            # A second dispute is final: only "lost" is left.
            self.fields["decision"].choices = self.fields["decision"].choices[:1]
            self.fields["decision"].help_text = "Disputed twice: a second dispute is final."

    def clean_reason(self):
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("Say why: the rep reads it on the deal's timeline.")
        return reason
