"""Commission: the rates a manager sets for a rep (append-only, from a day on) and the
entries earned on cleared money or clawed back."""

from datetime import date
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

# --- Terms exceptions -------------------------------------------
from billing.models.ledger import Payment, Refund
from pipeline.ledger import AppendOnlyModel
from pipeline.models import Deal

# --- Commission -------------------------------------------


class CommissionRate(AppendOnlyModel):
    """A rep's own commission rate from a day on, instead of ``CLEARED_COMMISSION_RATE``.

    A history, never edited: a new rate is a new row effective from today or a
    later day, and the rate in force on a day is the row with the latest
    ``effective_from`` on or before it (the last one set, if two share a day).
    Commission entries copy the rate they were earned at, so a new rate never
    changes money already earned.
    """

    rep = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="commission_rates"
    )
    rate = models.DecimalField(
        max_digits=5, decimal_places=4, help_text="0.1200 is 12% of cleared money."
    )
    effective_from = models.DateField(help_text="The first day (the rep's own) it is in force.")
    set_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    set_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["rep", "-effective_from", "-id"]
        indexes = [
            models.Index(fields=["rep", "-effective_from", "-id"], name="commission_rate_in_force")
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(rate__gte=0) & Q(rate__lte=1), name="commission_rate_0_to_1"
            )
        ]

    def __str__(self) -> str:
        return f"{self.rep}: {self.percent} from {self.effective_from}"

    @property
    def percent(self) -> str:
        """As people read it: "12.00 %"."""
        return rate_percent(self.rate)

    @classmethod
    def in_force(cls, rep_id: int, day: date) -> Decimal:
        """The rep's rate on ``day``: their own, else ``CLEARED_COMMISSION_RATE``."""
        own = (
            cls.objects.filter(rep_id=rep_id, effective_from__lte=day)
            .order_by("-effective_from", "-id")
            .values_list("rate", flat=True)
            .first()
        )
        return own if own is not None else settings.CLEARED_COMMISSION_RATE


def rate_percent(rate: Decimal) -> str:
    """A commission rate (a fraction) as a percent with two decimals: "5.00 %"."""
    return f"{rate * 100:.2f} %"


class CommissionKind(models.TextChoices):
    EARNED = "earned", "Earned"
    CLAWBACK = "clawback", "Clawback"
    # Part of the commission a refund takes back (proportional to the money given back).
    REFUND = "refund", "Refund clawback"
    # A refund the processor refused: the commission it took back is earned again.
    REFUND_FAILED = "refund_failed", "Refund failed, earned again"


class CommissionEntry(AppendOnlyModel):
    """Commission earned when a payment clears, or clawed back when it bounces later
    or is refunded (in part: one entry per refund, ``refund`` set).

    ``base`` is the cleared money the entry is for (negative on a clawback)
    and ``amount`` the commission, rounded half up to the cent. At most one
    earned and one clawback per payment, and one of each refund kind per
    refund, held by the database.
    """

    rep = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="commission_entries"
    )
    deal = models.ForeignKey(Deal, on_delete=models.PROTECT, related_name="commission_entries")
    payment = models.ForeignKey(
        Payment, on_delete=models.PROTECT, related_name="commission_entries"
    )
    kind = models.CharField(max_length=16, choices=CommissionKind.choices)
    base = models.DecimalField(max_digits=12, decimal_places=2)
    rate = models.DecimalField(max_digits=5, decimal_places=4)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    refund = models.ForeignKey(
        Refund,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="commission_entries",
    )

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = "commission entries"
        indexes = [
            # The month's cleared and earned money of a team, and the board's weeks of
            # cleared money (billing.reports.cleared_money_moves): index-only, with the
            # deal for ``not_disputed_at_audit``.
            models.Index(
                fields=["rep", "at"],
                name="commission_rep_at",
                include=["deal", "base", "amount"],
            )
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["payment", "kind"],
                condition=Q(kind__in=["earned", "clawback"]),
                name="one_commission_entry_per_kind",
            ),
            models.UniqueConstraint(
                fields=["refund", "kind"],
                condition=Q(refund__isnull=False),
                name="one_commission_entry_per_refund_kind",
            ),
            models.CheckConstraint(
                condition=Q(kind__in=["refund", "refund_failed"], refund__isnull=False)
                | (~Q(kind__in=["refund", "refund_failed"]) & Q(refund__isnull=True)),
                name="commission_refund_entry_names_its_refund",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.amount} for {self.rep}"
