"""Issue 14's "Done when", walked in headless Chromium as the people would walk it.

An invoice is issued and emailed (the SMTP server receives it with its PDF),
falls due, the first chase goes from the reminder, the customer opens the link
in the email on their phone and promises a date, the rep sees it, the date
passes, the next chase goes, money is recorded and cleared, and no further
email is sent.

The live server and the browser run on the real clock, so time passes the way
the other tests make it pass: ``_days_pass`` moves this deal's dates back with
the database (invoice, emails, links, the customer's answers, reminders), and
the beat's jobs are called as beat calls them (``reminders_scan``,
``sending.customer_emails_run``, ``sending.emails_due`` + ``sending.customer_email_send``).
Screenshots go to CLEARED_SHOTS_DIR when it is set.
"""

import datetime
import os
import re
from decimal import Decimal
from pathlib import Path

import pytest
from django.db.models import QuerySet
from django.utils import timezone

from billing.models import Invoice, Payment
from pipeline.stages import Stage
from receivables import links, mail, sending
from receivables.models import CustomerEmail, CustomerLink, CustomerResponse, EmailState
from reminders.models import Reminder, ReminderKind, ReminderState
from reminders.services import reminders_scan
from tests.browser import log_in
from tests.factories import DealFactory
from tests.smtp import parts

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = os.environ.get("CLEARED_SHOTS_DIR")
BILLING_EMAIL = "accounts@whitfield.example"
LINK = re.compile(r"View and respond online: (\S+)")

WIDER_THAN_THE_SCREEN = """() => [...document.querySelectorAll("body *")]
    .filter((e) => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
    .map((e) => e.tagName + "." + e.className).slice(0, 5)"""


def _shot(page, name: str, widths=(1280,)) -> None:
    if not SHOTS:
        return
    Path(SHOTS).mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    for width in widths:
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=f"{SHOTS}/{name}-{width}.png", full_page=True)
    page.set_viewport_size(size)


def _send() -> list[str]:
    """The worker's part: send every email whose time has come."""
    return [sending.customer_email_send(email_id=pk) for pk in sending.emails_due()]


def _days_pass(deal, days: int) -> None:
    """``days`` go by for this deal: its invoice's, emails', links', answers' and
    reminders' dates move back that much. The answers are append-only rows, so a
    plain QuerySet writes them (their manager refuses updates); the arithmetic is
    Python's, so this runs on SQLite and PostgreSQL alike."""
    back = datetime.timedelta(days=days)
    moves = [
        (Invoice, {"deal_id": deal.pk}, ["issue_date", "due_date", "issued_at"]),
        (
            CustomerEmail,
            {"deal_id": deal.pk},
            ["created_at", "next_attempt_at", "sent_at", "settled_at"],
        ),
        (
            CustomerLink,
            {"customer_id": deal.customer_id},
            ["created_at", "expires_at", "last_used_at"],
        ),
        (CustomerResponse, {"invoice__deal_id": deal.pk}, ["promised_for", "created_at"]),
        (Reminder, {"deal_id": deal.pk}, ["due_at", "created_at"]),
    ]
    for model, where, fields in moves:
        rows = QuerySet(model).filter(**where)
        for pk, *values in rows.values_list("pk", *fields):
            moved = {f: v - back for f, v in zip(fields, values, strict=True) if v is not None}
            if moved:
                QuerySet(model).filter(pk=pk).update(**moved)


def _link_in(message) -> str:
    match = LINK.search(parts(message)["text"])
    assert match, parts(message)["text"]
    assert f'href="{match[1]}"' in parts(message)["html"]
    return match[1]


def _link_of(url: str) -> CustomerLink | None:
    return links.link_for_token(url.rstrip("/").rsplit("/", 1)[1])


def _has_its_pdf(message, invoice) -> None:
    attachments = parts(message)["attachments"]
    assert list(attachments) == [f"{invoice.display_number}.pdf"]
    assert attachments[f"{invoice.display_number}.pdf"].startswith(b"%PDF-")
    (pdf,) = [p for p in message.iter_attachments()]
    assert pdf.get_content_type() == "application/pdf"


def _day(date: datetime.date) -> str:
    return f"{date.day} {date:%B %Y}"


def test_an_invoice_is_emailed_chased_promised_chased_again_and_paid(
    page, browser, live_server, rep, manager, customer, smtp_server, settings
):
    settings.CLEARED_SITE_URL = live_server.url  # the links in the emails open here
    settings.CLEARED_PAY_TO_NAME = "Bright Smiles Supply Ltd"
    settings.CLEARED_PAY_TO_BANK = "Barclays Bank"
    customer.billing_email = BILLING_EMAIL
    customer.save()
    deal = DealFactory(
        rep=rep,
        customer=customer,
        deposit_required=False,
        stage=Stage.DELIVERED,  # delivered after its audit: billed now
        title="Two dental chairs, installed",
        amount=Decimal("8450.00"),
    )
    today = timezone.localdate()

    # 1. The rep issues the invoice on the deal page and emails it with one click.
    log_in(page, live_server, "rep")
    page.goto(f"{live_server.url}{deal.get_absolute_url()}")
    page.get_by_role("button", name="Issue an invoice").click()
    page.get_by_role("button", name="Issue the invoice").click()
    flash = page.locator(".flash-success").inner_text()
    invoice = Invoice.objects.get(deal=deal)
    number = invoice.display_number
    due = today + datetime.timedelta(days=settings.CLEARED_INVOICE_TERMS_DAYS)
    assert invoice.due_date == due
    assert f"Invoice {number} issued, due {due:%-d %b %Y}" in flash
    page.locator("#money-panel").get_by_role("link", name=number).click()
    page.get_by_role("button", name="Email the invoice").click()
    assert (
        f"Invoice {number} goes to {BILLING_EMAIL} now."
        in page.locator(".flash-success").inner_text()
    )
    assert _send() == [EmailState.SENT]
    (sent,) = smtp_server.received()
    assert sent["To"] == BILLING_EMAIL
    assert sent["Subject"] == f"Invoice {number}: $8,450.00 due {_day(due)}"
    assert sent["From"].addresses[0].display_name == str(rep)
    _has_its_pdf(sent, invoice)
    assert _link_in(sent).startswith(f"{live_server.url}/billing/pay/")
    page.reload()
    assert "Sent" in page.locator("table", has_text="Invoice").last.inner_text()
    _shot(page, "1-invoice-emailed")

    # 2. Thirty days later the invoice is due: the reminder offers the first chase.
    _days_pass(deal, settings.CLEARED_INVOICE_TERMS_DAYS)
    reminders_scan(deal_ids=[deal.pk], now=timezone.now())
    page.goto(f"{live_server.url}/")
    due_today = page.locator("#reminders-panel li.reminder", has_text=f"Invoice {number}")
    assert "Payment due" in due_today.inner_text()
    assert f"Invoice {number} ($8,450.00) is due" in due_today.inner_text()
    due_today.get_by_role("link", name="Email the customer").click()
    assert page.locator("h1").inner_text() == "Payment reminder: due today"
    assert page.locator("#preview-subject").inner_text() == f"Invoice {number} is due today"
    _shot(page, "2-first-chase-preview")
    page.get_by_role("button", name="Send this email").click()
    assert (
        f"The reminder goes to {BILLING_EMAIL} now." in page.locator(".flash-success").inner_text()
    )
    assert _send() == [EmailState.SENT]
    assert len(smtp_server.received()) == 2
    first_chase = smtp_server.received()[1]
    assert first_chase["Subject"] == f"Invoice {number} is due today"
    assert "A friendly note" in parts(first_chase)["text"]
    _has_its_pdf(first_chase, invoice)
    url = _link_in(first_chase)
    page.reload()
    assert "Sent" in page.locator("#chase-state").inner_text()
    page.goto(f"{live_server.url}/")  # asked: the rep marks the reminder done
    due_today.get_by_role("button", name="Done").click()
    due_today.wait_for(state="detached")

    # 3. The customer opens the link from the email on their phone (no login) and
    # promises a date.
    phone = browser.new_context(viewport={"width": 375, "height": 812}, timezone_id="UTC")
    try:
        them = phone.new_page()
        them.goto(url)
        summary = them.locator(".summary").inner_text()
        assert "$8,450.00" in summary and f"Due {_day(today)}" in summary
        assert "Barclays Bank" in them.locator(".pay-to").inner_text()
        assert them.evaluate(WIDER_THAN_THE_SCREEN) == []
        _shot(them, "3-customer-link", widths=(375,))
        promised = today + datetime.timedelta(days=3)
        them.get_by_label("I'll pay on").fill(promised.isoformat())
        them.get_by_role("button", name="Promise this date").click()
        assert "Thank you — your date is noted" in them.locator(".done").inner_text()
        assert (
            f"you will pay on {promised:%A} {promised.day} {promised:%B}"
            in them.locator(".summary").inner_text()
        )
        assert them.evaluate(WIDER_THAN_THE_SCREEN) == []
        _shot(them, "3-customer-promised", widths=(375,))
        assert phone.cookies() == []
    finally:
        phone.close()

    # 4. The rep sees the answer on the deal; the day passes without money.
    page.goto(f"{live_server.url}{deal.get_absolute_url()}")
    timeline = page.locator(".timeline").first.inner_text()
    assert "From the customer, through their payment link" in timeline
    assert f"promises to pay {number} ($8,450.00) on {promised:%A} {promised.day}" in timeline
    assert (
        f"Promises to pay on {promised:%a} {promised.day} {promised:%b %Y}"
        in page.locator("#customer-links").inner_text()
    )
    _shot(page, "4-deal-promise-on-timeline")
    _days_pass(deal, 8)  # the promised day (3 days on) and the morning after are gone
    reminders_scan(deal_ids=[deal.pk], now=timezone.now())
    page.goto(f"{live_server.url}/")
    panel = page.locator("#reminders-panel")
    broken = panel.locator("li.reminder", has_text="A promise is not a payment")
    assert "promised to pay invoice" in broken.inner_text()
    assert "the money has not cleared — chase again" in broken.inner_text()
    assert Reminder.objects.get(kind=ReminderKind.PROMISE_PASSED).state == ReminderState.DUE
    _shot(page, "4-home-promise-passed", widths=(1280, 375))

    # 5. The next chase (+7 days) goes, from its reminder.
    overdue = panel.locator("li.reminder", has_text="7 days ago")
    overdue.get_by_role("link", name="Email the customer").click()
    assert page.locator("h1").inner_text() == "Payment reminder: +7 days"
    assert page.locator("#preview-subject").inner_text() == f"Invoice {number} is 8 days overdue"
    page.get_by_role("button", name="Send this email").click()
    page.locator(".flash-success").wait_for()
    assert _send() == [EmailState.SENT]
    assert len(smtp_server.received()) == 3
    second_chase = smtp_server.received()[2]
    assert second_chase["Subject"] == f"Invoice {number} is 8 days overdue"
    assert "Could you let me know when it will be paid?" in parts(second_chase)["text"]
    _has_its_pdf(second_chase, invoice)
    # The same live link (its token signed anew), not a new link per email.
    assert _link_of(_link_in(second_chase)) == _link_of(url)

    # The manager sets the +14 reminder to go by itself; a week later the beat queues it.
    boss = browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id="UTC")
    try:
        office = boss.new_page()
        log_in(office, live_server, "manager")
        office.goto(f"{live_server.url}/billing/chasing/")
        office.locator("#rung-14").get_by_label("Send by itself when due").check()
        office.locator("#rung-14").get_by_role("button", name="Save").click()
        assert "goes by itself" in office.locator("#rung-14").inner_text()
        _days_pass(deal, 7)
        assert mail.chase_queue_auto() == 1
        queued = CustomerEmail.objects.get(rung=14)
        assert queued.state == EmailState.QUEUED

        # 6. Before the worker sends it, the money comes: the rep records it...
        page.goto(f"{live_server.url}{deal.get_absolute_url()}")
        page.get_by_role("button", name="Record a payment").click()
        page.get_by_label("Method").select_option(label="Bank transfer")
        page.get_by_label("Reference").fill("BACS WHITFIELD 0419")
        page.get_by_label("Invoice").select_option(label=number)
        assert page.get_by_label("Amount").input_value() == "8450.00"
        page.get_by_role("button", name="Record the payment").click()
        assert (
            "recorded: pending until a manager clears it"
            in page.locator(".flash-success").inner_text()
        )
        # ...the beat's run finds the chase stopped by the pending money...
        assert sending.customer_emails_run() == 0
        queued.refresh_from_db()
        assert queued.state == EmailState.CANCELLED
        assert "A payment is pending" in queued.outcome
        # ...and the manager clears it.
        office.goto(f"{live_server.url}{deal.get_absolute_url()}")
        office.get_by_role("button", name="Mark cleared").click()
        assert "The deal is in Payment cleared" in office.locator(".flash-success").inner_text()
        _shot(office, "6-deal-paid")
    finally:
        boss.close()

    # Nothing more goes out: not the sender, not the auto-send, not the scan.
    assert Payment.objects.get(deal=deal).status == "cleared"
    assert sending.customer_emails_run() == 0
    assert _send() == []
    assert mail.chase_queue_auto() == 0
    reminders_scan(deal_ids=[deal.pk], now=timezone.now())
    reminders_scan(now=timezone.now())
    assert sending.customer_emails_run() == 0
    assert len(smtp_server.received()) == 3
    assert smtp_server.rcpt_attempts == 3
    states = dict(CustomerEmail.objects.values_list("rung", "state"))
    assert states == {
        None: EmailState.SENT,
        0: EmailState.SENT,
        7: EmailState.SENT,
        14: EmailState.CANCELLED,
    }
    promise = Reminder.objects.get(kind=ReminderKind.PROMISE_PASSED)
    assert promise.state == ReminderState.RESOLVED
    assert promise.resolution == "The deal is closed: paid, lost or written off."
    assert not Reminder.objects.filter(
        deal=deal, state__in=[ReminderState.DUE, ReminderState.SCHEDULED]
    ).exists()
    assert CustomerResponse.objects.count() == 1
    page.goto(f"{live_server.url}/")
    assert "A promise is not a payment" not in page.locator("#reminders-panel").inner_text()
    page.goto(f"{live_server.url}/billing/invoices/{invoice.pk}/chase/30/")
    assert page.locator("#chase-refusal").inner_text() == "The invoice is paid."
    assert page.get_by_role("button", name="Send this email").count() == 0
    page.goto(url)  # the customer's link now says it is paid, and asks nothing
    assert "Paid" in page.locator(".summary").inner_text()
    assert page.get_by_role("button", name="Promise this date").count() == 0
    _shot(page, "6-customer-link-paid", widths=(375,))
