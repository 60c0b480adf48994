"""Billing pages: each action is one form that works as a page and inside the deal page.

A GET renders the form (the whole page, or only its ``form`` partial for
htmx, dropped into the deal's money panel); a POST calls one service. Bad
input comes back with the message next to the field and the typed values
kept (422); success goes back to the deal.
"""

import zoneinfo
from datetime import date, timedelta

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from billing import reports, selectors, services
from billing.forms import (
    AllowInvoicingForm,
    CommissionRateForm,
    DecisionForm,
    InvoiceForm,
    PaymentForm,
    PaymentMethodForm,
    PaymentPlanForm,
    PaymentStatusForm,
    ReasonForm,
)
from billing.models import Payment, PaymentKind, PaymentStatus
from pipeline.access import (
    can_manage,
    get_customer_for,
    get_deal_for,
    managed_reps,
    require_manager,
    require_seller,
)
from pipeline.forms import AskManagerForm, DealForm
from pipeline.models import Deal, Role, User
from pipeline.selectors import customer_terms
from pipeline.stages import Stage
from pipeline.terms import PaymentOption, money_text
from pipeline.terms_freeze import terms_frozen_by

PER_PAGE = 25


def _refused(form, exc: services.BillingError) -> None:
    """Put a service's refusal next to its field, or above the form."""
    form.add_error(exc.field if exc.field in form.fields else None, str(exc))


def _refused_or_back(request: HttpRequest, form, deal: Deal, exc) -> HttpResponse | None:
    """A refusal about a field goes next to it (None: render the form again); any other
    goes back to the deal as a warning (the payment moved meanwhile, say)."""
    if exc.field in form.fields:
        _refused(form, exc)
        return None
    messages.warning(request, str(exc))
    if request.htmx:
        return HttpResponseClientRedirect(deal.get_absolute_url())
    return redirect(deal)


def _done(request: HttpRequest, deal: Deal, message: str) -> HttpResponse:
    messages.success(request, message)
    if request.htmx:
        return HttpResponseClientRedirect(deal.get_absolute_url())
    return redirect(deal)


def _form_page(
    request: HttpRequest, *, deal: Deal, form, title: str, submit: str, action: str, **extra
) -> HttpResponse:
    status = 422 if form.is_bound and form.errors else 200
    template = "billing/action_form.html#form" if request.htmx else "billing/action_form.html"
    context = {
        "deal": deal,
        "form": form,
        "title": title,
        "submit": submit,
        "action": action,
        **extra,
    }
    return render(request, template, context, status=status)


def payment_new(request: HttpRequest, pk: int) -> HttpResponse:
    deal = get_deal_for(request.user, pk)
    figures = selectors.deal_money(deal)
    # Suggest what is most likely being paid: the missing deposit, else the balance.
    deposit_due = deal.deposit_required and not figures.deposit_in and deal.stage == Stage.PROMISED
    initial = {
        "kind": PaymentKind.DEPOSIT if deposit_due else PaymentKind.FINAL,
        "amount": figures.open_balance if figures.open_balance > 0 else None,
    }
    if deposit_due and deal.payment_option == PaymentOption.INVOICE:
        initial["amount"] = figures.deposit_amount - figures.pending - figures.cleared
    form = PaymentForm(request.POST or None, deal=deal, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            payment = services.payment_record(
                deal_id=deal.pk, recorded_by=request.user, **form.cleaned_data
            )
        except services.BillingError as exc:
            _refused(form, exc)
        else:
            return _done(
                request,
                deal,
                f"{payment.get_kind_display()} of {money_text(payment.amount)} recorded: "
                "pending until a manager clears it.",
            )
    return _form_page(
        request,
        deal=deal,
        form=form,
        title="Record a payment",
        submit="Record the payment",
        action=reverse("billing:payment_new", args=[deal.pk]),
        hint=f"Open balance: {money_text(figures.open_balance)}. It stays pending until a manager "
        "clears it; only cleared money counts.",
    )


def method_new(request: HttpRequest, pk: int) -> HttpResponse:
    """A card or account typed in from the processor's dashboard: managers only. Reps
    send the customer a link to put it on file themselves (online/on_file.py)."""
    deal = get_deal_for(request.user, pk)
    require_manager(request.user)
    form = PaymentMethodForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            method = services.payment_method_add(
                deal_id=deal.pk, recorded_by=request.user, **form.cleaned_data
            )
        except services.BillingError as exc:
            _refused(form, exc)
        else:
            return _done(request, deal, f"{method} is on file.")
    return _form_page(
        request,
        deal=deal,
        form=form,
        title="Put a card or account on file",
        submit="Save on file",
        action=reverse("billing:method_new", args=[deal.pk]),
        hint="Only the processor's token, the brand or bank, and the last 4 digits. "
        "Never type the full number: Cleared refuses it.",
    )


def invoice_new(request: HttpRequest, pk: int) -> HttpResponse:
    deal = get_deal_for(request.user, pk)
    initial = {
        "amount": services.invoiceable_money(deal),
        "issue_date": timezone.localdate(),
        "terms_days": settings.CLEARED_INVOICE_TERMS_DAYS,
    }
    form = InvoiceForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            invoice = services.invoice_issue(
                deal_id=deal.pk, issued_by=request.user, **form.cleaned_data
            )
        except services.BillingError as exc:
            _refused(form, exc)
        else:
            note = ""
            if invoice.misses_cutoff:
                note = (
                    f" It is past the customer's cut-off (day {invoice.cutoff_day}): "
                    "expect it in next month's payment run."
                )
            return _done(
                request, deal, f"Invoice {invoice} issued, due {invoice.due_date:%-d %b %Y}.{note}"
            )
    cutoff = deal.customer.accounting_cutoff_day
    return _form_page(
        request,
        deal=deal,
        form=form,
        title="Issue an invoice",
        submit="Issue the invoice",
        action=reverse("billing:invoice_new", args=[deal.pk]),
        hint=(
            f"The customer's accounting cut-off is day {cutoff} of the month: an invoice "
            "issued after it waits for next month's payment run."
            if cutoff
            else "The customer's accounting cut-off is not known: ask them when invoices "
            "must be in to be paid this month."
        ),
        cutoff_day=cutoff,
    )


def plan_new(request: HttpRequest, pk: int) -> HttpResponse:
    deal = get_deal_for(request.user, pk)
    figures = selectors.deal_money(deal)
    form = PaymentPlanForm(request.POST or None, initial={"count": 3, "every_days": 30})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:  # the balance is split under the deal's lock, in the service
            services.payment_plan_create(deal_id=deal.pk, created_by=request.user, **data)
        except services.BillingError as exc:
            _refused(form, exc)
        else:
            return _done(request, deal, f"Payment plan set: {data['count']} instalments.")
    return _form_page(
        request,
        deal=deal,
        form=form,
        title="Set a payment plan",
        submit="Split the balance",
        action=reverse("billing:plan_new", args=[deal.pk]),
        hint=f"Splits the open balance of {money_text(figures.open_balance)} into dated "
        "instalments, each due and chased on its own."
        + (
            f" The terms are frozen ({frozen}): the rep's manager sets a plan, with why in the "
            "note, and it goes on the deal's timeline."
            if (frozen := terms_frozen_by(deal))
            else ""
        ),
    )


def deposit_waive(request: HttpRequest, pk: int) -> HttpResponse:
    deal = get_deal_for(request.user, pk)
    require_manager(request.user)
    form = ReasonForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.deposit_waive(
                deal_id=deal.pk, manager=request.user, reason=form.cleaned_data["reason"]
            )
        except services.BillingError as exc:
            _refused(form, exc)
        else:
            return _done(request, deal, "Deposit waived: the deal can move on without one.")
    return _form_page(
        request,
        deal=deal,
        form=form,
        title="Waive the deposit",
        submit="Waive the deposit",
        action=reverse("billing:deposit_waive", args=[deal.pk]),
        hint="An exception to the terms: the reason goes on the deal's timeline.",
    )


def invoicing_allow(request: HttpRequest, pk: int) -> HttpResponse:
    require_seller(request.user)
    customer = get_customer_for(request.user, pk)
    require_manager(request.user)
    form = AllowInvoicingForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.invoicing_allow(
                customer_id=customer.pk, manager=request.user, **form.cleaned_data
            )
        except services.BillingError as exc:
            _refused(form, exc)
        else:
            messages.success(request, f"{customer.name} may be invoiced: exception recorded.")
            if request.htmx:
                return HttpResponseClientRedirect(customer.get_absolute_url())
            return redirect(customer)
    return _form_page(
        request,
        deal=None,
        form=form,
        title=f"Allow invoicing for {customer.name}",
        submit="Allow invoicing",
        action=reverse("billing:invoicing_allow", args=[customer.pk]),
        back=customer.get_absolute_url(),
        hint="A slow payer may then be invoiced (with a deposit). The reason shows on the "
        "customer's page and their deals' timelines.",
    )


def payment_status(request: HttpRequest, pk: int) -> HttpResponse:
    """Clear, bounce or charge back a payment: managers only (the processor uses the webhook)."""
    payment = get_object_or_404(
        Payment.objects.visible_to(request.user).select_related("deal"), pk=pk
    )
    require_manager(request.user)
    deal = get_deal_for(request.user, payment.deal_id)
    initial = {"to_status": request.GET.get("to", PaymentStatus.CLEARED)}
    form = PaymentStatusForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            move = services.payment_move_service(form.cleaned_data["to_status"])
            payment = move(
                payment_id=payment.pk, actor=request.user, reason=form.cleaned_data["reason"]
            )
        except services.BillingError as exc:
            if back := _refused_or_back(request, form, deal, exc):
                return back
        else:
            deal.refresh_from_db()
            return _done(
                request,
                deal,
                f"Payment of {money_text(payment.amount)} {payment.get_status_display().lower()}. "
                f"The deal is in {deal.get_stage_display()}.",
            )
    return _form_page(
        request,
        deal=deal,
        form=form,
        title=f"{payment.get_method_display()} of {money_text(payment.amount)}: clear or bounce",
        submit="Save",
        action=reverse("billing:payment_status", args=[payment.pk]),
        hint=f"{payment.get_kind_display()} · {payment.reference or 'no reference'} · "
        f"now {payment.get_status_display().lower()}.",
    )


@require_GET
def payment_list(request: HttpRequest) -> HttpResponse:
    """Payments on the user's deals; for managers, the queue of checks and cards to clear."""
    require_seller(request.user)
    status = request.GET.get("status", PaymentStatus.PENDING)
    payments = selectors.payments_for(request.user, status)
    page = Paginator(payments, PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "status": status,
        "statuses": PaymentStatus.choices,
        "can_clear": can_manage(request.user),
    }
    template = "billing/payment_list.html#results" if request.htmx else "billing/payment_list.html"
    return render(request, template, context)


@require_GET
def invoice_list(request: HttpRequest) -> HttpResponse:
    require_seller(request.user)
    state = request.GET.get("state", "open")
    invoices = selectors.invoices_for(request.user, state)
    page = Paginator(invoices, PER_PAGE).get_page(request.GET.get("page"))
    page.object_list = selectors.with_invoice_states(page.object_list)
    context = {"page": page, "state": state, "filters": selectors.INVOICE_FILTERS}
    template = "billing/invoice_list.html#results" if request.htmx else "billing/invoice_list.html"
    return render(request, template, context)


def _month_from(raw: str | None) -> date:
    today = timezone.localdate()
    try:
        year, month = (int(part) for part in (raw or "").split("-"))
        # The page links the month before and after: the years 1 and 9999 have none.
        if 1900 <= year <= 9000:
            return date(year, month, 1)
    except ValueError:
        pass
    return today.replace(day=1)


@require_GET
def commission(request: HttpRequest) -> HttpResponse:
    """Promised / pending / cleared / earned this month: a rep their own, a manager per rep."""
    require_seller(request.user)
    month = _month_from(request.GET.get("month"))
    user = request.user
    if can_manage(user):
        reps = list(
            User.objects.reps_of(user)
            .filter(groups__name=Role.REP)
            .order_by("first_name", "username")
        )
    else:
        reps = [user]
    figures = reports.team_month_figures([rep.pk for rep in reps], month)
    rows = [{"rep": rep, "figures": figures[rep.pk]} for rep in reps]
    previous = (month.replace(day=1) - timedelta(days=1)).replace(day=1)
    following = (month.replace(day=28) + timedelta(days=4)).replace(day=1)
    context = {
        "month": month,
        "rows": rows,
        "previous": previous,
        "following": following if following <= timezone.localdate() else None,
        "ledger": reports.commission_ledger([rep.pk for rep in reps], month)[:50],
        "is_manager": can_manage(user),
    }
    return render(request, "billing/commission.html", context)


def commission_rate(request: HttpRequest, pk: int) -> HttpResponse:
    """A manager sets a rep's commission rate from a day on (the Team page's "Change…")."""
    require_manager(request.user)
    rep = get_object_or_404(managed_reps(request.user).filter(is_active=True), pk=pk)
    today = timezone.now().astimezone(zoneinfo.ZoneInfo(rep.time_zone)).date()
    form = CommissionRateForm(
        request.POST if request.method == "POST" else None, initial={"effective_from": today}
    )
    if form.is_valid():
        try:
            rate = services.commission_rate_set(manager=request.user, rep=rep, **form.cleaned_data)
        except services.BillingError as exc:
            _refused(form, exc)
        else:
            messages.success(
                request,
                f"{rep}'s commission rate is {rate.percent} from {rate.effective_from:%-d %b %Y}.",
            )
            return redirect("team")
    context = {
        "rep": rep,
        "form": form,
        "in_force": selectors.rates_in_force([rep])[rep.pk],
        "history": selectors.rate_history(rep.pk)[:20],
    }
    status = 422 if form.is_bound and form.errors else 200
    return render(request, "billing/commission_rate.html", context, status=status)


# --- "Ask my manager" -------------------------------------------


@require_POST
def deal_invoicing_ask(request: HttpRequest) -> HttpResponse:
    """The deal form's "Ask my manager": log the deal and ask to allow invoicing it.

    Posted by the deal form itself (its "Ask my manager" button), so the deal
    is exactly what was typed; bad input comes back in the deal form, as typed.
    """
    require_seller(request.user)
    form = DealForm(request.POST, user=request.user, invoicing_asked=True)
    ask_form = AskManagerForm(request.POST)
    valid = form.is_valid()
    if ask_form.is_valid() and valid:
        try:
            ask = services.invoicing_ask(
                rep=request.user, reason=ask_form.cleaned_data["ask_reason"], **form.cleaned_data
            )
        except services.BillingError as exc:
            _refused(ask_form, exc)
        else:
            messages.success(
                request,
                f"Deal #{ask.deal_id} logged. {request.user.manager} is asked to allow "
                "invoicing it: you get a reminder with the answer.",
            )
            return redirect(ask.deal)
    customer = form.cleaned_data.get("customer")
    context = {
        "form": form,
        "ask_form": ask_form,
        "terms_customer": customer,
        "terms": customer_terms(customer) if customer else None,
    }
    return render(request, "pipeline/deal_form.html", context, status=422)


def deposit_waiver_ask(request: HttpRequest, pk: int) -> HttpResponse:
    """A rep asks their manager to waive the deal's deposit (the money panel's button)."""
    deal = get_deal_for(request.user, pk)
    form = AskManagerForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.deposit_waiver_ask(
                deal_id=deal.pk, rep=request.user, reason=form.cleaned_data["ask_reason"]
            )
        except services.BillingError as exc:
            _refused(form, exc)
        else:
            return _done(
                request,
                deal,
                f"{request.user.manager or 'Your manager'} is asked to waive the deposit: "
                "you get a reminder with the answer.",
            )
    return _form_page(
        request,
        deal=deal,
        form=form,
        title="Ask my manager to waive the deposit",
        submit="Ask my manager",
        action=reverse("billing:deposit_waiver_ask", args=[deal.pk]),
        hint="Only a manager can waive a deposit. Your reason goes to them in a reminder; "
        "they approve or decline from it.",
    )


def _back(request: HttpRequest) -> str:
    """Where a decision returns: the page it was made on, else home (never the panel's poll)."""
    target = request.POST.get("next", "")
    safe = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    if not safe or not target.startswith("/") or target.startswith(reverse("reminder_panel")):
        return reverse("home")
    return target


@require_POST
def exception_decide(request: HttpRequest, pk: int) -> HttpResponse:
    """The rep's own manager approves or declines a request, from its reminder.

    Anyone else gets a 404 (a forged id says nothing); of two clicks the first
    decides and the second is told who decided (the service's compare-and-set).
    """
    ask = get_object_or_404(selectors.exception_requests_to_decide(request.user), pk=pk)
    form = DecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose Approve or Decline.")
        return redirect(_back(request))
    approve = form.cleaned_data["decision"] == "approve"
    try:
        ask = services.exception_request_decide(
            request_id=ask.pk, manager=request.user, approve=approve, note=form.cleaned_data["note"]
        )
    except services.AlreadyDecided as exc:
        messages.warning(request, str(exc))
    except services.BillingError as exc:
        messages.error(request, f"Not approved: {exc}")
    else:
        done = "Approved" if approve else "Declined"
        messages.success(
            request,
            f"{done}: {ask.what} on deal #{ask.deal_id} "
            f"({ask.deal.customer.name}). {ask.rep} is told.",
        )
    return redirect(_back(request))
