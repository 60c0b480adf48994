"""Business rules of reminders that write: the scan, the digest, done and snooze.

The scan is safe to run twice at once, to be killed half-way and to run again
after hours of downtime: creation is a bulk insert that the database's
uniqueness constraint de-duplicates, every state change is a compare-and-set
on the state it expects (rows claimed with ``select_for_update(skip_locked=True)``
where the database has row locks), and a rule only looks at a bounded window
of time, so a catch-up makes one reminder per kind and occurrence, not one
per missed minute.
"""

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import connection, transaction
from django.db.models import Case, IntegerField, Q, Value, When
from django.utils import timezone

from pipeline.models import Deal, User
from reminders.models import (
    OPEN_STATES,
    Reminder,
    ReminderDigest,
    ReminderQueue,
    ReminderState,
)
from reminders.rules import gone_for, owner_of, rules
from reminders.rules.base import Window

logger = logging.getLogger(__name__)

CLAIM_BATCH = 1000
QUICK_MAX_CHANGED = 500
DIGEST_MAX_LINES = 50


class ReminderClosed(Exception):
    """The reminder is no longer open (someone, or the scan, closed it first)."""


@dataclass
class ScanResult:
    created: int = 0
    due: int = 0
    resolved: int = 0

    def as_dict(self) -> dict:
        return {"created": self.created, "due": self.due, "resolved": self.resolved}


def reminders_scan(
    *,
    now: datetime | None = None,
    deal_ids: list[int] | None = None,
    actor_id: int | None = None,
    sweep: bool = True,
) -> ScanResult:
    """Apply every rule: create what is missing, resolve what is gone, mark what is due.

    ``deal_ids`` limits the work to some deals (an event on a deal: a touch, a
    move); ``actor_id`` is the person whose action triggered it, recorded on
    the reminders it resolves when the rule does not name someone better.

    A sweep (the default; beat's scan once an hour and after any gap) looks
    back over the whole catch-up window and resolves every open reminder
    whose cause is gone. The minute's quick scan (``sweep=False``) creates
    what came within the horizon since the last few scans, re-checks in full
    the deals changed lately (an event whose task was lost is caught here),
    and marks due what is due: it stays cheap however much history there is.
    """
    now = now or timezone.now()
    result = ScanResult()
    if not sweep and deal_ids is None:
        recent = timedelta(minutes=settings.REMINDERS_RECENT_MINUTES)
        with transaction.atomic():
            _plan_for_index_probes()
            result.created = reminders_create_missing(
                now=now, window=Window(now, lookback=recent), quick=True
            )
        changed = list(
            Deal.objects.filter(updated_at__gte=now - recent).values_list("pk", flat=True)
        )
        if len(changed) > QUICK_MAX_CHANGED:  # a bulk change: a sweep is cheaper than a list
            more = reminders_scan(now=now, actor_id=actor_id)
            result.created += more.created
            result.resolved += more.resolved
        elif changed:
            more = reminders_scan(now=now, deal_ids=changed, actor_id=actor_id)
            result.created += more.created
            result.resolved += more.resolved
        result.due += reminders_mark_due(now=now)
        return result
    with transaction.atomic():
        _plan_for_index_probes()
        result.created = reminders_create_missing(now=now, deal_ids=deal_ids)
        result.resolved = reminders_resolve_gone(now=now, deal_ids=deal_ids, actor_id=actor_id)
    result.due = reminders_mark_due(now=now, deal_ids=deal_ids)
    return result


def _plan_for_index_probes() -> None:
    """Let PostgreSQL probe the (deal, kind, occurrence) index instead of hashing history.

    "Does this reminder exist yet?" is an anti-join against a table of mostly
    done rows; with the default random_page_cost PostgreSQL prefers to hash
    the whole history. For this transaction only, the cost of an index probe
    is set to what it is on SSDs (REMINDERS_PG_RANDOM_PAGE_COST).
    """
    if connection.vendor == "postgresql" and settings.REMINDERS_PG_RANDOM_PAGE_COST:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT set_config('random_page_cost', %s, true)",
                [str(settings.REMINDERS_PG_RANDOM_PAGE_COST)],
            )


def reminders_create_missing(
    *,
    now: datetime,
    deal_ids: list[int] | None = None,
    window: Window | None = None,
    quick: bool = False,
) -> int:
    """Insert the reminders the deals' facts call for and that do not exist yet.

    Returns how many rows were offered to the database; a row that another
    scan inserted first is skipped by the uniqueness constraint.
    """
    window = window or Window(now)
    candidates: list[Reminder] = []
    for rule in rules():
        if quick and rule.sweep_only:
            continue
        for row in rule.find(window, deal_ids):
            due_at = rule.due(row)
            if rule.not_due_before_created:
                due_at = max(due_at, now)
            if due_at > window.horizon:
                continue
            owner_id, queue = owner_of(rule, row)
            candidates.append(
                Reminder(
                    deal_id=row["deal_pk"],
                    kind=rule.kind,
                    occurrence=row["occ"],
                    owner_id=owner_id,
                    queue=queue,
                    why=rule.why(row)[:300],
                    due_at=due_at,
                    created_at=now,
                    updated_at=now,
                )
            )
    if not candidates:
        return 0
    _hover(candidates)
    Reminder.objects.bulk_create(candidates, ignore_conflicts=True, batch_size=CLAIM_BATCH)
    return len(candidates)


def _hover(candidates: list[Reminder]) -> None:
    """Hover, don't smother: at most one reminder of a kind per deal per day (per person).

    A new reminder that would fall due within REMINDERS_HOVER_HOURS of another
    of its kind on the same deal is moved later, never dropped.
    """
    hover = timedelta(hours=settings.REMINDERS_HOVER_HOURS)
    earliest = min(c.due_at for c in candidates) - hover
    taken: dict[tuple, list[datetime]] = defaultdict(list)
    existing = (
        Reminder.objects.filter(
            deal_id__in={c.deal_id for c in candidates},
            kind__in={c.kind for c in candidates},
            due_at__gt=earliest,
        )
        .exclude(state=ReminderState.CANCELLED)
        .values_list("deal_id", "kind", "owner_id", "queue", "occurrence", "due_at")
    )
    known = set()
    for deal_id, kind, owner_id, queue, occurrence, due_at in existing:
        taken[(deal_id, kind, owner_id, queue)].append(due_at)
        known.add((deal_id, kind, occurrence))
    for candidate in sorted(candidates, key=lambda c: c.due_at):
        key = (candidate.deal_id, candidate.kind, candidate.owner_id, candidate.queue)
        if (candidate.deal_id, candidate.kind, candidate.occurrence) in known:
            continue  # already there: the insert will skip it
        moved = True
        while moved:
            moved = False
            for other in taken[key]:
                if abs(candidate.due_at - other) < hover:
                    candidate.due_at = other + hover
                    moved = True
        taken[key].append(candidate.due_at)


def reminders_resolve_gone(
    *, now: datetime, deal_ids: list[int] | None = None, actor_id: int | None = None
) -> int:
    """Resolve the open reminders whose cause is gone, saying what resolved them.

    One SELECT asks every rule at once (a CASE over kind and cause) which open
    reminders are gone; only those are then updated, grouped by what resolved
    them, each UPDATE a compare-and-set on the reminder still being open.
    """
    outcomes = [gone for rule in rules() for gone in gone_for(rule)]
    kinds = [rule.kind for rule in rules() for _ in gone_for(rule)]
    whens = [
        When(Q(kind=kind) & Q(gone.when()), then=Value(index))
        for index, (kind, gone) in enumerate(zip(kinds, outcomes, strict=True))
    ]
    open_reminders = Reminder.objects.filter(state__in=OPEN_STATES)
    if deal_ids is not None:
        open_reminders = open_reminders.filter(deal_id__in=deal_ids)
    found = (
        open_reminders.annotate(gone=Case(*whens, default=None, output_field=IntegerField()))
        .filter(gone__isnull=False)
        .values_list("id", "gone")
    )
    by_outcome: dict[int, list[int]] = defaultdict(list)
    for reminder_id, index in found:
        by_outcome[index].append(reminder_id)
    resolved = 0
    for index, ids in by_outcome.items():
        gone = outcomes[index]
        resolved += Reminder.objects.filter(id__in=ids, state__in=OPEN_STATES).update(
            state=ReminderState.RESOLVED,
            resolution=gone.resolution,
            resolved_by_id=gone.by() if gone.by is not None else actor_id,
            closed_at=now,
            updated_at=now,
        )
    return resolved


def reminders_mark_due(*, now: datetime, deal_ids: list[int] | None = None) -> int:
    """Mark due the reminders whose time (or whose snooze) has come.

    Rows are claimed in batches: ``select_for_update(skip_locked=True)`` on
    PostgreSQL, so two workers share the work instead of waiting on each
    other; elsewhere the UPDATE's own ``WHERE state = …`` is the compare-and-set.
    """
    marked = 0
    ripe = [
        condition
        for condition, earliest in (
            (Q(state=ReminderState.SCHEDULED, due_at__lte=now), "due_at"),
            (Q(state=ReminderState.SNOOZED, snoozed_until__lte=now), "snoozed_until"),
        )
        # Each reads the first entry of its own partial index (ordered, so the
        # planner cannot prefer a table scan); most scans stop here.
        if Reminder.objects.filter(condition).order_by(earliest).values("pk")[:1]
    ]
    if not ripe:
        return 0
    condition = ripe[0] if len(ripe) == 1 else ripe[0] | ripe[1]
    skip_locked = connection.features.has_select_for_update_skip_locked
    while True:
        with transaction.atomic():
            claim = Reminder.objects.filter(condition).order_by()
            if deal_ids is not None:
                claim = claim.filter(deal_id__in=deal_ids)
            if skip_locked:
                claim = claim.select_for_update(skip_locked=True)
            ids = list(claim.values_list("id", flat=True)[:CLAIM_BATCH])
            if ids:
                marked += (
                    Reminder.objects.filter(condition, id__in=ids)
                    .order_by()
                    .update(state=ReminderState.DUE, updated_at=now)
                )
        if len(ids) < CLAIM_BATCH:
            return marked


SCAN_MARK = "scan:last"


def reminders_scan_mark(*, now: datetime) -> datetime | None:
    """Record that a scan runs now; return when the previous one ran (None: never).

    Kept in the ReminderDigest table under a recipient no person has, so
    every worker process sees the same "last scan" time.
    """
    ReminderDigest.objects.bulk_create([ReminderDigest(recipient=SCAN_MARK)], ignore_conflicts=True)
    mark = ReminderDigest.objects.filter(recipient=SCAN_MARK)
    previous = mark.values_list("last_sent_at", flat=True).first()
    mark.update(last_sent_at=now)
    return previous


# --- the email digest ----------------------------------------------------------------


def recipient_of(reminder_owner_id: int | None, queue: str) -> str:
    return f"user:{reminder_owner_id}" if reminder_owner_id else f"queue:{queue}"


def _recipient_filter(recipient: str) -> Q:
    kind, _, key = recipient.partition(":")
    if kind == "user":
        return Q(owner_id=int(key))
    return Q(owner__isnull=True, queue=key)


def reminders_pending_recipients(*, now: datetime | None = None) -> list[str]:
    """Recipients with due reminders not yet emailed, whose digest may go now."""
    now = now or timezone.now()
    pending = (
        Reminder.objects.filter(state=ReminderState.DUE, notified_at__isnull=True)
        .order_by()
        .values_list("owner_id", "queue")
        .distinct()
    )
    recipients = {recipient_of(owner_id, queue) for owner_id, queue in pending}
    if not recipients:
        return []
    interval = timedelta(minutes=settings.REMINDERS_DIGEST_MINUTES)
    waiting = ReminderDigest.objects.filter(recipient__in=recipients).filter(
        Q(last_sent_at__gt=now - interval) | Q(retry_at__gt=now)
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
    ReminderDigest row is claimed with a compare-and-set on ``last_sent_at``,
    so two workers handed the same recipient send one email. A mail server
    that refuses is retried later with a growing back-off. A worker killed
    between sending and recording may send one digest twice; never zero.
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
    claimed = (
        ReminderDigest.objects.filter(pk=digest.pk, last_sent_at=digest.last_sent_at)
        .filter(Q(last_sent_at__isnull=True) | Q(last_sent_at__lte=now - interval))
        .filter(Q(retry_at__isnull=True) | Q(retry_at__lte=now))
        .update(last_sent_at=now)
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
            last_sent_at=digest.last_sent_at,
            failures=failures,
            retry_at=now + backoff,
            last_error=f"{exc.__class__.__name__}: {exc}"[:300],
        )
        logger.warning("Reminder digest to %s failed (%s); retry in %s", recipient, exc, backoff)
        return 0
    Reminder.objects.filter(id__in=[r.id for r in reminders], notified_at__isnull=True).update(
        notified_at=now
    )
    ReminderDigest.objects.filter(pk=digest.pk).update(failures=0, retry_at=None, last_error="")
    return len(reminders)


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


# --- what people do with a reminder -----------------------------------------------------


def reminder_done(*, reminder: Reminder, user: User, now: datetime | None = None) -> Reminder:
    """Mark an open reminder done by ``user``; ReminderClosed if it closed meanwhile."""
    now = now or timezone.now()
    updated = Reminder.objects.filter(pk=reminder.pk, state__in=OPEN_STATES).update(
        state=ReminderState.DONE,
        resolved_by=user,
        resolution=f"Done by {user}.",
        closed_at=now,
        updated_at=now,
    )
    reminder.refresh_from_db()
    if not updated:
        raise ReminderClosed(reminder.resolution or "This reminder was already closed.")
    return reminder


def reminders_hand_over(*, leaver: User, successor: User, at: datetime) -> int:
    """A leaver's open reminders go to their successor with their deals (DOMAIN.md,
    "a leaver"); their history stays theirs. Runs inside ``pipeline.team.user_deactivate``'s
    transaction (registered in ``RemindersConfig.ready``); returns how many moved."""
    return Reminder.objects.filter(owner=leaver, state__in=OPEN_STATES).update(
        owner=successor, updated_at=at
    )


def reminder_snooze(
    *, reminder: Reminder, user: User, until: datetime, now: datetime | None = None
) -> Reminder:
    """Hide an open reminder until ``until``; it falls due again then (never re-created)."""
    now = now or timezone.now()
    if until <= now:
        raise ValueError("Snooze until a time in the future.")
    updated = Reminder.objects.filter(pk=reminder.pk, state__in=OPEN_STATES).update(
        state=ReminderState.SNOOZED,
        snoozed_until=until,
        resolved_by=user,
        updated_at=now,
    )
    reminder.refresh_from_db()
    if not updated:
        raise ReminderClosed(reminder.resolution or "This reminder was already closed.")
    return reminder


def snooze_choices(user: User, now: datetime | None = None) -> dict[str, datetime]:
    """The one-click snoozes: an hour from now, tomorrow morning in the user's zone."""
    now = now or timezone.now()
    zone = ZoneInfo(user.time_zone or settings.DEFAULT_USER_TIME_ZONE)
    tomorrow = now.astimezone(zone).date() + timedelta(days=1)
    return {
        "hour": now + timedelta(hours=1),
        "morning": datetime.combine(tomorrow, time(settings.REMINDERS_MORNING_HOUR), tzinfo=zone),
    }
