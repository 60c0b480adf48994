"""What a billing rule answers when it refuses, and the checks every write starts with:
the deal's lock, a closed deal, a manager only, no full card number."""

from django.utils import timezone

from pipeline.access import can_manage
from pipeline.events import deal_changed_on_commit
from pipeline.masking import contains_card_number
from pipeline.models import Deal, User
from pipeline.stages import Stage


class BillingError(Exception):
    """A money rule refused the write; nothing was written.

    ``field`` names the form field the message belongs next to, if any.
    """

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class NotAllowed(BillingError):
    """The person may not do this (a rep clearing a payment, say)."""


def _require_manager(user: User | None, what: str) -> None:
    # A domain refusal (shown next to the form), not a 403: the rule is access's.
    if not can_manage(user):
        raise NotAllowed(f"Only a manager can {what}.")


def _lock_deal(deal_id: int) -> Deal:
    return Deal.objects.select_for_update().get(pk=deal_id)


def _refuse_closed(deal: Deal, what: str) -> None:
    if deal.stage in (Stage.LOST, Stage.WRITTEN_OFF):
        raise BillingError(f"This deal is {deal.get_stage_display().lower()}: {what}.")


def _deal_changed(deal_id: int, actor: User | None) -> None:
    """A money write that copies no sums (an invoice, a plan) still changes the deal:
    ``updated_at`` moves for the minute scan, and ``deal_changed`` is announced."""
    Deal.objects.filter(pk=deal_id).update(updated_at=timezone.now())
    deal_changed_on_commit(deal_id=deal_id, actor_id=actor.pk if actor else None)


# --- Payment methods on file -------------------------------------------


def refuse_full_number(value: str, field: str) -> None:
    """A full card or account number never gets further than this (PCI DSS)."""
    digits = "".join(ch for ch in value if ch.isdigit())
    if contains_card_number(value) or len(digits) >= 12:
        raise BillingError(
            "That looks like a full card or account number: Cleared never stores one. "
            "Enter only what the payment processor gives back.",
            field=field,
        )


# --- "Ask my manager": a rep asks for an exception -------------------------------------


class AlreadyDecided(BillingError):
    """Someone decided the request first; this decision changed nothing."""
