"""A missing next step is refused by the server, next to the field, not only by
the browser's bubble: the message is visible, linked to the field and the field
has the focus (issue 13)."""

import datetime
import re

import pytest
from django.utils import timezone

from pipeline.models import Deal

pytestmark = pytest.mark.django_db


def _future(days=7) -> str:
    return (timezone.localdate() + datetime.timedelta(days=days)).isoformat()


def _input(html: str, name: str) -> str:
    match = re.search(rf'<input[^>]*name="{name}"[^>]*>', html)
    assert match, f"no input named {name}"
    return match.group(0)


def test_a_deal_without_a_next_step_is_refused_with_the_message_linked_and_focused(
    rep_client, customer
):
    response = rep_client.post(
        "/deals/new/",
        {
            "customer": customer.pk,
            "title": "Kept title",
            "amount": "100.00",
            "payment_option": "upfront",
            "expected_delivery_date": _future(10),
            "next_step": "   ",
            "next_step_date": _future(2),
        },
    )
    assert not Deal.objects.exists()
    html = response.text
    assert '<small class="field-error" id="id_next_step_error" role="alert">' in html
    assert "Write the next step: always have a reason to call back." in html
    field = _input(html, "next_step")
    assert 'aria-invalid="true"' in field
    assert "id_next_step_error" in field and "autofocus" in field
    # Its help text is still there, and the id Django links it by exists.
    assert 'id="id_next_step_helptext"' in html
    # Only the first field in error takes the focus.
    assert html.count("autofocus") == 1
    assert 'value="Kept title"' in html


def test_a_touch_without_a_next_step_comes_back_in_the_htmx_swap_with_the_field_focused(
    rep_client, deal
):
    response = rep_client.post(
        f"/deals/{deal.pk}/touches/",
        {
            "kind": "call",
            "happened_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M"),
            "discussed": "Pricing",
            "agreed_to": "A demo",
            "next_step": "",
            "next_step_date": "",
        },
        headers={"HX-Request": "true"},
    )
    # 422 is swapped by htmx (base.html's responseHandling): the message shows in place.
    assert response.status_code == 422
    html = response.text
    assert "Write the next step: always have a reason to call back." in html
    assert "Pick the day of the next step." in html
    field = _input(html, "next_step")
    assert "touch-next_step_error" in field and "autofocus" in field
    assert 'id="touch-next_step_error"' in html
    assert not deal.touches.exists()


def test_a_touch_without_an_agreement_names_what_is_missing(rep_client, deal):
    response = rep_client.post(
        f"/deals/{deal.pk}/touches/",
        {
            "kind": "call",
            "happened_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M"),
            "discussed": "Pricing",
            "agreed_to": "",
            "next_step": "Call back",
            "next_step_date": _future(1),
        },
    )
    assert response.status_code == 422
    assert "Write what the customer agreed to" in response.text
    assert "autofocus" in _input(response.text, "agreed_to")
