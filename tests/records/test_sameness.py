"""One customer per customer (issue 20, §3): matches, the standing floor, merges."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from billing.models import Payment, PaymentStatus
from billing.services import customer_refresh_standing
from dashboards.merging import MergeRefused, customer_distinct, customer_merge
from pipeline.changes import customer_changes
from pipeline.models import Customer, Deal
from pipeline.sameness import CustomerDistinct, CustomerMerge, customer_matches, merged_into
from pipeline.services import customer_add
from receivables.models import CustomerLink
from tests.factories import CustomerFactory, DealFactory, PaymentFactory, TouchFactory

pytestmark = pytest.mark.django_db


# --- Matches ---------------------------------------------------------------


@pytest.mark.parametrize(
    "typed",
    [
        {"name": "Someone Else", "phone": "(555) 300-0001"},
        {"name": "Someone Else", "phone": "1", "email": "DANA@whitfield.example"},
        {"name": "dana  WHITFIELD", "company": "whitfield dental", "phone": "1"},
        {"name": "Dana Whitfield", "phone": "1"},  # no company typed yet
    ],
    ids=["phone", "email", "name and company", "name, company not typed"],
)
def test_a_customer_typed_matches_on_phone_email_or_name_and_company(rep, dana, typed):
    matches = customer_matches(rep, **typed)
    assert matches.visible == [dana] and not matches.hidden


def test_the_same_name_at_another_company_is_not_a_match(rep, dana):
    assert not customer_matches(rep, name="Dana Whitfield", company="Acme", phone="1")


def test_a_rep_who_may_not_see_the_match_is_told_only_that_one_exists(other_rep, dana):
    matches = customer_matches(other_rep, name="Dana Whitfield", phone="555 300 0001")
    assert matches.visible == [] and matches.hidden


def test_the_match_endpoint_names_the_customer_standing_and_owner(rep_client, dana):
    page = rep_client.get("/customers/matches/", {"new_customer-phone": "5553000001"})
    text = page.content.decode()
    assert "Dana Whitfield" in text and "Slow payer" in text and "owned by Riley" in text


def test_the_match_endpoint_leaks_nothing_of_a_customer_the_rep_may_not_see(other_rep_client, dana):
    text = other_rep_client.get("/customers/matches/", {"phone": "555 300 0001"}).content.decode()
    assert "A matching customer already exists" in text and "your manager decides" in text.lower()
    for detail in ("Dana", "Whitfield", "Slow", "Riley", str(dana.pk)):
        assert detail not in text


def test_the_customer_form_without_javascript_shows_the_match_on_submit(rep_client, dana):
    response = rep_client.post(
        "/customers/new/", {"name": "D. Whitfield", "phone": "555-300-0001", "chase_by_email": "on"}
    )
    assert response.status_code == 200
    assert "Slow payer, owned by Riley" in response.content.decode()
    assert not Customer.objects.filter(name="D. Whitfield").exists()


# --- The standing floor ----------------------------------------------------


def test_a_copy_of_a_slow_payer_is_slow_too_until_a_manager_says_otherwise(
    other_rep, manager, dana
):
    copy = customer_add(owner=other_rep, name="Dana Whitfield", phone="555 300 0001")
    assert copy.standing == "slow"
    customer_refresh_standing(customer_id=copy.pk)
    copy.refresh_from_db()
    assert copy.standing == "slow" and "Dana Whitfield" in copy.standing_reason
    # The original is not held to the copy's.
    customer_refresh_standing(customer_id=dana.pk)
    dana.refresh_from_db()
    assert dana.standing == "new"  # no payment history of her own in this test


def test_different_people_lifts_the_floor(rep, teammate, manager, dana):
    copy = customer_add(owner=teammate, name="Dana Whitfield", phone="555 300 0001")
    customer_distinct(customer_id=copy.pk, other_id=dana.pk, actor=manager)
    copy.refresh_from_db()
    assert copy.standing == "new"
    assert CustomerDistinct.objects.filter(first=dana, second=copy, decided_by=manager).exists()


def test_a_rep_cannot_say_two_customers_are_different_people(rep, dana):
    copy = customer_add(owner=rep, name="Dana Whitfield", phone="555 300 0001")
    with pytest.raises(PermissionDenied):
        customer_distinct(customer_id=copy.pk, other_id=dana.pk, actor=rep)


# --- Merge -----------------------------------------------------------------


def _copy_with_money(teammate, manager):
    copy = customer_add(owner=teammate, name="Dana W", phone="555 300 0001")
    deal = DealFactory(rep=teammate, customer=copy, amount=Decimal("500.00"))
    TouchFactory(deal=deal)
    PaymentFactory(deal=deal, amount=Decimal("100.00"))
    CustomerLink.objects.create(
        customer=copy, created_by=teammate, expires_at=timezone.now() + timedelta(days=7)
    )
    return copy, deal


def test_a_merge_moves_deals_touches_payments_and_links_and_is_on_the_record(
    rep, teammate, manager, dana
):
    copy, deal = _copy_with_money(teammate, manager)
    merge = customer_merge(survivor_id=dana.pk, absorbed_id=copy.pk, actor=manager, reason="Same")
    assert Deal.objects.get(pk=deal.pk).customer_id == dana.pk
    assert deal.touches.count() == 1
    assert Payment.objects.filter(deal__customer=dana).count() == 1
    assert CustomerLink.objects.filter(customer=dana).count() == 1
    assert not Customer.objects.filter(pk=copy.pk).exists()
    assert merge.moved["deals"] == 1 and merge.moved["links"] == 1
    assert merge.absorbed["name"] == "Dana W"
    assert merged_into(copy.pk) == dana
    # Both timelines: the survivor's own change and the absorbed one's end, on the survivor's.
    changes = customer_changes(dana, [copy.pk])
    reasons = {c.reason for c in changes}
    assert f"Merged into Dana Whitfield (#{dana.pk})" in reasons
    assert CustomerMerge.objects.get(survivor=dana).merged_by == manager


def test_the_standing_is_recomputed_after_a_merge(rep, teammate, manager, dana):
    copy, _ = _copy_with_money(teammate, manager)
    customer_merge(survivor_id=dana.pk, absorbed_id=copy.pk, actor=manager)
    dana.refresh_from_db()
    # Learned again from the ledger: no paid deal yet, so New ("slow" was set by hand).
    assert dana.standing == "new" and dana.standing_reason


def test_a_rep_cannot_merge(rep, dana):
    copy = customer_add(owner=rep, name="Dana Whitfield", phone="555 300 0001")
    with pytest.raises(PermissionDenied):
        customer_merge(survivor_id=dana.pk, absorbed_id=copy.pk, actor=rep)


def test_a_manager_cannot_merge_another_teams_customer(manager, dana, other_rep):
    theirs = CustomerFactory(owner=other_rep, name="Dana Whitfield", phone="555 300 0001")
    with pytest.raises(MergeRefused):
        customer_merge(survivor_id=dana.pk, absorbed_id=theirs.pk, actor=manager)
    assert Customer.objects.filter(pk=theirs.pk).exists()


def test_an_operator_merges_any_customers(operator, dana, other_rep):
    theirs = CustomerFactory(owner=other_rep, name="Dana Whitfield", phone="555 300 0001")
    customer_merge(survivor_id=dana.pk, absorbed_id=theirs.pk, actor=operator)
    assert not Customer.objects.filter(pk=theirs.pk).exists()


def test_a_payment_recorded_on_the_absorbed_customers_deal_after_the_merge_lands_on_the_survivor(
    rep, teammate, manager, dana
):
    """The merge and a payment take the deal's lock in the same order (deal first):
    whichever commits second sees the other. A payment recorded with the deal id
    the rep had open before the merge is on the survivor's books, and counts in
    the survivor's standing."""
    copy, deal = _copy_with_money(teammate, manager)
    customer_merge(survivor_id=dana.pk, absorbed_id=copy.pk, actor=manager)
    PaymentFactory(deal=deal, amount=Decimal("50.00"), status=PaymentStatus.CLEARED)
    assert Payment.objects.filter(deal__customer=dana).count() == 2


# --- Access through the pages ----------------------------------------------


def test_a_rep_gets_a_403_on_the_merge_page(rep_client, rep, dana):
    copy = customer_add(owner=rep, name="Dana Whitfield", phone="555 300 0001")
    assert rep_client.get(f"/customers/{dana.pk}/merge/{copy.pk}/").status_code == 403
    assert rep_client.post(f"/customers/{dana.pk}/merge/{copy.pk}/").status_code == 403
    assert Customer.objects.filter(pk=copy.pk).exists()


def test_a_forged_id_on_the_merge_page_is_a_404(manager_client, dana, other_rep):
    theirs = CustomerFactory(owner=other_rep, name="Dana Whitfield", phone="555 300 0001")
    assert manager_client.get(f"/customers/{dana.pk}/merge/{theirs.pk}/").status_code == 404
    assert manager_client.post(f"/customers/{theirs.pk}/merge/{dana.pk}/").status_code == 404
    assert manager_client.post(f"/customers/{dana.pk}/distinct/{theirs.pk}/").status_code == 404
    assert Customer.objects.filter(pk=theirs.pk).exists()


def test_a_manager_merges_from_the_page_and_the_old_address_leads_to_the_survivor(
    manager_client, teammate, manager, dana
):
    copy, _ = _copy_with_money(teammate, manager)
    page = manager_client.get(f"/customers/{dana.pk}/merge/{copy.pk}/")
    assert page.status_code == 200 and "Merge Dana W (#" in page.content.decode()
    response = manager_client.post(f"/customers/{dana.pk}/merge/{copy.pk}/", {"reason": "Same"})
    assert response.status_code == 302
    assert manager_client.get(f"/customers/{copy.pk}/").url == f"/customers/{dana.pk}/"
    text = manager_client.get(f"/customers/{dana.pk}/").content.decode()
    assert "Merged Dana W" in text and "1 deal" in text


def test_the_customers_list_offers_the_merge_to_a_manager_not_to_a_rep(
    manager_client, rep_client, rep, dana
):
    customer_add(owner=rep, name="Dana Whitfield", phone="555 300 0001")
    assert "merge…" in manager_client.get("/customers/").content.decode()
    assert "merge…" not in rep_client.get("/customers/").content.decode()


def test_a_manager_says_not_the_same_person_from_the_customers_page(manager_client, teammate, dana):
    copy = customer_add(owner=teammate, name="Dana Whitfield", phone="555 300 0001")
    page = manager_client.get(f"/customers/{copy.pk}/").content.decode()
    assert "Possibly the same customer" in page and "Not the same person" in page
    response = manager_client.post(f"/customers/{copy.pk}/distinct/{dana.pk}/")
    assert response.status_code == 302
    copy.refresh_from_db()
    assert copy.standing == "new"
    assert (
        "Possibly the same customer"
        not in manager_client.get(f"/customers/{copy.pk}/").content.decode()
    )


def test_a_csv_import_marks_a_new_customer_that_matches_and_keeps_its_standing(rep_client, dana):
    from datetime import date, timedelta

    later = (date.today() + timedelta(days=10)).isoformat()
    csv_text = (
        "customer,phone,title,amount,payment_option,expected_delivery_date,next_step,"
        "next_step_date\n"
        f"D. Whitfield,555 300 0001,Chairs,900.00,upfront,{later},Call,{later}\n"
    )
    preview = rep_client.post("/deals/import/", {"csv_text": csv_text}).content.decode()
    assert "Matches Dana Whitfield" in preview and "Slow payer" in preview
    rep_client.post("/deals/import/", {"csv_text": csv_text, "confirm": "1"})
    assert Customer.objects.get(name="D. Whitfield").standing == "slow"
