"""One customer per customer (issue 20, §3): matches, "not the same person", merges.

A customer being typed **matches** an existing one with the same phone
(its digits), the same email (any case), or the same name and company (case
and spaces ignored; a company left empty on either side does not tell two
names apart). Matches are looked for among *all* customers: the ones
the user may see are offered ("Dana Whitfield, Slow payer, owned by Riley —
use this customer?"); for the others the user is only told a match exists and
that their manager decides, with nothing about that customer.

Until a manager records that two matching customers are **different people**
(``CustomerDistinct``), the newer one's standing is never better than the
older one's (``standing_floor``, applied where the standing is written:
``customer_add`` and ``billing.services.customer_refresh_standing``).

A manager **merges** duplicates (dashboards/merging.py moves everything and
calls billing); the ``CustomerMerge`` row is the record that can be read back.
"""

from dataclasses import dataclass

from django.conf import settings
from django.db import models
from django.db.models import CharField, IntegerField, Q
from django.utils import timezone

from pipeline import keys
from pipeline.access import can_manage
from pipeline.changes import customer_changes
from pipeline.compiled import Compiled, Slot
from pipeline.masking import MaskedCharField, MaskedJSONField
from pipeline.models import Customer
from pipeline.terms import Standing

# Worst first: a standing "better" than another lets the customer do more.
STANDING_RANK = {Standing.SLOW: 0, Standing.NEW: 1, Standing.GOOD: 2}


class CustomerDistinct(models.Model):
    """A manager's decision that two matching customers are different people.

    The pair is kept with the lower id first (one row per pair, a constraint).
    """

    first = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    second = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["first", "second"], name="customer_distinct_once"),
            models.CheckConstraint(
                condition=Q(first__lt=models.F("second")), name="customer_distinct_ordered"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.first_id} and #{self.second_id} are different people"


class CustomerMerge(models.Model):
    """One customer merged into another: who, when, and what the absorbed one was.

    The absorbed customer's row is gone; ``absorbed`` keeps what it held
    (name, contacts, standing) and ``moved`` what moved (deals, links, ...).
    """

    survivor = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="merges")
    absorbed_id = models.PositiveIntegerField(db_index=True)
    absorbed = MaskedJSONField(default=dict)
    moved = MaskedJSONField(default=dict)
    merged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    merged_at = models.DateTimeField(default=timezone.now)
    reason = MaskedCharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-merged_at", "-id"]

    def __str__(self) -> str:
        return f"#{self.absorbed_id} merged into #{self.survivor_id}"

    @property
    def moved_words(self) -> str:
        """What moved, in words: "2 deals, 1 link"."""
        words = []
        for what, count in self.moved.items():
            if not count:
                continue
            noun = what.replace("_", " ")
            words.append(f"{count} {noun if count != 1 else noun.removesuffix('s')}")
        return ", ".join(words) or "nothing"

    @property
    def absorbed_name(self) -> str:
        return self.absorbed.get("name", f"#{self.absorbed_id}")


def match_condition(*, name: str = "", company: str = "", email: str = "", phone: str = "") -> Q:
    """Same phone digits, same email, or same name and company: the one rule.

    Read on the keys the database keeps on each customer (pipeline/keys.py),
    each an index lookup.
    """
    return _condition(
        keys.name_key(name), keys.company_key(company), keys.email_key(email), keys.phone_key(phone)
    )


def _condition(name_key, company_key, email_key, phone_key) -> Q:
    """The rule on the typed customer's keys: each a value, "" when not typed, or
    (for ``_MATCHING``) a ``Slot`` filled at each run."""
    condition = Q(pk__in=[])
    if name_key:
        # The same name at the same company; a company missing on either side
        # (not typed yet, or never entered) does not tell them apart.
        same_company = Q(company_key=company_key) | Q(company_key="") if company_key else Q()
        condition |= Q(name_key=name_key) & same_company
    if email_key:
        condition |= Q(email_key=email_key)
    if phone_key:
        condition |= Q(phone_key=phone_key)
    return condition


_KEYS = ("name", "company", "email", "phone")


# ``match_condition`` compiled once for each shape (which keys were typed): an
# import checks every row's new customer, twice, and building the query cost
# more than running it.
def _matching_query(shape: tuple[bool, ...]):
    slots = (Slot(key, CharField()) if on else "" for key, on in zip(_KEYS, shape, strict=True))
    found = Customer.objects.filter(_condition(*slots)).order_by()
    return found.values_list("pk", "standing", "name")


_MATCHING = Compiled(_matching_query)


def matching(*, name: str = "", company: str = "", email: str = "", phone: str = ""):
    """(id, standing, name) of every customer the typed one matches (``match_condition``)."""
    found = {
        "name": keys.name_key(name),
        "company": keys.company_key(company),
        "email": keys.email_key(email),
        "phone": keys.phone_key(phone),
    }
    # A company tells names apart only beside a name: alone it matches nothing.
    shape = (bool(found["name"]), bool(found["name"] and found["company"]))
    shape += (bool(found["email"]), bool(found["phone"]))
    if not (shape[0] or shape[2] or shape[3]):
        return []
    return _MATCHING.rows(shape, key=shape, **found)


@dataclass(frozen=True)
class Matches:
    """What a user typing a new customer is told: the matches they may see, and
    whether others exist that they may not (their manager decides)."""

    visible: list
    hidden: bool

    def __bool__(self) -> bool:
        return bool(self.visible) or self.hidden


def customer_matches(user, *, exclude: int | None = None, limit: int = 5, **typed) -> Matches:
    """The existing customers the typed one (name, company, email, phone) may be."""
    found = [pk for pk, _standing, _name in matching(**typed) if pk != exclude]
    if not found:  # most new customers: one compiled query, nothing to build
        return Matches(visible=[], hidden=False)
    visible = list(
        Customer.objects.visible_to(user)
        .filter(pk__in=found)
        .select_related("owner")
        .order_by("name", "id")[:limit]
    )
    hidden = Customer.objects.filter(pk__in=found).exclude(
        pk__in=Customer.objects.visible_to(user).values("pk")
    )
    return Matches(visible=visible, hidden=hidden.exists())


def matches_of(customer: Customer):
    """Every other customer matching ``customer`` and not declared a different person."""
    condition = match_condition(
        name=customer.name, company=customer.company, email=customer.email, phone=customer.phone
    )
    found = Customer.objects.exclude(pk=customer.pk).filter(condition)
    return found.exclude(pk__in=sorted(distinct_from(customer)))


# The pairs are kept lower id first: the others are on either side.
_DISTINCT = Compiled(
    lambda: (
        CustomerDistinct.objects.filter(
            Q(first_id=Slot("customer", IntegerField()))
            | Q(second_id=Slot("customer", IntegerField()))
        )
        .order_by()
        .values_list("first_id", "second_id")
    )
)


def distinct_from(customer: Customer) -> set[int]:
    """The customers a manager said are different people from ``customer``."""
    pairs = _DISTINCT.rows(customer=customer.pk)
    return {second if first == customer.pk else first for first, second in pairs}


def _matching_of(customer: Customer):
    return matching(
        name=customer.name, company=customer.company, email=customer.email, phone=customer.phone
    )


def standing_floor(customer: Customer) -> tuple[str, str] | None:
    """The worst standing among the older customers ``customer`` matches, with why;
    None when there is none (no match, or all declared different people).

    Older only: the copy follows the original, never the other way round.
    """
    older = [row for row in _matching_of(customer) if row[0] < customer.pk]
    if older:  # most new customers have none: nothing more to read
        distinct = distinct_from(customer)
        older = [row for row in older if row[0] not in distinct]
    # The worst standing; of equals, the oldest customer.
    worst = min(older, key=lambda row: (STANDING_RANK[row[1]], row[0]), default=None)
    if worst is None:
        return None
    pk, standing, name = worst
    reason = (
        f"Matches {name} (#{pk}), standing {Standing(standing).label}: "
        "the same until a manager says they are different people."
    )
    return standing, reason[:200]


def typed_floor(**typed) -> tuple[str, str] | None:
    """The worst standing among the existing customers a typed one matches, with why."""
    found = matching(**typed)
    worst = min(found, key=lambda row: (STANDING_RANK[row[1]], row[0]), default=None)
    if worst is None:
        return None
    return worst[1], "Matches an existing customer: their standing until a manager decides."


def with_floor(customer: Customer, standing: str, reason: str) -> tuple[str, str]:
    """``standing`` (learned from the customer's own history), never better than its floor."""
    floor = standing_floor(customer)
    if floor is not None and STANDING_RANK[floor[0]] < STANDING_RANK[standing]:
        return floor
    return standing, reason


def newer_matches(customer: Customer) -> list[int]:
    """The ids of the newer customers whose floor ``customer`` may be (to refresh them)."""
    newer = [pk for pk, _standing, _name in _matching_of(customer) if pk > customer.pk]
    if not newer:
        return []
    distinct = distinct_from(customer)
    return sorted(pk for pk in newer if pk not in distinct)


def customer_declare_distinct(*, first: Customer, second: Customer, actor) -> CustomerDistinct:
    """Record a manager's decision that two customers are different people.

    The caller checks the actor manages both (dashboards' view) and refreshes
    the standings (billing): the newer one's floor is lifted.
    """
    low, high = sorted([first, second], key=lambda c: c.pk)
    row, _ = CustomerDistinct.objects.get_or_create(
        first=low, second=high, defaults={"decided_by": actor}
    )
    return row


def merged_into(customer_id: int) -> Customer | None:
    """The customer a merged-away id now lives on (following merges of merges)."""
    merge = CustomerMerge.objects.filter(absorbed_id=customer_id).select_related("survivor").first()
    return merge.survivor if merge else None


def absorbed_ids(customer: Customer) -> list[int]:
    """The ids merged into ``customer`` (their history shows on its timeline)."""
    return list(
        CustomerMerge.objects.filter(survivor=customer).values_list("absorbed_id", flat=True)
    )


def customer_record(user, customer: Customer) -> dict:
    """The customer page's record: its changes (with those of the customers merged
    into it), its merges, and for a manager the customers it matches (to merge,
    or to say they are different people)."""
    absorbed = absorbed_ids(customer)
    matches = []
    if can_manage(user):
        matches = list(
            matches_of(customer)
            .filter(pk__in=Customer.objects.visible_to(user).values("pk"))
            .select_related("owner")
            .order_by("pk")[:5]
        )
    merges = CustomerMerge.objects.filter(survivor=customer).select_related("merged_by")
    record = [
        *({"kind": "merge", "at": m.merged_at, "item": m} for m in merges),
        *({"kind": "change", "at": c.at, "item": c} for c in customer_changes(customer, absorbed)),
    ]
    return {
        "record": sorted(record, key=lambda entry: entry["at"], reverse=True),
        "matches": matches,
    }
