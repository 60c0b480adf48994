"""Billing listens to the pipeline's domain event (connected in ``BillingConfig.ready``)."""

from billing.services import customer_refresh_standing
from pipeline.events import deal_changed
from pipeline.models import Deal
from pipeline.stages import Stage


def standing_refresh_on_deal_changed(sender, *, deal_id: int, **kwargs) -> None:
    """A deal in Payment cleared counts as a paid deal in its customer's standing.

    Billing's own money writes refresh the standing in their transaction; this
    covers the one way a deal reaches Payment cleared without one: marked
    Delivered when its cleared money already covered it
    (``pipeline.services.deal_move``). Sent after commit: the refresh is its
    own small transaction.
    """
    customer_id = (
        Deal.objects.filter(pk=deal_id, stage=Stage.PAYMENT_CLEARED)
        .values_list("customer_id", flat=True)
        .first()
    )
    if customer_id is not None:
        customer_refresh_standing(customer_id=customer_id)


def connect() -> None:
    deal_changed.connect(
        standing_refresh_on_deal_changed, dispatch_uid="standing_refresh_on_deal_changed"
    )
