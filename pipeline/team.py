"""A manager's team: who is on it, inviting a rep, a leaver handing over their work.

Business rules that write (``team_invite``, ``user_deactivate``); who is on
whose team is pipeline.access's (``managed_reps``). Commission rates
are billing's (``billing.services.commission_rate_set``); billing adds its
column to the Team page through ``team_columns`` (pipeline never imports
billing for it); the reminders app hands a leaver's open reminders over
through ``handover_parts`` (pipeline never imports reminders).
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import Group
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import Count, F, Q, QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from pipeline.access import managed_reps
from pipeline.models import Customer, Deal, Reassignment, Role, User
from pipeline.stages import CLOSED_STAGES


class TeamError(Exception):
    """A team rule refused the change; nothing was written. ``field`` names
    the form field the message belongs next to, if any."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


# --- who is on a team -------------------------------------------------------


def team_page_members(user: User) -> QuerySet:
    """The Team page's rows: each rep with their count of open deals, in one query."""
    return (
        managed_reps(user)
        .annotate(open_deals=Count("deals", filter=~Q(deals__stage__in=sorted(CLOSED_STAGES))))
        .order_by("-is_active", "first_name", "last_name", "username")
    )


@dataclass(frozen=True)
class TeamColumn:
    """A column another app adds to the Team page: ``values(members)`` returns
    one value per member id (in a fixed number of queries), rendered by
    ``template`` with ``member`` and ``value``."""

    heading: str
    template: str
    values: Callable[[list[User]], dict]


team_columns: list[TeamColumn] = []


def register_team_column(column: TeamColumn) -> None:
    """Called from another app's ``AppConfig.ready()`` (billing: commission rate)."""
    if column not in team_columns:
        team_columns.append(column)


# --- inviting a rep ----------------------------------------------------------


def invitation_lifetime() -> str:
    """How long an invitation link works, in words ("3 hours", "2 days"): what
    Django's token generator enforces, ``PASSWORD_RESET_TIMEOUT`` (seconds). The
    email, the Team page and the flash all say this, so they cannot disagree."""
    seconds = settings.PASSWORD_RESET_TIMEOUT
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    hours = seconds / 3600
    return f"{hours:.1f} hours" if seconds >= 3600 else f"{seconds} seconds"


def invitation_path(user: User) -> str:
    """The link that lets an invited rep set their password: one use, it
    expires with ``PASSWORD_RESET_TIMEOUT`` (Django's token generator; setting
    the password or logging in spends it)."""
    uidb64 = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    return reverse("team_join", args=[uidb64, token])


@transaction.atomic
def team_invite(
    *, manager: User, email: str, first_name: str = "", last_name: str = "", username: str = ""
) -> User:
    """Put a new rep on the manager's team and email them a link to set a password.

    The account has no usable password until they follow the link. The
    username is the one typed, else the email address. Raises TeamError for a
    username or email already in use, or an invitation by someone who manages
    no team.
    """
    if not manager.is_manager:
        raise TeamError("Only a manager can invite a rep to their team.")
    email = User.objects.normalize_email(email.strip()).lower()
    username = (username or email).strip()
    try:
        User.username_validator(username)
    except ValidationError as exc:
        raise TeamError(exc.messages[0], field="username") from exc
    if User.objects.filter(email__iexact=email).exists():
        raise TeamError("Someone already has an account with this email.", field="email")
    if User.objects.filter(username__iexact=username).exists():
        raise TeamError("This username is taken: type another.", field="username")
    rep = User(
        username=username,
        email=email,
        first_name=first_name.strip(),
        last_name=last_name.strip(),
        manager=manager,
        time_zone=manager.time_zone,
    )
    rep.set_unusable_password()
    rep.save()
    rep.groups.add(Group.objects.get_or_create(name=Role.REP)[0])
    link = settings.CLEARED_SITE_URL + invitation_path(rep)
    message = EmailMessage(
        "You're invited to Cleared",
        f"{manager} added you to their team on Cleared.\n\n"
        f"Set your password here (the link works once, for "
        f"{invitation_lifetime()}):\n{link}\n\n"
        f"Your username: {rep.username}\n",
        to=[email],
    )
    transaction.on_commit(message.send)
    return rep


# --- a leaver ----------------------------------------------------------------


@dataclass(frozen=True)
class HandoverPart:
    """Open work another app keeps for a person, handed over with a leaver's deals
    (the reminders app registers their open reminders). ``count(user)`` is how
    much they have open (the deactivate page says so before anyone confirms);
    ``hand_over(leaver=, successor=, at=)`` gives it to the successor inside the
    handover's transaction and returns how much it moved. ``noun`` is singular."""

    noun: str
    count: Callable[[User], int]
    hand_over: Callable[..., int]


handover_parts: list[HandoverPart] = []


def register_handover_part(part: HandoverPart) -> None:
    """Called from another app's ``AppConfig.ready()`` (reminders: open reminders)."""
    if part not in handover_parts:
        handover_parts.append(part)


def open_work_of(user: User) -> list[tuple[str, int]]:
    """(noun, how many) for each app's open work a leaver would hand over, deals first."""
    deals = Deal.objects.filter(rep=user).open().count()
    return [("open deal", deals)] + [(part.noun, part.count(user)) for part in handover_parts]


def _counted(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


@dataclass(frozen=True)
class Handover:
    """What a leaver handed to their successor: deals, customers, then each app's part."""

    deals: int
    customers: int
    parts: tuple[tuple[str, int], ...] = ()

    def __str__(self) -> str:
        """In words, for the page's message: 2 open deals, 1 customer and 1 reminder."""
        said = [_counted(self.deals, "open deal"), _counted(self.customers, "customer")]
        said += [_counted(count, noun) for noun, count in self.parts]
        return f"{', '.join(said[:-1])} and {said[-1]}"


@transaction.atomic
def user_deactivate(*, manager: User, leaver: User, successor: User) -> Handover:
    """Deactivate a rep who leaves and hand their open work to a teammate, all or nothing.

    Their open deals go to ``successor`` (each with a Reassignment record on
    its timeline), so do the customers of those deals the leaver owned, and
    their open reminders. Audits follow their deal, so a pending audit now
    names the successor. Closed deals and earned commission stay theirs. The
    leaver can no longer log in: an inactive user's sessions stop working at
    their next request (Django's ModelBackend refuses inactive users).
    Raises TeamError if either is not on the manager's team, the successor is
    the leaver or inactive, or the leaver already left.
    """
    team = managed_reps(manager)
    # Both rows locked, in id order, so two managers' handovers cannot cross.
    locked = {
        u.pk: u
        for u in team.select_for_update().filter(pk__in=[leaver.pk, successor.pk]).order_by("pk")
    }
    leaver, successor = locked.get(leaver.pk), locked.get(successor.pk)
    if leaver is None or successor is None:
        raise TeamError("Both people must be reps on your team.")
    if leaver.pk == successor.pk:
        raise TeamError("Choose someone else to take over.", field="successor")
    if successor.manager_id != leaver.manager_id or not successor.is_active:
        raise TeamError("The rep taking over must be active on the same team.", field="successor")
    if not leaver.is_active:
        raise TeamError(f"{leaver} has already left.")
    now = timezone.now()
    deal_ids = list(
        Deal.objects.select_for_update()
        .filter(rep=leaver)
        .open()
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    Deal.objects.filter(pk__in=deal_ids).update(
        rep=successor, version=F("version") + 1, updated_at=now
    )
    reason = f"{leaver} left the team; {successor} takes over."
    Reassignment.objects.bulk_create(
        Reassignment(
            deal_id=pk, from_rep=leaver, to_rep=successor, actor=manager, at=now, reason=reason
        )
        for pk in deal_ids
    )
    customers = Customer.objects.filter(
        owner=leaver, pk__in=Deal.objects.filter(pk__in=deal_ids).values("customer_id")
    ).update(owner=successor)
    parts = tuple(
        (part.noun, part.hand_over(leaver=leaver, successor=successor, at=now))
        for part in handover_parts
    )
    leaver.is_active = False
    leaver.save(update_fields=["is_active"])
    return Handover(deals=len(deal_ids), customers=customers, parts=parts)
