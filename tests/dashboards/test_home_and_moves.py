import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from pipeline.models import Deal, StageEvent
from pipeline.stages import Stage
from tests.factories import DealFactory, ReminderFactory

pytestmark = pytest.mark.django_db


def test_a_rep_home_shows_the_month_and_the_pipeline(rep_client, rep):
    deal = DealFactory(rep=rep, customer__name="Alpha Dental", amount=Decimal("1234.00"))
    text = rep_client.get("/").text
    assert "This month" in text and "$1,234.00" in text
    assert f'data-deal="{deal.pk}"' in text
    assert 'id="reminders-panel"' in text


def test_a_manager_home_shows_the_teams_outstanding_money(manager_client, rep):
    DealFactory(rep=rep, amount=Decimal("700.00"))
    text = manager_client.get("/").text
    assert "Not paid yet" in text and "$700.00" in text and "Riley" in text


@pytest.mark.parametrize("size", [3, 60])
def test_the_rep_home_costs_a_fixed_number_of_queries(
    rep_client, rep, size, django_assert_max_num_queries
):
    for index in range(size):
        DealFactory(rep=rep, stage=[Stage.PROMISED, Stage.DEPOSIT][index % 2])
    with django_assert_max_num_queries(14):
        response = rep_client.get("/")
    assert response.status_code == 200
    # At most six cards a stage on the home page, with a link to the rest.
    expected_cards = 12 if size == 60 else size
    assert response.text.count('class="deal-card"') == expected_cards
    if size == 60:
        assert "and 24 more" in response.text


def test_a_card_moved_to_a_legal_stage_moves_the_deal(rep_client, rep):
    deal = DealFactory(rep=rep, payment_option="upfront", stage=Stage.DEPOSIT)
    response = rep_client.post(
        "/deals/board/move/",
        {"deal": deal.pk, "version": deal.version, "to_stage": "delivered", "back": "home"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert "moved to Delivered" in response.text
    assert response.text.lstrip().startswith('<div id="pipeline-board"')
    deal.refresh_from_db()
    assert deal.stage == Stage.DELIVERED
    assert StageEvent.objects.filter(deal=deal, to_stage=Stage.DELIVERED, actor=rep).exists()


def test_a_card_moved_to_an_illegal_stage_is_refused_with_a_message(rep_client, rep):
    deal = DealFactory(rep=rep, payment_option="invoice", deposit_required=False)
    response = rep_client.post(
        "/deals/board/move/",
        {"deal": deal.pk, "version": deal.version, "to_stage": "delivered"},
        headers={"HX-Request": "true"},
    )
    assert "must reach Audit confirmed before Delivered" in response.text
    assert Deal.objects.get(pk=deal.pk).stage == Stage.PROMISED


def test_a_card_of_another_rep_cannot_be_moved(other_rep_client, deal):
    response = other_rep_client.post(
        "/deals/board/move/", {"deal": deal.pk, "version": 1, "to_stage": "lost"}
    )
    assert response.status_code == 404
    assert Deal.objects.get(pk=deal.pk).stage == Stage.PROMISED


def test_a_card_move_without_javascript_redirects_back(rep_client, rep):
    deal = DealFactory(rep=rep, payment_option="upfront", stage=Stage.DEPOSIT)
    response = rep_client.post(
        "/deals/board/move/", {"deal": deal.pk, "version": 1, "to_stage": "delivered"}
    )
    assert response.status_code == 302 and response["Location"] == "/deals/board/"
    page = rep_client.get("/deals/board/").text
    assert "moved to Delivered" in page


def _csv(*rows: str) -> str:
    header = (
        "customer,company,phone,title,amount,payment_option,expected_delivery_date,"
        "next_step,next_step_date,promised_on"
    )
    return "\n".join((header, *rows)) + "\n"


def _day(offset: int) -> str:
    return (timezone.localdate() + datetime.timedelta(days=offset)).isoformat()


GOOD_ROW = (
    "Zoe Laurent,Laurent Florist,+1 555 0111,Shopify setup,950.00,invoice,"
    f"{_day(10)},Call,{_day(2)},{_day(-30)}"
)


def test_a_csv_import_previews_then_saves_every_row(rep_client, rep):
    text = _csv(
        GOOD_ROW, GOOD_ROW.replace("Shopify setup", "Training day").replace("950.00", "1500")
    )
    preview = rep_client.post("/deals/import/", {"csv_text": text})
    assert preview.status_code == 200
    assert "All 2 rows are good" in preview.text
    assert not Deal.objects.exists()
    done = rep_client.post("/deals/import/", {"csv_text": text, "confirm": "1"})
    assert done.status_code == 302
    deals = Deal.objects.order_by("pk")
    assert [d.title for d in deals] == ["Shopify setup", "Training day"]
    assert deals[0].customer == deals[1].customer  # one new customer, not two
    assert deals[0].amount == Decimal("950.00") and deals[0].rep == rep
    assert timezone.localtime(deals[0].promised_at).date().isoformat() == _day(-30)


def test_a_csv_with_bad_rows_shows_each_error_and_saves_nothing(rep_client):
    text = _csv(
        GOOD_ROW,
        f"Ben Carter,,+1 555 0112,Vans,-5,invoice,{_day(5)},Call,{_day(1)},",
        f"Tom Becker,,+1 555 0113,Bread oven,100,barter,not-a-date,Call,{_day(1)},",
        f"Dana,,+1 555 0114,Gift card,100,upfront,{_day(5)},Call,{_day(1)},{_day(9)}",
    )
    response = rep_client.post("/deals/import/", {"csv_text": text, "confirm": "1"})
    assert response.status_code == 422
    assert "3 of 4 rows need fixing" in response.text
    assert "amount: The amount must be more than zero." in response.text
    assert "payment_option: Select a valid choice." in response.text
    assert "expected_delivery_date: Enter a valid date." in response.text
    assert "promised_on: A promise can&#x27;t be in the future." in response.text
    assert not Deal.objects.exists()


def test_a_card_number_in_an_imported_row_is_masked(rep_client):
    text = _csv(GOOD_ROW.replace("Shopify setup", "Paid by 4111 1111 1111 1111"))
    assert rep_client.post("/deals/import/", {"csv_text": text, "confirm": "1"}).status_code == 302
    assert Deal.objects.get().title == "Paid by •••• 1111"


def test_a_csv_without_the_needed_columns_is_refused(rep_client):
    response = rep_client.post("/deals/import/", {"csv_text": "name,amount\nx,1\n"})
    assert response.status_code == 422
    assert "missing: customer, phone, title" in response.text


def test_a_rep_cannot_import_deals_for_another_rep(rep_client, other_rep):
    text = (
        _csv(GOOD_ROW)
        .replace("promised_on", "promised_on,rep")
        .replace(_day(-30) + "\n", _day(-30) + ",other_rep\n")
    )
    response = rep_client.post("/deals/import/", {"csv_text": text, "confirm": "1"})
    assert "is not a rep on your team" in response.text
    assert not Deal.objects.exists()


def test_a_manager_imports_deals_for_a_rep_on_the_team(manager_client, rep):
    text = (
        _csv(GOOD_ROW)
        .replace("promised_on", "promised_on,rep")
        .replace(_day(-30) + "\n", _day(-30) + ",rep\n")
    )
    response = manager_client.post("/deals/import/", {"csv_text": text, "confirm": "1"})
    assert response.status_code == 302
    assert Deal.objects.get().rep == rep


def test_a_manager_home_shows_how_many_reminders_each_rep_has_waiting(
    manager_client, manager, rep, teammate
):
    now = timezone.now()
    deal = DealFactory(rep=rep)
    for minutes, occurrence in ((30, "a"), (5, "b"), (-60, "later")):  # the last is not due yet
        ReminderFactory(
            deal=deal,
            occurrence=occurrence,
            owner=rep,
            why="Chase",
            due_at=now - datetime.timedelta(minutes=minutes),
        )
    text = manager_client.get("/").text
    section = text.split('id="team-reminders-heading"')[1].split("</article>")[0]
    row = section.split("Riley")[1].split("</tr>")[0]
    assert '<td class="num">2</td>' in row
    assert timezone.localtime(now - datetime.timedelta(minutes=30)).strftime("%H:%M") in row
    assert str(teammate) not in section  # nothing waiting for the teammate
    assert section.count("<tr>") == 2  # the header and Riley
