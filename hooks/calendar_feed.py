"""Each person's private calendar address: made, regenerated, revoked, and its ICS.

The address carries a long random secret; only its SHA-256 is stored, so the
database cannot give the address back (it is shown once, when made).
Regenerating replaces the hash: the old address answers 404, like a revoked
or a forged one. The feed is read-only and shows what the person's pages
show (pipeline.access's rule, ``Deal.objects.visible_to``).
"""

import hashlib
import secrets
from datetime import date, datetime, timedelta

from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from icalendar import Calendar
from icalendar import Event as CalendarEvent

from audits.selectors import audit_queue
from hooks import sources
from hooks.models import CalendarFeed
from pipeline.models import Deal, User
from reminders.models import OPEN_STATES, Reminder, ReminderQueue

PAST_DAYS = 14
AHEAD_DAYS = 120
MAX_DEALS = 500


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def calendar_feed_create(*, user: User) -> str:
    """A new secret for the user's address (the old one stops working); returns it."""
    token = secrets.token_urlsafe(32)
    CalendarFeed.objects.update_or_create(
        user=user, defaults={"token_hash": _hash(token), "created_at": timezone.now()}
    )
    return token


def calendar_feed_revoke(*, user: User) -> bool:
    deleted, _ = CalendarFeed.objects.filter(user=user).delete()
    return bool(deleted)


def calendar_feed_user(token: str) -> User | None:
    """The active person whose address this is; None for a revoked or forged one."""
    feed = CalendarFeed.objects.select_related("user").filter(token_hash=_hash(token)).first()
    if feed is None or not feed.user.is_active:
        return None
    CalendarFeed.objects.filter(pk=feed.pk).update(last_used_at=timezone.now())
    return feed.user


def calendar_feed_url(token: str) -> str:
    return settings.CLEARED_SITE_URL + reverse("hooks:calendar_feed", args=[token])


def _link(path: str) -> str:
    return settings.CLEARED_SITE_URL + path


def _all_day(uid: str, day: date, summary: str, url: str, description: str = "") -> CalendarEvent:
    event = CalendarEvent()
    event.add("uid", f"{uid}@cleared")
    event.add("dtstamp", timezone.now())
    event.add("dtstart", day)
    event.add("dtend", day + timedelta(days=1))
    event.add("summary", summary)
    event.add("url", url)
    event.add("description", f"{description}\n{url}".strip())
    event.add("transp", "TRANSPARENT")
    return event


def _timed(uid: str, start: datetime, end: datetime, summary: str, url: str, description=""):
    event = CalendarEvent()
    event.add("uid", f"{uid}@cleared")
    event.add("dtstamp", timezone.now())
    event.add("dtstart", start)
    event.add("dtend", end)
    event.add("summary", summary)
    event.add("url", url)
    event.add("description", f"{description}\n{url}".strip())
    return event


def _their_deals(user: User):
    """The deals whose dates are the person's: a seller's own; a manager who does
    not sell, their team's (both within what the person may see)."""
    deals = Deal.objects.visible_to(user)
    return deals.filter(rep=user) if user.is_rep else deals


def calendar_ics(*, user: User, now: datetime | None = None) -> bytes:
    """The person's calendar: next steps, audit call windows (auditors), payment
    due dates and promised-pay days, and their open reminders; each event
    links back to its deal (an auditor's, to the audit call)."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    start, end = today - timedelta(days=PAST_DAYS), today + timedelta(days=AHEAD_DAYS)
    cal = Calendar()
    cal.add("prodid", "-//Cleared//Calendar feed//EN")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", f"Cleared — {user.get_full_name() or user.get_username()}")
    cal.add("refresh-interval;value=duration", "PT1H")

    deals = _their_deals(user)
    open_deals = (
        deals.open()
        .filter(next_step_date__gte=start, next_step_date__lte=end)
        .select_related("customer")
        .order_by("next_step_date")[:MAX_DEALS]
    )
    for deal in open_deals:
        cal.add_component(
            _all_day(
                f"next-step-{deal.pk}-{deal.next_step_date:%Y%m%d}",
                deal.next_step_date,
                f"Next step: {deal.next_step} — {deal.customer.name}",
                _link(deal.get_absolute_url()),
                deal.title,
            )
        )
    for invoice in sources.calendar_invoices_due(deals, start, end):
        if not invoice.is_owed(invoice.cleared):
            continue
        deal = invoice.deal
        cal.add_component(
            _all_day(
                f"invoice-due-{invoice.pk}",
                invoice.due_date,
                f"Payment due: {invoice.display_number} — {deal.customer.name}",
                _link(deal.get_absolute_url()),
                f"{settings.CURRENCY_SYMBOL}{invoice.amount:,.2f} on {deal.title}",
            )
        )
    for response in sources.calendar_promised_days(deals, start, end):
        deal = response.invoice.deal
        cal.add_component(
            _all_day(
                f"promise-{response.pk}",
                response.promised_for,
                f"Promised to pay: {response.invoice.display_number} — {deal.customer.name}",
                _link(deal.get_absolute_url()),
                deal.title,
            )
        )
    if user.is_auditor:
        queue = audit_queue(auditor=user, now=now)
        for audit in [a for section in queue.values() for a in section]:
            call_url = _link(reverse("audits:call", args=[audit.pk]))
            begin = audit.next_call_at or audit.call_window_start
            finish = audit.call_window_end if begin == audit.call_window_start else None
            cal.add_component(
                _timed(
                    f"audit-{audit.pk}-{int(begin.timestamp())}",
                    begin,
                    finish if finish and finish > begin else begin + timedelta(minutes=15),
                    f"Audit call: {audit.deal.customer.name}",
                    call_url,
                    audit.get_state_display(),
                )
            )
    reminders = Reminder.objects.filter(state__in=OPEN_STATES).select_related("deal__customer")
    mine = reminders.filter(owner=user)
    if user.is_auditor:
        mine = mine | reminders.filter(owner__isnull=True, queue=ReminderQueue.AUDIT)
    for reminder in mine.order_by("due_at")[:MAX_DEALS]:
        shown = reminder.shown_at
        cal.add_component(
            _timed(
                f"reminder-{reminder.pk}-{int(shown.timestamp())}",
                shown,
                shown + timedelta(minutes=15),
                f"{reminder.get_kind_display()}: {reminder.deal.customer.name}",
                _link(reminder.target_url),
                reminder.why,
            )
        )
    return cal.to_ical()
