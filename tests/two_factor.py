"""Two-factor helpers shared by the test clients and the browser's log_in.

A user who needs two-factor (a manager or a superuser) gets a confirmed TOTP
device, and a test computes the current code from its secret the way an
authenticator app does.
"""

import base64
import time

from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from pipeline.accounts import two_factor_required


def device_for(user) -> TOTPDevice | None:
    """The user's confirmed TOTP device; one is made for a user who needs it."""
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if device is None and two_factor_required(user):
        device = TOTPDevice.objects.create(user=user, name="Test authenticator", confirmed=True)
    return device


def code_for(device: TOTPDevice) -> str:
    """The device's current code, usable now even if a test already used this one.

    django-otp refuses a time step it has seen (replay protection); a test that
    logs the same user in twice within 30 seconds forgets the last step used.
    """
    TOTPDevice.objects.filter(pk=device.pk).update(last_t=-1, throttling_failure_count=0)
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time()
    return f"{totp.token():0{device.digits}d}"


def code_from_secret(secret: str, at: float | None = None) -> str:
    """The six-digit code for a base32 secret as shown on the setup page."""
    key = base64.b32decode(secret.replace(" ", "").upper())
    totp = TOTP(key, step=30, t0=0, digits=6)
    totp.time = time.time() if at is None else at
    return f"{totp.token():06d}"
