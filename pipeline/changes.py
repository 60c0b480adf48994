"""Reading the record of changes (pipeline/history.py) the way people read it.

A history row becomes a ``Change``: who (a person, "via" what, or the
system), when, what (the object) and each field's before and after in words
(choices by their label, people and customers by name). Rows of a page are
read in a constant number of queries: the related names are fetched once per
model for the whole page (``describe``).
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.db import models
from django.utils import timezone
from django.utils.formats import date_format

from pipeline.history import SYSTEM, tracked_models
from pipeline.models import Customer, Deal, User

# What each tracked model is called on the Activity page's filter and in a change's line.
KIND_NAMES = {
    "deal": "Deal",
    "customer": "Customer",
    "user": "Person",
    "payment": "Payment",
    "invoice": "Invoice",
}


@dataclass
class FieldChange:
    name: str
    label: str
    before: str
    after: str


@dataclass
class Change:
    at: object
    person: object  # a User, or None for the system
    via: str
    kind: str  # "deal", "customer", ...
    object_id: int
    history_type: str  # "+" created, "~" changed, "-" deleted
    reason: str
    fields: list[FieldChange] = field(default_factory=list)
    object_label: str = ""
    object_url: str = ""

    @property
    def who(self) -> str:
        name = str(self.person) if self.person is not None else SYSTEM
        return f"{name} via {self.via}" if self.via else name

    @property
    def kind_label(self) -> str:
        return KIND_NAMES.get(self.kind, self.kind.capitalize())

    @property
    def label(self) -> str:
        return self.object_label or f"{self.kind_label} #{self.object_id}"

    @property
    def what(self) -> str:
        return {"+": "created", "-": "deleted"}.get(self.history_type, "changed")


def kind_of(model) -> str:
    return model._meta.model_name


def _display(model_field, raw: str | None, names: dict) -> str:
    if raw is None or raw == "":
        return "—"
    if model_field is None:
        return raw
    if model_field.choices:
        return str(dict(model_field.flatchoices).get(raw, raw))
    if model_field.is_relation:
        return names.get((model_field.related_model, raw), f"#{raw}")
    if isinstance(model_field, models.BooleanField):
        return "yes" if raw == "True" else "no"
    if isinstance(model_field, models.DateTimeField):
        try:  # kept as ISO text: shown as people read times, in their zone
            return date_format(timezone.localtime(datetime.fromisoformat(raw)), "D j M Y, H:i")
        except ValueError:
            return raw
    return raw


def _field(model, name: str):
    try:
        return model._meta.get_field(name)
    except Exception:  # "roles": a copy kept on the history row, not a column of the model
        return None


def _related_names(rows) -> dict:
    """{(related model, id as text): name} for every relation a page of changes names."""
    wanted = defaultdict(set)
    for row in rows:
        model = row.instance_type
        for name, before, after in row.history_changes:
            model_field = _field(model, name)
            if model_field is not None and model_field.is_relation:
                wanted[model_field.related_model].update(v for v in (before, after) if v)
        if model is Deal:  # a deal is named by its customer too (``_object_label``)
            wanted[Customer].add(str(row.customer_id))
    names = {}
    for related, ids in wanted.items():
        pks = [int(pk) for pk in ids if str(pk).isdigit()]
        if related is Deal:
            objects = {pk: f"Deal #{pk}" for pk in pks}
        elif related is Customer:
            objects = dict(Customer.objects.filter(pk__in=pks).values_list("pk", "name"))
        elif related is User:
            objects = {u.pk: str(u) for u in User.objects.filter(pk__in=pks)}
        else:
            objects = {pk: f"#{pk}" for pk in pks}
        names.update({(related, str(pk)): name for pk, name in objects.items()})
    return names


def _object_label(row, model, names: dict) -> str:
    """What the change is about, in words, from the history row itself (as it was then)."""
    pk = getattr(row, model._meta.pk.attname)
    if model is Deal:
        customer = names.get((Customer, str(row.customer_id)), "")
        return f"Deal #{pk} {row.title}" + (f" — {customer}" if customer else "")
    if model is Customer:
        return f"Customer {row.name}" + (f" ({row.company})" if row.company else "")
    if model is User:
        return f"Person {' '.join(filter(None, (row.first_name, row.last_name))) or row.username}"
    # A model of an app above (an invoice, a payment) names its own rows.
    history_label = getattr(model, "history_label", None)
    return history_label(row) if history_label else ""


def describe(rows) -> list[Change]:
    """Changes, in the order of ``rows`` (history rows, their ``history_user`` joined)."""
    rows = list(rows)
    names = _related_names(rows)
    changes = []
    for row in rows:
        model = row.instance_type
        changes.append(
            Change(
                at=row.history_date,
                person=row.history_user,
                via=row.history_via,
                kind=kind_of(model),
                object_id=getattr(row, model._meta.pk.attname),
                history_type=row.history_type,
                reason=row.history_change_reason or "",
                object_label=_object_label(row, model, names),
                fields=[
                    FieldChange(
                        name=name,
                        label=str(getattr(_field(model, name), "verbose_name", name)).capitalize(),
                        before=_display(_field(model, name), before, names),
                        after=_display(_field(model, name), after, names),
                    )
                    for name, before, after in row.history_changes
                ],
            )
        )
    return changes


def history_of(model, object_ids):
    """The history rows of some objects, newest first, who joined."""
    return (
        model.history.filter(**{f"{model._meta.pk.attname}__in": list(object_ids)})
        .select_related("history_user")
        .order_by("-history_date", "-history_id")
    )


def deal_changes(deal: Deal) -> list[Change]:
    """A deal's field edits (not its creation: the Promised stage event says that)."""
    return describe(history_of(Deal, [deal.pk]).filter(history_type="~"))


def customer_changes(customer: Customer, absorbed_ids=()) -> list[Change]:
    """A customer's record, with those of the customers merged into it."""
    return describe(history_of(Customer, [customer.pk, *absorbed_ids]))


__all__ = ["Change", "FieldChange", "describe", "history_of", "tracked_models", "KIND_NAMES"]
