"""Business rules of reminders that write: the engine, done and snooze (the email
digest: ``reminders.digest``, its services importable from here too).

The engine decides a batch of deals at once (``reminders_evaluate``): their
facts are loaded in a few queries (``reminders.facts``), every rule decides
in Python, and the writes are one bulk insert, one UPDATE per way of being
resolved and one for what fell due. It is safe to run twice at once, to be
killed half-way and to run again after hours of downtime: creation is a
bulk insert that the database's uniqueness constraint de-duplicates, every
state change is a compare-and-set on the state it expects, and a rule only
creates what falls within a bounded window of time, so a catch-up makes one
reminder per kind and occurrence, not one per missed minute.

What wakes it: the outbox of changed deals (``pipeline.events``), drained in
batches (``reminders_drain``), and beat's scan (``reminders_scan``) for what
falls due by time alone.
"""

import logging
from collections import defaultdict
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from pipeline.compiled import bulk_insert
from pipeline.events import deal_changes_claim, deal_changes_done
from pipeline.models import User
from reminders.digest import (  # noqa: F401 - the digest's services, importable from here
    recipient_of,
    reminders_pending_recipients,
    reminders_send_digest,
    reminders_send_digests,
)
from reminders.facts import load_facts
from reminders.models import (
    OPEN_STATES,
    Job,
    Reminder,
    ReminderDigest,
    ReminderState,
)
from reminders.rules import ended_for, gone_for, owner_of, rules
from reminders.rules.base import Facts, Known, Rule, Window
from reminders.schedule import schedules_due, schedules_hold, schedules_wake, schedules_write

logger = logging.getLogger(__name__)

CLAIM_BATCH = 1000


class ReminderClosed(Exception):
    """The reminder is no longer open (someone, or the scan, closed it first)."""


@dataclass
class ScanResult:
    created: int = 0
    due: int = 0
    resolved: int = 0
    deals: int = 0
    skipped: str = ""

    def add(self, other: "ScanResult") -> None:
        self.created += other.created
        self.due += other.due
        self.resolved += other.resolved
        self.deals += other.deals

    def as_dict(self) -> dict:
        done = {"deals": self.deals, "created": self.created, "due": self.due}
        done["resolved"] = self.resolved
        if self.skipped:
            done["skipped"] = self.skipped
        return done


# --- the engine ---------------------------------------------------------------------


@dataclass
class _Decision:
    create: list[Reminder] = field(default_factory=list)
    resolve: dict[tuple[str, int | None], list[int]] = field(
        default_factory=lambda: defaultdict(list)
    )
    due: list[int] = field(default_factory=list)
    next_at: dict[int, datetime | None] = field(default_factory=dict)


def _ripe(known: Known, now: datetime) -> bool:
    if known.state == ReminderState.SCHEDULED:
        return known.due_at <= now
    return known.state == ReminderState.SNOOZED and known.snoozed_until <= now


def _decide(
    f: Facts,
    window: Window,
    *,
    all_rules: list[Rule],
    actor_id: int | None,
    decision: _Decision,
) -> None:
    """What one deal's reminders need: new ones, resolved ones, due ones; and the
    deal's next moment, the earliest one at which a rule could change its mind."""
    now = f.now = window.now
    existing = {(k.kind, k.occurrence) for k in f.reminders}
    resolved: set[int] = set()
    new: list[tuple[Rule, Reminder]] = []
    moments: list[datetime] = []
    for rule in all_rules:
        if ended_for(rule, f):
            # Each of its wants would be gone already: no reminder, no moment (a lost
            # deal's queued audit does not wake it when the call window closes).
            continue
        moments.extend(rule.next_moments(f, window))
        for want in rule.wants(f, window):
            if (rule.kind, want.occ) in existing:
                continue
            due_at = max(want.due, now) if rule.not_due_before_created else want.due
            if not window.holds(want.at or want.due) or due_at > window.horizon:
                if (comes := rule.comes_at(want, window)) is not None:
                    moments.append(comes)
                continue
            owner_id, queue = owner_of(rule, f)
            if _gone_already(
                rule, f, Known(0, rule.kind, want.occ, owner_id, queue, "", due_at, None)
            ):
                continue  # e.g. a check-in whose touch came first: a decision is final
            existing.add((rule.kind, want.occ))
            reminder = Reminder(
                deal_id=f.pk,
                kind=rule.kind,
                occurrence=want.occ,
                owner_id=owner_id,
                queue=queue,
                why=want.words[:300],
                due_at=due_at,
                created_at=now,
                updated_at=now,
            )
            new.append((rule, reminder))
    decision.next_at[f.pk] = min((m for m in moments if m > now), default=None)
    _hover(f, new, now)
    for _rule, reminder in new:
        if reminder.due_at <= now:
            reminder.state = ReminderState.DUE
        decision.create.append(reminder)
    for known in f.reminders:
        if known.state not in OPEN_STATES:
            continue
        for rule in all_rules:
            if rule.kind != known.kind or not rule.owns(known.occurrence):
                continue
            for gone in gone_for(rule):
                if gone.when(f, known):
                    by = gone.by(f) if gone.by is not None else actor_id
                    words = gone.resolution
                    if callable(words):
                        words = words(f, known)
                    decision.resolve[(words[:300], by)].append(known.id)
                    resolved.add(known.id)
                    break
            break
        if known.id not in resolved and _ripe(known, now):
            decision.due.append(known.id)


def _gone_already(rule: Rule, f: Facts, candidate: Known) -> bool:
    return any(gone.when(f, candidate) for gone in gone_for(rule))


def _hover(f: Facts, new: list[tuple[Rule, Reminder]], now: datetime) -> None:
    """Hover, don't smother: at most one reminder of a kind per deal per day (per person).

    A new reminder that would fall due within REMINDERS_HOVER_HOURS of another
    of its kind on the same deal is moved later, never dropped. Rules whose
    news is "at once" (a bounce, a dispute) do not hover.
    """
    hovering = [(rule, r) for rule, r in new if rule.hovers]
    if not hovering:
        return
    hover = timedelta(hours=settings.REMINDERS_HOVER_HOURS)
    taken: dict[tuple, list[datetime]] = defaultdict(list)
    for k in f.reminders:
        if k.state != ReminderState.CANCELLED:
            taken[(k.kind, k.owner_id, k.queue)].append(k.due_at)
    for _rule, candidate in sorted(hovering, key=lambda pair: pair[1].due_at):
        key = (candidate.kind, candidate.owner_id, candidate.queue)
        moved = True
        while moved:
            moved = False
            for other in taken[key]:
                if abs(candidate.due_at - other) < hover:
                    candidate.due_at = other + hover
                    moved = True
        taken[key].append(candidate.due_at)


def reminders_evaluate(
    deal_ids: Iterable[int],
    *,
    now: datetime | None = None,
    window: Window | None = None,
    actors: dict[int, int | None] | None = None,
    actor_id: int | None = None,
    batch: int | None = None,
    on_batch=None,
) -> ScanResult:
    """Bring these deals' reminders up to date: create, resolve, mark due, and
    record each deal's next moment (``reminders.schedule``).

    ``actors`` (or one ``actor_id`` for all) names whose action changed each
    deal: recorded on the reminders it resolves when the rule names nobody
    better. Deals are decided ``batch`` at a time (REMINDERS_BATCH), each batch
    in one transaction of a fixed number of queries.
    """
    now = now or timezone.now()
    window = window or Window(now)
    ids = sorted(set(deal_ids))
    size = batch or settings.REMINDERS_BATCH
    all_rules = list(rules())  # read once: the ladder's rungs come from settings
    result = ScanResult()
    for start in range(0, len(ids), size):
        part = ids[start : start + size]
        # Inside a caller's transaction the batch is part of it (no savepoint:
        # nothing here goes on after a failed batch).
        with transaction.atomic(savepoint=False):
            held = schedules_hold(part)
            facts = load_facts(part)
            decision = _Decision()
            for f in facts.values():
                actor = (actors or {}).get(f.pk, actor_id)
                _decide(f, window, all_rules=all_rules, actor_id=actor, decision=decision)
            result.add(_apply(decision, now))
            schedules_write(decision.next_at, held)
            result.deals += len(facts)
        if on_batch is not None:
            on_batch()
    return result


def _apply(decision: _Decision, now: datetime) -> ScanResult:
    result = ScanResult()
    if decision.create:
        # Never twice: a reminder that exists already is skipped (its unique occurrence).
        bulk_insert(Reminder, decision.create)
        result.created = len(decision.create)
        result.due = sum(1 for r in decision.create if r.state == ReminderState.DUE)
    for (resolution, by), ids in decision.resolve.items():
        result.resolved += Reminder.objects.filter(id__in=ids, state__in=OPEN_STATES).update(
            state=ReminderState.RESOLVED,
            resolution=resolution,
            resolved_by_id=by,
            closed_at=now,
            updated_at=now,
        )
    if decision.due:
        result.due += (
            Reminder.objects.filter(_RIPE(now), id__in=decision.due)
            .order_by()
            .update(state=ReminderState.DUE, updated_at=now)
        )
    return result


def _RIPE(now: datetime) -> Q:  # noqa: N802 - a condition, read like a constant
    return Q(state=ReminderState.SCHEDULED, due_at__lte=now) | Q(
        state=ReminderState.SNOOZED, snoozed_until__lte=now
    )


def reminders_scan(
    *,
    now: datetime | None = None,
    deal_ids: list[int] | None = None,
    actor_id: int | None = None,
    sweep: bool = True,
    on_batch=None,
) -> ScanResult:
    """Apply every rule where time calls for it: create, resolve, mark due.

    ``deal_ids`` limits the work to some deals (their whole catch-up window).
    The minute's scan (``sweep=False``, what beat runs) decides the deals
    whose next moment came (``reminders.schedule``), a batch at a time, over
    the whole catch-up window: it costs one index probe when nothing is due,
    and after an outage every moment missed is simply due. Changes to deals
    are not its business: the outbox (``reminders_drain``) brings those.

    ``sweep`` (the default; never run by beat) first makes every deal due:
    the whole picture decided anew, as after a data fix in SQL
    (``manage.py reminders_schedule --all``).
    """
    now = now or timezone.now()
    if deal_ids is not None:
        return reminders_evaluate(deal_ids, now=now, actor_id=actor_id, on_batch=on_batch)
    if sweep:
        schedules_wake(now=now)
    result = _scan_due(Window(now), actor_id=actor_id, on_batch=on_batch)
    result.due += reminders_mark_due(now=now)
    return result


def _scan_due(window: Window, *, actor_id: int | None, on_batch) -> ScanResult:
    """Decide the deals whose next moment came, a batch at a time, until none is left.

    Each decision moves the deal's moment past this scan's now (or clears
    it), and a moment set meanwhile by a writer is later than this scan's now
    too, so every batch reads new deals: the loop ends."""
    result, last = ScanResult(), None
    while ids := schedules_due(window.now, limit=settings.REMINDERS_BATCH):
        if ids == last:  # the clock moved back under us: leave them to the next scan
            return result
        last = ids
        result.add(
            reminders_evaluate(
                ids, now=window.now, window=window, actor_id=actor_id, batch=len(ids)
            )
        )
        if on_batch is not None:
            on_batch()
        if len(ids) < settings.REMINDERS_BATCH:
            # The range held no more: asking again costs a query every minute for
            # nothing. A moment a writer sets meanwhile at or before this now (a
            # wake) is the next minute's scan's.
            return result
    return result


# --- the outbox: deals that changed -----------------------------------------------------


def reminders_drain(*, now: datetime | None = None, on_batch=None) -> ScanResult:
    """Bring the reminders of every changed deal up to date, a batch at a time.

    Claims the outbox's rows (``pipeline.events.deal_changes_claim``, a lease
    a killed worker lets go of), decides the batch, and lets go of each row
    unless its deal changed again meanwhile; loops until the outbox is empty.
    """
    result = ScanResult()
    lease = timedelta(seconds=settings.REMINDERS_LEASE_SECONDS)
    while True:
        claimed = deal_changes_claim(limit=settings.REMINDERS_BATCH, lease=lease)
        if not claimed:
            return result
        result.add(
            reminders_evaluate(
                [c.deal_id for c in claimed],
                now=now,
                actors={c.deal_id: c.actor_id for c in claimed},
                batch=len(claimed),
            )
        )
        deal_changes_done(claimed)
        if on_batch is not None:
            on_batch()


# --- single flight --------------------------------------------------------------------


def job_start(name: str, *, now: datetime | None = None) -> bool:
    """Take the job's lease; False if another worker holds it (it runs now)."""
    now = now or timezone.now()
    lease = timedelta(seconds=settings.REMINDERS_LEASE_SECONDS)
    Job.objects.bulk_create([Job(name=name)], ignore_conflicts=True)
    return bool(
        Job.objects.filter(name=name)
        .filter(Q(running_until__isnull=True) | Q(running_until__lt=now))
        .update(running_until=now + lease, last_started_at=now)
    )


def job_renew(name: str) -> None:
    """Still running: push the lease on (called between batches)."""
    lease = timedelta(seconds=settings.REMINDERS_LEASE_SECONDS)
    Job.objects.filter(name=name).update(running_until=timezone.now() + lease)


def job_finish(name: str, result: dict) -> None:
    Job.objects.filter(name=name).update(
        running_until=None, last_finished_at=timezone.now(), last_result=result
    )


@dataclass
class JobRun:
    """A job this worker holds: ``renew`` between batches, ``result`` recorded at the end."""

    name: str
    result: dict = field(default_factory=dict)

    def renew(self) -> None:
        job_renew(self.name)


@contextmanager
def job_run(name: str):
    """Hold the job while the block runs, or yield None if another worker holds it.

    The lease is let go of, and ``result`` recorded, however the block ends."""
    if not job_start(name):
        yield None
        return
    run = JobRun(name)
    try:
        yield run
    finally:
        job_finish(name, run.result)


def job_mark_queued(name: str, *, now: datetime | None = None) -> bool:
    """Claim the right to queue the job: True if no message for it is in the broker
    (or the last one is older than the lease: lost with a broker, say)."""
    now = now or timezone.now()
    lease = timedelta(seconds=settings.REMINDERS_LEASE_SECONDS)
    Job.objects.bulk_create([Job(name=name)], ignore_conflicts=True)
    return bool(
        Job.objects.filter(name=name)
        .filter(Q(queued_until__isnull=True) | Q(queued_until__lt=now))
        .update(queued_until=now + lease)
    )


def job_unmark_queued(name: str) -> None:
    """Its message was taken (or could not be sent): the next event may queue one."""
    Job.objects.filter(name=name).update(queued_until=None)


def reminders_mark_due(*, now: datetime, deal_ids: list[int] | None = None) -> int:
    """Mark due the reminders whose time (or whose snooze) has come.

    Rows are claimed in batches: ``select_for_update(skip_locked=True)`` on
    PostgreSQL, so two workers share the work instead of waiting on each
    other; elsewhere the UPDATE's own ``WHERE state = …`` is the compare-and-set.
    """
    marked = 0
    skip_locked = connection.features.has_select_for_update_skip_locked
    claims = [
        (Q(state=ReminderState.SCHEDULED, due_at__lte=now), "due_at"),
        (Q(state=ReminderState.SNOOZED, snoozed_until__lte=now), "snoozed_until"),
    ]
    # Each claim reads its own partial index in its own order: the LIMIT stops
    # the range scan at the last ripe entry. Unordered, a planner whose
    # statistics are stale (a backfill just made thousands due) may prefer
    # reading the whole table for a handful of rows.
    ripes = [
        Reminder.objects.filter(condition).order_by(earliest) for condition, earliest in claims
    ]
    for (condition, _earliest), ripe, found in zip(
        claims, ripes, _first_entries(ripes), strict=True
    ):
        # Nothing ripe in its index: no transaction, no claim (most scans stop here).
        if not found:
            continue
        if deal_ids is not None:
            ripe = ripe.filter(deal_id__in=deal_ids)
        while True:
            with transaction.atomic():
                claim = ripe.select_for_update(skip_locked=True) if skip_locked else ripe
                ids = list(claim.values_list("id", flat=True)[:CLAIM_BATCH])
                if ids:
                    marked += (
                        Reminder.objects.filter(condition, id__in=ids)
                        .order_by()
                        .update(state=ReminderState.DUE, updated_at=now)
                    )
            if len(ids) < CLAIM_BATCH:
                break
    return marked


def _first_entries(ripes: list) -> tuple[bool, ...]:
    """Whether each ripe range holds an entry: each index's first entry, all in one query."""
    # Scalar subqueries, not EXISTS: EXISTS drops the ORDER BY … LIMIT 1 that keeps
    # PostgreSQL reading the partial index from its start (measured: 244 ms a probe).
    probes = [ripe.values("pk")[:1].query.sql_with_params() for ripe in ripes]
    sql = "SELECT " + ", ".join(f"({probe})" for probe, _params in probes)
    with connection.cursor() as cursor:
        cursor.execute(sql, [param for _probe, params in probes for param in params])
        return tuple(first is not None for first in cursor.fetchone())


SCAN_MARK = "scan:last"


def reminders_last_scan() -> datetime | None:
    """When the last scan that ran to its end started (None: never)."""
    return (
        ReminderDigest.objects.filter(recipient=SCAN_MARK)
        .values_list("last_sent_at", flat=True)
        .first()
    )


def reminders_scan_mark(*, now: datetime) -> datetime | None:
    """Record that a scan started at ``now`` ran to its end; return the previous mark.

    Kept in the ReminderDigest table under a recipient no person has, so
    every worker process sees the same "last scan" time. Written at the end:
    a scan killed half-way leaves the mark where it was, so the next scan
    still sees the gap and sweeps.
    """
    ReminderDigest.objects.bulk_create([ReminderDigest(recipient=SCAN_MARK)], ignore_conflicts=True)
    mark = ReminderDigest.objects.filter(recipient=SCAN_MARK)
    previous = mark.values_list("last_sent_at", flat=True).first()
    mark.update(last_sent_at=now)
    return previous


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


# A snooze is for a while, not for ever: the page and the API refuse later times.
SNOOZE_AT_MOST = timedelta(days=366)
SNOOZE_REFUSED = "Pick a time in the future (within a year) to snooze until."


def snooze_until(user: User, choice: str, now: datetime | None = None) -> datetime | None:
    """The time a snooze ``choice`` means: "hour" or "morning" (``snooze_choices``), or
    a date-time (ISO 8601; in the user's zone when it names none) in the future and
    within ``SNOOZE_AT_MOST``. None for anything else (``SNOOZE_REFUSED`` says why)."""
    now = now or timezone.now()
    choices = snooze_choices(user, now)
    if choice in choices:
        return choices[choice]
    try:
        picked = datetime.fromisoformat(choice)
    except ValueError:
        return None
    if picked.tzinfo is None:
        picked = picked.replace(tzinfo=ZoneInfo(user.time_zone or settings.DEFAULT_USER_TIME_ZONE))
    return picked if now < picked <= now + SNOOZE_AT_MOST else None
