"""Setting up two-factor from a link: the invitation and the operators' reset.

Whoever must use two-factor (a manager, a superuser: ``accounts.two_factor_required``)
never sets it up with the password alone: a password known to someone else
would let them enroll their own phone. They set it up from an **enrollment
link**, which an operator sends (or the team's invitation becomes, for an
invited rep who is made a manager before joining):

- a new account (no usable password yet) chooses its password and confirms
  its first code on the same page;
- an existing one (an operator reset a lost phone) types its password and
  confirms its first code: the link alone, or the password alone, is not enough.

The link works once and expires like the invitation (``PASSWORD_RESET_TIMEOUT``):
confirming an authenticator, changing the password, logging in, another reset
or "log out everywhere" spends it (``EnrollmentTokenGenerator``).
"""

from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core.mail import EmailMessage
from django.db import transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils.encoding import force_bytes, force_str
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from pipeline import accounts
from pipeline.models import User


class EnrollmentTokenGenerator(PasswordResetTokenGenerator):
    """Django's password-reset token (the password hash and the last log-in are in
    it; it expires with ``PASSWORD_RESET_TIMEOUT``), with the session epoch and
    the confirmed authenticators mixed in, so enrolling or a reset spends it."""

    key_salt = "pipeline.enrollment.EnrollmentTokenGenerator"

    def _make_hash_value(self, user, timestamp) -> str:
        devices = TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk")
        confirmed = ",".join(str(pk) for pk in devices.values_list("pk", flat=True))
        return f"{super()._make_hash_value(user, timestamp)}|{user.session_epoch}|{confirmed}"


enrollment_tokens = EnrollmentTokenGenerator()


class EnrollmentRefused(Exception):
    """An operator's reset that cannot be done; the message says why."""


def enrollment_path(user: User) -> str:
    uidb64 = urlsafe_base64_encode(force_bytes(user.pk))
    return reverse("two_factor_enroll", args=[uidb64, enrollment_tokens.make_token(user)])


def enrollment_user(uidb64: str, token: str) -> User | None:
    """The active user an enrollment link is for, or None if it is expired, used or forged."""
    try:
        user = User.objects.get(pk=int(force_str(urlsafe_base64_decode(uidb64))), is_active=True)
    except (ValueError, OverflowError, User.DoesNotExist):
        return None
    return user if enrollment_tokens.check_token(user, token) else None


def link_lifetime() -> str:
    """How long an invitation or enrollment link works, in words ("3 hours", "2 days"):
    what Django's token generator enforces, ``PASSWORD_RESET_TIMEOUT`` (seconds). The
    emails, the Team page and the flash all say this, so they cannot disagree."""
    seconds = settings.PASSWORD_RESET_TIMEOUT
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    hours = seconds / 3600
    return f"{hours:.1f} hours" if seconds >= 3600 else f"{seconds} seconds"


@transaction.atomic
def two_factor_reset_by_operator(*, user: User, operator: User | None) -> str:
    """An operator starts someone's two-factor again; returns the new enrollment link.

    Every authenticator and recovery code of the user goes, their sessions
    end, and the link is emailed to them (if they have an address) and
    returned for the operator to show or hand over. ``operator`` is None from
    the command line (``manage.py two_factor_link``). Raises EnrollmentRefused
    if the operator is not a superuser, or resets their own (another operator
    does that, or the command line: an operator who lost their phone has no
    verified session to do it from).
    """
    if operator is not None:
        if not operator.is_superuser:
            raise EnrollmentRefused("Only an operator (a superuser) resets two-factor.")
        if operator.pk == user.pk:
            raise EnrollmentRefused(
                "You can't reset your own two-factor: ask another operator, "
                "or run manage.py two_factor_link on the server."
            )
    if not user.is_active:
        raise EnrollmentRefused(f"{user.get_username()} is deactivated.")
    accounts.two_factor_reset(user=user)
    link = settings.CLEARED_SITE_URL + enrollment_path(user)
    if user.email:
        message = EmailMessage(
            "Set up two-factor on Cleared",
            "An operator reset the two-factor of your Cleared account.\n\n"
            f"Set it up again here (the link works once, for {link_lifetime()}): you will "
            "need your password and your phone's authenticator app.\n"
            f"{link}\n\n"
            f"Your username: {user.get_username()}\n"
            "If you did not ask for this, tell your operator.\n",
            to=[user.email],
        )
        transaction.on_commit(message.send)
    return link


def account_enroll(
    *, request: HttpRequest, user: User, code: str, new_password: str | None = None
) -> list[str]:
    """Set up two-factor from an enrollment link, then open a verified session.

    The first code confirms the device being set up (accounts.two_factor_enroll_device,
    which ends every other session of the user); ``new_password`` is set with it
    for a new account (the form checked it, or the current password). Returns
    the new recovery codes. Raises accounts.CodeRefused for a wrong code, and
    then nothing is changed.
    """
    device, codes = accounts.two_factor_enroll_device(user=user, code=code)
    if new_password is not None:
        user.set_password(new_password)
        user.save(update_fields=["password"])
    accounts.login_lockouts_clear(user=user)
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    otp_login(request, device)
    request.session[accounts.SESSION_HAS_DEVICE] = True
    return codes
