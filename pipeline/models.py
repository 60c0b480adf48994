import functools
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.urls import get_script_prefix, reverse
from django.utils import timezone

from pipeline import keys
from pipeline.masking import MaskedCharField, MaskedEmailField, MaskedTextField
from pipeline.people import (  # noqa: F401 - the people are models of this app
    TIME_ZONE_CHOICES,
    Role,
    User,
    UserManager,
    UserQuerySet,
    person_name,
)
from pipeline.stages import (
    BEFORE_AUDIT_STAGES,
    CLOSED_STAGES,
    HAPPY_PATH,
    AuditFlag,
    LostReason,
    Stage,
)
from pipeline.terms import PaymentOption, Standing
from pipeline.terms_history import TermsChange  # noqa: F401  (a model of this app)


def _key_column(expression, *, max_length: int) -> models.GeneratedField:
    return models.GeneratedField(
        expression=expression,
        output_field=models.CharField(max_length=max_length),
        db_persist=True,
    )


class CustomerQuerySet(models.QuerySet):
    def visible_to(self, user) -> "CustomerQuerySet":
        """Reps see customers they sell to; managers their team's; superusers all
        (the rule pipeline.access.get_customer_for reads)."""
        if user.is_superuser:
            return self
        # Subqueries on the deals' rep index, never a join (its DISTINCT sorted every
        # customer). A rep's owned and sold-to ids are one list: "owner OR sold to" read all
        # 200,000 customers at 1M deals; a manager's team owns most, so there the OR wins.
        if user.is_manager:
            team = User.objects.team_of(user).values("pk")
            sold = Deal.objects.filter(rep_id__in=team).values("customer_id")
            return self.filter(Q(owner_id__in=team) | Q(pk__in=sold))
        if user.is_rep:
            owned = Customer.objects.filter(owner=user).values("pk")
            sold = Deal.objects.filter(rep=user).values("customer_id")
            return self.filter(pk__in=owned.union(sold, all=True))
        return self.none()


class Customer(models.Model):
    # Every text field of a customer is masked (pipeline/masking.py): a card
    # number typed as a name, a company or a phone is never stored in full.
    name = MaskedCharField(max_length=200)
    company = MaskedCharField(max_length=200, blank=True)
    phone = MaskedCharField(max_length=40)
    email = MaskedEmailField(blank=True)
    billing_contact = MaskedCharField(
        max_length=200, blank=True, help_text="Who pays the invoices, and how to reach them."
    )
    billing_email = MaskedEmailField(
        blank=True,
        help_text="Where invoices and payment reminders go (the email above when empty).",
    )
    # Set when the billing address bounced permanently (billing's sender):
    # nothing more goes to it until someone enters an address again.
    billing_email_bounced_at = models.DateTimeField(null=True, blank=True, editable=False)
    chase_by_email = models.BooleanField(
        default=True,
        help_text="Untick for a customer who must not be sent payment reminders by email.",
    )
    accounting_cutoff_day = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(31)],
        help_text="Day of the month by which their accounting needs our invoice "
        "to pay it in that month's run.",
    )
    plans_notes = MaskedTextField("plans", blank=True, help_text="Their plans and goals.")
    technology_notes = MaskedTextField(
        "technology", blank=True, help_text="The technology they use now."
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="customers"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # A copy of pipeline.terms.standing_from_history(...) for this customer,
    # refreshed by billing whenever their payment history changes, so lists
    # and the Not paid yet board can filter on it without re-reading the ledger.
    standing = models.CharField(max_length=8, choices=Standing.choices, default=Standing.NEW)
    standing_reason = MaskedCharField(max_length=200, default="No paid deal yet.")
    # A copy of the manager's allow-invoicing exception in force for this
    # customer (billing.models.TermsException), in words ("" if none), and the
    # last day it holds (empty: open-ended). Written by billing in the same
    # transaction that grants one (billing.services.invoicing_allow).
    invoicing_exception = MaskedCharField(max_length=400, blank=True, default="")
    invoicing_exception_until = models.DateField(null=True, blank=True)
    # The keys a customer is matched and searched by (pipeline/keys.py), kept
    # by the database from the columns above, whatever writes them (a save,
    # update(), the seed's COPY). Not in the change history: they are the
    # name, company, email and phone again.
    name_key = _key_column(keys.name_key_sql(), max_length=200)
    company_key = _key_column(keys.company_key_sql(), max_length=200)
    email_key = _key_column(keys.email_key_sql(), max_length=254)
    phone_key = _key_column(keys.phone_key_sql(), max_length=40)

    objects = CustomerQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        indexes = [
            models.Index(fields=["owner", "name"]),
            # Matching a customer (pipeline.sameness.match_condition: the same
            # name, email or phone) among all of them, on every new customer,
            # imported row and standing refresh; the company is read on the
            # few rows of the same name.
            models.Index(fields=["name_key"], name="customer_name_key"),
            models.Index(fields=["email_key"], name="customer_email_key"),
            models.Index(fields=["phone_key"], name="customer_phone_key"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.company})" if self.company else self.name

    def get_absolute_url(self) -> str:
        return reverse("customer_detail", args=[self.pk])

    @property
    def billing_address(self) -> str:
        """Where invoices and payment reminders are emailed: the billing address, else the email."""
        return self.billing_email or self.email

    @property
    def billing_address_bounces(self) -> bool:
        return self.billing_email_bounced_at is not None

    def invoicing_exception_on(self, day) -> str:
        """The allow-invoicing exception in force on ``day``, in words ("" if none).

        It holds through its last day (``invoicing_exception_until``, inclusive).
        """
        until = self.invoicing_exception_until
        if not self.invoicing_exception or (until is not None and day > until):
            return ""
        return self.invoicing_exception


# Deals still alive (not paid, lost or written off): the reminder scan's partial indexes.
_OPEN_DEAL = ~Q(stage__in=sorted(CLOSED_STAGES))
# The deals the Not paid yet board reads (pipeline.not_paid.NOT_PAID_YET but its
# money test, which a partial index need not repeat): the board's partial indexes.
_NOT_PAID_ROWS = Q(stage__in=["promised", "deposit", "audit_confirmed", "delivered"]) & ~Q(
    audit_flag="disputed"
)


_PK_SLOT = 2147483647


@functools.lru_cache(maxsize=8)
def _deal_url_format(script_prefix: str) -> str:
    """A deal page's URL with a slot for its id, for the current script prefix."""
    return reverse("deal_detail", args=[_PK_SLOT]).replace(str(_PK_SLOT), "{}")


def deal_url(pk: int) -> str:
    """A deal's page. Pages list 50 deals at a time: reverse() once, not once a
    row (8 ms a page)."""
    return _deal_url_format(get_script_prefix()).format(pk)


def visible_rep_condition(user) -> Q | None:
    """Whose deals ``user`` sees, as a condition on a ``rep`` column; None: everyone's.

    Reps see their own deals, managers their team's, superusers all, auditors
    none. Deals read it (``DealQuerySet.visible_to``), and so does anything
    kept per rep (the Not paid yet totals, pipeline/not_paid.py).
    """
    if user.is_superuser:
        return None
    if user.is_manager:
        # "rep IN (the team)" as a subquery: a join with an OR on the user
        # row makes PostgreSQL filter every deal after the join instead.
        return Q(rep_id__in=User.objects.team_of(user).values("pk"))
    if user.is_rep:
        return Q(rep_id=user.pk)
    return Q(pk__in=[])


def disputed_at_audit(prefix: str = "") -> Q:
    """Deals disputed at audit: awaiting the manager, or marked lost for it.

    Nothing about them counts in promised vs cleared or in commission.
    ``prefix`` reads them through a foreign key (``"deal__"``).
    """
    return Q(**{f"{prefix}audit_flag": AuditFlag.DISPUTED}) | Q(
        **{f"{prefix}stage": Stage.LOST, f"{prefix}lost_reason": LostReason.DISPUTED_AT_AUDIT}
    )


def not_disputed_at_audit(prefix: str = "") -> Q:
    """Not ``disputed_at_audit``, said as "not one of the disputed deals' ids".

    The disputed deals are few and have a partial index of their own
    (``deal_disputed_at_audit_ids``), so this is a hashed lookup in a handful
    of ids: a month's figures over tens of thousands of rows no longer join
    every deal to read its flag (billing.reports: 594 -> ~20 ms at 1,000,000 deals).
    ``prefix`` reads the deal through a foreign key (``"deal__"``).
    """
    disputed = Deal.objects.filter(disputed_at_audit()).values("pk")
    return ~Q(**{f"{prefix}pk__in": disputed})


class DealQuerySet(models.QuerySet):
    def visible_to(self, user) -> "DealQuerySet":
        """The deals ``user`` sees (``visible_rep_condition``).

        The same rule as pipeline.access.get_deal_for, which reads it here.
        """
        condition = visible_rep_condition(user)
        return self if condition is None else self.filter(condition)

    def open(self) -> "DealQuerySet":
        return self.exclude(stage__in=CLOSED_STAGES)


class Deal(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="deals")
    rep = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="deals"
    )
    # Who sold it (logged the promise): a handover changes ``rep``, never this,
    # so the sale's figures stay the seller's (pipeline.team.user_deactivate).
    sold_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    title = MaskedCharField("what is sold", max_length=200)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    payment_option = models.CharField(max_length=16, choices=PaymentOption.choices)
    deposit_required = models.BooleanField(
        default=True, help_text="Set by the terms policy when the deal is promised."
    )
    expected_delivery_date = models.DateField()
    next_step = MaskedCharField(max_length=300)
    next_step_date = models.DateField()
    notes = MaskedTextField(blank=True)

    stage = models.CharField(max_length=20, choices=Stage.choices, default=Stage.PROMISED)
    stage_changed_at = models.DateTimeField(default=timezone.now)
    lost_reason = models.CharField(max_length=32, choices=LostReason.choices, blank=True)
    promised_at = models.DateTimeField(default=timezone.now)
    # Flaked or disputed at audit (``AuditFlag``), and since when: written by
    # audits.services with the outcome; a disputed deal is off the billing
    # path, the Not paid yet board and the month's figures until its manager decides.
    audit_flag = models.CharField(
        max_length=16, choices=AuditFlag.choices, blank=True, default=AuditFlag.NONE
    )
    audit_flag_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    # Bumped by every write through the services: a form or a move made on an
    # older version is refused instead of overwriting someone else's change.
    version = models.PositiveIntegerField(default=1)
    # The deal's money, copies of what the billing ledger says, written by
    # billing in the same transaction as every payment recorded, cleared or
    # bounced (billing.services.deal_copy_money), so the pipeline decides with
    # its own data and outstanding money can be summed and sorted on at
    # 100,000 deals without aggregating the ledger on every page.
    # Cleared: the payments that cleared. Received: those pending or cleared
    # (not bounced or charged back), what the deal's amount may not go under.
    cleared_amount = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0.00"))
    received_amount = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0.00"))
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = DealQuerySet.as_manager()

    class Meta:
        ordering = ["-promised_at", "-id"]
        indexes = [
            # The pipeline board's cards (pipeline.selectors.pipeline_columns):
            # a rep's first few deals of a stage by next step, read off the index.
            # Its amount is included so the per-stage counts and totals of a
            # rep's pipeline (pipeline.selectors.stage_summary) are index-only.
            models.Index(
                fields=["rep", "stage", "next_step_date"],
                name="deal_rep_stage_next_step",
                include=["amount"],
            ),
            # A seller's month: deals promised this month (billing.reports.team_month_figures).
            # The amount and the id (``not_disputed_at_audit``) are in it, so a team's
            # month is an index-only scan, not a heap page a deal (133 -> ~10 ms for
            # a 50-rep team's 27,000 deals of the month at 1,000,000 deals); so is
            # the join of a seller's pending payments to their deals (the rep home's
            # "pending": 180 -> 22 ms for a rep with 20,000 deals).
            models.Index(
                fields=["sold_by", "promised_at"],
                name="deal_seller_promised",
                include=["amount", "id"],
            ),
            # The customers a rep sells to (Customer.objects.visible_to): index-only.
            models.Index(fields=["rep", "customer"], name="deal_rep_customer"),
            # A recount of the Not paid yet totals (pipeline.not_paid: check and
            # rebuild) and a team's unpaid deals: every column a recount reads is
            # in the index, so it is an index-only scan (72 -> 45 ms at 100,000 deals).
            models.Index(
                fields=["rep"],
                name="deal_not_paid_yet_totals",
                include=["stage", "promised_at", "stage_changed_at", "amount", "cleared_amount"],
                condition=_NOT_PAID_ROWS,
            ),
            # The board's totals count the deals last moved on the day a stage's
            # rotting limit cuts through from the deals themselves
            # (dashboards.totals): one day of one stage, an index-only range
            # (it holds every column the count reads).
            models.Index(
                fields=["stage", "stage_changed_at"],
                name="deal_not_paid_moved",
                include=["rep", "promised_at", "amount", "cleared_amount"],
                condition=_NOT_PAID_ROWS,
            ),
            # ... and the deals promised on each day an aging bucket's first
            # midnight cuts through: one day, an index-only range (3 days of a
            # 50-rep team at 1,000,000 deals: ~50 ms of heap pages -> ~10 ms).
            models.Index(
                fields=["promised_at"],
                name="deal_not_paid_promised",
                include=["rep", "stage", "amount", "cleared_amount"],
                condition=_NOT_PAID_ROWS,
            ),
            # The board sorted by what is owed or by amount (dashboards.board.SORTS):
            # the first page walks these, where it sorted every unpaid deal of the
            # team (600,000 at 1,000,000 deals: 1.5 s of SQL a page -> ~1 ms).
            models.Index(
                F("amount") - F("cleared_amount"),
                F("id"),
                name="deal_not_paid_by_outstanding",
                condition=_NOT_PAID_ROWS,
            ),
            models.Index(
                fields=["amount", "id"],
                name="deal_not_paid_by_amount",
                condition=_NOT_PAID_ROWS,
            ),
            # The deals disputed at audit, awaiting a decision or lost for it: the
            # few ids the month's figures leave out (``not_disputed_at_audit``).
            models.Index(
                fields=["id"], name="deal_disputed_at_audit_ids", condition=disputed_at_audit()
            ),
            # The disputed deals awaiting a manager's decision (board, manager home).
            models.Index(
                fields=["rep", "audit_flag_at"],
                name="deal_disputed_at_audit",
                condition=Q(audit_flag="disputed"),
            ),
            models.Index(fields=["stage", "promised_at"]),
            # Reminder scan (reminders/rules/pipeline.py): open deals by the date
            # that calls for a nag, so a scan that finds nothing new stays cheap.
            models.Index(fields=["promised_at"], name="deal_open_promised", condition=_OPEN_DEAL),
            models.Index(
                fields=["next_step_date"], name="deal_open_next_step", condition=_OPEN_DEAL
            ),
            models.Index(
                fields=["expected_delivery_date"],
                name="deal_open_undelivered",
                condition=_OPEN_DEAL & Q(delivered_at__isnull=True),
            ),
            models.Index(
                fields=["delivered_at"],
                name="deal_delivered",
                condition=Q(delivered_at__isnull=False),
            ),
            # The reminders' quick scan re-checks the deals changed lately.
            models.Index(fields=["updated_at"], name="deal_updated"),
            # The deals list, newest first (/deals/): a manager's team holds most
            # deals, so walking this index and keeping the team's beats sorting
            # them all (331 ms -> under 1 ms for a 50-rep team at 100,000 deals).
            models.Index(fields=["-promised_at", "-id"], name="deal_newest_first"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="deal_amount_positive"),
            models.CheckConstraint(
                condition=Q(stage=Stage.LOST, lost_reason__gt="") | ~Q(stage=Stage.LOST),
                name="deal_lost_has_reason",
            ),
            # Cleared money is part of the money received, and Cleared never
            # takes more than the amount (billing.services.payment_record).
            models.CheckConstraint(
                condition=Q(
                    cleared_amount__gte=0,
                    cleared_amount__lte=F("received_amount"),
                    received_amount__lte=F("amount"),
                ),
                name="deal_money_copies_consistent",
            ),
            models.CheckConstraint(
                condition=Q(audit_flag="", audit_flag_at__isnull=True)
                | (~Q(audit_flag="") & Q(audit_flag_at__isnull=False)),
                name="deal_audit_flag_has_its_time",
            ),
            # Flaked or disputed happens before the audit is confirmed; a move
            # past it (or to lost) clears the flag (pipeline.services.deal_move).
            models.CheckConstraint(
                condition=Q(audit_flag="") | Q(stage__in=[s.value for s in BEFORE_AUDIT_STAGES]),
                name="deal_audit_flag_only_before_audit",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title} — {self.customer.name}"

    def get_absolute_url(self) -> str:
        return deal_url(self.pk)

    @property
    def needs_audit(self) -> bool:
        """Billed deals are closed twice; a card handed over at close affirms consent."""
        return self.payment_option != PaymentOption.UPFRONT

    @property
    def is_disputed(self) -> bool:
        """Disputed at audit and awaiting the manager's decision."""
        return self.audit_flag == AuditFlag.DISPUTED

    def cleared_money_move(self) -> tuple[str, str] | None:
        """Where cleared money moves this deal, and why, or None: the stage follows
        the money (DOMAIN.md, "It isn't a sale until you're paid").

        Delivered and covered by cleared money (``cleared_amount``, the copy
        billing keeps of its ledger) → Payment cleared; Payment cleared and no
        longer covered (a bounce) → Delivered. The one definition:
        ``pipeline.services.deal_move`` (marked Delivered when the money is
        already in) and ``billing.services.deal_sync_stage`` (after every money
        write) both follow it.
        """
        covered = self.cleared_amount >= self.amount
        if self.stage == Stage.DELIVERED and covered:
            return Stage.PAYMENT_CLEARED, "Cleared payments cover the amount."
        if self.stage == Stage.PAYMENT_CLEARED and not covered:
            return Stage.DELIVERED, "A payment bounced: the balance is open again."
        return None

    @property
    def audit_passed(self) -> bool:
        """Needs no audit, or its audit is confirmed (it reached Audit confirmed or later)."""
        if not self.needs_audit:
            return True
        if self.stage not in HAPPY_PATH:
            return False
        return HAPPY_PATH.index(Stage(self.stage)) >= HAPPY_PATH.index(Stage.AUDIT_CONFIRMED)

    def needs_stage(self, stage: str) -> bool:
        if stage == Stage.DEPOSIT:
            return self.deposit_required
        if stage == Stage.AUDIT_CONFIRMED:
            return self.needs_audit
        return True

    def why_stage_needed(self, stage: str) -> str:
        if stage == Stage.DEPOSIT:
            if self.payment_option == PaymentOption.ON_FILE:
                return "the customer's card or account must be secured on file."
            if self.payment_option == PaymentOption.UPFRONT:
                return "an upfront deal is paid in full at the close."
            return "the terms require a deposit from this customer."
        if stage == Stage.AUDIT_CONFIRMED:
            return "a billed sale is confirmed by an auditor's call before delivery."
        return f"{Stage(stage).label} comes first."

    def why_stage_not_needed(self, stage: str) -> str:
        if stage == Stage.AUDIT_CONFIRMED:
            return "This deal needs no audit: the customer paid upfront by card."
        if stage == Stage.DEPOSIT:
            return "This deal needs no deposit: its terms do not require one."
        return f"This deal does not go through {Stage(stage).label}."

    @property
    def outstanding(self) -> Decimal:
        """What the customer still owes: cleared money is the only money that counts."""
        return self.amount - self.cleared_amount

    @property
    def is_closed(self) -> bool:
        return self.stage in CLOSED_STAGES

    @property
    def next_step_overdue(self) -> bool:
        return not self.is_closed and self.next_step_date < timezone.localdate()


# A deal's timeline: its moves, handovers and touches (pipeline/timeline.py).
# Every change on the record (pipeline/history.py); duplicates decided and merged.
from pipeline.deal_changes import DealChange  # noqa: E402, F401 - the domain event's outbox
from pipeline.history import USER_UNTRACKED, UserHistoryMeta, track  # noqa: E402
from pipeline.not_paid import NotPaidTotal  # noqa: E402, F401 - the board's totals, kept exact
from pipeline.sameness import CustomerDistinct, CustomerMerge  # noqa: E402, F401
from pipeline.timeline import Reassignment, StageEvent, Touch, TouchKind  # noqa: E402, F401

track(Deal, excluded_fields=["updated_at"])
track(Customer, excluded_fields=["name_key", "company_key", "email_key", "phone_key"])
track(User, excluded_fields=USER_UNTRACKED, bases=(UserHistoryMeta,))
