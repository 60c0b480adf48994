"""The people of Cleared: their roles, the ``User`` model and how a person is named.

Part of ``pipeline.models`` (which imports it, so ``pipeline.models.User`` and
``Role`` are where they always were); kept apart for its subject. Imports no
other model of the app.
"""

import zoneinfo

from django.conf import settings
from django.contrib.auth.models import AbstractUser, Group
from django.contrib.auth.models import UserManager as DjangoUserManager
from django.db import models
from django.db.models import Q
from django.utils.crypto import salted_hmac
from django.utils.functional import cached_property

from pipeline.compiled import Compiled, Slot
from pipeline.masking import MaskedCharField, MaskedEmailField

TIME_ZONE_CHOICES = [(name, name) for name in sorted(zoneinfo.available_timezones())]


class Role(models.TextChoices):
    REP = "Rep", "Rep"
    MANAGER = "Manager", "Manager"
    AUDITOR = "Auditor", "Auditor"


class UserQuerySet(models.QuerySet):
    # "The team" is defined here, once, below pipeline.access (which decides who
    # may see what and calls these) and the ``visible_to`` methods of the
    # querysets below (which cannot import pipeline.access: it imports them).

    def team_of(self, manager) -> "UserQuerySet":
        """A manager's team: the reps whose manager they are, and the manager."""
        return self.filter(Q(manager=manager) | Q(pk=manager.pk))

    def reps_of(self, manager) -> "UserQuerySet":
        """The people whose manager is ``manager`` (``User.manager``), not the manager."""
        return self.filter(manager=manager)


class UserManager(DjangoUserManager.from_queryset(UserQuerySet)):
    pass


_ROLE_NAMES = Compiled(
    lambda: Group.objects.filter(user=Slot("user", models.BigIntegerField())).values_list("name")
)


class User(AbstractUser):
    """A person at work in Cleared. The role is a Django group (see Role)."""

    # Names and contacts are masked like any free text (pipeline/masking.py).
    # Not masked, on purpose: ``username`` (the login id; its validator keeps it
    # a word) and ``password`` (a hash).
    first_name = MaskedCharField("first name", max_length=150, blank=True)
    last_name = MaskedCharField("last name", max_length=150, blank=True)
    email = MaskedEmailField("email address", blank=True)
    time_zone = models.CharField(
        max_length=64, choices=TIME_ZONE_CHOICES, default=settings.DEFAULT_USER_TIME_ZONE
    )
    direct_phone = MaskedCharField(
        max_length=40, blank=True, help_text="Given to customers at wrap-up."
    )
    manager = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="team",
        help_text="For a rep: the manager whose team they are on.",
    )
    # "Log out everywhere" raises it: it feeds the hash every session is signed
    # with, so each session made before stops validating (pipeline.accounts).
    session_epoch = models.PositiveIntegerField(default=0, editable=False)

    objects = UserManager()

    def _get_session_auth_hash(self, secret=None) -> str:
        # Django's hash of the password (also called for SECRET_KEY_FALLBACKS),
        # mixed with the epoch once raised; at 0 it is Django's own, so no
        # session ends when this ships.
        password_hash = super()._get_session_auth_hash(secret=secret)
        if not self.session_epoch:
            return password_hash
        return salted_hmac(
            "pipeline.User.session_epoch",
            f"{password_hash}:{self.session_epoch}",
            secret=secret,
            algorithm="sha256",
        ).hexdigest()

    @cached_property
    def role_names(self) -> frozenset[str]:
        """The person's roles (their groups' names), read once an instance: every
        page asks (the nav, the access checks), so the query is compiled once."""
        return frozenset(name for (name,) in _ROLE_NAMES.rows(user=self.pk))

    @property
    def is_rep(self) -> bool:
        return Role.REP in self.role_names

    @property
    def is_manager(self) -> bool:
        return Role.MANAGER in self.role_names

    @property
    def is_auditor(self) -> bool:
        return Role.AUDITOR in self.role_names

    @property
    def role(self) -> str | None:
        """The user's main role; a manager who also sells is a manager."""
        for role in (Role.MANAGER, Role.AUDITOR, Role.REP):
            if role in self.role_names:
                return role
        return None

    def __str__(self) -> str:
        return person_name(self.first_name, self.last_name, self.username)


def person_name(first_name: str, last_name: str, username: str) -> str:
    """How a person is named on a page (``str(user)``): the full name, else the
    username. Rows read as values (the board's) name their people with it too."""
    return f"{first_name} {last_name}".strip() or username
