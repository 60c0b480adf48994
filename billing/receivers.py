"""Billing's hooks into the pipeline, connected in ``BillingConfig.ready``: it
listens to the domain event and adds its column to the Team page. The pipeline
never imports billing."""

from billing.models import Invoice
from billing.selectors import rates_in_force
from billing.services import customer_refresh_standing
from pipeline.events import deal_changed
from pipeline.models import Deal
from pipeline.stages import Stage
from pipeline.team import TeamColumn, register_team_column
from pipeline.terms_freeze import register_amount_guard


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


def issued_invoice_refusal(deal: Deal) -> str:
    """Why the deal's amount cannot change while an invoice for it is issued ("" if none).

    An issued invoice is never changed (issue 20): it is voided, with a credit
    note, and a new one issued for the new amount.
    """
    live = Invoice.objects.filter(deal_id=deal.pk, voided_at__isnull=True).order_by("-id").first()
    if live is None:
        return ""
    return (
        f"Invoice {live.display_number} is issued for {live.amount:,.2f}: an issued invoice "
        "never changes. Ask a manager to void it first (with a credit note), then change "
        "the amount; a new invoice follows the new amount."
    )


def connect() -> None:
    deal_changed.connect(
        standing_refresh_on_deal_changed, dispatch_uid="standing_refresh_on_deal_changed"
    )
    # A new amount on a deal with a live invoice is refused (pipeline.terms_freeze).
    register_amount_guard(issued_invoice_refusal)
    # The rate in force for each member, on the manager's Team page.
    register_team_column(
        TeamColumn(
            heading="Commission rate",
            template="billing/_team_rate_cell.html",
            values=rates_in_force,
        )
    )
