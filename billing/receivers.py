"""Billing's hooks into the pipeline, connected in ``BillingConfig.ready``: it
listens to the domain event and adds its column to the Team page. The pipeline
never imports billing."""

from billing.selectors import rates_in_force
from billing.services import customer_refresh_standing
from pipeline.events import deal_changed
from pipeline.models import Deal
from pipeline.stages import Stage
from pipeline.team import TeamColumn, register_team_column


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
    # The rate in force for each member, on the manager's Team page.
    register_team_column(
        TeamColumn(
            heading="Commission rate",
            template="billing/_team_rate_cell.html",
            values=rates_in_force,
        )
    )
