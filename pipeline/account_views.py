"""Account pages: the code step, two-factor setup, recovery codes, the security page.

The rules live in pipeline.accounts; these views check, call one service, render.
"""

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST
from django_otp.plugins.otp_static.models import StaticToken

from pipeline import accounts, enrollment
from pipeline.account_forms import CodeForm, CurrentPasswordForm, SetPasswordForm

# The recovery codes just made, kept in the session until shown (once).
RECOVERY_CODES_SESSION_KEY = "cleared_recovery_codes"


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("home")


def _with_next(name: str, next_url: str) -> str:
    url = reverse(name)
    if next_url == reverse("home"):
        return url
    return f"{url}?{urlencode({'next': next_url}, safe='/')}"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """Django's view; a new password also lifts the login lockouts of the user."""

    form_class = SetPasswordForm

    def form_valid(self, form):
        response = super().form_valid(form)
        accounts.login_lockouts_clear(user=form.user)
        return response


@never_cache
def two_factor_verify(request: HttpRequest) -> HttpResponse:
    next_url = _next_url(request)
    if request.user.is_verified():
        return redirect(next_url)
    form = CodeForm(request.POST or None)
    if form.is_valid():
        try:
            accounts.two_factor_verify(request=request, code=form.cleaned_data["code"])
        except accounts.CodeRefused as refused:
            form.add_error("code", str(refused))
        else:
            return redirect(next_url)
    return render(request, "registration/two_factor_verify.html", {"form": form, "next": next_url})


@never_cache
def two_factor_setup(request: HttpRequest) -> HttpResponse:
    next_url = _next_url(request)
    if accounts.user_has_device(request.user):
        # Replacing a device takes the code of the current one first.
        if not request.user.is_verified():
            return redirect(_with_next("two_factor_verify", next_url))
        return redirect("account_security")
    if accounts.two_factor_required(request.user):
        # Never with the password alone: the enrollment link an operator sends.
        context = {"message": accounts.SELF_ENROLLMENT_REFUSED}
        return render(request, "registration/two_factor_ask_operator.html", context, status=403)
    device = accounts.two_factor_setup_device(user=request.user)
    form = CodeForm(request.POST or None)
    if form.is_valid():
        try:
            codes = accounts.two_factor_confirm(request=request, code=form.cleaned_data["code"])
        except accounts.CodeRefused as refused:
            form.add_error("code", str(refused))
        else:
            request.session[RECOVERY_CODES_SESSION_KEY] = codes
            return redirect(_with_next("two_factor_recovery_codes", next_url))
    context = {
        "form": form,
        "next": next_url,
        "qr_code": accounts.qr_code_svg(device),
        "secret": accounts.secret_for_display(device),
        "required": accounts.two_factor_required(request.user),
    }
    return render(request, "registration/two_factor_setup.html", context)


@login_not_required
@never_cache
def two_factor_enroll(request: HttpRequest, uidb64: str, token: str) -> HttpResponse:
    """Set up two-factor from an enrollment link (pipeline.enrollment).

    A new account chooses its password here too; an existing one types it.
    With a right first code the person is logged in, verified, and shown
    their recovery codes. An expired, used or forged link gets a page that
    says so, never the form.
    """
    user = enrollment.enrollment_user(uidb64, token)
    if user is None:
        return render(request, "registration/two_factor_enroll.html", {"invalid": True}, status=400)
    data = request.POST if request.method == "POST" else None
    new_account = not user.has_usable_password()
    password_form = SetPasswordForm(user, data) if new_account else CurrentPasswordForm(user, data)
    code_form = CodeForm(data)
    # The password comes first: the cursor starts there.
    code_form.fields["code"].widget.attrs.pop("autofocus", None)
    next(iter(password_form.fields.values())).widget.attrs["autofocus"] = True
    if data is not None and password_form.is_valid() and code_form.is_valid():
        try:
            codes = enrollment.account_enroll(
                request=request,
                user=user,
                code=code_form.cleaned_data["code"],
                new_password=password_form.cleaned_data["new_password1"] if new_account else None,
            )
        except accounts.CodeRefused as refused:
            code_form.add_error("code", str(refused))
        else:
            request.session[RECOVERY_CODES_SESSION_KEY] = codes
            return redirect("two_factor_recovery_codes")
    device = accounts.two_factor_setup_device(user=user)
    context = {
        "person": user,
        "new_account": new_account,
        "password_form": password_form,
        "code_form": code_form,
        "qr_code": accounts.qr_code_svg(device),
        "secret": accounts.secret_for_display(device),
    }
    status = 422 if data is not None else 200
    return render(request, "registration/two_factor_enroll.html", context, status=status)


@never_cache
def two_factor_recovery_codes(request: HttpRequest) -> HttpResponse:
    codes = request.session.pop(RECOVERY_CODES_SESSION_KEY, None)
    context = {"codes": codes, "next": _next_url(request)}
    return render(request, "registration/two_factor_recovery_codes.html", context)


@never_cache
def account_security(request: HttpRequest) -> HttpResponse:
    user = request.user
    context = {
        "has_two_factor": accounts.user_has_device(user),
        "required": accounts.two_factor_required(user),
        "recovery_codes_left": StaticToken.objects.filter(device__user=user).count(),
    }
    return render(request, "registration/security.html", context)


@require_POST
def recovery_codes_regenerate(request: HttpRequest) -> HttpResponse:
    if not accounts.user_has_device(request.user):
        return redirect("two_factor_setup")
    request.session[RECOVERY_CODES_SESSION_KEY] = accounts.recovery_codes_regenerate(
        user=request.user
    )
    return redirect("two_factor_recovery_codes")


@require_POST
def two_factor_remove(request: HttpRequest) -> HttpResponse:
    try:
        accounts.two_factor_remove(request=request)
    except PermissionError as refused:
        raise PermissionDenied(str(refused)) from refused
    messages.success(request, "Two-factor is off. Log-ins ask for your password only.")
    return redirect("account_security")


@require_POST
def log_out_everywhere(request: HttpRequest) -> HttpResponse:
    accounts.user_log_out_everywhere(user=request.user)
    logout(request)
    messages.success(request, "You are logged out everywhere, here too.")
    return redirect("login")
