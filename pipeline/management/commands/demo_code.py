import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice


class Command(BaseCommand):
    help = "Print a demo user's current two-factor code (for `make run`; refuses with DEBUG off)."

    def add_arguments(self, parser):
        parser.add_argument("username", nargs="?", default="manager")

    def handle(self, *args, username, **options):
        if not settings.DEBUG:
            raise CommandError("demo_code prints a login code: not with DEBUG off.")
        device = TOTPDevice.objects.filter(user__username=username, confirmed=True).first()
        if device is None:
            raise CommandError(f"{username} has no two-factor device.")
        totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
        totp.time = time.time()
        left = device.step - int(totp.time - device.t0) % device.step
        self.stdout.write(f"{totp.token():0{device.digits}d}  ({username}, valid {left} s more)")
