"""manage.py two_factor_link USERNAME: a link to set up two-factor, for the first operator.

Managers and superusers set up two-factor only from such a link
(pipeline.enrollment); an operator sends one from the admin (the users'
"Reset two-factor" action). The first superuser, made with createsuperuser,
has no operator to ask: this prints their link. ``--reset`` replaces an
authenticator that is set up already (a lost phone).
"""

from django.core.management.base import BaseCommand, CommandError

from pipeline import accounts, enrollment
from pipeline.models import User


class Command(BaseCommand):
    help = "Print a one-time link with which USERNAME sets up two-factor (and emails it)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "--reset",
            action="store_true",
            help="Take away the authenticator and recovery codes the user has now.",
        )

    def handle(self, *args, username: str, reset: bool, **options):
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}.")
        if accounts.user_has_device(user) and not reset:
            raise CommandError(
                f"{username} has two-factor set up already: --reset takes it away first."
            )
        try:
            link = enrollment.two_factor_reset_by_operator(user=user, operator=None)
        except enrollment.EnrollmentRefused as refused:
            raise CommandError(str(refused)) from refused
        self.stdout.write(
            f"{link}\n(works once, for {enrollment.link_lifetime()}; "
            f"{'emailed to ' + user.email if user.email else 'no email address'})"
        )
