"""Recording and clearing money in tests, the way the services do it."""

from decimal import Decimal

from billing import services
from billing.models import PaymentKind, PaymentMethodKind


def record(
    deal, by, amount="200.00", kind=PaymentKind.DEPOSIT, method=PaymentMethodKind.CHECK, **kw
):
    return services.payment_record(
        deal_id=deal.pk,
        recorded_by=by,
        kind=kind,
        method=method,
        amount=Decimal(amount),
        reference=kw.pop("reference", "Check 1001"),
        **kw,
    )


def clear(payment, by):
    return services.payment_clear(payment_id=payment.pk, actor=by)


def bounce(payment, by, reason="Returned: insufficient funds"):
    return services.payment_bounce(payment_id=payment.pk, actor=by, reason=reason)
