from django import forms
from django.utils import timezone

from audits.models import SCRIPT_QUESTIONS, Outcome, WrapUpChecklist
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
            "call_window_start": "When the customer agreed to take the auditor's call.",
            "confirmed_phone": "Read it back to the customer.",
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
        if not self.is_bound:
            start, end = default_call_window()
            self.initial.setdefault("call_window_start", timezone.localtime(start))
            self.initial.setdefault("call_window_end", timezone.localtime(end))
            self.initial.setdefault("confirmed_phone", deal.customer.phone)

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

    def __init__(self, *args, questions=(), **kwargs):
        super().__init__(*args, **kwargs)
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
