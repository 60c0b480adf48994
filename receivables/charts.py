"""Inline SVG bar charts for billing's reports, drawn from numbers on the server.

SVG attributes (x, width…) are not style attributes: the strict
Content-Security-Policy (no inline style) still holds. Colours come from
classes in static/css/cleared.css.
"""

from dataclasses import dataclass
from decimal import Decimal

from pipeline.terms import money_text

LABEL_WIDTH = 140
BAR_SPACE = 200
ROW_HEIGHT = 26
BAR_HEIGHT = 16


@dataclass(frozen=True)
class Bar:
    series: str
    x: Decimal
    width: Decimal


@dataclass(frozen=True)
class Row:
    label: str
    y: int
    bars: list[Bar]
    value_x: Decimal
    value: str
    title: str


@dataclass(frozen=True)
class Chart:
    title: str
    rows: list[Row]
    height: int
    label_width: int = LABEL_WIDTH
    width: int = LABEL_WIDTH + BAR_SPACE + 80
    legend: tuple[tuple[str, str], ...] = ()


def _scale(value: Decimal, top: Decimal) -> Decimal:
    if top <= 0 or value <= 0:
        return Decimal("0")
    return (Decimal(value) / top * BAR_SPACE).quantize(Decimal("0.1"))


def dso_chart(reps) -> Chart:
    """One bar per rep: their DSO in days (no bar when they invoiced nothing lately)."""
    top = max([r.dso for r in reps if r.dso is not None] + [Decimal("30")])
    rows = []
    for index, rep in enumerate(reps):
        width = _scale(rep.dso or Decimal("0"), top)
        shown = "—" if rep.dso is None else f"{rep.dso} days"
        rows.append(
            Row(
                label=rep.name,
                y=index * ROW_HEIGHT,
                bars=[Bar("dso", Decimal(LABEL_WIDTH), width)],
                value_x=LABEL_WIDTH + width + 6,
                value=shown,
                title=f"{rep.name}: DSO {shown}",
            )
        )
    return Chart(title="DSO per rep, in days", rows=rows, height=max(len(rows), 1) * ROW_HEIGHT)


def receivables_chart(customers) -> Chart:
    """One bar per customer: open receivables, the overdue part drawn darker."""
    top = max([c.open for c in customers] + [Decimal("1")])
    rows = []
    for index, customer in enumerate(customers):
        overdue = _scale(customer.overdue, top)
        current = _scale(customer.open - customer.overdue, top)
        rows.append(
            Row(
                label=customer.name,
                y=index * ROW_HEIGHT,
                bars=[
                    Bar("overdue", Decimal(LABEL_WIDTH), overdue),
                    Bar("current", LABEL_WIDTH + overdue, current),
                ],
                value_x=LABEL_WIDTH + overdue + current + 6,
                value=money_text(customer.open),
                title=f"{customer.name}: {money_text(customer.open)} open, "
                f"{money_text(customer.overdue)} overdue",
            )
        )
    return Chart(
        title="Open receivables per customer",
        rows=rows,
        height=max(len(rows), 1) * ROW_HEIGHT,
        legend=(("overdue", "Overdue"), ("current", "Not yet due")),
    )
