"""Pages served from cache that are never stale: stamps, and who sees what.

The rep's home, the manager's home and the board's totals are read far more
often than what they show changes (the reminders panel alone polls every few
seconds from every open tab). They are cached, keyed by *stamps*:

- Every user has a stamp (``Stamp``, a random token). It changes whenever
  something that user sees on a home page, or counts in a team's totals,
  changes: one of their deals, a customer of those deals, a payment on them,
  their commission, a reminder they see or the deal it is about, or the user
  row itself.
- A cached part is stored under the stamps it depends on, with the day and
  whatever else it varies on. A change moves the stamp, so the next request
  misses and rebuilds. Nothing has to find and delete old entries: nobody
  asks for them again, and they expire.
- What changes as time passes, with no write at all (a reminder falling due
  at 14:00, a deal aging into the next bucket), is the entry's
  ``valid_until``: whoever builds an entry says until when it holds.

Writes reach the stamps from the models themselves, so no service has to
remember: ``post_save`` and ``post_delete`` for single rows, and
``StampedQuerySet`` for ``update()`` (``bulk_update()`` writes through it)
and ``bulk_create()``. One transaction moves each stamp once.

Stamps move when the transaction commits (``on_commit``), outside the locks
the writer holds, so a stamp never makes two writers wait on each other. A
reader that fetched the old stamp may store what it read under the old key;
once the stamp has moved nobody asks for that key again. If a process dies
between its commit and the stamp update, the entry lives on for at most
``CLEARED_PAGE_CACHE_SECONDS``.
"""

import functools
import hashlib
import math
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import models, transaction
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.utils import timezone


class StampedQuerySet(models.QuerySet):
    """``update()`` and ``bulk_create()`` move the stamps of whoever sees the rows.

    ``save()`` and ``delete()`` are covered by signals; these two bypass them.
    (``bulk_update()`` writes through ``update()``.)
    """

    def update(self, **kwargs):
        scope = _Scope()
        watch = WATCHED[self.model._meta.label]
        rows = list(self.values_list("pk", *watch.columns))
        updated = super().update(**kwargs)
        if updated:
            # Who saw the rows before, and who sees them now: read again once
            # the UPDATE holds their locks, in case someone else gave a row
            # to another owner in between (a deal reassigned in the admin).
            after = self.model._base_manager.filter(pk__in=[row[0] for row in rows])
            for row in [*rows, *after.values_list("pk", *watch.columns)]:
                watch.add_row(scope, row[1:])
            scope.mark()
        return updated

    def bulk_create(self, objs, *args, **kwargs):
        objs = list(objs)
        created = super().bulk_create(objs, *args, **kwargs)
        scope = _Scope()
        watch = WATCHED[self.model._meta.label]
        for obj in objs:
            watch.add_row(scope, tuple(getattr(obj, column) for column in watch.columns))
        scope.mark()
        return created


# --- who sees a row --------------------------------------------------------------


@dataclass
class _Scope:
    """Whose stamps to move, by what is known at the time of the write."""

    users: set = field(default_factory=set)
    deals: set = field(default_factory=set)
    customers: set = field(default_factory=set)
    queues: set = field(default_factory=set)

    def update(self, other: "_Scope") -> None:
        self.users |= other.users
        self.deals |= other.deals
        self.customers |= other.customers
        self.queues |= other.queues

    def mark(self) -> None:
        stale(users=self.users, deals=self.deals, customers=self.customers, queues=self.queues)

    def user_ids(self) -> set[int]:
        """The users, resolved: the reps of the deals and customers, the members of the queues."""
        from pipeline.models import Deal, User
        from reminders.models import OPEN_STATES, Reminder
        from reminders.selectors import ROLE_QUEUES

        ids = {pk for pk in self.users if pk}
        queues = set(self.queues)
        deals = Deal.objects.none()
        if any(self.deals):
            deals = Deal.objects.filter(pk__in=[pk for pk in self.deals if pk])
        if any(self.customers):
            deals |= Deal.objects.filter(customer_id__in=[pk for pk in self.customers if pk])
        if any(self.deals) or any(self.customers):
            ids |= set(deals.order_by().values_list("rep_id", flat=True).distinct())
            # A reminder shows its deal's title and customer to its owner or
            # queue, who need not be the deal's rep (an escalation, an audit).
            for owner_id, queue in (
                Reminder.objects.filter(deal__in=deals.values("pk"), state__in=OPEN_STATES)
                .order_by()
                .values_list("owner_id", "queue")
                .distinct()
            ):
                ids.add(owner_id)
                queues.add(queue)
        ids.discard(None)
        roles = [role for role, queue in ROLE_QUEUES.items() if queue in queues]
        if roles:
            ids |= set(User.objects.filter(groups__name__in=roles).values_list("pk", flat=True))
        return ids


@dataclass(frozen=True)
class Watch:
    """For one model: the columns that say who sees a row, and what each means."""

    columns: tuple[str, ...]
    kinds: tuple[str, ...]  # "users", "deals", "customers" or "queues", per column

    def add_row(self, scope: _Scope, row: tuple) -> None:
        for kind, value in zip(self.kinds, row, strict=True):
            if value:
                getattr(scope, kind).add(value)


# What each watched model's rows are shown with. A deal: its rep's home and
# the team's totals, and the reminders on it. A customer: the cards and
# reminders of every deal for them. A payment:
# its deal's rep (money received, not cleared). A reminder: its owner, or
# everyone in its role queue. A user: their own pages (name, time zone).
WATCHED = {
    "pipeline.Deal": Watch(("rep_id", "id"), ("users", "deals")),
    "pipeline.Customer": Watch(("id",), ("customers",)),
    "billing.Payment": Watch(("deal_id",), ("deals",)),
    "billing.CommissionEntry": Watch(("rep_id",), ("users",)),
    "reminders.Reminder": Watch(("owner_id", "queue"), ("users", "queues")),
    "pipeline.User": Watch(("id",), ("users",)),
}


def _on_write(sender, instance, **kwargs) -> None:
    watch = WATCHED[sender._meta.label]
    scope = _Scope()
    watch.add_row(scope, tuple(getattr(instance, column) for column in watch.columns))
    # A deal given to another rep leaves the first rep's pipeline too.
    loaded = getattr(instance, "_loaded_rep_id", None)
    if loaded:
        scope.users.add(loaded)
    scope.mark()


def _on_roles_changed(sender, instance, action, pk_set, **kwargs) -> None:
    if not action.startswith("post_"):
        return
    from pipeline.models import User

    if isinstance(instance, User):
        stale(users=[instance.pk])
    else:  # a group's members were changed from the group's side
        stale(users=pk_set or [])


def connect_signals() -> None:
    """Called once from PipelineConfig.ready()."""
    from pipeline.models import User

    for label in WATCHED:
        post_save.connect(_on_write, sender=label, dispatch_uid=f"freshness-save-{label}")
        post_delete.connect(_on_write, sender=label, dispatch_uid=f"freshness-delete-{label}")
    m2m_changed.connect(
        _on_roles_changed, sender=User.groups.through, dispatch_uid="freshness-roles"
    )


# --- moving stamps -----------------------------------------------------------------


def stale(*, users=(), deals=(), customers=(), queues=()) -> None:
    """Say that what these users see has changed; their stamps move on commit.

    Many writes in one transaction (a payment cleared writes the payment, its
    event, the deal's cleared amount, the commission, the reminders) make one
    stamp update, after the commit.
    """
    scope = _Scope(set(users), set(deals), set(customers), set(queues))
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        # Already committed: move them now. Robust, like the on-commit path: a
        # write that succeeded is not turned into an error by its stamps.
        transaction.on_commit(functools.partial(_move_stamps, scope), robust=True)
        return
    pending = getattr(connection, "_cleared_stale", None)
    registered = pending is not None and any(
        getattr(func, "__self__", None) is pending for _, func, _ in connection.run_on_commit
    )
    if not registered:
        pending = _Pending()
        connection._cleared_stale = pending
        transaction.on_commit(pending.flush, robust=True)
    pending.scope.update(scope)


@dataclass
class _Pending:
    scope: _Scope = field(default_factory=_Scope)

    def flush(self) -> None:
        _move_stamps(self.scope)


def _move_stamps(scope: _Scope) -> None:
    from pipeline.models import Stamp

    ids = scope.user_ids()
    if ids:
        Stamp.move(ids)


# --- reading through the cache -------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    value: Any
    valid_until: datetime | None

    def holds(self, now: datetime) -> bool:
        return self.valid_until is None or now < self.valid_until


def cached(
    name: str,
    users: Iterable[int] | models.QuerySet,
    vary: tuple,
    build: Callable[[], tuple[Any, datetime | None]],
):
    """The value of ``build()``, from cache while the stamps of ``users`` (ids,
    or a queryset of users) have not moved.

    ``build`` returns the value and until when it holds as time passes (None:
    until the stamps move). One query reads the stamps; a hit costs nothing
    more. ``CLEARED_PAGE_CACHE_SECONDS = 0`` turns caching off.
    """
    ttl = settings.CLEARED_PAGE_CACHE_SECONDS
    if ttl <= 0:
        return build()[0]
    from pipeline.models import Stamp

    key = _key(name, sorted(Stamp.tokens(users).items()), vary)
    entry = cache.get(key)
    now = timezone.now()
    if entry is not None and entry.holds(now):
        return entry.value
    value, valid_until = build()
    cache.set(key, Entry(value, valid_until), _ttl(valid_until, now))
    return value


def cached_per_user(
    name: str,
    users: Iterable[int] | models.QuerySet,
    vary: tuple,
    build: Callable[[list[int]], tuple[dict[int, Any], datetime | None]],
) -> tuple[dict[int, Any], datetime | None]:
    """One value per user, each from cache while that user's stamp has not moved,
    and until when all of them hold.

    For sums over a team: after one rep's write only that rep's part is
    rebuilt. ``build(user_ids)`` returns a value for each of the ids it is
    given, and until when they hold.
    """
    from pipeline.models import Stamp

    tokens = Stamp.tokens(users)
    if settings.CLEARED_PAGE_CACHE_SECONDS <= 0:
        return build(sorted(tokens))
    keys = {pk: _key(name, [(pk, token)], vary) for pk, token in tokens.items()}
    found = cache.get_many(list(keys.values()))
    now = timezone.now()
    values, missing, holds = {}, [], []
    for pk, key in keys.items():
        entry = found.get(key)
        if entry is not None and entry.holds(now):
            values[pk] = entry.value
            holds.append(entry.valid_until)
        else:
            missing.append(pk)
    if missing:
        built, valid_until = build(sorted(missing))
        cache.set_many(
            {keys[pk]: Entry(built[pk], valid_until) for pk in missing},
            _ttl(valid_until, now),
        )
        values.update(built)
        holds.append(valid_until)
    return values, min((t for t in holds if t is not None), default=None)


def _key(name: str, tokens: list, vary: tuple) -> str:
    digest = hashlib.sha256(repr((release(), tokens, vary)).encode()).hexdigest()
    return f"cleared:{name}:{digest}"


@functools.cache
def release() -> str:
    """A fingerprint of this release's code, templates and static files' names:
    after a deploy, a shared cache never serves what the previous one rendered."""
    digest = hashlib.sha256()
    root = settings.BASE_DIR
    for folder in ("config", "pipeline", "billing", "audits", "templates"):
        for path in sorted((root / folder).rglob("*")):
            if path.suffix in {".py", ".html"} and path.is_file():
                digest.update(str(path.relative_to(root)).encode())
                digest.update(path.read_bytes())
    manifest = settings.STATIC_ROOT / "staticfiles.json"
    if manifest.is_file():
        digest.update(manifest.read_bytes())
    return digest.hexdigest()[:16]


def _ttl(valid_until: datetime | None, now: datetime) -> int:
    ttl = settings.CLEARED_PAGE_CACHE_SECONDS
    if valid_until is not None:
        ttl = min(ttl, max(1, math.ceil((valid_until - now).total_seconds())))
    return ttl


def new_token() -> str:
    return secrets.token_hex(8)
