"""Every change on the record: who, when, which field, before and after (issue 20, §2).

The history of deals, customers and people (their roles and team) is kept by
django-simple-history: one history table per model, a row per save with the
whole row as it was then. Each row also says, in ``history_changes``, which
fields changed from the row before, and their values before and after, so a
timeline or the Activity page reads one row per change without comparing rows.
billing registers its payments and invoices the same way (billing/history.py).

**Who.** ``history_user`` is the person: the one signed in for a request
(simple-history's ``HistoryRequestMiddleware``), or the one named by
``acting_as(person)`` around a service call made on their behalf. No person
means **the system** (a Celery task, the payment processor's webhook, the
customer's own link). ``history_via`` says through what the person acted, when
it was not the web pages: **the hook for API tokens** is ``acting_via(label)``
(a context manager) or ``set_acting_via(label)`` (for the code that
authenticates a token: call it once the request's user is the token's person,
e.g. ``set_acting_via(f"API token {token.name}")``); the token's requests are
then recorded as "Riley via API token CRM sync". It is a contextvar: each
request or task sees its own.

**Masked.** The historical models copy the fields' classes (``MaskedCharField``
stays one), and the extra columns here are masked too, so no card number a
field would mask reaches the history tables (pipeline/masking.py).

**``QuerySet.update()``** bypasses ``save()`` and so the history; the
compare-and-set writes that matter (a deal's stage moves and money copies, a
payment's status, a void, a standing) call ``history_record_update`` right
after their UPDATE, in the same transaction.
"""

import contextvars
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal

from django.db import models
from django.db.models.signals import m2m_changed
from django.dispatch import receiver
from simple_history.manager import HistoryDescriptor
from simple_history.models import HistoricalRecords
from simple_history.signals import pre_create_historical_record

from pipeline.masking import MaskedCharField, MaskedJSONField, MaskedTextField

_acting_person: contextvars.ContextVar = contextvars.ContextVar("history_person", default=None)
_acting_via: contextvars.ContextVar = contextvars.ContextVar("history_via", default="")

# Columns that change on every write and say nothing a reader needs.
# A person's columns that are not about who they are, their roles or team.
USER_UNTRACKED = ["password", "last_login", "session_epoch", "date_joined"]
NOISE = frozenset({"version", "updated_at", "id"})

SYSTEM = "Cleared (the system)"


@contextmanager
def acting_as(person) -> Iterator[None]:
    """Record the changes made inside as made by ``person`` (a service run for them)."""
    token = _acting_person.set(person)
    try:
        yield
    finally:
        _acting_person.reset(token)


@contextmanager
def acting_via(label: str) -> Iterator[None]:
    """Record the changes made inside as made through ``label`` ("API token CRM sync")."""
    token = _acting_via.set(label)
    try:
        yield
    finally:
        _acting_via.reset(token)


def set_acting_via(label: str) -> None:
    """The API-token hook for the rest of this request or task (see the module's docstring)."""
    _acting_via.set(label)


def current_via() -> str:
    return _acting_via.get()


def _history_user(instance=None, request=None, **kwargs):
    person = _acting_person.get()
    if person is not None:
        return person
    if request is not None and request.user.is_authenticated:
        return request.user
    return None  # the system


class HistoryMeta(models.Model):
    """The columns every history row has besides the tracked row's copy."""

    history_via = MaskedCharField(max_length=120, blank=True, default="")
    # [[field, before, after], ...] against the row before; empty on creation.
    history_changes = MaskedJSONField(default=list, blank=True)
    # ",amount,title," for the Activity page's field filter (a LIKE, no JSON query).
    history_fields = MaskedCharField(max_length=400, blank=True, default="")

    class Meta:
        abstract = True


class UserHistoryMeta(HistoryMeta):
    """A person's roles (their groups) are a many-to-many: a copy in words here."""

    roles = MaskedCharField(max_length=200, blank=True, default="")

    class Meta:
        abstract = True


def _as_text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    return str(value)


def _snapshot_names(history_model) -> list[tuple[str, str]]:
    """(field name, attname) of what a history row copies, noise left out."""
    names = [(f.name, f.attname) for f in history_model.tracked_fields if f.name not in NOISE]
    if any(f.name == "roles" for f in history_model._meta.fields):
        names.append(("roles", "roles"))
    return names


class ChangeHistory(HistoricalRecords):
    """HistoricalRecords that writes a row only when something worth reading changed.

    A save with ``update_fields`` that names no tracked field (a login's
    ``last_login``) and a save that changes nothing but the version leave no row.
    """

    def post_save(self, instance, created, using=None, update_fields=None, **kwargs):
        if update_fields is not None and not created:
            tracked = {f.name for f in self.fields_included(instance)} | {
                f.attname for f in self.fields_included(instance)
            }
            if not set(update_fields) & tracked:
                return
        super().post_save(instance, created, using=using, **kwargs)

    def create_historical_record(self, instance, history_type, using=None):
        history_model = getattr(type(instance), self.manager_name).model
        # A creation has nothing before it to compare with: no query for it
        # (an import of 200 deals creates 400 rows).
        previous = None
        if history_type == "~":
            previous = (
                history_model.objects.filter(**{instance._meta.pk.attname: instance.pk})
                .order_by("-history_date", "-history_id")
                .first()
            )
        current = _current_values(history_model, instance)
        changes = []
        if previous is not None:
            changes = [
                [name, _as_text(getattr(previous, attname)), current[name]]
                for name, attname in _snapshot_names(history_model)
                if _as_text(getattr(previous, attname)) != current[name]
            ]
            if not changes:
                return
        instance._history_changes = changes
        instance._history_roles = current.get("roles", "")
        super().create_historical_record(instance, history_type, using=using)


def _current_values(history_model, instance) -> dict:
    values = {}
    for name, attname in _snapshot_names(history_model):
        if name == "roles":
            values[name] = ",".join(sorted(instance.groups.values_list("name", flat=True)))
        else:
            values[name] = _as_text(getattr(instance, attname))
    return values


@receiver(pre_create_historical_record)
def _fill_history_meta(sender, instance, history_instance, **kwargs):
    if not isinstance(history_instance, HistoryMeta):
        return
    changes = getattr(instance, "_history_changes", [])
    history_instance.history_via = current_via()
    history_instance.history_changes = changes
    history_instance.history_fields = "," + ",".join(c[0] for c in changes) + "," if changes else ""
    if isinstance(history_instance, UserHistoryMeta):
        history_instance.roles = getattr(instance, "_history_roles", "")


_records: dict = {}


class _HistoryDescriptor(HistoryDescriptor):
    """simple_history's ``model.history``, its manager class made once: the
    library's builds a new class (``from_queryset``) at every access, about half
    a millisecond, paid twice by every history row written."""

    def __init__(self, descriptor: HistoryDescriptor):
        super().__init__(descriptor.model, descriptor.manager_class, descriptor.queryset_class)
        self.manager_with_queryset = self.manager_class.from_queryset(self.queryset_class)

    def __get__(self, instance, owner):
        return self.manager_with_queryset(self.model, instance)


def track(model, *, excluded_fields: Iterable[str] = (), bases=(HistoryMeta,)) -> None:
    """Keep ``model``'s change history (called once, from the app's models module).

    ``simple_history.register`` as it is, keeping the records object: the
    ``.update()`` paths write through it (``history_record_update``).
    """
    records = ChangeHistory(
        bases=bases,
        excluded_fields=list(excluded_fields),
        get_user=_history_user,
        history_change_reason_field=MaskedTextField(null=True),
    )
    records.manager_name = "history"
    records.table_name = None
    records.module = model.__module__
    records.cls = model
    records.add_extra_methods(model)
    records.finalize(model)
    model.history = _HistoryDescriptor(model.__dict__["history"])
    _records[model] = records


def history_record_update(model, pks: Iterable[int]) -> None:
    """Record rows just changed by ``QuerySet.update()`` (which skips ``save()``).

    Reads them back (so the history holds what the database holds, masked)
    and writes a history row for each that changed, with the current person
    or the system as who.
    """
    records = _records[model]
    for row in models.QuerySet(model).filter(pk__in=list(pks)):
        records.create_historical_record(row, "~")


@receiver(m2m_changed)
def _roles_changed(sender, instance, action, reverse, **kwargs):
    # A person's groups are their roles: a change of them is a change of the person.
    if action not in ("post_add", "post_remove", "post_clear") or reverse:
        return
    records = _records.get(type(instance))
    groups = getattr(type(instance), "groups", None)
    if records is not None and groups is not None and sender is groups.through:
        records.create_historical_record(instance, "~")


def tracked_models() -> list:
    """The models whose history is kept, in the order they were registered."""
    return list(_records)
