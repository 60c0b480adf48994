"""One search box in the nav: an invoice number ("INV-00009", "9"), a phone (its
digits, however typed) or an email finds the deal and the customer, within
what the person may see (pipeline.access: a rep their own, a manager their
team's). A name or company finds customers too. Three queries, whatever is found.
"""

import re
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Q

from billing.models import Invoice
from pipeline.keys import MIN_PHONE_DIGITS, phone_key
from pipeline.models import Customer, Deal, User
from pipeline.selectors import customers_by_contact

MAX_RESULTS = 20
MIN_QUERY = 2


@dataclass
class SearchResults:
    query: str
    # What the query was read as: "invoice", "email", "phone" or "name".
    read_as: str = ""
    invoices: list = field(default_factory=list)
    customers: list = field(default_factory=list)
    deals: list = field(default_factory=list)

    @property
    def found(self) -> bool:
        return bool(self.invoices or self.customers or self.deals)


def _invoice_number(query: str) -> int | None:
    """The number in "INV-00009", "inv 9" or "00009" (a short run of digits)."""
    prefix = re.escape(settings.CLEARED_INVOICE_PREFIX.strip().rstrip("-#"))
    match = re.fullmatch(rf"(?:{prefix}[\s\-#]*)?0*(\d{{1,9}})", query.strip(), re.IGNORECASE)
    if match is None:
        return None
    has_prefix = not query.strip()[:1].isdigit()
    digits = match[1]
    # A long run of bare digits is a phone, not an invoice.
    if not has_prefix and len(query.strip()) >= MIN_PHONE_DIGITS:
        return None
    return int(digits)


def search(user: User, query: str) -> SearchResults:
    """What ``query`` finds among what ``user`` may see (the search page)."""
    query = query.strip()[:120]
    results = SearchResults(query=query)
    if len(query) < MIN_QUERY and not query.isdigit():  # "9" is invoice INV-00009
        return results
    deals = Deal.objects.visible_to(user)
    customers = Customer.objects.visible_to(user)
    if (number := _invoice_number(query)) is not None:
        results.read_as = "invoice"
        results.invoices = list(
            Invoice.objects.visible_to(user)
            .filter(number=number)
            .select_related("deal__customer", "deal__rep")
        )
        found_deals = deals.filter(pk__in=[i.deal_id for i in results.invoices])
        found_customers = customers.filter(pk__in=[i.deal.customer_id for i in results.invoices])
    else:
        if "@" in query:
            results.read_as = "email"
            found_customers = customers_by_contact(customers, email=query)
        elif phone_key(query):
            results.read_as = "phone"
            found_customers = customers_by_contact(customers, phone=query)
        else:
            results.read_as = "name"
            found_customers = customers.filter(
                Q(name__icontains=query) | Q(company__icontains=query)
            ).order_by("name", "id")
        results.customers = list(found_customers[:MAX_RESULTS])
        found_deals = deals.filter(customer__in=[c.pk for c in results.customers])
    if results.read_as == "invoice":
        results.customers = list(found_customers.order_by("name", "id")[:MAX_RESULTS])
    results.deals = list(
        found_deals.select_related("customer", "rep").order_by("-promised_at", "-id")[:MAX_RESULTS]
    )
    return results
