"""The email digest: each recipient's due reminders, in one email, at most once per
``REMINDERS_DIGEST_MINUTES``, with a back-off when the mail server refuses
(``ReminderDigest``). Claimed by compare-and-set, so two workers handed the same
recipient send one email.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from pipeline.models import User
from reminders.models import Reminder, ReminderDigest, ReminderQueue, ReminderState

logger = logging.getLogger(__name__)

DIGEST_MAX_LINES = 50


def recipient_of(reminder_owner_id: int | None, queue: str) -> str:
    return f"user:{reminder_owner_id}" if reminder_owner_id else f"queue:{queue}"


def _recipient_filter(recipient: str) -> Q:
    kind, _, key = recipient.partition(":")
    if kind == "user":
        return Q(owner_id=int(key))
    return Q(owner__isnull=True, queue=key)


def _pending_recipients_sql() -> str:
    """Who has due reminders not yet emailed: the distinct owners, and the queues of
    reminders without one, each read as a skip scan of the ``reminder_to_notify``
    partial index (one index probe per recipient: the smallest owner after the last
    one found), so it costs the recipients, not the reminders waiting for them."""
    table = connection.ops.quote_name(Reminder._meta.db_table)
    pending = f"FROM {table} WHERE state = %(due)s AND notified_at IS NULL"
    # ORDER BY the index's own columns, LIMIT 1: PostgreSQL reads one entry (a MIN
    # over "owner_id IS NULL" would read every entry of the queue's range).
    first_owner = f"SELECT owner_id {pending} AND owner_id IS NOT NULL"
    first_queue = f"SELECT queue {pending} AND owner_id IS NULL"
    return f"""
        WITH RECURSIVE owners (owner_id) AS (
            SELECT ({first_owner} ORDER BY owner_id LIMIT 1)
            UNION ALL
            SELECT ({first_owner} AND owner_id > owners.owner_id ORDER BY owner_id LIMIT 1)
            FROM owners WHERE owners.owner_id IS NOT NULL
        ), queues (queue) AS (
            SELECT ({first_queue} ORDER BY owner_id, queue LIMIT 1)
            UNION ALL
            SELECT ({first_queue} AND queue > queues.queue ORDER BY owner_id, queue LIMIT 1)
            FROM queues WHERE queues.queue IS NOT NULL
        )
        SELECT owner_id, '' FROM owners WHERE owner_id IS NOT NULL
        UNION ALL
        SELECT NULL, queue FROM queues WHERE queue IS NOT NULL
    """  # noqa: S608 - the table's name, quoted; every value is a parameter


def reminders_pending_recipients(*, now: datetime | None = None) -> list[str]:
    """Recipients with due reminders not yet emailed, whose digest may go now."""
    now = now or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(_pending_recipients_sql(), {"due": ReminderState.DUE})
        recipients = {recipient_of(owner_id, queue) for owner_id, queue in cursor.fetchall()}
    if not recipients:
        return []
    interval = timedelta(minutes=settings.REMINDERS_DIGEST_MINUTES)
    waiting = ReminderDigest.objects.filter(recipient__in=recipients).filter(
        Q(last_sent_at__gt=now - interval) | Q(retry_at__gt=now) | Q(claimed_until__gt=now)
    )
    return sorted(recipients - set(waiting.values_list("recipient", flat=True)))


def _addresses(recipient: str) -> list[str]:
    kind, _, key = recipient.partition(":")
    if kind == "user":
        users = User.objects.filter(pk=int(key), is_active=True)
    elif key == ReminderQueue.AUDIT:
        users = User.objects.filter(groups__name="Auditor", is_active=True)
    else:
        users = User.objects.none()
    return sorted({email for email in users.values_list("email", flat=True) if email})


def reminders_send_digest(*, recipient: str, now: datetime | None = None) -> int:
    """Email one recipient their due reminders in one digest; return how many it held.

    At most one digest per recipient per REMINDERS_DIGEST_MINUTES: the
    ReminderDigest row is claimed with a compare-and-set (``claimed_until``, a
    lease of REMINDERS_DIGEST_LEASE_SECONDS, and ``last_sent_at``), so two workers
    handed the same recipient send one email, and a worker killed mid-send
    lets go when its lease runs out. A mail server that refuses is retried
    later with a growing back-off. A worker killed between sending and
    recording may send one digest twice; never zero.
    """
    now = now or timezone.now()
    pending = Reminder.objects.filter(
        _recipient_filter(recipient), state=ReminderState.DUE, notified_at__isnull=True
    )
    if not pending.exists():
        return 0
    interval = timedelta(minutes=settings.REMINDERS_DIGEST_MINUTES)
    ReminderDigest.objects.bulk_create([ReminderDigest(recipient=recipient)], ignore_conflicts=True)
    digest = ReminderDigest.objects.get(recipient=recipient)
    lease = timedelta(seconds=settings.REMINDERS_DIGEST_LEASE_SECONDS)
    claimed = (
        ReminderDigest.objects.filter(pk=digest.pk, last_sent_at=digest.last_sent_at)
        .filter(Q(last_sent_at__isnull=True) | Q(last_sent_at__lte=now - interval))
        .filter(Q(retry_at__isnull=True) | Q(retry_at__lte=now))
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lte=now))
        .update(claimed_until=now + lease)
    )
    if not claimed:
        return 0
    reminders = list(pending.select_related("deal__customer").order_by("due_at", "id"))
    try:
        addresses = _addresses(recipient)
        if addresses:
            _digest_email(reminders, addresses).send()
    except Exception as exc:
        failures = digest.failures + 1
        backoff = timedelta(minutes=min(2**failures, 60))
        ReminderDigest.objects.filter(pk=digest.pk).update(
            claimed_until=None,
            failures=failures,
            retry_at=now + backoff,
            last_error=f"{exc.__class__.__name__}: {exc}"[:300],
        )
        logger.warning("Reminder digest to %s failed (%s); retry in %s", recipient, exc, backoff)
        return 0
    Reminder.objects.filter(id__in=[r.id for r in reminders], notified_at__isnull=True).update(
        notified_at=now
    )
    ReminderDigest.objects.filter(pk=digest.pk).update(
        last_sent_at=now, claimed_until=None, failures=0, retry_at=None, last_error=""
    )
    return len(reminders)


def reminders_send_digests(*, now: datetime | None = None, on_each=None) -> int:
    """Every pending recipient's digest, one after another; returns how many went."""
    sent = 0
    for recipient in reminders_pending_recipients(now=now):
        sent += bool(reminders_send_digest(recipient=recipient, now=now))
        if on_each is not None:
            on_each()
    return sent


def _digest_email(reminders: list[Reminder], addresses: list[str]) -> EmailMessage:
    count = len(reminders)
    noun = "reminder" if count == 1 else "reminders"
    lines = [f"{count} {noun} due in Cleared:", ""]
    for reminder in reminders[:DIGEST_MAX_LINES]:
        deal = reminder.deal
        lines.append(f"- {reminder.get_kind_display()}: {deal.customer.name} — {deal.title}")
        lines.append(f"  {reminder.why}")
        lines.append(f"  {settings.CLEARED_SITE_URL}{deal.get_absolute_url()}")
    if count > DIGEST_MAX_LINES:
        lines.append(f"…and {count - DIGEST_MAX_LINES} more on your dashboard.")
    lines += ["", "Mark them done or snooze them from your dashboard."]
    subject = f"Cleared: {count} {noun} due"
    if len(addresses) == 1:
        return EmailMessage(subject, "\n".join(lines), to=addresses)
    return EmailMessage(subject, "\n".join(lines), bcc=addresses)
