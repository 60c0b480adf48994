from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from pipeline import access, sameness, selectors, services, terms_freeze
from pipeline.forms import (
    AskManagerForm,
    CustomerForm,
    DealEditForm,
    DealForm,
    MoveForm,
    TouchForm,
    parse_id,
    search_text,
)
from pipeline.models import Customer, Deal
from pipeline.stages import AuditFlag, IllegalMove, LostReason, Stage, next_moves
from pipeline.terms_forms import TermsChoiceForm

DEALS_PER_PAGE = 25
HOME_CARDS_PER_STAGE = 6
BOARD_CARDS_PER_STAGE = 50
# The columns a card can be moved to from the board; the table decides if it may.
# (Losing a deal needs a reason: that is done on the deal's page.)
MOVE_TARGETS = [Stage.DEPOSIT, Stage.AUDIT_CONFIRMED, Stage.DELIVERED]


def deal_list(request: HttpRequest) -> HttpResponse:
    access.require_seller(request.user)
    deals = Deal.objects.visible_to(request.user).select_related("customer", "rep")
    stage = request.GET.get("stage", "")
    query, search_error = search_text(request.GET)
    audit_flag = request.GET.get("audit", "")
    rep = parse_id(request.GET.get("rep", ""))
    if stage in Stage.values:
        deals = deals.filter(stage=stage)
    elif stage == "open":
        deals = deals.open()
    if audit_flag in (AuditFlag.FLAKED, AuditFlag.DISPUTED):
        deals = deals.filter(audit_flag=audit_flag)
    elif audit_flag == "ever_flaked":
        # Every deal that flaked at an audit, re-closed since or not (the
        # audit report's flake count): read through the reverse relation.
        deals = deals.filter(pk__in=Deal.objects.filter(audits__state="flaked").values("pk"))
    else:
        audit_flag = ""
    if rep is not None:  # the audit report links a rep's flakes here
        deals = deals.filter(rep_id=rep)
    if query:
        deals = deals.filter(
            Q(customer__name__icontains=query)
            | Q(customer__company__icontains=query)
            | Q(title__icontains=query)
        )
    page = Paginator(deals.order_by("-promised_at", "-id"), DEALS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    context = {
        "page": page,
        "stage": stage,
        "q": query,
        "stages": Stage.choices,
        "audit": audit_flag,
        "audit_flags": [
            (AuditFlag.FLAKED.value, AuditFlag.FLAKED.label),
            (AuditFlag.DISPUTED.value, AuditFlag.DISPUTED.label),
            ("ever_flaked", "Flaked at an audit, ever"),
        ],
        "rep": rep,
        "search_error": search_error,
    }
    template = "pipeline/deal_list.html#results" if request.htmx else "pipeline/deal_list.html"
    return render(request, template, context)


def deal_board(request: HttpRequest) -> HttpResponse:
    access.require_seller(request.user)
    deals = Deal.objects.visible_to(request.user)
    context = {
        "columns": selectors.pipeline_columns(deals, per_column=BOARD_CARDS_PER_STAGE),
        "move_stages": MOVE_TARGETS,
    }
    return render(request, "pipeline/deal_board.html", context)


@require_POST
def deal_board_move(request: HttpRequest) -> HttpResponse:
    """A card dragged (or moved with its form) to another column of the pipeline board."""
    access.require_seller(request.user)
    deal = access.get_deal_for(request.user, parse_id(request.POST.get("deal")) or 0)
    try:
        deal = services.deal_move(
            deal_id=deal.pk,
            to_stage=request.POST.get("to_stage", ""),
            actor=request.user,
            lost_reason=request.POST.get("lost_reason", ""),
            expected_version=parse_id(request.POST.get("version")),
        )
    except services.StaleDeal as exc:
        messages.warning(request, str(exc))
    except IllegalMove as exc:
        messages.error(request, f"#{deal.pk} {deal.customer.name}: {exc}")
    else:
        messages.success(
            request, f"#{deal.pk} {deal.customer.name} moved to {deal.get_stage_display()}."
        )
    from_home = request.POST.get("back") == "home"
    if not request.htmx:
        return redirect("home" if from_home else "deal_board")
    per_column = HOME_CARDS_PER_STAGE if from_home else BOARD_CARDS_PER_STAGE
    context = {
        "columns": selectors.pipeline_columns(
            Deal.objects.visible_to(request.user), per_column=per_column
        ),
        "move_stages": MOVE_TARGETS,
        "back": request.POST.get("back", ""),
    }
    return render(request, "pipeline/_pipeline_board.html", context)


def deal_new(request: HttpRequest) -> HttpResponse:
    access.require_seller(request.user)
    initial = {}
    if customer_id := request.GET.get("customer"):
        initial["customer"] = customer_id
    form = DealForm(request.POST or None, user=request.user, initial=initial)
    customer_form = None
    if any(key.startswith(f"{NEW_CUSTOMER_PREFIX}-") for key in request.POST):
        # The deal was sent while a new customer's form was open in it: keep that typing too.
        customer_form = CustomerForm(
            prefix=NEW_CUSTOMER_PREFIX,
            initial={
                key.removeprefix(f"{NEW_CUSTOMER_PREFIX}-"): value
                for key, value in request.POST.items()
                if key.startswith(f"{NEW_CUSTOMER_PREFIX}-")
            },
        )
    if request.method == "POST" and form.is_valid():
        try:
            deal = services.deal_promise(rep=request.user, **form.cleaned_data)
        except IllegalMove as exc:
            form.add_error("payment_option", str(exc))
        else:
            messages.success(request, f"Deal #{deal.pk} logged: {deal.title}.")
            return redirect(deal)
    context = {
        "form": form,
        "customer_form": customer_form,
        # A refusal the rep's manager can lift (invoicing a slow payer) offers
        # "Ask my manager" right there; billing takes the request (and the deal).
        "ask_form": AskManagerForm() if form.needs_manager else None,
        **_terms_context(form),
    }
    return render(request, "pipeline/deal_form.html", context)


# The deal form's own fields, carried through the customer step so nothing typed is lost.
DEAL_DRAFT_FIELDS = [name for name in DealForm.Meta.fields if name != "customer"]
NEW_CUSTOMER_PREFIX = "new_customer"


def deal_customer_new(request: HttpRequest) -> HttpResponse:
    """A new customer added from inside the deal form (issue 13).

    With htmx, the deal form's "Add a new customer" fetches a small customer
    form into the deal form; posting it answers with the deal form's customer
    list and terms panel swapped out of band, the new customer chosen, and
    nothing else of the deal form touched. Without JavaScript the same button
    posts the whole deal form here: the customer form is a page that carries
    the deal's typed values in hidden fields and, once the customer is added,
    shows the deal form again with them and the new customer chosen.

    A match (same phone, email, or name and company: ``pipeline.sameness``)
    is not added at once: the rep picks the existing customer or confirms it
    is a different one; a match the rep may not see is named to them only as
    "a matching customer exists", and their manager decides.
    """
    access.require_seller(request.user)
    visible = Customer.objects.visible_to(request.user)
    draft = {name: request.POST.get(name, "") for name in DEAL_DRAFT_FIELDS}
    step = request.POST.get("new_customer_step", "")
    if request.method == "POST" and (picked := parse_id(request.POST.get("use_customer"))):
        customer = get_object_or_404(visible, pk=picked)
        return _deal_form_with_customer(request, customer, draft, added=False)
    submitted = request.method == "POST" and step in ("add", "add_anyway")
    form = CustomerForm(request.POST if submitted else None, prefix=NEW_CUSTOMER_PREFIX)
    duplicates = []
    if submitted and form.is_valid():
        data = form.cleaned_data
        duplicates = sameness.customer_matches(
            request.user,
            name=data["name"],
            company=data["company"],
            email=data["email"],
            phone=data["phone"],
        )
        if not duplicates or step == "add_anyway":
            try:
                customer = services.customer_add(owner=request.user, **data)
            except services.RepInactive as exc:  # deactivated while the form was open
                form.add_error(None, str(exc))
            else:
                return _deal_form_with_customer(request, customer, draft, added=True)
    context = {"customer_form": form, "duplicates": duplicates, "draft": draft}
    status = 422 if form.is_bound and form.errors else 200
    if request.htmx:
        return render(request, "pipeline/deal_form.html#new-customer", context, status=status)
    return render(request, "pipeline/deal_customer_new.html", context, status=status)


def _deal_form_with_customer(
    request: HttpRequest, customer: Customer, draft: dict, *, added: bool
) -> HttpResponse:
    note = (
        f"Customer {customer.name} added and chosen for this deal."
        if added
        else f"{customer.name} chosen for this deal."
    )
    form = DealForm(user=request.user, initial={**draft, "customer": customer.pk})
    context = {"form": form, "customer_note": note, **_terms_context(form)}
    if request.htmx:
        return render(request, "pipeline/deal_form.html#customer-chosen", context)
    messages.success(request, note)
    return render(request, "pipeline/deal_form.html", context)


def _terms_context(form: DealForm) -> dict:
    customer = None
    raw = form.data.get("customer") if form.is_bound else form.initial.get("customer")
    if pk := parse_id(str(raw or "")):
        customer = form.fields["customer"].queryset.filter(pk=pk).first()
    return {
        "terms_customer": customer,
        "terms": selectors.customer_terms(customer) if customer else None,
    }


@require_GET
def deal_terms(request: HttpRequest) -> HttpResponse:
    """The standing and terms panel of the deal form, for the chosen customer."""
    access.require_seller(request.user)
    form = DealForm(user=request.user, initial={"customer": request.GET.get("customer")})
    return render(request, "pipeline/deal_form.html#terms", _terms_context(form))


def _deal_context(request: HttpRequest, deal: Deal, **overrides) -> dict:
    role = services.role_for_moves(request.user)
    context = {
        "deal": deal,
        "moves": next_moves(deal, role),
        "move_form": MoveForm(initial={"version": deal.version}, deal=deal, role=role),
        "touch_form": TouchForm(),
        "timeline": selectors.deal_timeline(deal),
        "terms": selectors.customer_terms(deal.customer),
        "lost_reasons": LostReason.choices,
    }
    context.update(overrides)
    return context


def _render_deal(request: HttpRequest, deal: Deal, status: int = 200, **overrides) -> HttpResponse:
    template = (
        "pipeline/deal_detail.html#deal-body" if request.htmx else "pipeline/deal_detail.html"
    )
    return render(request, template, _deal_context(request, deal, **overrides), status=status)


def deal_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _render_deal(request, access.get_deal_for(request.user, pk))


@require_POST
def deal_move(request: HttpRequest, pk: int) -> HttpResponse:
    deal = access.get_deal_for(request.user, pk)
    # Not narrowed to the deal's current stage: a move from a stale page must
    # reach the service and be told the deal changed.
    form = MoveForm(request.POST, may_write_off=services.role_for_moves(request.user) == "manager")
    if form.is_valid():
        try:
            deal = services.deal_move(
                deal_id=deal.pk,
                to_stage=form.cleaned_data["to_stage"],
                actor=request.user,
                reason=form.cleaned_data["reason"],
                lost_reason=form.cleaned_data["lost_reason"],
                expected_version=form.cleaned_data["version"],
            )
        except services.StaleDeal as exc:
            messages.warning(request, str(exc))
            deal = access.get_deal_for(request.user, pk)
            return _render_deal(request, deal, status=409)
        except IllegalMove as exc:
            form.add_error("to_stage", str(exc))
        else:
            messages.success(request, f"Deal moved to {deal.get_stage_display()}.")
            if request.htmx:
                return _render_deal(request, access.get_deal_for(request.user, pk))
            return redirect(deal)
    # Shown again with what was typed, offering only the moves legal now.
    form.fields["to_stage"].choices = (
        MoveForm(deal=deal, role=services.role_for_moves(request.user)).fields["to_stage"].choices
    )
    return _render_deal(request, deal, status=422, move_form=form)


@require_POST
def touch_new(request: HttpRequest, pk: int) -> HttpResponse:
    deal = access.get_deal_for(request.user, pk)
    form = TouchForm(request.POST)
    if form.is_valid():
        services.touch_record(deal=deal, author=request.user, **form.cleaned_data)
        messages.success(request, "Touch recorded; the deal's next step is updated.")
        if request.htmx:
            return _render_deal(request, access.get_deal_for(request.user, pk))
        return redirect(deal)
    return _render_deal(request, deal, status=422, touch_form=form)


def deal_edit(request: HttpRequest, pk: int) -> HttpResponse:
    deal = access.get_deal_for(request.user, pk)
    form = DealEditForm(request.POST or None, instance=deal)
    frozen_by = terms_freeze.terms_frozen_by(deal)
    # Frozen terms: the rep chooses how a change is made, with the consequence said.
    choice = TermsChoiceForm(request.POST or None, deal=deal) if frozen_by else None
    status = 200
    if request.method == "POST" and form.is_valid() and (choice is None or choice.is_valid()):
        data = dict(form.cleaned_data)
        version = data.pop("version")
        chosen = choice.cleaned_data if choice else {}
        path = chosen.get("terms_path", "")
        # The form wrote its values onto ``deal`` already: ask it what changed.
        changes_terms = bool(set(form.changed_data) & set(terms_freeze.TERMS_FIELDS))
        try:
            deal = services.deal_update(
                deal_id=deal.pk,
                actor=request.user,
                expected_version=version,
                terms_path=path,
                reason=chosen.get("terms_reason", ""),
                **data,
            )
        except services.StaleDeal as exc:
            form.add_error(None, str(exc))
            status = 409
        except terms_freeze.TermsFrozen as exc:
            choice.add_error("terms_path", str(exc))
        except terms_freeze.TermsReasonMissing as exc:
            choice.add_error("terms_reason", str(exc))
        except terms_freeze.AmountRefused as exc:
            form.add_error("amount", str(exc))
        except IllegalMove as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _edit_saved(path if changes_terms and frozen_by else ""))
            return redirect(deal)
    context = {"deal": deal, "form": form, "choice": choice, "frozen_by": frozen_by}
    if status == 200 and form.is_bound and (form.errors or (choice and choice.errors)):
        status = 422
    return render(request, "pipeline/deal_edit.html", context, status=status)


def _edit_saved(path: str) -> str:
    if path == terms_freeze.ASK_MANAGER:
        return (
            "Your manager is asked: the new terms apply when they approve "
            "(the rest of your edit is saved)."
        )
    if path == terms_freeze.BACK_TO_AUDIT:
        return "Saved. The deal is back on the audit path: wrap it up again with the customer."
    return "Deal saved."


def customer_list(request: HttpRequest) -> HttpResponse:
    access.require_seller(request.user)
    customers = Customer.objects.visible_to(request.user)
    query, search_error = search_text(request.GET)
    if query:
        customers = customers.filter(Q(name__icontains=query) | Q(company__icontains=query))
    page = Paginator(customers.order_by("name", "id"), DEALS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    # Each customer of the page with the others likely to be the same one (one query).
    duplicates = selectors.duplicates_among(
        Customer.objects.visible_to(request.user), page.object_list
    )
    rows = [(customer, duplicates.get(customer.pk, [])) for customer in page.object_list]
    template = (
        "pipeline/customer_list.html#results" if request.htmx else "pipeline/customer_list.html"
    )
    context = {
        "page": page,
        "rows": rows,
        "q": query,
        "search_error": search_error,
        # The "likely duplicate" mark offers the merge to those who may merge.
        "may_merge": access.can_manage(request.user),
    }
    return render(request, template, context)


def customer_new(request: HttpRequest) -> HttpResponse:
    access.require_seller(request.user)
    form = CustomerForm(request.POST or None)
    next_url = request.POST.get("next") or request.GET.get("next", "")
    duplicates = []
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        duplicates = sameness.customer_matches(
            request.user,
            name=data["name"],
            company=data["company"],
            email=data["email"],
            phone=data["phone"],
        )
        if not duplicates or request.POST.get("new_customer_step") == "add_anyway":
            try:
                customer = services.customer_add(owner=request.user, **data)
            except services.RepInactive as exc:  # deactivated while the form was open
                form.add_error(None, str(exc))
            else:
                messages.success(request, f"Customer {customer.name} added.")
                if next_url == "deal":
                    return redirect(f"/deals/new/?customer={customer.pk}")
                return redirect(customer)
    context = {"form": form, "next": next_url, "duplicates": duplicates}
    status = 409 if form.non_field_errors() else 200
    return render(request, "pipeline/customer_form.html", context, status=status)


def customer_detail(request: HttpRequest, pk: int) -> HttpResponse:
    if not Customer.objects.filter(pk=pk).exists() and (survivor := sameness.merged_into(pk)):
        # Merged away: its page is the survivor's, if this user may see it (else a 404).
        return redirect(access.get_customer_for(request.user, survivor.pk))
    customer = access.get_customer_for(request.user, pk)
    deals = Deal.objects.visible_to(request.user).filter(customer=customer).select_related("rep")
    context = {
        "customer": customer,
        "deals": deals,
        "terms": selectors.customer_terms(customer),
        **sameness.customer_record(request.user, customer),
    }
    return render(request, "pipeline/customer_detail.html", context)


def customer_edit(request: HttpRequest, pk: int) -> HttpResponse:
    customer = access.get_customer_for(request.user, pk)
    form = CustomerForm(request.POST or None, instance=customer)
    if request.method == "POST" and form.is_valid():
        services.customer_save(
            customer=form.save(commit=False), actor=request.user, changed=form.changed_data
        )
        messages.success(request, "Customer saved.")
        return redirect(customer)
    return render(request, "pipeline/customer_form.html", {"form": form, "customer": customer})
