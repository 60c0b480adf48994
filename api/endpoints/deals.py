"""Deals and their touches: what the deal pages do (pipeline.views), as JSON."""

from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Query, Router, Schema, Status

from api.paging import DEFAULT_LIMIT, MAX_LIMIT
from api.problems import FormInvalid, Problem, field_problem
from api.schemas import (
    ERRORS,
    DealIn,
    DealOut,
    DealPage,
    DealUpdateIn,
    MoveIn,
    TouchIn,
    TouchOut,
)
from dashboards import board
from pipeline import access, services
from pipeline.forms import DealEditForm, DealForm, MoveForm, TouchForm
from pipeline.models import Deal
from pipeline.stages import IllegalMove, Stage

router = Router(tags=["deals"])


class DealFilters(Schema):
    stage: str = ""
    rep: str = ""
    bucket: str = ""
    standing: str = ""
    payment_option: str = ""
    q: str = ""
    sort: str = board.DEFAULT_SORT
    not_paid: bool = False
    cursor: str = ""
    limit: int = DEFAULT_LIMIT


def form_data(payload: Schema, **extra) -> dict:
    """A payload as the form data a page would post: the fields sent, as text."""
    data = {}
    for name, value in payload.model_dump(exclude_unset=True).items():
        if value is None:
            continue
        data[name] = ("on" if value else "") if isinstance(value, bool) else str(value)
    data.update(extra)
    return data


def _deals(request: HttpRequest) -> QuerySet:
    access.require_seller(request.user)
    return Deal.objects.visible_to(request.user)


@router.get("/deals", response={200: DealPage, **ERRORS}, summary="List deals")
def deal_list(request: HttpRequest, filters: Query[DealFilters]):
    """The deals you see in the browser, with the Not paid yet board's filters
    (stage, rep, bucket, standing, payment_option, q, sort), a page at a time
    (``cursor``). ``not_paid=true``: only the board's deals."""
    params = {k: v for k, v in filters.model_dump().items() if isinstance(v, str)}
    parsed = board.BoardFilters.from_query(params, stages=list(Stage))
    deals = board.not_paid_yet(request.user) if filters.not_paid else _deals(request)
    access.require_seller(request.user)
    deals = board.sort_deals(board.filter_deals(deals, parsed), parsed)
    limit = min(max(filters.limit, 1), MAX_LIMIT)
    page = board.board_page(deals, parsed, after=filters.cursor, size=limit)
    return {"items": page.deals, "next_cursor": page.next_cursor, "notes": parsed.errors}


@router.post("/deals", response={201: DealOut, **ERRORS}, summary="Log a promise")
def deal_create(request: HttpRequest, payload: DealIn):
    """A customer's verbal promise, logged as a deal in Promised (the deal form)."""
    access.require_seller(request.user)
    form = DealForm(form_data(payload), user=request.user)
    if not form.is_valid():
        raise FormInvalid(form)
    try:
        deal = services.deal_promise(rep=request.user, **form.cleaned_data)
    except IllegalMove as exc:
        raise field_problem("payment_option", str(exc)) from exc
    return Status(201, access.get_deal_for(request.user, deal.pk))


@router.get("/deals/{int:deal_id}", response={200: DealOut, **ERRORS}, summary="One deal")
def deal_detail(request: HttpRequest, deal_id: int):
    return access.get_deal_for(request.user, deal_id)


@router.patch("/deals/{int:deal_id}", response={200: DealOut, **ERRORS}, summary="Update terms")
def deal_update(request: HttpRequest, deal_id: int, payload: DealUpdateIn):
    """Edit the deal's terms (the deal's Edit page). Fields not sent stay as they are."""
    deal = access.get_deal_for(request.user, deal_id)
    current = DealEditForm(instance=deal)
    data = {name: current[name].value() for name in current.fields}
    data = {k: "" if v is None else str(v) for k, v in data.items()}
    data.update(form_data(payload))
    form = DealEditForm(data, instance=deal)
    if not form.is_valid():
        raise FormInvalid(form)
    fields = dict(form.cleaned_data)
    version = fields.pop("version")
    try:
        services.deal_update(
            deal_id=deal.pk, actor=request.user, expected_version=version, **fields
        )
    except services.StaleDeal as exc:
        raise Problem(409, str(exc)) from exc
    except IllegalMove as exc:
        raise field_problem(None, str(exc)) from exc
    return access.get_deal_for(request.user, deal_id)


@router.post("/deals/{int:deal_id}/move", response={200: DealOut, **ERRORS}, summary="Move stage")
def deal_move(request: HttpRequest, deal_id: int, payload: MoveIn):
    """Move the deal to another stage, through the one transitions table."""
    deal = access.get_deal_for(request.user, deal_id)
    manager = services.role_for_moves(request.user) == "manager"
    form = MoveForm(form_data(payload), may_write_off=manager)
    if not form.is_valid():
        raise FormInvalid(form)
    try:
        services.deal_move(
            deal_id=deal.pk,
            to_stage=form.cleaned_data["to_stage"],
            actor=request.user,
            reason=form.cleaned_data["reason"],
            lost_reason=form.cleaned_data["lost_reason"],
            expected_version=form.cleaned_data["version"],
        )
    except services.StaleDeal as exc:
        raise Problem(409, str(exc)) from exc
    except IllegalMove as exc:
        raise field_problem("to_stage", str(exc)) from exc
    return access.get_deal_for(request.user, deal_id)


@router.get(
    "/deals/{int:deal_id}/touches", response={200: list[TouchOut], **ERRORS}, summary="Touches"
)
def touch_list(request: HttpRequest, deal_id: int):
    deal = access.get_deal_for(request.user, deal_id)
    return deal.touches.select_related("author").order_by("-happened_at", "-id")[:200]


@router.post(
    "/deals/{int:deal_id}/touches", response={201: TouchOut, **ERRORS}, summary="Record a touch"
)
def touch_create(request: HttpRequest, deal_id: int, payload: TouchIn):
    """A contact with the customer; its next step becomes the deal's next step."""
    deal = access.get_deal_for(request.user, deal_id)
    form = TouchForm(form_data(payload))
    if not form.is_valid():
        raise FormInvalid(form)
    return Status(201, services.touch_record(deal=deal, author=request.user, **form.cleaned_data))
