"""Accounts: who needs two-factor, the code step, recovery codes, log out everywhere.

The rules, in one place:
- Managers and superusers must use two-factor (time-based codes, django-otp);
  reps and auditors may. The admin needs a verified session whoever asks.
- After the password step, a user with a device is asked for a code. A user
  who must have one and has none is held on a page that tells them to ask an
  operator: they set it up from the enrollment link (the invitation, or the
  operator's reset: pipeline.enrollment), never with the password alone.
  Reps and auditors may set it up themselves. ``TwoFactorMiddleware`` sends
  them there; ``EXEMPT_VIEW_NAMES`` is the one list of pages reachable before
  the code (static files are served before any view by WhiteNoise).
- Recovery codes are django-otp static tokens: shown once, each usable once.
- Guessing passwords is throttled by django-axes in the database (settings:
  ``AXES_*``); ``lockout_response`` tells the person when to try again. What
  the throttle stores is masked (``throttle_username``, ``ThrottleHandler``):
  a card number typed as a username is never kept in full.
"""

import math
import re
from base64 import b32encode
from io import BytesIO

import qrcode
import qrcode.image.svg
from axes.handlers.database import AxesDatabaseHandler
from axes.utils import reset as axes_reset
from django.conf import settings
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.signals import user_logged_in
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django_htmx.http import HttpResponseClientRedirect
from django_otp import DEVICE_ID_SESSION_KEY, devices_for_user
from django_otp import login as otp_login
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from pipeline.access import can_manage
from pipeline.masking import contains_card_number, mask_card_numbers
from pipeline.models import User

RECOVERY_CODE_COUNT = 10
# Set at the password step: does this session's user have a device? Saves a
# query on every request of the many reps who have none.
SESSION_HAS_DEVICE = "cleared_two_factor_device"
# Reachable after the password step and before the code (or its setup).
EXEMPT_VIEW_NAMES = frozenset(
    {
        "login",
        "logout",
        "password_reset",
        "password_reset_done",
        "password_reset_confirm",
        "password_reset_complete",
        "two_factor_verify",
        "two_factor_setup",
        "two_factor_enroll",
        "healthz",
    }
)


class CodeRefused(Exception):
    """A one-time code that does not open the session; the message says why."""


def validate_no_card_number(value: str) -> None:
    """A username or email address never holds a card number.

    Neither can be masked like other text (one is the login id, the other is
    where mail goes), so a card number in them would be stored and emailed in
    full: it is refused, with a message next to the field.
    """
    if contains_card_number(value):
        raise ValidationError(
            "This looks like a card number: a username or email address can't contain one.",
            code="card_number",
        )


def two_factor_required(user) -> bool:
    """Managers and superusers (those who manage: pipeline.access.can_manage)."""
    return can_manage(user)


def client_address(request: HttpRequest) -> str | None:
    """The address a guess came from, for the login throttle.

    Behind ``CLEARED_PROXY_COUNT`` proxies it is that many from the right of
    X-Forwarded-For (the entries further left are the client's to forge).
    """
    proxies = settings.CLEARED_PROXY_COUNT
    if proxies:
        forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        if len(forwarded) >= proxies and forwarded[-proxies]:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR")


def lockout_response(request, original_response=None, credentials=None) -> HttpResponse:
    """The login page again, saying when this username may try from here again."""
    until = timezone.localtime(timezone.now() + settings.AXES_COOLOFF_TIME)
    username = (credentials or {}).get("username") or request.POST.get("username", "")
    form = AuthenticationForm(request, initial={"username": username})
    minutes = math.ceil(settings.AXES_COOLOFF_TIME.total_seconds() / 60)
    context = {"form": form, "locked_until": until, "cooloff_minutes": minutes}
    return render(request, "registration/login.html", context, status=429)


def login_lockouts_clear(*, user: User) -> None:
    """A password reset by email proves the person: their lockouts end with it."""
    axes_reset(username=_throttle_key(user.get_username()))


def throttle_username(request: HttpRequest, credentials: dict | None = None) -> str | None:
    """The username the login throttle counts failures of and stores (``AXES_USERNAME_CALLABLE``).

    The one typed, with any card number in it masked (pipeline.masking): a card
    number typed into the username box is not kept in full, and the same
    username always gives the same key, so lockouts still count per username.
    """
    if credentials:
        username = credentials.get(settings.AXES_USERNAME_FORM_FIELD)
    else:
        username = getattr(request, "POST", {}).get(settings.AXES_USERNAME_FORM_FIELD)
    return _throttle_key(username)


def _throttle_key(username: str | None) -> str | None:
    return mask_card_numbers(username) if isinstance(username, str) else username


class ThrottleHandler(AxesDatabaseHandler):
    """django-axes' database handler, storing the client's details masked.

    Besides the username (``throttle_username``), an attempt row keeps the
    user agent, path, Accept header and the query and form data (passwords
    already starred out by axes): anything a client sends, so each is masked
    before axes writes it.
    """

    def user_login_failed(self, sender, credentials: dict, request=None, **kwargs):
        if request is None:
            return super().user_login_failed(sender, credentials, request, **kwargs)
        _mask_client_details(request)
        query, form = request.GET, request.POST
        request.GET, request.POST = _masked_query(query), _masked_query(form)
        try:
            return super().user_login_failed(sender, credentials, request, **kwargs)
        finally:
            request.GET, request.POST = query, form

    def user_logged_in(self, sender, request, user, **kwargs):
        _mask_client_details(request)
        return super().user_logged_in(sender, request, user, **kwargs)

    def user_logged_out(self, sender, request, user, **kwargs):
        _mask_client_details(request)
        return super().user_logged_out(sender, request, user, **kwargs)


_CLIENT_DETAILS = ("axes_user_agent", "axes_path_info", "axes_http_accept")


def _mask_client_details(request) -> None:
    for name in _CLIENT_DETAILS:
        value = getattr(request, name, None)
        if isinstance(value, str):
            setattr(request, name, mask_card_numbers(value))


def _masked_query(query: QueryDict) -> QueryDict:
    masked = QueryDict(mutable=True)
    for key, values in query.lists():
        masked.setlist(mask_card_numbers(key), [mask_card_numbers(value) for value in values])
    return masked


# --- The code step -------------------------------------------------------------


def connect_signals() -> None:
    user_logged_in.connect(_remember_whether_the_user_has_a_device, dispatch_uid="two_factor")


def _remember_whether_the_user_has_a_device(sender, request, user, **kwargs):
    if request is not None and hasattr(request, "session"):
        request.session[SESSION_HAS_DEVICE] = user_has_device(user)


def user_has_device(user) -> bool:
    return any(True for _ in devices_for_user(user, confirmed=True))


class TwoFactorMiddleware:
    """Send a signed-in user who owes a code to the code page (or its setup)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        user = request.user
        match = request.resolver_match
        if not user.is_authenticated or match.view_name in EXEMPT_VIEW_NAMES:
            return None
        if user.is_verified():
            return None
        if _session_has_device(request, user):
            target = "two_factor_verify"
        elif two_factor_required(user) or "admin" in match.app_names:
            target = "two_factor_setup"
        else:
            return None
        query = QueryDict(mutable=True)
        query["next"] = request.get_full_path()
        url = f"{reverse(target)}?{query.urlencode(safe='/')}"
        if getattr(request, "htmx", False):
            return HttpResponseClientRedirect(url)
        return redirect(url)


def _session_has_device(request, user) -> bool:
    if SESSION_HAS_DEVICE not in request.session:  # a session older than this rule
        request.session[SESSION_HAS_DEVICE] = user_has_device(user)
    return request.session[SESSION_HAS_DEVICE]


def two_factor_verify(*, request: HttpRequest, code: str) -> None:
    """Open the session with a code from the user's app, or a recovery code.

    Six digits are a time-based code; anything else a recovery code, which is
    used up. Wrong codes slow the next try down (django-otp doubles the wait).
    """
    user = request.user
    code = re.sub(r"[\s-]", "", code)
    if re.fullmatch(r"\d{6}", code):
        devices = TOTPDevice.objects.devices_for_user(user, confirmed=True)
    else:
        code = code.lower()
        devices = StaticDevice.objects.devices_for_user(user, confirmed=True)
    for device in devices:
        with transaction.atomic():
            device = type(device).objects.select_for_update().get(pk=device.pk)
            _check_not_throttled(device)
            if device.verify_token(code):
                otp_login(request, device)
                return
    raise CodeRefused(
        "That code didn't match. Type the 6 digits your app shows now, or a recovery code."
    )


def _check_not_throttled(device) -> None:
    allowed, details = device.verify_is_allowed()
    if not allowed:
        wait = math.ceil((details["locked_until"] - timezone.now()).total_seconds())
        raise CodeRefused(f"Too many wrong codes: wait {max(wait, 1)} s and try again.")


# --- Setting two-factor up and down -----------------------------------------------


def two_factor_setup_device(*, user: User) -> TOTPDevice:
    """The device being set up: the same secret until it is confirmed."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)
    return device


class SelfEnrollmentRefused(PermissionError):
    """Someone who must use two-factor sets it up only from an enrollment link."""


def two_factor_confirm(*, request: HttpRequest, code: str) -> list[str]:
    """Turn optional two-factor on with a first code from the app; returns new recovery codes.

    Only for those who may go without (reps, auditors): a manager or superuser
    sets it up from the enrollment link (pipeline.enrollment), never with the
    password alone, or whoever knew the password could enroll their own phone.
    Other sessions of the user end (they were opened without the code), this
    one is verified.
    """
    user = request.user
    if two_factor_required(user):
        raise SelfEnrollmentRefused(SELF_ENROLLMENT_REFUSED)
    device, codes = two_factor_enroll_device(user=user, code=code)
    update_session_auth_hash(request, user)
    otp_login(request, device)
    request.session[SESSION_HAS_DEVICE] = True
    return codes


SELF_ENROLLMENT_REFUSED = (
    "Managers and operators set up two-factor from a link an operator sends: "
    "ask an operator for one."
)


def two_factor_enroll_device(*, user: User, code: str) -> tuple[TOTPDevice, list[str]]:
    """Confirm the device being set up with a first code from the app.

    Returns the device and 10 new recovery codes. Every session of the user
    ends (they were opened without the code); the caller opens the verified
    one. Raises CodeRefused for a wrong code (its count is kept: the next try
    waits) or when a device is confirmed already.
    """
    if user_has_device(user):
        raise CodeRefused("Two-factor is on already: turn it off first to use another phone.")
    with transaction.atomic():  # a wrong code's count is kept: no exception inside
        device = two_factor_setup_device(user=user)
        device = TOTPDevice.objects.select_for_update().get(pk=device.pk)
        allowed, _ = device.verify_is_allowed()
        accepted = allowed and device.verify_token(re.sub(r"\s", "", code))
    if not allowed:
        _check_not_throttled(device)
    if not accepted:
        raise CodeRefused("That code didn't match. Type the 6 digits your app shows now.")
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        codes = recovery_codes_regenerate(user=user)
        user_log_out_everywhere(user=user)
    return device, codes


def recovery_codes_regenerate(*, user: User) -> list[str]:
    """Replace the user's recovery codes with new ones (each works once)."""
    device, _ = StaticDevice.objects.get_or_create(
        user=user, name="Recovery codes", defaults={"confirmed": True}
    )
    device.token_set.all().delete()
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODE_COUNT)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    return codes


def two_factor_reset(*, user: User) -> None:
    """Take every authenticator and recovery code of the user away and end their sessions.

    The operators' reset (pipeline.enrollment): the person sets it up again
    from a new enrollment link.
    """
    with transaction.atomic():
        for device in devices_for_user(user, confirmed=None):
            device.delete()
        user_log_out_everywhere(user=user)


def two_factor_remove(*, request: HttpRequest) -> None:
    """Turn optional two-factor off; a manager or superuser may not."""
    user = request.user
    if two_factor_required(user):
        raise PermissionError("Managers and superusers must keep two-factor on.")
    for device in devices_for_user(user, confirmed=None):
        device.delete()
    request.session.pop(DEVICE_ID_SESSION_KEY, None)
    request.session[SESSION_HAS_DEVICE] = False


def user_log_out_everywhere(*, user: User) -> None:
    """End every session of the user: each was signed with the old epoch."""
    User.objects.filter(pk=user.pk).update(session_epoch=F("session_epoch") + 1)
    user.refresh_from_db(fields=["session_epoch"])


def qr_code_svg(device: TOTPDevice) -> str:
    """The device's otpauth:// URL as an inline SVG (no image request, no CDN)."""
    image = qrcode.make(
        device.config_url, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=2
    )
    buffer = BytesIO()
    image.save(buffer)
    svg = buffer.getvalue().decode()
    svg = svg[svg.index("<svg") :]  # drop the XML declaration
    label = 'role="img" aria-label="QR image to scan with your authenticator app" class="qr"'
    return svg.replace("<svg ", f"<svg {label} ", 1)


def secret_for_display(device: TOTPDevice) -> str:
    """The base32 secret in groups of four, for typing into an app by hand."""
    secret = b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
