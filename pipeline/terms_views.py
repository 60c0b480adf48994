"""The manager's answer to a rep's change of frozen terms (``pipeline.terms_freeze``).

Only the deal's rep's manager (or a superuser) finds the request: anyone
else, and any forged id, gets a 404.
"""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from pipeline import access, services
from pipeline.stages import IllegalMove
from pipeline.terms_history import TermsChange


def _changes_to_decide(user):
    if user.is_superuser:
        return TermsChange.objects.all()
    if not user.is_manager:
        return TermsChange.objects.none()
    return TermsChange.objects.filter(deal__rep__manager=user).exclude(deal__rep=user)


@require_POST
def terms_change_decide(request: HttpRequest, pk: int) -> HttpResponse:
    access.require_seller(request.user)
    change = get_object_or_404(_changes_to_decide(request.user), pk=pk)
    decision = request.POST.get("decision", "")
    if decision not in ("approve", "decline"):
        raise Http404("Approve or decline.")
    try:
        change = services.terms_change_decide(
            change_id=change.pk,
            manager=request.user,
            approve=decision == "approve",
            note=request.POST.get("note", ""),
        )
    except PermissionDenied as exc:
        raise Http404(str(exc)) from exc
    except IllegalMove as exc:
        messages.error(request, str(exc))
    else:
        verb = "approved: the new terms apply" if decision == "approve" else "declined"
        messages.success(request, f"The terms change on deal #{change.deal_id} is {verb}.")
    back = request.POST.get("next", "")
    if back and url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        return redirect(back)
    return redirect(change.deal)
