"""The auditor's queue and call outcomes: what audits.views does, as JSON.

Who may call about an audit is decided as the call screen decides it: an
auditor, never about a deal they sold (``audits.selectors.audits_to_call``).
"""

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.utils import timezone
from ninja import Router, Status

from api.problems import FormInvalid, Problem, field_problem
from api.schemas import ERRORS, AttemptOut, AuditOut, AuditOutcomeIn
from audits import selectors, services
from audits.forms import CallOutcomeForm
from audits.models import Audit, CallScript
from pipeline.stages import IllegalMove

router = Router(tags=["audits"])


def _require_auditor(user) -> None:
    if not user.is_auditor:
        raise PermissionDenied("The audit queue is for auditors.")


def _audit_for_call(user, pk: int) -> Audit:
    _require_auditor(user)
    return get_object_or_404(selectors.audits_to_call(user), pk=pk)


@router.get("/audits/queue", response={200: list[AuditOut], **ERRORS}, summary="The queue")
def audit_queue(request: HttpRequest):
    """The auditor's queue: due now, coming, overdue, call-backs (``section``)."""
    _require_auditor(request.user)
    sections = selectors.audit_queue(auditor=request.user, now=timezone.now())
    rows = []
    for section, audits in sections.items():
        for audit in audits:
            audit.section = section
            rows.append(audit)
    return rows


@router.post("/audits/{int:audit_id}/claim", response={200: AuditOut, **ERRORS})
def audit_claim(request: HttpRequest, audit_id: int):
    """Take the call: no other auditor takes it until the claim lapses."""
    audit = _audit_for_call(request.user, audit_id)
    try:
        services.audit_claim(audit_id=audit.pk, auditor=request.user)
    except services.AuditChanged as exc:
        raise Problem(409, str(exc)) from exc
    return _audit_for_call(request.user, audit_id)


@router.post("/audits/{int:audit_id}/attempts", response={201: AttemptOut, **ERRORS})
def audit_attempt(request: HttpRequest, audit_id: int, payload: AuditOutcomeIn):
    """Record one call's outcome (the call screen's form); ``answers`` maps each
    script question's key to yes or no."""
    audit = _audit_for_call(request.user, audit_id)
    script = CallScript.objects.current()
    if script is None:
        raise Problem(404, "No call script yet: an administrator adds one.")
    data = {
        name: "" if value is None else str(value)
        for name, value in payload.model_dump(exclude={"answers"}).items()
    }
    data["script_version"] = str(script.version)
    data.update({f"answer_{key}": str(value) for key, value in payload.answers.items()})
    form = CallOutcomeForm(
        data,
        questions=script.render(audit.deal)["questions"],
        no_answer_from=audit.retry_at if services.no_answer_refusal(audit) else None,
    )
    if not form.is_valid():
        raise FormInvalid(form)
    cleaned = form.cleaned_data
    try:
        attempt = services.call_attempt_record(
            audit_id=audit.pk,
            auditor=request.user,
            outcome=cleaned["outcome"],
            expected_version=cleaned["version"],
            script=script,
            answers=form.answers,
            callback_at=cleaned["callback_at"],
            recording_ref=cleaned["recording_ref"],
            notes=cleaned["notes"],
        )
    except services.NotAllowed as exc:
        raise PermissionDenied(str(exc)) from exc
    except services.AuditChanged as exc:
        raise Problem(409, str(exc)) from exc
    except services.AuditRefused as exc:
        raise field_problem(exc.field if exc.field in form.fields else None, str(exc)) from exc
    except IllegalMove as exc:
        raise field_problem(None, f"The deal could not move: {exc}") from exc
    audit.refresh_from_db()
    return Status(
        201,
        {
            "id": attempt.pk,
            "audit_id": audit.pk,
            "outcome": attempt.outcome,
            "audit_state": audit.state,
        },
    )
