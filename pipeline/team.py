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
from pipeline.accounts import validate_no_card_number
from pipeline.enrollment import link_lifetime
from pipeline.history import history_record_update
from pipeline.models import Customer, Deal, Reassignment, Role, User
from pipeline.stages import CLOSED_STAGES
from pipeline.text import single_line


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
    username or email already in use or holding a card number (never stored,
    never emailed), or an invitation by someone who manages no team. Names
    are made one line: they end up in email headers.
    """
    if not manager.is_manager:
        raise TeamError("Only a manager can invite a rep to their team.")
    email = User.objects.normalize_email(email.strip()).lower()
    username = (username or email).strip()
    for field, value, validators in (
        ("email", email, [validate_no_card_number]),
        ("username", username, [validate_no_card_number, User.username_validator]),
    ):
        try:
            for validate in validators:
                validate(value)
        except ValidationError as exc:
            raise TeamError(exc.messages[0], field=field) from exc
    if User.objects.filter(email__iexact=email).exists():
        raise TeamError("Someone already has an account with this email.", field="email")
    if User.objects.filter(username__iexact=username).exists():
        raise TeamError("This username is taken: type another.", field="username")
    rep = User(
        username=username,
        email=email,
        first_name=single_line(first_name),
        last_name=single_line(last_name),
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
        f"Set your password here (the link works once, for {link_lifetime()}):\n{link}\n\n"
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
    customers = customers_left_with(user).count()
    return [("open deal", deals), ("customer", customers)] + [
        (part.noun, part.count(user)) for part in handover_parts
    ]


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


def _lock_pair(manager: User, leaver: User, successor: User) -> tuple[User, User]:
    """Both rows locked, in id order, so two managers' handovers cannot cross, and
    a deal or customer the leaver is logging meanwhile waits for the handover
    (``deal_promise`` and ``customer_add`` lock their rep's row too)."""
    team = managed_reps(manager)
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
    return leaver, successor


def customers_left_with(user: User) -> QuerySet:
    """The customers a leaver's successor takes: theirs with an open deal, or with no deal yet.

    A customer whose deals are all closed stays with the rep who sold them (history).
    """
    with_open_deal = Deal.objects.open().values("customer_id")
    return Customer.objects.filter(owner=user).filter(
        Q(pk__in=with_open_deal) | Q(deals__isnull=True)
    )


def _hand_over(*, manager: User, leaver: User, successor: User) -> Handover:
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
    history_record_update(Deal, deal_ids)
    reason = f"{leaver} left the team; {successor} takes over."
    Reassignment.objects.bulk_create(
        Reassignment(
            deal_id=pk, from_rep=leaver, to_rep=successor, actor=manager, at=now, reason=reason
        )
        for pk in deal_ids
    )
    customer_ids = list(customers_left_with(leaver).values_list("pk", flat=True))
    customers = Customer.objects.filter(pk__in=customer_ids).update(owner=successor)
    history_record_update(Customer, customer_ids)
    parts = tuple(
        (part.noun, part.hand_over(leaver=leaver, successor=successor, at=now))
        for part in handover_parts
    )
    return Handover(deals=len(deal_ids), customers=customers, parts=parts)


@transaction.atomic
def user_deactivate(*, manager: User, leaver: User, successor: User) -> Handover:
    """Deactivate a rep who leaves and hand their open work to a teammate, all or nothing.

    Their open deals go to ``successor`` (each with a Reassignment record on
    its timeline), so do their customers with an open deal or no deal yet,
    and their open reminders. Audits follow their deal, so a pending audit now
    names the successor (its ``Audit.rep`` still names the leaver, who sold
    it: the report keeps their figures). Closed deals and earned commission
    stay theirs. The leaver can no longer log in: an inactive user's sessions
    stop working at their next request (Django's ModelBackend refuses
    inactive users), and nothing new is logged in their name (``deal_promise``
    and ``customer_add`` refuse an inactive rep, after waiting on the row
    lock taken here: a deal being logged at this instant is either handed
    over or refused, never left behind).
    Raises TeamError if either is not on the manager's team, the successor is
    the leaver or inactive, or the leaver already left.
    """
    leaver, successor = _lock_pair(manager, leaver, successor)
    if not leaver.is_active:
        raise TeamError(f"{leaver} has already left.")
    handover = _hand_over(manager=manager, leaver=leaver, successor=successor)
    leaver.is_active = False
    leaver.save(update_fields=["is_active"])
    return handover


@transaction.atomic
def leaver_hand_over(*, manager: User, leaver: User, successor: User) -> Handover:
    """Hand work still left with someone who already left to an active teammate.

    Anything open found with an inactive person (the Team page lists it,
    ``work_left_with_leavers``) goes the way ``user_deactivate`` sends it.
    """
    leaver, successor = _lock_pair(manager, leaver, successor)
    if leaver.is_active:
        raise TeamError(f"{leaver} is still active: deactivate them to hand their work over.")
    return _hand_over(manager=manager, leaver=leaver, successor=successor)


def work_left_with_leavers(manager: User) -> list[tuple[User, list[tuple[str, int]]]]:
    """The inactive people of the manager's team who still hold open work, with
    (noun, how many) of it: should be none, and the Team page says so if not."""
    left = []
    for person in managed_reps(manager).filter(is_active=False).order_by("first_name", "pk"):
        work = [(noun, n) for noun, n in open_work_of(person) if n]
        if work:
            left.append((person, work))
    return left
