"""The homes and the reminders panel show every write at once: they are built
from the data on each visit (no page cache; README, "Fast and never stale").

Each test loads the page, writes through the code path a user would, lets the
transaction commit, and loads the page again. The board's totals are the one
thing kept, for a plain timeout.
"""

import datetime
import re
import time
from decimal import Decimal
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from billing import services as billing
from pipeline import services
from pipeline.models import Customer, Deal, Role
from pipeline.stages import Stage
from reminders.models import Reminder, ReminderKind, ReminderQueue, ReminderState
from reminders.services import reminder_done, reminders_mark_due
from tests.conftest import _client_for
from tests.factories import CustomerFactory, DealFactory, ReminderFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Run a block as a committed transaction would: its on-commit hooks run at the end.

    The reminders' own drain task is not what these tests are about.
    """
    no_tasks = mock.patch("reminders.tasks.reminders_drain.apply_async")

    class Committed:
        def __enter__(self):
            no_tasks.start()
            self.capture = django_capture_on_commit_callbacks(execute=True)
            self.capture.__enter__()

        def __exit__(self, *exc):
            self.capture.__exit__(*exc)
            no_tasks.stop()

    return Committed()


def reminder_for(deal, owner, why: str, *, in_seconds: int, **fields) -> Reminder:
    """A reminder of ``owner``'s falling due ``in_seconds`` from now (negative: already due)."""
    return ReminderFactory(
        deal=deal,
        owner=owner,
        why=why,
        due_at=timezone.now() + datetime.timedelta(seconds=in_seconds),
        **fields,
    )


def home(client) -> str:
    response = client.get("/")
    assert response.status_code == 200
    return response.text


def cards(text: str) -> set[int]:
    return {int(pk) for pk in re.findall(r'data-deal="(\d+)"', text)}


def tile(text: str, label: str) -> str:
    """The amount on a tile of the month ("Promised", "Cleared"…)."""
    match = re.search(rf'{label}</span><span class="count">([^<]+)</span>', text)
    assert match, label
    return match.group(1)


def test_the_rep_home_is_built_from_the_data_in_a_bounded_number_of_queries(
    rep_client, rep, django_assert_max_num_queries
):
    for _ in range(3):
        DealFactory(rep=rep)
    home(rep_client)
    for _ in range(3):
        DealFactory(rep=rep)
    # The session, the user, the roles, the pipeline (its counts and one query
    # per column shown), the badge, the month (three), the panel and its version.
    with django_assert_max_num_queries(14):
        text = home(rep_client)
    assert len(cards(text)) == 6 and tile(text, "Promised") == "$6,000.00"


def test_a_promised_deal_shows_at_once(rep_client, rep, customer, committed):
    before = home(rep_client)
    with committed:
        deal = services.deal_promise(
            rep=rep,
            customer=customer,
            title="Kiosk",
            amount=Decimal("2500.00"),
            payment_option="invoice",
            expected_delivery_date=timezone.localdate() + datetime.timedelta(days=9),
            next_step="Send the contract",
            next_step_date=timezone.localdate() + datetime.timedelta(days=1),
        )
    after = home(rep_client)
    assert deal.pk not in cards(before) and deal.pk in cards(after)
    assert tile(after, "Promised") == "$2,500.00"


def test_a_moved_card_shows_in_its_new_column_at_once(rep_client, rep, committed):
    deal = DealFactory(rep=rep, payment_option="upfront", stage=Stage.DEPOSIT)
    assert 'data-stage="deposit"' in home(rep_client)
    with committed:
        services.deal_move(deal_id=deal.pk, to_stage=Stage.DELIVERED, actor=rep)
    after = home(rep_client)
    column = after.split('data-stage="delivered"')[1].split("</section>")[0]
    assert f'data-deal="{deal.pk}"' in column


def test_an_edited_amount_shows_at_once(rep_client, rep, deal, committed):
    assert tile(home(rep_client), "Promised") == "$1,000.00"
    with committed:
        services.deal_update(
            deal_id=deal.pk, actor=rep, expected_version=deal.version, amount=Decimal("1800.00")
        )
    assert tile(home(rep_client), "Promised") == "$1,800.00"


def test_money_received_and_cleared_shows_at_once(rep_client, rep, manager, deal, committed):
    assert tile(home(rep_client), "Received, not cleared") == "$0.00"
    with committed:
        payment = billing.payment_record(
            deal_id=deal.pk,
            recorded_by=rep,
            kind="deposit",
            method="check",
            amount=Decimal("400.00"),
        )
    text = home(rep_client)
    assert tile(text, "Received, not cleared") == "$400.00"
    assert tile(text, "Cleared") == "$0.00"
    with committed:
        billing.payment_clear(payment_id=payment.pk, actor=manager)
    text = home(rep_client)
    assert tile(text, "Received, not cleared") == "$0.00"
    assert tile(text, "Cleared") == "$400.00"
    assert tile(text, "Commission earned") == "$40.00"


def test_a_renamed_customer_shows_on_every_reps_cards(rep, teammate, committed):
    customer = CustomerFactory(owner=rep, name="Old Name Ltd")
    DealFactory(rep=rep, customer=customer)
    DealFactory(rep=teammate, customer=customer)
    clients = [Client(), Client()]
    for client, user in zip(clients, (rep, teammate), strict=True):
        client.force_login(user)
        assert "Old Name Ltd" in home(client)
    with committed:
        Customer.objects.filter(pk=customer.pk).update(name="New Name Ltd")
    for client in clients:
        text = home(client)
        assert "New Name Ltd" in text and "Old Name Ltd" not in text


def test_a_deal_given_to_another_rep_leaves_the_first_reps_home(
    rep, teammate, rep_client, committed
):
    deal = DealFactory(rep=rep)
    teammate_client = Client()
    teammate_client.force_login(teammate)
    assert deal.pk in cards(home(rep_client))
    assert deal.pk not in cards(home(teammate_client))
    with committed:
        deal = Deal.objects.get(pk=deal.pk)  # as the admin loads it
        deal.rep = teammate
        deal.save()
    assert deal.pk not in cards(home(rep_client))
    assert deal.pk in cards(home(teammate_client))


def test_a_reminder_falling_due_in_the_scan_or_done_shows_at_once(rep_client, rep, deal, committed):
    assert "Call Dana about the contract" not in home(rep_client)
    with committed:
        reminder = reminder_for(deal, rep, "Call Dana about the contract", in_seconds=-60)
        reminders_mark_due(now=timezone.now())
    assert Reminder.objects.get(pk=reminder.pk).state == ReminderState.DUE
    assert "Call Dana about the contract" in home(rep_client)
    with committed:
        reminder_done(reminder=reminder, user=rep)
    assert "Call Dana about the contract" not in home(rep_client)


def test_a_reminder_later_today_appears_when_it_falls_due_with_no_write(rep_client, rep, deal):
    zone = ZoneInfo(rep.time_zone)
    now = timezone.now()
    if (now + datetime.timedelta(seconds=3)).astimezone(zone).date() != now.astimezone(zone).date():
        time.sleep(4)  # a few seconds before the rep's midnight: start in the new day
    reminder_for(deal, rep, "Ring back at two", in_seconds=2)
    before = home(rep_client)
    assert "Ring back at two" in before and "Coming today" in before
    time.sleep(2.2)
    after = home(rep_client)
    section = after.split('aria-label="Due now"')[1].split("</section>")[0]
    assert "Ring back at two" in section


def test_a_new_role_changes_the_home_at_once(rep, committed):
    # A manager needs two-factor: this rep has it on already (tests.two_factor).
    TOTPDevice.objects.create(user=rep, name="Phone", confirmed=True)
    rep_client = _client_for(rep)
    assert "Not paid yet" not in home(rep_client)
    with committed:
        rep.groups.add(Group.objects.get_or_create(name=Role.MANAGER)[0])
    assert "Your team" in home(rep_client)


def test_each_session_gets_forms_it_can_post(rep, deal):
    """A second browser of the same rep (another CSRF secret) gets its own
    tokens, valid for its own cookie."""
    reminder_for(deal, rep, "Chase the signature", in_seconds=-300, state=ReminderState.DUE)
    browsers = [Client(enforce_csrf_checks=True), Client(enforce_csrf_checks=True)]
    tokens = []
    for browser in browsers:
        browser.force_login(rep)
        text = home(browser)
        tokens.append(re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', text).group(1))
    reminder = Reminder.objects.get(why="Chase the signature")
    response = browsers[1].post(
        reverse("reminder_done", args=[reminder.pk]), {"csrfmiddlewaretoken": tokens[1]}
    )
    assert response.status_code == 302
    assert Reminder.objects.get(pk=reminder.pk).state == ReminderState.DONE


def totals_of(board: str) -> str:
    return board.split('aria-label="Totals"')[1].split("</section>")[0]


def test_the_board_totals_follow_a_cleared_payment_at_once(manager_client, manager, rep, committed):
    deal = DealFactory(rep=rep, amount=Decimal("900.00"), deposit_required=False)
    assert "$900.00" in totals_of(manager_client.get("/board/").text)
    with committed:
        payment = billing.payment_record(
            deal_id=deal.pk, recorded_by=rep, kind="payment", method="check", amount=Decimal("250")
        )
        billing.payment_clear(payment_id=payment.pk, actor=manager)
    totals = totals_of(manager_client.get("/board/").text)
    assert "$650.00" in totals and "$900.00" not in totals


def test_the_manager_home_follows_a_teammates_new_deal_and_a_new_rep(
    manager_client, manager, rep, committed
):
    DealFactory(rep=rep, amount=Decimal("700.00"))
    assert "$700.00" in manager_client.get("/").text
    newcomer = UserFactory(username="newcomer", first_name="Nia", role=Role.REP)
    with committed:
        DealFactory(rep=rep, amount=Decimal("50.00"))
    text = manager_client.get("/").text
    assert "$750.00" in text and "Nia" not in text
    with committed:
        newcomer.manager = manager
        newcomer.save()
    assert "Nia" in manager_client.get("/").text


def test_an_unchanged_panel_poll_is_answered_in_one_query_and_a_change_is_not(
    rep_client, rep, deal, committed, django_assert_num_queries
):
    reminder = reminder_for(
        deal, rep, "Confirm the delivery slot", in_seconds=-300, state=ReminderState.DUE
    )
    page = home(rep_client)
    poll = re.search(r'hx-get="(/reminders/panel/\?v=[0-9a-f]+)"', page).group(1)
    # The session, the user, the roles and the panel's version: the panel is not read.
    with django_assert_num_queries(4):
        assert rep_client.get(poll).status_code == 204
    with committed:
        reminder_done(reminder=reminder, user=rep)
    response = rep_client.get(poll)
    assert response.status_code == 200
    assert "Confirm the delivery slot" not in response.text


def test_a_panel_poll_gets_the_reminder_that_fell_due_with_no_write(rep_client, rep, deal):
    zone = ZoneInfo(rep.time_zone)
    now = timezone.now()
    if (now + datetime.timedelta(seconds=3)).astimezone(zone).date() != now.astimezone(zone).date():
        time.sleep(4)  # a few seconds before the rep's midnight: start in the new day
    reminder_for(deal, rep, "Ring back at two", in_seconds=2)
    poll = re.search(r'hx-get="(/reminders/panel/\?v=[0-9a-f]+)"', home(rep_client)).group(1)
    assert rep_client.get(poll).status_code == 204
    time.sleep(2.2)
    response = rep_client.get(poll)
    assert response.status_code == 200
    section = response.text.split('aria-label="Due now"')[1].split("</section>")[0]
    assert "Ring back at two" in section


def test_an_auditor_sees_a_deal_renamed_by_its_rep_in_the_audit_queue_reminder(
    rep, teammate, committed
):
    """The queue reminder shows another rep's deal: that rep's write reaches the auditor."""
    rep.groups.add(Group.objects.get_or_create(name=Role.AUDITOR)[0])
    other = DealFactory(rep=teammate, title="Old title")
    ReminderFactory(
        deal=other,
        kind=ReminderKind.AUDIT_DUE,
        owner=None,
        queue=ReminderQueue.AUDIT,
        why="Audit call",
        due_at=timezone.now() - datetime.timedelta(minutes=5),
        state=ReminderState.DUE,
    )
    client = Client()
    client.force_login(rep)
    assert "Old title" in home(client)
    with committed:
        services.deal_update(
            deal_id=other.pk, actor=teammate, expected_version=other.version, title="New title"
        )
    assert "New title" in home(client)


def test_a_managers_escalation_follows_a_deal_of_a_rep_who_left_the_team(
    manager, manager_client, rep, committed
):
    deal = DealFactory(rep=rep, title="Old title")
    reminder_for(deal, manager, "Chase the money", in_seconds=-300, state=ReminderState.DUE)
    with committed:
        rep.manager = UserFactory(username="new_manager", role=Role.MANAGER)
        rep.save()
    assert "Old title" in home(manager_client)
    with committed:
        services.deal_update(
            deal_id=deal.pk, actor=rep, expected_version=deal.version, title="New title"
        )
    assert "New title" in home(manager_client)


def test_the_manager_home_shows_a_reps_reminder_as_soon_as_it_falls_due(manager_client, rep, deal):
    reminder_for(deal, rep, "Ring back", in_seconds=2)
    assert "Nobody on your team has a reminder waiting" in home(manager_client)
    time.sleep(2.2)
    assert "Nobody on your team has a reminder waiting" not in home(manager_client)


def test_a_bulk_update_shows_at_once(rep, rep_client, committed):
    deal = DealFactory(rep=rep, title="Before")
    assert "Before" in home(rep_client)
    deal.title = "After"
    with committed:
        Deal.objects.bulk_update([deal], ["title"])
    assert "After" in home(rep_client)
