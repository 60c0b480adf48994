"""Audit pages: the rep's wrap-up, the auditors' queue and call screen, the manager's report.

Access: deals through ``pipeline.access.get_deal_for`` (the deals a user may
see, never an auditor's), managers through ``pipeline.access.require_manager``;
the auditor's side here, ``_require_auditor`` and ``_get_audit_for_call`` (an
auditor, never on a deal they sold). A wrong role gets 403; an audit or deal
the user may not touch is 404, never a hint it exists.
"""

from datetime import timedelta

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from audits import selectors, services
from audits.forms import CallOutcomeForm, DisputeDecisionForm, WrapUpForm
from audits.models import Audit, AuditState, CallScript
from pipeline.access import get_deal_for, require_manager
from pipeline.models import Deal
from pipeline.stages import IllegalMove


def _redirect(request: HttpRequest, url: str) -> HttpResponse:
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def _require_auditor(user) -> None:
    if not user.is_auditor:
        raise PermissionDenied("The audit queue is for auditors.")


def _get_audit_for_call(user, pk: int) -> Audit:
    """An audit this auditor may call about: never one of their own sales."""
    _require_auditor(user)
    return get_object_or_404(selectors.audits_to_call(user), pk=pk)


# --- The rep's side -----------------------------------------------------------


def wrap_up(request: HttpRequest, deal_pk: int) -> HttpResponse:
    """The wrap-up checklist: fill it with the customer, then hand the deal to audit."""
    deal = get_deal_for(request.user, deal_pk)
    refusal = services.wrap_up_refusal(deal)
    # Bound on every POST, even an empty one: it comes back with its messages.
    form = WrapUpForm(request.POST if request.method == "POST" else None, deal=deal)
    status = 200
    if request.method == "POST":
        if refusal:
            form.add_error(None, refusal)
        elif form.is_valid():
            try:
                services.wrap_up_hand_over(deal_id=deal.pk, rep=request.user, **form.cleaned_data)
            except services.AuditRefused as exc:
                form.add_error(exc.field if exc.field in form.fields else None, str(exc))
            except services.NotAllowed as exc:
                raise PermissionDenied(str(exc)) from exc
            else:
                messages.success(request, "Wrapped up: the deal is in the audit queue.")
                return _redirect(request, deal.get_absolute_url())
        status = 422
    context = {"deal": deal, "form": form, "refusal": refusal}
    template = "audits/wrap_up.html#wrap-up-form" if request.htmx else "audits/wrap_up.html"
    return render(request, template, context, status=status)


# --- The auditors' queue and call screen ------------------------------------------


def queue(request: HttpRequest) -> HttpResponse:
    """The audit queue; polled by htmx, which swaps just the ``queue`` partial."""
    _require_auditor(request.user)
    now = timezone.now()
    context = {
        "sections": selectors.audit_queue(auditor=request.user, now=now),
        "now": now,
    }
    template = "audits/queue.html#queue" if request.htmx else "audits/queue.html"
    return render(request, template, context)


@require_POST
def claim(request: HttpRequest, pk: int) -> HttpResponse:
    audit = _get_audit_for_call(request.user, pk)
    try:
        audit = services.audit_claim(audit_id=audit.pk, auditor=request.user)
    except services.AuditChanged as exc:
        messages.warning(request, str(exc))
        return _redirect(request, reverse("audits:queue"))
    until = timezone.localtime(audit.claim_expires_at).strftime("%H:%M")
    messages.success(request, f"This call is yours until {until}: no other auditor will take it.")
    return _redirect(request, reverse("audits:call", args=[audit.pk]))


@require_POST
def release(request: HttpRequest, pk: int) -> HttpResponse:
    audit = _get_audit_for_call(request.user, pk)
    if services.audit_release(audit_id=audit.pk, auditor=request.user):
        messages.info(request, "Released: another auditor can take this call.")
    return _redirect(request, reverse("audits:queue"))


def _call_context(request: HttpRequest, audit: Audit, form: CallOutcomeForm | None = None) -> dict:
    script = CallScript.objects.current()
    if script is None:
        raise Http404("No call script yet: an administrator adds one.")
    rendered = script.render(audit.deal)
    no_answer_from = audit.retry_at if services.no_answer_refusal(audit) else None
    if form is None:
        form = CallOutcomeForm(
            questions=rendered["questions"],
            no_answer_from=no_answer_from,
            initial={"version": audit.version, "script_version": script.version},
        )
    return {
        "audit": audit,
        "deal": audit.deal,
        "script": script,
        "rendered": rendered,
        "form": form,
        "holds_claim": audit.is_claimed_by(request.user),
        "too_early": services.call_window_refusal(audit) if audit.is_open else None,
        "now": timezone.now(),
        "attempts": audit.attempts.select_related("auditor", "script"),
    }


def _render_call(request: HttpRequest, audit: Audit, status: int = 200, **kwargs) -> HttpResponse:
    template = "audits/call.html#call-body" if request.htmx else "audits/call.html"
    return render(request, template, _call_context(request, audit, **kwargs), status=status)


def call(request: HttpRequest, pk: int) -> HttpResponse:
    """The call screen: who to phone, when, and the script with the deal's facts."""
    return _render_call(request, _get_audit_for_call(request.user, pk))


@require_POST
def attempt_new(request: HttpRequest, pk: int) -> HttpResponse:
    """Record one call's outcome; the stage move it causes is in the same transaction."""
    audit = _get_audit_for_call(request.user, pk)
    script = CallScript.objects.current()
    form = CallOutcomeForm(
        request.POST,
        questions=script.render(audit.deal)["questions"],
        no_answer_from=audit.retry_at if services.no_answer_refusal(audit) else None,
    )
    if form.is_valid():
        data = form.cleaned_data
        script_used = CallScript.objects.filter(version=data["script_version"]).first() or script
        try:
            attempt = services.call_attempt_record(
                audit_id=audit.pk,
                auditor=request.user,
                outcome=data["outcome"],
                expected_version=data["version"],
                script=script_used,
                answers=form.answers,
                callback_at=data["callback_at"],
                recording_ref=data["recording_ref"],
                notes=data["notes"],
            )
        except services.NotAllowed as exc:
            raise PermissionDenied(str(exc)) from exc
        except services.AuditChanged as exc:
            messages.warning(request, str(exc))
            audit = _get_audit_for_call(request.user, pk)
            return _render_call(request, audit, status=409)
        except services.AuditRefused as exc:
            form.add_error(exc.field if exc.field in form.fields else None, str(exc))
        except IllegalMove as exc:
            form.add_error(None, f"The deal could not move: {exc}")
        else:
            audit.refresh_from_db()
            messages.success(
                request,
                f"{attempt.get_outcome_display()} recorded for {audit.deal.customer.name}: "
                f"the audit is {audit.get_state_display().lower()}.",
            )
            return _redirect(request, reverse("audits:queue"))
    return _render_call(request, audit, status=422, form=form)


# --- The manager's decision on a dispute ------------------------------------------


def _dispute_for(user, deal_pk: int) -> tuple[Deal, Audit]:
    """The deal (one the user may see) and its latest disputed audit; 404 otherwise."""
    deal = get_deal_for(user, deal_pk)
    audit = (
        deal.audits.filter(state=AuditState.DISPUTED)
        .select_related("decided_by", "wrap_up")
        .prefetch_related("attempts__auditor")
        .order_by("-closed_at", "-id")
        .first()
    )
    if audit is None:
        raise Http404("This deal was not disputed at audit.")
    return deal, audit


def dispute(request: HttpRequest, deal_pk: int) -> HttpResponse:
    """A sale disputed at audit: what the customer said, and the manager's decision.

    Everyone who may see the deal sees the page; only the rep's manager
    decides (the form is theirs). A decision already taken, by a double
    click or another manager, is not taken twice: the page says what was decided.
    """
    deal, audit = _dispute_for(request.user, deal_pk)
    may_decide = services.may_decide(request.user, deal)
    final = services.is_second_dispute(audit)
    form = DisputeDecisionForm(request.POST if request.method == "POST" else None, final=final)
    status = 200
    if request.method == "POST":
        if not may_decide:
            raise PermissionDenied("Only the rep's manager decides a disputed sale.")
        if form.is_valid():
            try:
                services.audit_dispute_decide(
                    audit_id=audit.pk, manager=request.user, **form.cleaned_data
                )
            except services.AuditChanged as exc:
                messages.warning(request, str(exc))
                return _redirect(request, deal.get_absolute_url())
            except services.AuditRefused as exc:
                form.add_error(exc.field if exc.field in form.fields else None, str(exc))
            except services.NotAllowed as exc:
                raise PermissionDenied(str(exc)) from exc
            except IllegalMove as exc:
                form.add_error(None, str(exc))
            else:
                audit.refresh_from_db()
                messages.success(request, f"Decided: {audit.get_decision_display().lower()}.")
                return _redirect(request, deal.get_absolute_url())
        status = 422
    context = {
        "deal": deal,
        "audit": audit,
        "disputed_call": next((a for a in audit.attempts.all() if a.outcome == "disputed"), None),
        "form": form,
        "may_decide": may_decide and audit.awaits_decision,
        "final": final,
    }
    return render(request, "audits/dispute.html", context, status=status)


# --- The manager's report ------------------------------------------------------


def report(request: HttpRequest) -> HttpResponse:
    """Per rep and per auditor, how the team's sales fare at audit; read-only."""
    user = request.user
    require_manager(user, "The audit report is for managers.")
    now = timezone.now()
    context = {
        "report": selectors.audit_report(manager=user),
        "overdue": selectors.audits_overdue(now).filter(deal__in=Deal.objects.visible_to(user)),
        "escalated": selectors.audits_escalated(manager=user, since=now - timedelta(days=14)),
        "now": now,
    }
    return render(request, "audits/report.html", context)
