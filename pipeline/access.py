"""Who may see and change what: the one module that decides it.

Views call it first (check access, call one service, render); services call
it where a rule names a role. The rules:

- A **manager** (or a superuser) manages: clears payments, waives deposits,
  sees the board and the Team page (``can_manage``, ``require_manager``).
- A **seller** is a rep or a manager (or a superuser): deals, customers and
  money pages are theirs; an auditor who only audits gets a 404 there
  (``is_seller``, ``require_seller``).
- **The team** of a manager is the reps whose manager they are, and the
  manager; a superuser's team is everyone; anyone else has none
  (``team_members``). The team itself is defined once, in
  ``User.objects.team_of`` (pipeline/models.py), which the querysets'
  ``visible_to`` methods read too: models cannot import this module, which
  imports them.
- A **deal** is visible to its rep, to the managers of its rep's team and to
  superusers; never to an auditor as such (``get_deal_for``). A customer
  likewise, through the deals and the owner (``get_customer_for``). Anything
  else is a 404, never a hint it exists.
"""

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404

from pipeline.compiled import Compiled, where_key
from pipeline.models import Customer, Deal, Role, User
from pipeline.people import person_name


def can_manage(user: User | None) -> bool:
    """A manager or a superuser: may do what the product leaves to managers."""
    return user is not None and (user.is_manager or user.is_superuser)


def is_seller(user: User | None) -> bool:
    """A rep or a manager (or a superuser): someone with deals of their own or a team's."""
    return user is not None and (user.is_rep or can_manage(user))


def require_manager(user: User | None, message: str = "Only a manager can do this.") -> None:
    """PermissionDenied (a 403) unless the user manages."""
    if not can_manage(user):
        raise PermissionDenied(message)


def require_seller(user: User | None, message: str = "This is for reps and managers.") -> None:
    """Http404 unless the user sells or manages (an auditor's pages are elsewhere)."""
    if not is_seller(user):
        raise Http404(message)


def manages_rep(user: User | None, rep: User) -> bool:
    """The rep's own manager (never the rep themself), or a superuser."""
    if user is None:
        return False
    if user.is_superuser:
        return True
    return user.is_manager and rep.pk != user.pk and rep.manager_id == user.pk


def team_members(user: User) -> QuerySet:
    """A manager's reps and the manager; everyone for a superuser; nobody otherwise."""
    if user.is_superuser:
        return User.objects.all()
    if user.is_manager:
        return User.objects.team_of(user)
    return User.objects.none()


def team_sellers(user: User) -> QuerySet:
    """The sellers on a user's team: their reps, and themself if they sell too
    (every rep for a superuser; nobody for a non-manager)."""
    if user.is_superuser:
        return User.objects.filter(groups__name=Role.REP).distinct()
    if user.is_manager:
        # The team, less the manager unless they sell (a Rep group row joins in).
        sellers = Q(manager=user) | Q(pk=user.pk, groups__name=Role.REP)
        return User.objects.filter(sellers).distinct()
    return User.objects.none()


@dataclass(frozen=True, slots=True)
class Seller:
    """A seller as a list shows them: their id and their name (``str(user)``)."""

    pk: int
    username: str
    first_name: str
    last_name: str

    def __str__(self) -> str:
        return person_name(self.first_name, self.last_name, self.username)


_SELLERS = Compiled(
    lambda user: (
        team_sellers(user)
        .order_by("username")
        .values_list("pk", "username", "first_name", "last_name")
    )
)


def team_seller_list(user: User) -> list[Seller]:
    """``team_sellers(user)`` by username, as ``Seller`` values: the board's rep
    filter and month rows. Compiled once per team (its SQL and parameters)."""
    team = where_key(team_sellers(user))
    if team is None:
        return []
    return [Seller(*row) for row in _SELLERS.rows(user, key=team)]


def managed_reps(user: User) -> QuerySet:
    """The reps a user manages (the Team page): a manager's own reps
    (``User.manager``), every rep for a superuser, nobody for anyone else. A
    forged id of another team's rep looked up here is a 404."""
    if user.is_superuser:
        return User.objects.filter(groups__name=Role.REP)
    if user.is_manager:
        return User.objects.reps_of(user)
    return User.objects.none()


def get_deal_for(user: User, pk: int, *, for_update: bool = False) -> Deal:
    """The deal, if this user may see it; a 404 otherwise (never a hint it exists).

    ``for_update`` locks the row (inside a transaction) instead of joining
    the customer and the rep.
    """
    deals = Deal.objects.visible_to(user)
    deals = deals.select_for_update() if for_update else deals.select_related("customer", "rep")
    return get_object_or_404(deals, pk=pk)


def get_customer_for(user: User, pk: int) -> Customer:
    """The customer, if this user may see them; a 404 otherwise."""
    return get_object_or_404(Customer.objects.visible_to(user), pk=pk)
