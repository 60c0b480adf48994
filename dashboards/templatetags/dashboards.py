from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from html import escape

from django import template
from django.utils import timezone
from django.utils.dates import MONTHS_3
from django.utils.safestring import SafeString

from dashboards.board import NO_REMINDER, bucket_for_age
from dashboards.board_rows import BoardRow
from pipeline.stages import Stage
from pipeline.templatetags.cleared import query_with
from pipeline.terms import Standing, money_text
from reminders.models import ReminderKind

register = template.Library()

# The board's repeated rows (its deals, its reps' month, its rep filter) are
# built here, as Django's admin builds its change list's cells
# (``items_for_result``), every value escaped: through the template engine each
# of a board's ~1,500 ``{{ }}`` was resolved, filtered, localized and escaped on
# its own (about half of the page's Python; issue 23's page ÷ its SQL).
# ``html.escape`` is what Django's ``escape`` runs, less its lazy-text check.
_ROW = (
    "<tr>"
    '<td><a href="{url}">{customer}</a><br><small class="muted">#{pk} {title}</small></td>'
    "<td>{rep}</td>"
    '<td><span class="badge stage-{stage}">{stage_label}</span></td>'
    '<td class="num">{amount}</td>'
    '<td class="num">{cleared}</td>'
    '<td class="num"><strong>{outstanding}</strong></td>'
    '<td class="num">{days} d<br><small class="muted">{bucket}</small></td>'
    '<td><span class="badge standing-{standing}">{standing_label}</span></td>'
    '<td class="next-reminder">{reminder}</td>'
    "</tr>\n"
)
_NO_REMINDER = '<span class="muted">—</span>'
_COMING = '{at}<br><small class="muted">{kind}</small>'
_DUE = (
    '<span class="badge pay-pending">due</span> since {at}'
    '<br><small class="muted">{kind}{then}</small>'
)
_OVERDUE = (
    '<span class="badge pay-bounced">overdue</span> <span class="overdue">since {at}</span>'
    '<br><small class="muted">{kind}{then}</small>'
)
_STAGE_LABELS = dict(Stage.choices)
_STANDING_LABELS = dict(Standing.choices)
_KIND_LABELS = dict(ReminderKind.choices)


@register.simple_tag
def board_rows(deals: list[BoardRow], now: datetime, day_ago: datetime) -> SafeString:
    """The board's table rows for ``deals`` (``board_rows.board_rows_page``): a reminder
    due longer than a day is "overdue"."""
    today = timezone.localdate()
    return SafeString("".join(_board_row(deal, today, now, day_ago) for deal in deals))


def _board_row(deal: BoardRow, today: date, now: datetime, day_ago: datetime) -> str:
    days = (today - timezone.localtime(deal.promised_at).date()).days
    return _ROW.format(
        url=escape(deal.get_absolute_url()),
        customer=escape(deal.customer_name),
        pk=deal.pk,
        title=escape(deal.title),
        rep=escape(deal.rep_name),
        stage=escape(deal.stage),
        stage_label=escape(_STAGE_LABELS.get(deal.stage, deal.stage)),
        amount=escape(money_text(deal.amount)),
        cleared=escape(money_text(deal.cleared_amount)),
        outstanding=escape(money_text(deal.outstanding_amount)),
        days=days,
        bucket=escape(bucket_for_age(days).key),
        standing=escape(deal.customer_standing),
        standing_label=escape(_STANDING_LABELS.get(deal.customer_standing, deal.customer_standing)),
        reminder=_next_reminder_cell(deal, now, day_ago),
    )


def _next_reminder_cell(deal: BoardRow, now: datetime, day_ago: datetime) -> str:
    """The earliest open reminder: overdue (due over a day), due, or still to come."""
    due_at = deal.next_reminder_at
    if due_at == NO_REMINDER:  # no open reminder (it sorts last)
        return _NO_REMINDER
    at, kind = _moment(due_at), escape(_KIND_LABELS.get(deal.next_reminder_kind, ""))
    if due_at > now:
        return _COMING.format(at=at, kind=kind)
    coming = deal.coming_reminder_at
    then = f" · then {_moment(coming)}" if coming else ""
    return (_OVERDUE if due_at <= day_ago else _DUE).format(at=at, kind=kind, then=then)


def _moment(moment: datetime) -> str:
    """A moment in the viewer's time zone, as the board shows it: "7 Dec, 14:05"
    (the ``date`` filter's "j M, H:i", without its format-string parser)."""
    local = timezone.localtime(moment)
    return escape(f"{local.day} {MONTHS_3[local.month].title()}, {local:%H:%M}")


# The board's sortable columns: (sort key, label, right-aligned).
_COLUMNS = (
    ("customer", "Customer", False),
    ("rep", "Rep", False),
    ("stage", "Stage", False),
    ("amount", "Amount", True),
    ("cleared", "Cleared", True),
    ("outstanding", "Outstanding", True),
    ("age", "Age", True),
    ("standing", "Standing", False),
    ("next_reminder", "Next reminder", False),
)
_ARROWS = {"ascending": " ▲", "descending": " ▼", "": ""}
_TH = (
    '<th scope="col" class="{num}"{aria}><a href="{url}" hx-get="{url}" hx-target="#board-table"'
    ' hx-swap="outerHTML" hx-push-url="true">{label}{arrow}</a></th>\n'
)


@register.simple_tag(takes_context=True)
def board_headers(context, sort: str) -> SafeString:
    """The board's column headers: each a link sorting by it (again: the other way),
    the sorted one marked for screen readers (``aria-sort``) and with an arrow."""
    cells = []
    for key, label, num in _COLUMNS:
        order = "ascending" if sort == key else "descending" if sort == f"-{key}" else ""
        url = escape(
            query_with(
                context, sort=f"-{key}" if order == "ascending" else key, after="", before=""
            )
        )
        cells.append(
            _TH.format(
                num="num" if num else "",
                aria=f' aria-sort="{order}"' if order else "",
                url=url,
                label=escape(label),
                arrow=_ARROWS[order],
            )
        )
    return SafeString("".join(cells))


_REP_MONTH = (
    '<tr><td><a href="?rep={pk}">{rep}</a></td><td class="num">{promised}</td>'
    '<td class="num">{cleared}</td><td class="num">{share}</td></tr>\n'
)
_NO_REPS = '<tr><td colspan="4" class="muted">No reps on your team yet.</td></tr>'
HUNDRED = Decimal(100)


@register.simple_tag
def rep_month_rows(rep_figures) -> SafeString:
    """The board's "This month, per rep" rows: promised, cleared, and cleared as
    a whole percentage of promised (— when nothing was promised)."""
    rows = [
        _REP_MONTH.format(
            pk=rep.pk,
            rep=escape(str(rep)),
            promised=escape(money_text(figures.promised)),
            cleared=escape(money_text(figures.cleared)),
            share=f"{_percent(figures.cleared, figures.promised)}%" if figures.promised else "—",
        )
        for rep, figures in rep_figures
    ]
    return SafeString("".join(rows) or _NO_REPS)


def _percent(part: Decimal, whole: Decimal) -> int:
    return int((part * HUNDRED / whole).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


@register.simple_tag
def rep_options(reps, selected: int | None) -> SafeString:
    """The board's rep filter: one ``<option>`` a rep, the chosen one selected."""
    return SafeString(
        "".join(
            f'<option value="{rep.pk}"{" selected" if rep.pk == selected else ""}>'
            f"{escape(str(rep))}</option>"
            for rep in reps
        )
    )
