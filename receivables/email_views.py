"""Pages for emails to the customer: the invoice's PDF and sending, a rung's chase, the
managers' Chasing page. Each view checks access, calls one service, renders."""

from datetime import timedelta

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from billing.forms import ReasonForm
from billing.models import Invoice
from billing.policy import invoice_deadline, next_cutoff
from billing.services import BillingError
from pipeline.access import can_manage, managed_reps, require_manager, require_seller
from receivables import chase, mail, selectors
from receivables.forms import ChaseTemplateForm, InvoiceSendForm
from receivables.models import CustomerEmail, EmailKind, EmailState
from receivables.pdf import pdf_unavailable

RECENT_EMAILS = 30
# The chase-effect figure looks back this far.
EFFECT_DAYS = 90


def _invoice_for(user, pk: int) -> Invoice:
    """The invoice, if the user may see its deal; a 404 otherwise."""
    require_seller(user)
    invoices = Invoice.objects.visible_to(user).select_related(
        "deal__customer", "deal__rep", "issued_by", "voided_by"
    )
    return get_object_or_404(invoices, pk=pk)


def invoice_page(
    request: HttpRequest, invoice: Invoice, send_form=None, void_form=None, status: int = 200
) -> HttpResponse:
    """The printable invoice with what was emailed, the send form and (managers) Void."""
    customer = invoice.deal.customer
    today = timezone.localdate()
    deadline = invoice_deadline(customer.accounting_cutoff_day, today)
    cutoff = deadline.cutoff if deadline else None
    if send_form is None:
        # Empty: now (the field's hint says so). The day it must go by is said next
        # to it; a later day is the rep's choice, never prefilled.
        send_form = InvoiceSendForm(cutoff=cutoff)
    emails = list(invoice.emails.order_by("created_at", "id"))
    sent_invoice = next((e for e in emails if e.kind == EmailKind.INVOICE), None)
    reached = chase.current_rung(invoice.due_date, today)
    context = {
        **mail.invoice_document(invoice),
        "emails": emails,
        "sent_invoice": sent_invoice,
        "send_form": send_form,
        "send_refusal": mail.email_refusal(invoice, EmailKind.INVOICE),
        "next_cutoff": cutoff,
        "send_by": deadline.send_by if deadline else None,
        "today": today,
        "pdf_unavailable": pdf_unavailable(),
        "credit_note": getattr(invoice, "credit_note", None) if invoice.is_void else None,
        "void_form": (void_form or ReasonForm())
        if can_manage(request.user) and not invoice.is_void
        else None,
        "chase_rungs": [
            (rung, chase.rung_label(rung))
            for rung in chase.rungs()
            if reached is not None and rung <= reached
        ],
    }
    return render(request, "receivables/invoice_print.html", context, status=status)


@require_GET
def invoice_pdf(request: HttpRequest, pk: int) -> HttpResponse:
    invoice = _invoice_for(request.user, pk)
    reason = pdf_unavailable()
    if reason:
        return render(
            request,
            "receivables/pdf_unavailable.html",
            {"reason": reason, "back": invoice.get_absolute_url()},
            status=503,
        )
    response = HttpResponse(mail.invoice_pdf(invoice), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{invoice.display_number}.pdf"'
    return response


@require_POST
def invoice_send(request: HttpRequest, pk: int) -> HttpResponse:
    """One click: email the invoice (PDF attached) to the billing contact, now or on a day."""
    invoice = _invoice_for(request.user, pk)
    cutoff = next_cutoff(invoice.deal.customer.accounting_cutoff_day, timezone.localdate())
    form = InvoiceSendForm(request.POST, cutoff=cutoff)
    if form.is_valid():
        try:
            email = mail.invoice_email_request(
                invoice_id=invoice.pk, send_on=form.cleaned_data["send_on"]
            )
        except BillingError as exc:
            form.add_error(None, str(exc))
        else:
            when = (
                f"on {timezone.localtime(email.next_attempt_at):%-d %b} in the morning"
                if email.next_attempt_at > timezone.now()
                else "now"
            )
            messages.success(request, f"Invoice {invoice} goes to {email.to_address} {when}.")
            return redirect(invoice)
    return invoice_page(request, invoice, send_form=form, status=422)


def chase_page(request: HttpRequest, pk: int, rung: int) -> HttpResponse:
    """A rung's payment reminder: the preview, and Send (or Ask the manager, on the last rung)."""
    invoice = _invoice_for(request.user, pk)
    if rung not in chase.rungs():
        return redirect(invoice)
    existing = invoice.emails.filter(kind=EmailKind.CHASE, rung=rung).first()
    if request.method == "POST":
        try:
            if existing is not None and existing.state == EmailState.AWAITING_APPROVAL:
                mail.chase_approve(email_id=existing.pk, manager=request.user)
                messages.success(request, "Approved: the reminder goes now.")
            else:
                email = mail.chase_request(invoice_id=invoice.pk, rung=rung, sender=request.user)
                if email.state == EmailState.AWAITING_APPROVAL:
                    messages.success(request, "Sent to your manager for approval.")
                else:
                    messages.success(request, f"The reminder goes to {email.to_address} now.")
        except BillingError as exc:
            messages.error(request, str(exc))
        return redirect("billing:chase", pk=invoice.pk, rung=rung)
    deal = invoice.deal
    late = mail.days_late(invoice)
    wording = mail.chase_wording(mail.team_manager_id(deal.rep), rung, late)
    refusal = mail.email_refusal(invoice, EmailKind.CHASE)
    reached = chase.current_rung(invoice.due_date, timezone.localdate())
    if refusal is None and (reached is None or rung > reached):
        refusal = f"Not yet: this reminder is for {rung} days after the due date."
    can_approve = (
        existing is not None
        and existing.state == EmailState.AWAITING_APPROVAL
        and can_manage(request.user)
        and managed_reps(request.user).filter(pk=deal.rep_id).exists()
    )
    context = {
        "invoice": invoice,
        "deal": deal,
        "customer": deal.customer,
        "rung": rung,
        "rung_label": chase.rung_label(rung, late),
        "is_last": chase.is_last_rung(rung),
        "preview": mail.chase_preview(wording, mail.invoice_values(invoice)),
        "existing": existing,
        "refusal": refusal,
        "can_approve": can_approve,
        "is_manager": can_manage(request.user),
    }
    return render(request, "receivables/chase.html", context)


@require_GET
def chase_now(request: HttpRequest, pk: int) -> HttpResponse:
    """The chase the invoice has reached today (a passed promise's "Email the customer"):
    its rung's page, which says how late it is; the invoice before it is due."""
    invoice = _invoice_for(request.user, pk)
    reached = chase.current_rung(invoice.due_date, timezone.localdate())
    if reached is None:
        return redirect(invoice)
    return redirect("billing:chase", pk=invoice.pk, rung=reached)


# --- the managers' Chasing page ------------------------------------------------------


def _rung_forms(manager, bound: dict | None = None) -> list[dict]:
    own = mail.chase_settings(manager.pk)
    rows = []
    for rung in chase.rungs():
        template = own.get(rung)
        wording = (
            chase.Wording(template.subject, template.body)
            if template
            else chase.default_wording(rung)
        )
        form = (bound or {}).get(rung) or ChaseTemplateForm(
            initial={
                "subject": wording.subject,
                "body": wording.body,
                "auto_send": bool(template and template.auto_send),
            },
            last_rung=chase.is_last_rung(rung),
            prefix=f"r{rung}",
        )
        rows.append(
            {
                "rung": rung,
                "label": chase.rung_label(rung),
                "is_last": chase.is_last_rung(rung),
                "form": form,
                "custom": template is not None,
                "auto": bool(template and template.auto_send),
                "preview": mail.chase_preview(wording, chase.SAMPLE_VALUES),
            }
        )
    return rows


def _chasing_page(request: HttpRequest, bound: dict | None = None, status: int = 200):
    manager = request.user
    team = managed_reps(manager)
    recent = (
        CustomerEmail.objects.filter(deal__rep__in=team)
        .select_related("invoice", "customer", "deal")
        .order_by("-created_at", "-id")[:RECENT_EMAILS]
    )
    since = timezone.now() - timedelta(days=EFFECT_DAYS)
    context = {
        "rungs": _rung_forms(manager, bound),
        "placeholders": chase.PLACEHOLDERS,
        "recent": recent,
        "waiting": CustomerEmail.objects.filter(
            deal__rep__in=team, state=EmailState.AWAITING_APPROVAL
        ).select_related("invoice", "customer"),
        "effect": selectors.chase_effect(team, since=since),
        "effect_days": EFFECT_DAYS,
    }
    return render(request, "receivables/chasing.html", context, status=status)


@require_GET
def chasing(request: HttpRequest) -> HttpResponse:
    require_manager(request.user)
    return _chasing_page(request)


@require_POST
def chasing_save(request: HttpRequest, rung: int) -> HttpResponse:
    """A manager saves one rung's wording and whether it goes by itself."""
    require_manager(request.user)
    if rung not in chase.rungs():
        return redirect("billing:chasing")
    form = ChaseTemplateForm(request.POST, last_rung=chase.is_last_rung(rung), prefix=f"r{rung}")
    if form.is_valid():
        mail.chase_template_save(manager=request.user, rung=rung, **form.cleaned_data)
        messages.success(request, f"The {chase.rung_label(rung).lower()} reminder is saved.")
        return redirect(reverse("billing:chasing") + f"#rung-{rung}")
    return _chasing_page(request, bound={rung: form}, status=422)


@require_POST
def chasing_preview(request: HttpRequest, rung: int) -> HttpResponse:
    """The live preview of the wording being typed (htmx), with an example invoice."""
    require_manager(request.user)
    if rung not in chase.rungs():
        return HttpResponse(status=404)
    form = ChaseTemplateForm(request.POST, last_rung=chase.is_last_rung(rung), prefix=f"r{rung}")
    form.is_valid()
    wording = chase.Wording(
        form.data.get(f"r{rung}-subject", ""), form.data.get(f"r{rung}-body", "")
    )
    context = {
        "row": {"rung": rung, "preview": mail.chase_preview(wording, chase.SAMPLE_VALUES)},
        "errors": [str(error) for errors in form.errors.values() for error in errors],
    }
    return render(request, "receivables/chasing.html#preview", context)
