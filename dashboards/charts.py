"""Figures for the board's charts, laid out for server-rendered SVG.

Each chart is a small dataclass of bars with their labels and values, so the
template draws rectangles and writes every value next to its bar: the charts
read without colour (and without the picture, for a screen reader).
"""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db.models import Avg, DurationField, ExpressionWrapper, F, Sum
from django.db.models.functions import TruncWeek
from django.utils import timezone

from billing.reports import cleared_money_moves, cleared_money_sum
from dashboards.totals import BoardTotals
from pipeline.models import (
    Deal,
    User,
    disputed_at_audit,
    not_disputed_at_audit,
    visible_rep_condition,
)
from pipeline.stages import Stage
from pipeline.terms import ZERO

WIDTH, PLOT_HEIGHT, TOP, BOTTOM = 420, 170, 20, 28


@dataclass
class Bar:
    label: str
    value: Decimal | float
    display: str
    series: str = ""
    # Geometry in the SVG's user units, set by Chart.layout().
    x: float = 0.0
    y: float = 0.0
    width: float = 0.0
    height: float = 0.0

    @property
    def centre(self) -> float:
        return self.x + self.width / 2

    @property
    def text_y(self) -> float:
        return self.y - 4


@dataclass
class Group:
    label: str
    bars: list[Bar]
    centre: float = 0.0
    show_label: bool = True


@dataclass
class Chart:
    """Bars (or groups of bars), laid out for one SVG of WIDTH × total_height."""

    title: str
    groups: list[Group] = field(default_factory=list)
    legend: list[str] = field(default_factory=list)
    show_values: bool = True
    width: int = WIDTH
    total_height: int = TOP + PLOT_HEIGHT + BOTTOM
    baseline: int = TOP + PLOT_HEIGHT
    label_y: int = TOP + PLOT_HEIGHT + 16

    @classmethod
    def of_bars(cls, title: str, bars: list[Bar]) -> "Chart":
        return cls(title, groups=[Group(bar.label, [bar]) for bar in bars]).layout()

    def layout(self) -> "Chart":
        bars = [bar for group in self.groups for bar in group.bars]
        top = max((max(float(bar.value), 0.0) for bar in bars), default=0.0) or 1.0
        slot = WIDTH / max(len(self.groups), 1)
        # Past 6 groups the labels would overlap: label every other one.
        crowded = len(self.groups) > 6
        self.show_values = not crowded
        for index, group in enumerate(self.groups):
            group.centre = index * slot + slot / 2
            group.show_label = not crowded or index % 2 == 0
            width = slot * 0.7 / len(group.bars)
            for position, bar in enumerate(group.bars):
                bar.width = width
                bar.x = index * slot + slot * 0.15 + position * width
                # A week that gave back more than cleared is below zero: its value
                # is written out over a flat bar, never drawn at a negative height.
                bar.height = PLOT_HEIGHT * max(float(bar.value), 0.0) / top
                bar.y = TOP + PLOT_HEIGHT - bar.height
        return self


def _money(value) -> str:
    return f"{value:,.0f}"


def outstanding_by_bucket(totals: BoardTotals) -> Chart:
    bars = [
        Bar(row["bucket"].label, row["outstanding"], _money(row["outstanding"]))
        for row in totals.by_bucket
    ]
    return Chart.of_bars("Outstanding by age since the promise", bars)


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def promised_vs_cleared_by_week(user: User, today: date, weeks: int = 12) -> Chart:
    """Money promised and money cleared, week by week, for the user's team.

    Cleared is ``billing.reports.cleared_money_moves``: money given back (a refund,
    a bounce, a charge-back) lowers the week it left, as it lowers the month it left
    in the per-rep figures (``billing.reports.team_month_figures``)."""
    first = week_start(today) - timedelta(weeks=weeks - 1)
    # Nothing about a sale disputed at audit counts in promised vs cleared.
    deals = Deal.objects.visible_to(user).exclude(disputed_at_audit())
    promised = {
        row["week"].date() if hasattr(row["week"], "date") else row["week"]: row["total"]
        for row in deals.filter(promised_at__date__gte=first)
        .annotate(week=TruncWeek("promised_at"))
        .order_by()
        .values("week")
        .annotate(total=Sum("amount"))
    }
    # Credited to the rep who earned it, as the month's figures are: a deal that moves
    # on leaves what cleared with its earner, and the team's weeks are a range per rep
    # (``commission_rep_at``), however long the ledger.
    moves = cleared_money_moves(
        timezone.make_aware(datetime.combine(first, datetime.min.time()))
    ).filter(not_disputed_at_audit("deal__"))
    team = visible_rep_condition(user)
    cleared = {
        row["week"].date() if hasattr(row["week"], "date") else row["week"]: row["total"]
        for row in (moves if team is None else moves.filter(team))
        .annotate(week=TruncWeek("at"))
        .order_by()
        .values("week")
        .annotate(total=cleared_money_sum())
    }
    groups = []
    for index in range(weeks):
        start = first + timedelta(weeks=index)
        p, c = promised.get(start, ZERO) or ZERO, cleared.get(start, ZERO) or ZERO
        groups.append(
            Group(
                start.strftime("%d %b"),
                [
                    Bar("promised", p, _money(p), series="promised"),
                    Bar("cleared", c, _money(c), series="cleared"),
                ],
            )
        )
    return Chart(
        "Promised vs cleared, last 12 weeks", groups=groups, legend=["promised", "cleared"]
    ).layout()


def days_to_cash_by_rep(user: User) -> Chart:
    """Average days from the promise to cleared money, per rep, over paid deals."""
    elapsed = ExpressionWrapper(
        F("stage_changed_at") - F("promised_at"), output_field=DurationField()
    )
    rows = (
        Deal.objects.visible_to(user)
        .filter(stage=Stage.PAYMENT_CLEARED)
        .order_by()
        .values("rep__username", "rep__first_name", "rep__last_name")
        .annotate(average=Avg(elapsed))
        .order_by("rep__username")
    )
    bars = []
    for row in rows:
        days = round(row["average"].total_seconds() / 86400, 1) if row["average"] else 0.0
        name = f"{row['rep__first_name']} {row['rep__last_name']}".strip() or row["rep__username"]
        bars.append(Bar(name, days, f"{days:g} days"))
    return Chart.of_bars("Days from promise to cash, per rep", bars)
