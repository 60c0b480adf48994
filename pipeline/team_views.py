"""The Team page: a manager's reps, inviting one, a leaver handing over their work.

Only managers (and superusers) see it; every member is looked up through
``pipeline.access.managed_reps``, so another team's rep is a 404. Commission
rates are billing's: billing adds a column here (``team_columns``) and owns
the rate form (``billing.views.commission_rate``).
"""

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.forms import SetPasswordForm
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.encoding import force_str
from django.utils.http import urlsafe_base64_decode
from django.views.decorators.http import require_POST

from pipeline import access, accounts, enrollment, team
from pipeline.forms import HandoverForm, InviteForm, parse_id


def _team_page(request: HttpRequest, invite_form: InviteForm, status: int = 200) -> HttpResponse:
    members = list(team.team_page_members(request.user))
    columns = [(column, column.values(members)) for column in team.team_columns]
    # Each cell carries its column's heading: on a phone the row is a card that names it.
    rows = [
        (member, [(column.heading, column.template, got.get(member.pk)) for column, got in columns])
        for member in members
    ]
    context = {
        "rows": rows,
        "headings": [column.heading for column, _ in columns],
        "invite_form": invite_form if request.user.is_manager else None,
        # Should be empty: open work still in the name of someone who left.
        "left_with_leavers": team.work_left_with_leavers(request.user),
        "invitation_lifetime": enrollment.link_lifetime(),
    }
    return render(request, "pipeline/team.html", context, status=status)


def team_page(request: HttpRequest) -> HttpResponse:
    access.require_manager(request.user, "The Team page is for managers.")
    return _team_page(request, InviteForm())


@require_POST
def team_invite(request: HttpRequest) -> HttpResponse:
    if not request.user.is_manager:
        raise PermissionDenied("Only a manager invites reps to their team.")
    form = InviteForm(request.POST)
    if form.is_valid():
        try:
            rep = team.team_invite(manager=request.user, **form.cleaned_data)
        except team.TeamError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, str(exc))
        else:
            messages.success(
                request,
                f"{rep} is on your team: an invitation to set a password went to {rep.email} "
                f"(its link works for {enrollment.link_lifetime()}).",
            )
            return redirect("team")
    return _team_page(request, form, status=422)


def team_deactivate(request: HttpRequest, pk: int) -> HttpResponse:
    """Deactivate a leaver and hand their open work to a teammate, in one step."""
    access.require_manager(request.user, "The Team page is for managers.")
    reps = access.managed_reps(request.user)
    # An inactive person still holding work (the Team page lists them) is handed over here too.
    leaver = get_object_or_404(reps, pk=pk)
    successors = reps.filter(is_active=True, manager_id=leaver.manager_id).exclude(pk=leaver.pk)
    if request.method == "POST":
        chosen = request.POST.get("successor", "")
        # A forged successor (another team's rep, the leaver, someone who left, not an
        # id at all) is a 404.
        successor_id = parse_id(chosen)
        if chosen and (successor_id is None or not successors.filter(pk=successor_id).exists()):
            raise Http404("No such rep on this team.")
    form = HandoverForm(
        request.POST if request.method == "POST" else None,
        successors=successors.order_by("first_name"),
    )
    if form.is_valid():
        hand_over = team.user_deactivate if leaver.is_active else team.leaver_hand_over
        try:
            handover = hand_over(
                manager=request.user, leaver=leaver, successor=form.cleaned_data["successor"]
            )
        except team.TeamError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, str(exc))
        else:
            successor = form.cleaned_data["successor"]
            done = f"{leaver} is deactivated. " if leaver.is_active else ""
            messages.success(request, f"{done}{successor} took over {handover}.")
            return redirect("team")
    open_work = team.open_work_of(leaver)
    context = {"leaver": leaver, "form": form, "open_work": open_work}
    status = 422 if form.is_bound and form.errors else 200
    return render(request, "pipeline/team_deactivate.html", context, status=status)


@login_not_required
def team_join(request: HttpRequest, uidb64: str, token: str) -> HttpResponse:
    """An invited rep sets their password from the emailed link, then logs in.

    The link is Django's password-reset token: it expires, and setting the
    password spends it. An expired, used or forged link gets a page that says
    so, never the form.
    """
    try:
        pk = int(force_str(urlsafe_base64_decode(uidb64)))
        user = get_user_model().objects.get(pk=pk, is_active=True)
    except (ValueError, OverflowError, get_user_model().DoesNotExist):
        user = None
    if user is None or not default_token_generator.check_token(user, token):
        return render(request, "pipeline/team_join.html", {"invalid": True}, status=400)
    if accounts.two_factor_required(user):
        return redirect(enrollment.enrollment_path(user))
    form = SetPasswordForm(user, request.POST if request.method == "POST" else None)
    if form.is_valid():
        form.save()
        messages.success(request, "Your password is set: log in with it.")
        return redirect("login")
    status = 422 if form.is_bound else 200
    return render(request, "pipeline/team_join.html", {"form": form, "person": user}, status=status)
