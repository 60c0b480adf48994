"""The edit form's part for frozen terms: the rep's choice and why
(``pipeline.terms_freeze``; the service decides, this only carries the answer)."""

from django import forms

from pipeline.models import Deal
from pipeline.terms_freeze import terms_choices


class TermsChoiceForm(forms.Form):
    """Shown under the deal's edit form once its terms are frozen.

    Both fields may stay empty when no term changes (a new next step only);
    ``pipeline.services.deal_update`` refuses a change of terms without them,
    and the view puts its message next to the field it is about.
    """

    terms_path = forms.ChoiceField(
        label="How should this change be made?",
        widget=forms.RadioSelect,
        required=False,
    )
    terms_reason = forms.CharField(
        label="Why do the terms change?",
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Goes on the deal's timeline, and to your manager if you ask them.",
    )

    def __init__(self, *args, deal: Deal, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["terms_path"].choices = terms_choices(deal)
