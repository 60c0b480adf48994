"""A rep's day on a phone (issue 13), in headless Chromium at 375 x 812.

Every page a rep, a manager and an auditor reach: no sideways scrolling, every
control at least 24 x 24 CSS px and the day's primary actions 44 x 44 (WCAG
2.2, 2.5.8 and 2.5.5), zero axe-core violations at 375 px and at 1280 px. Then
a card moved by touch and by keyboard, with only legal stages offered; the
menu folding on a phone; the home's reminders grouped, the new ones marked.
"""

import datetime
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone
from playwright.sync_api import expect

from audits.models import Audit
from billing.models import ExceptionRequest, Invoice
from dashboards.management.commands.seed_demo import DEMO_STEPS
from pipeline.models import Customer, Deal, Role, User
from pipeline.stages import AuditFlag, Stage
from pipeline.terms import Standing
from receivables import chase, links
from receivables.models import CustomerLink, EmailKind
from reminders.models import ReminderKind, ReminderState
from tests.browser import log_in
from tests.clock import zone_at_midday
from tests.factories import CustomerFactory, DealFactory, ReminderFactory
from tests.phone import DESKTOP, PHONE, measure, too_small

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Injected from our own static files: the pages' CSP allows scripts from 'self' only.
AXE = "/static/vendor/axe-core/axe.min.js"
AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.map(v => `${v.id} (${v.impact}): ` +
    v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(" | "));
}"""


def _seed_demo() -> None:
    """The demo's people and data: what a rep, a manager and an auditor see first.

    The roles' groups come from a data migration, which an earlier
    transactional test's flush took away. One transaction, as ``seed_demo``
    runs it: the standings settle at its commit, as in the demo a rep sees."""
    for role in Role.values:
        Group.objects.get_or_create(name=role)
    with transaction.atomic():
        for step in DEMO_STEPS:
            step()


def _phone(browser, live_server, username, password="demo"):
    context = browser.new_context(viewport=PHONE, has_touch=True, timezone_id="UTC")
    context.set_default_timeout(10_000)
    page = context.new_page()
    log_in(page, live_server, username, password)
    return page


@dataclass(frozen=True)
class Stop:
    """One page of the walk: where, whether axe runs there (at 375 and 1280 px),
    a selector that proves the page shows real content, and what the user does
    on it first (open a partial, submit a refusal) before it is measured."""

    path: str
    axe: bool = False
    shows: str = ""
    then: Callable | None = None
    label: str = ""  # instead of a path too long to read (a signed link)

    @property
    def name(self) -> str:
        return (self.label or self.path) + (f" ({self.then.__doc__})" if self.then else "")


def _add_customer(page) -> None:
    """Add a new customer, inside the deal form"""
    page.get_by_role("button", name="Add a new customer").click()
    page.locator("#new-customer fieldset").wait_for()


def _add_a_duplicate(page) -> None:
    """a likely duplicate, inside the deal form"""
    _add_customer(page)
    form = page.locator("#new-customer")
    known = Customer.objects.filter(owner__username="rep").order_by("name").first()
    form.get_by_label("Name").fill(known.name.lower())
    form.get_by_label("Phone").fill("+1 555 0100")
    form.get_by_role("button", name="Add the customer").click()
    page.locator("#likely-duplicates").wait_for()


def _ask_my_manager(page) -> None:
    """invoicing a slow payer refused: Ask my manager"""
    slow = Customer.objects.get(name="Slow Sid")
    page.get_by_label("Customer").select_option(str(slow.pk))
    expect(page.locator("#terms")).to_contain_text("Slow standing")  # htmx swapped the terms in
    page.get_by_label("What is sold").fill("Forty chairs")
    page.get_by_label("Amount").fill("4200")
    page.get_by_label("Invoice — billed after delivery").check()
    page.get_by_label("Expected delivery date").fill("2030-01-15")
    page.get_by_label("Next step", exact=True).fill("Call about the delivery slot")
    page.get_by_label("Next step date").fill("2030-01-10")
    page.get_by_role("button", name="Log the deal").last.click()
    page.locator("#ask-manager").wait_for()


def _add_what_the_demo_lacks() -> None:
    """A customer entered twice, and a slow payer with no manager's exception (the
    demo's own slow payers may have one, depending on the day it is seeded)."""
    first = Customer.objects.filter(owner__username="rep").order_by("name").first()
    CustomerFactory(owner=first.owner, name=f"{first.name.upper()} ", phone=first.phone)
    CustomerFactory(
        owner=first.owner,
        name="Slow Sid",
        standing=Standing.SLOW,
        standing_reason="Pays 21 days late on average.",
    )


def _pages(role: str) -> list[Stop]:
    """Every page the role reaches in the demo, each with real content."""
    rep = User.objects.get(username="rep")
    deal = Deal.objects.filter(rep=rep, stage=Stage.PROMISED).order_by("pk").first()
    delivered = Deal.objects.filter(rep=rep, stage=Stage.DELIVERED).order_by("pk").first()
    customer = deal.customer
    # An overdue invoice of the rep's that was emailed and chased, whose customer
    # has a link with an answer: the send panel, the email log, the link panel.
    invoice = (
        Invoice.objects.filter(deal__rep=rep, emails__kind=EmailKind.CHASE)
        .filter(deal__customer__links__responses__isnull=False)
        .order_by("due_date", "pk")
        .first()
    )
    billed = invoice.deal.customer
    asked = ExceptionRequest.objects.filter(state="asked").first()
    disputed = Deal.objects.filter(audit_flag=AuditFlag.DISPUTED).first()
    audit = Audit.objects.order_by("pk").first()
    rung, last = chase.rungs()[1], chase.last_rung()
    pages = {
        "rep": [
            Stop("/", True, "#reminders-panel .reminder"),
            Stop("/deals/"),
            Stop("/deals/board/", True),
            Stop("/deals/new/", True),
            Stop("/deals/new/", True, "#new-customer fieldset", _add_customer),
            Stop("/deals/new/", True, "#likely-duplicates", _add_a_duplicate),
            Stop("/deals/new/", True, "#ask-manager", _ask_my_manager),
            Stop("/deals/new/customer/", True, "fieldset.new-customer"),
            Stop(f"/deals/{deal.pk}/", True),
            Stop(f"/deals/{delivered.pk}/"),
            Stop(f"/deals/{invoice.deal_id}/", True, "#customer-links"),
            Stop(f"/deals/{deal.pk}/edit/"),
            Stop("/customers/", True, ".likely-duplicate"),
            Stop("/customers/new/"),
            Stop(f"/customers/{customer.pk}/", True),
            Stop(f"/customers/{billed.pk}/", True, "#customer-links li"),
            Stop("/billing/payments/", True, ".payment-id"),
            Stop("/billing/invoices/", True),
            Stop(f"/billing/invoices/{invoice.pk}/", True, ".email-log td"),
            Stop(f"/billing/invoices/{invoice.pk}/chase/{rung}/", True, "#preview-subject"),
            Stop(f"/billing/customers/{billed.pk}/statement/", True, "td"),
            Stop("/billing/commission/"),
            Stop("/reminders/", True),
            Stop("/accounts/security/"),
            Stop("/accounts/password/change/"),
            Stop("/accounts/two-factor/setup/", True),
            Stop("/deals/import/"),
            Stop(f"/audits/deals/{deal.pk}/wrap-up/"),
            Stop(f"/billing/deals/{deal.pk}/payments/new/"),
        ],
        "manager": [
            Stop("/", True, "#reminders-panel .exception-decision"),
            Stop("/board/", True, "td.next-reminder"),
            Stop("/deals/"),
            Stop("/deals/board/"),
            Stop("/customers/", True, ".likely-duplicate"),
            Stop("/team/", True),
            Stop("/audits/report/", True),
            Stop("/billing/commission/"),
            Stop("/billing/payments/", True, ".payment-id"),
            Stop("/billing/invoices/", True),
            Stop(f"/billing/invoices/{invoice.pk}/", True, ".email-log td"),
            Stop(f"/billing/invoices/{invoice.pk}/chase/{last}/", True, "#preview-subject"),
            Stop("/billing/chasing/", True, ".rung"),
            Stop("/billing/dso/", True, ".dso-chart svg"),
            Stop(f"/billing/customers/{billed.pk}/statement/", True, "td"),
            Stop(f"/customers/{billed.pk}/", True, "#customer-links li"),
            Stop(f"/deals/{asked.deal_id}/", True, ".exception-decision"),
            Stop(f"/billing/team/{rep.pk}/rate/"),
            Stop(f"/team/{rep.pk}/deactivate/"),
            Stop(f"/audits/deals/{disputed.pk}/dispute/", True),
            Stop(f"/deals/{deal.pk}/"),
            Stop("/reminders/"),
        ],
        "auditor": [
            Stop("/", True),
            Stop("/audits/", True),
            Stop(f"/audits/{audit.pk}/call/", True),
            Stop("/reminders/"),
            Stop("/accounts/security/"),
        ],
    }
    return pages[role]


def _public_pages() -> list[Stop]:
    """What a visitor without a login reaches: the log-in, the password reset and
    the customer's own links (an invoice's, answered; a statement's)."""
    answered = CustomerLink.objects.filter(invoice__isnull=False, responses__isnull=False).first()
    statement = CustomerLink.objects.filter(invoice__isnull=True).first()
    return [
        Stop("/accounts/login/", True),
        Stop("/accounts/password/reset/", True),
        Stop(links.customer_link_path(answered), True, "#paid", label="the invoice's link"),
        Stop(links.customer_link_path(statement), True, "#paid", label="the statement's link"),
        Stop("/billing/pay/not-a-token/", True, "h1", label="a broken link"),
    ]


def _axe(page, live_server) -> list[str]:
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(url=f"{live_server.url}{AXE}")
    return page.evaluate(AXE_RUN)


def test_every_page_fits_a_phone_with_big_enough_targets_and_no_axe_violations(
    browser, live_server
):
    """Set CLEARED_PHONE_SHOTS to a folder to keep a 375 px screenshot of each page."""
    _seed_demo()
    _add_what_the_demo_lacks()
    shots = os.environ.get("CLEARED_PHONE_SHOTS")
    problems, smallest, widths, walked = [], None, {}, {}
    visitor = browser.new_context(viewport=PHONE, has_touch=True, timezone_id="UTC")
    visitor.set_default_timeout(10_000)
    # Where each role goes is chosen before anyone walks: the walk writes (a customer
    # added in the deal form) and must not change the others' pages.
    walks = [("visitor", _public_pages())]
    walks += [(role, _pages(role)) for role in ("rep", "manager", "auditor")]
    for role, stops in walks:
        page = visitor.new_page() if role == "visitor" else _phone(browser, live_server, role)
        for number, stop in enumerate(stops):
            where = f"{role} {stop.name} at 375 px"
            page.set_viewport_size(PHONE)
            page.goto(f"{live_server.url}{stop.path}")
            if stop.then:
                stop.then(page)
            if stop.shows and page.locator(stop.shows).count() == 0:
                problems.append(f"{where}: nothing shows {stop.shows!r}")
            seen = measure(page)
            widths[f"{role} {stop.name}"] = seen["width"]
            walked[role] = walked.get(role, 0) + 1
            if shots:
                Path(shots).mkdir(parents=True, exist_ok=True)
                page.evaluate("window.scrollTo(0, 0)")  # the sticky top bar at the top
                page.screenshot(path=f"{shots}/{role}-{number:02d}.png", full_page=True)
            if seen["width"] > PHONE["width"]:
                problems.append(f"{where}: {seen['width']} px wide ({seen['overflow']})")
            for target in too_small(seen["targets"]):
                problems.append(f"{where}: {target} is under 24 x 24")
            primaries = [t["label"] for t in seen["targets"] if t["primary"]]
            if (role, stop.path) == ("rep", "/") and not {
                "Log a deal",
                "Done",
                "Snooze 1 hour",
            } <= set(primaries):
                problems.append(f"{where}: the day's actions are not all marked primary")
            for target in too_small([t for t in seen["targets"] if t["primary"]], 44):
                problems.append(f"{where}: primary {target} is under 44 x 44")
            if seen["targets"]:
                first = seen["targets"][0]
                if smallest is None or min(first["width"], first["height"]) < min(
                    smallest[1]["width"], smallest[1]["height"]
                ):
                    smallest = (where, first)
            if stop.axe:
                problems += [f"{where}: axe {v}" for v in _axe(page, live_server)]
                page.set_viewport_size(DESKTOP)
                problems += [
                    f"{role} {stop.name} at 1280 px: axe {v}" for v in _axe(page, live_server)
                ]
        page.context.close()
    widest = max(widths, key=widths.get)
    print(
        f"\npages walked: {walked}; widest at 375 px: {widest} ({widths[widest]} px); "
        f"smallest control: {smallest}"
    )
    assert not problems, "\n".join(problems)
    assert smallest is not None  # the walk measured controls at all
    assert walked == {"visitor": 5, "rep": 29, "manager": 22, "auditor": 5}


def test_the_menu_folds_on_a_phone_and_opens_and_closes_by_keyboard(browser, live_server):
    _seed_demo()
    page = _phone(browser, live_server, "rep")
    menu = page.get_by_role("button", name="Menu")
    deals = page.locator("#nav-links").get_by_role("link", name="Deals", exact=True)
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(deals).to_be_hidden()
    # The reminders stay in reach with the menu folded.
    expect(page.locator("#reminders-badge")).to_be_visible()
    assert page.locator(".topbar").bounding_box()["height"] <= 70

    menu.focus()
    page.keyboard.press("Enter")
    expect(menu).to_have_attribute("aria-expanded", "true")
    expect(deals).to_be_visible()
    page.keyboard.press("Tab")
    page.keyboard.press("Escape")
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(deals).to_be_hidden()
    assert page.evaluate("document.activeElement.classList.contains('menu-toggle')")
    page.keyboard.press("Space")
    expect(menu).to_have_attribute("aria-expanded", "true")
    deals.click()
    page.wait_for_url(f"{live_server.url}/deals/")

    # At desktop width the links are simply there, and no menu button.
    page.set_viewport_size(DESKTOP)
    expect(page.get_by_role("button", name="Menu")).to_be_hidden()
    expect(page.locator("#nav-links").get_by_role("link", name="Pipeline")).to_be_visible()
    page.context.close()


def test_a_rep_moves_cards_by_touch_and_by_keyboard_offered_only_legal_stages(
    browser, live_server, rep
):
    upfront = DealFactory(
        rep=rep, payment_option="upfront", stage=Stage.DEPOSIT, customer__name="Upfront Ursula"
    )
    second = DealFactory(
        rep=rep, payment_option="upfront", stage=Stage.DEPOSIT, customer__name="Second Sam"
    )
    billed = DealFactory(
        rep=rep, payment_option="invoice", deposit_required=False, customer__name="Billed Bob"
    )
    page = _phone(browser, live_server, "rep", "pw")
    page.goto(f"{live_server.url}/deals/board/")
    board = page.locator("#pipeline-board")
    card = board.locator(f'.deal-card[data-deal="{upfront.pk}"]')
    assert card.get_attribute("data-moves").split() == ["delivered"]
    # A billed deal waiting for its audit has no move to drag or pick.
    billed_card = board.locator(f'.deal-card[data-deal="{billed.pk}"]')
    assert billed_card.get_attribute("data-moves").split() == []
    expect(billed_card.get_by_text("Move", exact=True)).to_have_count(0)

    # By touch: press "Move" and drag. Only the legal column is offered: on a
    # phone the others are taken off the screen while the finger is down.
    handle = card.locator(".card-move > summary")
    box = handle.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    _touch(page, handle, "pointerdown", x, y)
    _touch(page, handle, "pointermove", x, y + 20)
    expect(board.locator(".board-column.drop-ok")).to_have_count(1)
    expect(board.locator('.board-column.drop-ok[data-stage="delivered"]')).to_have_count(1)
    expect(board.locator('.board-column[data-stage="audit_confirmed"]')).to_be_hidden()
    delivered = board.locator('.board-column[data-stage="delivered"]')
    target = delivered.bounding_box()
    tx, ty = target["x"] + target["width"] / 2, min(target["y"] + 20, PHONE["height"] - 60)
    _touch(page, handle, "pointermove", tx, ty)
    expect(delivered).to_have_class(re.compile("drop-hover"))
    _touch(page, handle, "pointerup", tx, ty)
    page.get_by_text("Upfront Ursula moved to Delivered").wait_for()
    assert Deal.objects.get(pk=upfront.pk).stage == Stage.DELIVERED
    expect(board.locator(".drop-ok, .drop-no")).to_have_count(0)
    expect(page.locator("details.card-move[open]")).to_have_count(0)

    # By keyboard: the card's "Move" opens a form offering only legal stages.
    summary = board.locator(f'.deal-card[data-deal="{second.pk}"] .card-move > summary')
    summary.focus()
    page.keyboard.press("Enter")
    select = page.get_by_label("Move Second Sam to")
    expect(select).to_be_visible()
    assert select.locator("option").evaluate_all("o => o.map(x => x.value)") == ["delivered"]
    select.focus()
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.get_by_text("Second Sam moved to Delivered").wait_for()
    assert Deal.objects.get(pk=second.pk).stage == Stage.DELIVERED

    # The deal page's "Another stage, or lost" lists only legal stages too.
    page.goto(f"{live_server.url}/deals/{billed.pk}/")
    page.get_by_text("Another stage, or lost").click()
    values = page.locator('select[name="to_stage"] option').evaluate_all("o => o.map(x => x.value)")
    assert values == ["lost"]  # billed: audited before delivery; never Audit confirmed by hand
    page.context.close()


def _touch(page, locator, kind, x, y):
    """A touch pointer event, as a finger on a phone sends it."""
    locator.dispatch_event(
        kind,
        {
            "pointerId": 7,
            "pointerType": "touch",
            "isPrimary": True,
            "clientX": x,
            "clientY": y,
            "bubbles": True,
            "button": 0 if kind == "pointerdown" else -1,
        },
    )


def test_the_home_reminders_are_grouped_newest_due_first_marked_new_with_the_rest_folded(
    browser, live_server, rep, deal
):
    now = timezone.now()
    # "Two hours old" and "later today" are today only where it is midday now.
    rep.time_zone = zone_at_midday(now)
    rep.save(update_fields=["time_zone"])
    fresh = ReminderFactory(
        deal=deal, why="Fresh one", due_at=now - datetime.timedelta(minutes=10), state="due"
    )
    older = ReminderFactory(
        deal=deal, why="Two hours old", due_at=now - datetime.timedelta(hours=2), state="due"
    )
    later = ReminderFactory(
        deal=deal,
        kind=ReminderKind.STALE_DEAL,
        why="Later today",
        due_at=now + datetime.timedelta(minutes=30),
    )
    asleep = ReminderFactory(
        deal=deal,
        why="Snoozed one",
        due_at=now - datetime.timedelta(hours=3),
        state=ReminderState.SNOOZED,
        snoozed_until=now + datetime.timedelta(minutes=20),
    )
    page = _phone(browser, live_server, "rep", "pw")
    panel = page.locator("#reminders-panel")
    due = panel.locator(".reminder-section-due .reminder")
    expect(due).to_have_count(2)
    assert due.evaluate_all("r => r.map(x => x.id)") == [
        f"reminder-{fresh.pk}",
        f"reminder-{older.pk}",
    ]
    expect(panel.locator(f"#reminder-{fresh.pk} .badge.is-new")).to_have_text("New")
    expect(panel.locator(f"#reminder-{older.pk} .badge.is-new")).to_have_count(0)
    expect(panel.locator(f".reminder-section-coming #reminder-{later.pk}")).to_be_visible()
    snoozed = panel.locator(f".reminder-section-snoozed #reminder-{asleep.pk}")
    expect(snoozed).to_be_hidden()  # folded until asked for
    panel.get_by_text("Snoozed until later today (1)").click()
    expect(snoozed).to_be_visible()

    # Done and Snooze are one tap each; everything else is behind "More".
    item = panel.locator(f"#reminder-{fresh.pk}")
    visible = item.locator("button:visible, summary:visible").all_inner_texts()
    assert [text.strip() for text in visible] == ["Done", "Snooze 1 hour", "More"]
    expect(item.get_by_role("button", name="Tomorrow morning")).to_be_hidden()
    item.locator(".reminder-more > summary").click()
    expect(item.get_by_role("button", name="Tomorrow morning")).to_be_visible()
    expect(item.locator('input[name="at"]')).to_be_visible()
    for control in ("Done", "Snooze 1 hour"):
        size = item.get_by_role("button", name=control).bounding_box()
        assert size["width"] >= 44 and size["height"] >= 44, (control, size)
    item.get_by_role("button", name="Done").click()
    expect(panel.locator(f"#reminder-{fresh.pk}")).to_have_count(0)
    page.context.close()
