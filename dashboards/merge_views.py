"""Duplicate customers: the match shown while typing, the merge, "not the same person"."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from dashboards import merging
from pipeline import access, sameness
from pipeline.forms import parse_id

MATCH_FIELDS = ("name", "company", "phone", "email")
NEW_CUSTOMER_PREFIX = "new_customer"


@require_GET
def customer_matches_view(request: HttpRequest) -> HttpResponse:
    """The matches of the customer being typed (htmx, as the user types or leaves a field)."""
    access.require_seller(request.user)
    typed = {
        name: (request.GET.get(name) or request.GET.get(f"{NEW_CUSTOMER_PREFIX}-{name}") or "")[
            :200
        ]
        for name in MATCH_FIELDS
    }
    context = {
        "matches": sameness.customer_matches(request.user, **typed),
        "mode": "deal" if request.GET.get("mode") == "deal" else "",
        "next": "deal" if request.GET.get("next") == "deal" else "",
    }
    return render(request, "pipeline/_customer_matches.html", context)


def customer_merge_view(request: HttpRequest, pk: int, other: int) -> HttpResponse:
    """Merge ``other`` into ``pk`` (managers: their team's customers; operators: any).

    GET shows both and what will move; POST merges. A forged id is a 404.
    """
    access.require_manager(request.user, "Only a manager can merge customers.")
    survivor = access.get_customer_for(request.user, pk)
    absorbed = access.get_customer_for(request.user, parse_id(str(other)) or 0)
    if request.method == "POST":
        try:
            merge = merging.customer_merge(
                survivor_id=survivor.pk,
                absorbed_id=absorbed.pk,
                actor=request.user,
                reason=request.POST.get("reason", ""),
            )
        except merging.MergeRefused as exc:
            messages.error(request, str(exc))
        else:
            messages.success(
                request, f"{merge.absorbed_name} merged into {survivor.name}: {merge.moved_words}."
            )
            return redirect(survivor)
    context = {
        "survivor": survivor,
        "absorbed": absorbed,
        "pairs": [
            (survivor, survivor.deals.count(), survivor.links.count()),
            (absorbed, absorbed.deals.count(), absorbed.links.count()),
        ],
    }
    return render(request, "dashboards/customer_merge.html", context)


@require_POST
def customer_distinct_view(request: HttpRequest, pk: int, other: int) -> HttpResponse:
    """A manager says two matching customers are different people."""
    access.require_manager(request.user, "Only a manager can decide that.")
    customer = access.get_customer_for(request.user, pk)
    other_customer = access.get_customer_for(request.user, other)
    try:
        merging.customer_distinct(
            customer_id=customer.pk, other_id=other_customer.pk, actor=request.user
        )
    except merging.MergeRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            f"Recorded: {customer.name} (#{customer.pk}) and {other_customer.name} "
            f"(#{other_customer.pk}) are different people.",
        )
    return redirect(customer)
