"""Customers: what the customer pages do (pipeline.views), as JSON."""

from django.db.models import Q
from django.http import HttpRequest
from ninja import Query, Router, Schema, Status

from api.endpoints.deals import form_data
from api.paging import DEFAULT_LIMIT, MAX_LIMIT, keyset_page
from api.problems import FormInvalid, Problem
from api.schemas import ERRORS, CustomerIn, CustomerOut, CustomerPage
from pipeline import access, sameness, services
from pipeline.forms import CustomerForm, search_text
from pipeline.models import Customer

router = Router(tags=["customers"])


class CustomerFilters(Schema):
    q: str = ""
    cursor: str = ""
    limit: int = DEFAULT_LIMIT


@router.get("/customers", response={200: CustomerPage, **ERRORS}, summary="List customers")
def customer_list(request: HttpRequest, filters: Query[CustomerFilters]):
    """The customers you see, newest first; ``q`` searches name and company."""
    access.require_seller(request.user)
    customers = Customer.objects.visible_to(request.user)
    query, _ = search_text({"q": filters.q})
    if query:
        customers = customers.filter(Q(name__icontains=query) | Q(company__icontains=query))
    limit = min(max(filters.limit, 1), MAX_LIMIT)
    items, cursor = keyset_page(customers, "id", filters.cursor, limit, int)
    return {"items": items, "next_cursor": cursor}


@router.get("/customers/{int:customer_id}", response={200: CustomerOut, **ERRORS})
def customer_detail(request: HttpRequest, customer_id: int):
    access.require_seller(request.user)
    return access.get_customer_for(request.user, customer_id)


@router.post("/customers", response={201: CustomerOut, **ERRORS}, summary="Add a customer")
def customer_create(request: HttpRequest, payload: CustomerIn):
    """A new customer. One that matches an existing customer (same phone, email, or
    name and company) is a 409 naming those you see, unless ``add_anyway`` (the page
    asks too)."""
    access.require_seller(request.user)
    form = CustomerForm(form_data(payload.model_copy(update={"add_anyway": None})))
    if not form.is_valid():
        raise FormInvalid(form)
    data = form.cleaned_data
    if not payload.add_anyway:
        # The same matches the pages show (pipeline.sameness): by phone, email, or
        # name and company; one this person may not see is named to nobody.
        matches = sameness.customer_matches(
            request.user,
            name=data["name"],
            company=data["company"],
            email=data["email"],
            phone=data["phone"],
        )
        if matches:
            ids = ", ".join(str(c.pk) for c in matches.visible)
            said = (
                f"Looks like a customer you have: {ids}."
                if ids
                else "A matching customer exists that you may not see: your manager decides."
            )
            raise Problem(
                409,
                f"{said} Send add_anyway: true if it is a different one.",
                {"name": ["A customer you see looks the same."]},
            )
    return Status(201, services.customer_add(owner=request.user, **data))


@router.patch("/customers/{int:customer_id}", response={200: CustomerOut, **ERRORS})
def customer_update(request: HttpRequest, customer_id: int, payload: CustomerIn):
    """Edit a customer (the customer's Edit page). Fields not sent stay as they are."""
    access.require_seller(request.user)
    customer = access.get_customer_for(request.user, customer_id)
    current = CustomerForm(instance=customer)
    data = {name: current[name].value() for name in current.fields}
    data = {
        k: ("on" if v else "") if isinstance(v, bool) else "" if v is None else str(v)
        for k, v in data.items()
    }
    data.update(form_data(payload.model_copy(update={"add_anyway": None})))
    form = CustomerForm(data, instance=customer)
    if not form.is_valid():
        raise FormInvalid(form)
    return services.customer_save(customer=form.save(commit=False), actor=request.user)
