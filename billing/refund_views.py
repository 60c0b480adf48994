"""The refund page: a manager gives back cleared money of a payment, in full or in part."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse

from billing import services
from billing.forms import RefundForm
from billing.models import Payment, RefundStatus
from billing.views import _done, _form_page, _refused_or_back
from pipeline.access import get_deal_for, require_manager
from pipeline.terms import money_text

PROCESSING = RefundStatus.PROCESSING


def payment_refund(request: HttpRequest, pk: int) -> HttpResponse:
    """Refund a cleared payment (managers only); a processor's payment goes back through it."""
    payment = get_object_or_404(
        Payment.objects.visible_to(request.user).select_related("deal"), pk=pk
    )
    require_manager(request.user)
    deal = get_deal_for(request.user, payment.deal_id)
    left = services.refundable(payment)
    form = RefundForm(request.POST or None, initial={"amount": left})
    if request.method == "POST" and form.is_valid():
        try:
            refund = services.payment_refund(
                payment_id=payment.pk,
                actor=request.user,
                amount=form.cleaned_data["amount"],
                reason=form.cleaned_data["reason"],
            )
        except services.BillingError as exc:
            if back := _refused_or_back(request, form, deal, exc):
                return back
        else:
            deal.refresh_from_db()
            how = " — on its way back through the processor" if refund.status == PROCESSING else ""
            return _done(
                request,
                deal,
                f"Refunded {money_text(refund.amount)} of the {money_text(payment.amount)} payment"
                f"{how}. The deal is in {deal.get_stage_display()}.",
            )
    return _form_page(
        request,
        deal=deal,
        form=form,
        title=f"Refund the {payment.get_method_display().lower()} payment of "
        f"{money_text(payment.amount)}",
        submit="Refund",
        action=reverse("billing:payment_refund", args=[payment.pk]),
        hint=f"{payment.get_kind_display()} · {payment.reference or 'no reference'} · "
        f"{money_text(left)} left to refund. The refund comes off the deal's cleared money and "
        "claws back the rep's commission in proportion.",
    )
