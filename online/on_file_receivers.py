"""The team's auto-charge: a deal recorded Delivered with a card on file is charged."""

from online import on_file
from online.on_file_models import TeamCharging
from pipeline.events import deal_changed
from pipeline.models import Deal
from pipeline.stages import Stage
from pipeline.terms import PaymentOption


def charge_on_delivery(sender, *, deal_id: int, **kwargs) -> None:
    """After commit of any change: an audited On-file deal now Delivered, on a team that
    charges on delivery, with nothing charged yet, gets its charge queued (the task
    calls ``on_file.on_file_charge``, which re-checks every rule under the deal's lock)."""
    deal = (
        Deal.objects.filter(pk=deal_id, payment_option=PaymentOption.ON_FILE, stage=Stage.DELIVERED)
        .select_related("rep")
        .first()
    )
    if (
        deal is None
        or not TeamCharging.objects.filter(
            manager_id=deal.rep.manager_id, charge_on_delivery=True
        ).exists()
    ):
        return
    if on_file.charge_refusal(deal) is None and not deal.on_file_charges.exists():
        on_file.on_file_charge_task.delay(deal.pk)


def connect() -> None:
    deal_changed.connect(charge_on_delivery, dispatch_uid="online_charge_on_delivery")
