"""Merging duplicate customers, and deciding they are different people (issue 20, §3).

Here, on top of every app, because a merge moves rows of each: the deals (and
with them their touches, stage events, payments and invoices), the customer's
emails and links (receivables), the terms exceptions and payment methods
(billing), and recomputes the standing (``billing.services.customer_refresh_standing``).

One transaction, locks in the order every money write takes them (the deals
first, then the customer rows, lower id first), so a payment recorded on one
of the deals while the merge runs either commits before it (and its money is
counted in the survivor's standing) or waits and lands on the deal, now the
survivor's. The absorbed customer's row is then deleted; a ``CustomerMerge``
keeps what it held and what moved, its history stays in the history table
(read on the survivor's timeline) and its address redirects to the survivor.
"""

from django.db import models, transaction
from django.db.models import F
from django.utils import timezone

from billing.models import PaymentMethod, TermsException
from billing.services import customer_copy_invoicing_exception, customer_refresh_standing
from pipeline.access import require_manager
from pipeline.events import deal_changed_on_commit
from pipeline.history import history_record_update
from pipeline.models import Customer, Deal, User
from pipeline.sameness import CustomerDistinct, CustomerMerge, customer_declare_distinct
from receivables.models import CustomerEmail, CustomerLink

# The survivor's empty fields are filled from the absorbed customer's.
FILLED_FROM_ABSORBED = (
    "company",
    "email",
    "billing_contact",
    "billing_email",
    "accounting_cutoff_day",
    "plans_notes",
    "technology_notes",
)
# What the merge record keeps of the absorbed customer.
KEPT = ("name", "company", "phone", "email", "billing_email", "standing", "owner_id")


class MergeRefused(Exception):
    pass


def _visible_pair(actor: User, ids: list[int]) -> None:
    visible = set(
        Customer.objects.visible_to(actor).filter(pk__in=ids).values_list("pk", flat=True)
    )
    if visible != set(ids):
        # The views look both up with access.get_customer_for first (a 404).
        raise MergeRefused("You can only merge customers you manage.")


@transaction.atomic
def customer_merge(
    *, survivor_id: int, absorbed_id: int, actor: User, reason: str = ""
) -> CustomerMerge:
    """Merge ``absorbed`` into ``survivor``: a manager's (their team's customers) or an
    operator's decision that they are one customer. Returns the merge record."""
    require_manager(actor, "Only a manager can merge customers.")
    if survivor_id == absorbed_id:
        raise MergeRefused("A customer can't be merged with themself.")
    _visible_pair(actor, [survivor_id, absorbed_id])
    deal_ids = list(
        Deal.objects.select_for_update()
        .filter(customer_id=absorbed_id)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    locked = {
        c.pk: c
        for c in Customer.objects.select_for_update()
        .filter(pk__in=[survivor_id, absorbed_id])
        .order_by("pk")
    }
    if len(locked) != 2:
        raise MergeRefused("One of the two customers is gone (merged meanwhile?).")
    survivor, absorbed = locked[survivor_id], locked[absorbed_id]
    # A deal added to the absorbed customer between the two locks moves too.
    deal_ids = sorted(
        set(deal_ids)
        | set(
            Deal.objects.select_for_update().filter(customer=absorbed).values_list("pk", flat=True)
        )
    )
    statements = CustomerEmail.objects.filter(customer=absorbed, kind="statement")
    clash = statements.filter(
        statement_date__in=CustomerEmail.objects.filter(customer=survivor, kind="statement").values(
            "statement_date"
        )
    )
    if clash.exists():
        raise MergeRefused(
            "Both customers were sent a statement on the same day: merge after talking to "
            "an operator (the statements' record would clash)."
        )
    now = timezone.now()
    moved = {
        "deals": Deal.objects.filter(pk__in=deal_ids).update(
            customer=survivor, version=F("version") + 1, updated_at=now
        ),
        "emails": CustomerEmail.objects.filter(customer=absorbed).update(customer=survivor),
        "links": CustomerLink.objects.filter(customer=absorbed).update(customer=survivor),
        # Ledgers refuse update() on their own querysets: a merge re-points who the
        # entries are about, never what they say.
        "terms_exceptions": models.QuerySet(TermsException)
        .filter(customer=absorbed)
        .update(customer=survivor),
        "payment_methods": models.QuerySet(PaymentMethod)
        .filter(customer=absorbed)
        .update(customer=survivor),
    }
    history_record_update(Deal, deal_ids)
    # Earlier merges into the absorbed one now point at the survivor; a decision
    # "different people" about the absorbed one no longer names a live customer.
    CustomerMerge.objects.filter(survivor=absorbed).update(survivor=survivor)
    CustomerDistinct.objects.filter(models.Q(first=absorbed) | models.Q(second=absorbed)).delete()
    for name in FILLED_FROM_ABSORBED:
        if getattr(survivor, name) in ("", None) and getattr(absorbed, name) not in ("", None):
            setattr(survivor, name, getattr(absorbed, name))
    survivor._change_reason = f"Merged with {absorbed.name} (#{absorbed.pk})"
    survivor.save()
    merge = CustomerMerge.objects.create(
        survivor=survivor,
        absorbed_id=absorbed.pk,
        absorbed={name: str(getattr(absorbed, name)) for name in KEPT},
        moved=moved,
        merged_by=actor,
        merged_at=now,
        reason=reason.strip()[:300],
    )
    absorbed._change_reason = f"Merged into {survivor.name} (#{survivor.pk})"
    absorbed.delete()
    customer_refresh_standing(customer_id=survivor.pk)
    customer_copy_invoicing_exception(customer_id=survivor.pk)
    for deal_id in deal_ids:
        deal_changed_on_commit(deal_id=deal_id, actor_id=actor.pk)
    return merge


@transaction.atomic
def customer_distinct(*, customer_id: int, other_id: int, actor: User) -> CustomerDistinct:
    """A manager says two matching customers are different people: the newer one's
    standing is its own again (no longer held to the older one's)."""
    require_manager(actor, "Only a manager can decide that.")
    if customer_id == other_id:
        raise MergeRefused("That is the same customer.")
    _visible_pair(actor, [customer_id, other_id])
    first, second = Customer.objects.filter(pk__in=[customer_id, other_id]).order_by("pk")
    decision = customer_declare_distinct(first=first, second=second, actor=actor)
    customer_refresh_standing(customer_id=first.pk)
    customer_refresh_standing(customer_id=second.pk)
    return decision
