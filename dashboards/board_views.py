"""The Not paid yet board, its CSV export and charts (managers)."""

from datetime import timedelta

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import pluralize
from django.utils import timezone
from django.views.decorators.http import require_GET

from billing.reports import team_month_figures
from dashboards import board, board_rows, charts, export, importing, totals
from pipeline import access
from pipeline.services import RepInactive
from pipeline.stages import NOT_PAID_STAGES
from pipeline.terms import PaymentOption, Standing

OVERDUE_AFTER = timedelta(days=1)


@require_GET
def board_view(request: HttpRequest) -> HttpResponse:
    access.require_manager(request.user, "The Not paid yet board is for managers.")
    filters = board.BoardFilters.from_query(request.GET)
    page = board_rows.board_rows_page(
        request.user,
        filters,
        after=request.GET.get("after", ""),
        before=request.GET.get("before", ""),
    )
    context = {
        "filters": filters,
        "page": page,
        "today": timezone.localdate(),
        # A reminder due this long without being acted on is "overdue" on the board.
        "now": timezone.now(),
        "day_ago": timezone.now() - OVERDUE_AFTER,
        "sorts": board.SORTS,
    }
    if request.htmx and request.htmx.target == "board-table":
        context["matching"] = board.board_deals(request.user, filters).count()
        return render(request, "dashboards/board.html#table", context)
    reps = access.team_seller_list(request.user)
    board_totals = totals.board_totals(request.user, today=context["today"])
    figures = team_month_figures([rep.pk for rep in reps], context["today"], with_pending=False)
    # Unfiltered, the table holds exactly the deals the totals counted.
    context["matching"] = (
        board.board_deals(request.user, filters).count()
        if filters.is_filtered
        else board_totals.count
    )
    context.update(
        {
            "totals": board_totals,
            "reps": reps,
            "rep_figures": [(rep, figures[rep.pk]) for rep in reps],
            "disputed": board_rows.disputed_rows(request.user),
            "stages": NOT_PAID_STAGES,
            "buckets": board.BUCKETS,
            "standings": Standing.choices,
            "payment_options": PaymentOption.choices,
        }
    )
    return render(request, "dashboards/board.html", context)


@require_GET
def board_charts(request: HttpRequest) -> HttpResponse:
    access.require_manager(request.user, "The Not paid yet board is for managers.")
    today = timezone.localdate()
    context = {
        "charts": [
            charts.outstanding_by_bucket(totals.board_totals(request.user, today=today)),
            charts.promised_vs_cleared_by_week(request.user, today),
            charts.days_to_cash_by_rep(request.user),
        ]
    }
    template = "dashboards/board_charts.html"
    if request.htmx:
        template += "#charts"
    return render(request, template, context)


@require_GET
def board_export(request: HttpRequest) -> StreamingHttpResponse:
    """Exactly the filtered board as CSV, streamed row by row (flat memory at 100,000 rows)."""
    access.require_manager(request.user, "The Not paid yet board is for managers.")
    filters = board.BoardFilters.from_query(request.GET)
    chunks = export.board_csv(request.user, filters)
    response = StreamingHttpResponse(chunks, content_type="text/csv; charset=utf-8")
    stamp = timezone.localtime().strftime("%Y-%m-%d")
    response["Content-Disposition"] = f'attachment; filename="not-paid-yet-{stamp}.csv"'
    return response


def deal_import(request: HttpRequest) -> HttpResponse:
    """Upload a CSV of deals, see every row checked, then import all of them or none."""
    if not access.is_seller(request.user):
        raise PermissionDenied("Importing deals is for reps and managers.")
    context = {"columns": importing.REQUIRED_COLUMNS, "optional": importing.OPTIONAL_COLUMNS}
    if request.method != "POST":
        return render(request, "dashboards/deal_import.html", context)
    text = request.POST.get("csv_text", "")
    upload = request.FILES.get("file")
    if upload is not None:
        try:
            text = upload.read(importing.MAX_BYTES + 1).decode("utf-8-sig")
        except UnicodeDecodeError:
            context["file_error"] = (
                "The file is not UTF-8 text: save it from your spreadsheet as CSV UTF-8."
            )
            return render(request, "dashboards/deal_import.html", context, status=422)
    if not text.strip():
        context["file_error"] = "Choose a CSV file to import."
        return render(request, "dashboards/deal_import.html", context, status=422)
    try:
        rows = importing.read_rows(request.user, text)
    except importing.CsvImportError as exc:
        context["file_error"] = str(exc)
        return render(request, "dashboards/deal_import.html", context, status=422)
    bad = [row for row in rows if row.errors]
    context.update({"rows": rows, "bad": bad, "csv_text": text})
    if request.POST.get("confirm") and not bad:
        try:
            deals = importing.import_deals(user=request.user, rows=rows)
        except RepInactive as exc:  # a rep named in the file left meanwhile: nothing imported
            messages.error(request, f"Nothing was imported: {exc}")
            return render(request, "dashboards/deal_import.html", context, status=409)
        messages.success(request, f"Imported {len(deals)} deal{pluralize(len(deals))}.")
        return redirect("deal_list")
    return render(request, "dashboards/deal_import.html", context, status=422 if bad else 200)
