"""The receivables panels the pipeline's pages include: the customer's links and
their answers. The pipeline's code never imports receivables."""

from django import template

from billing.models import Invoice
from receivables import links

register = template.Library()


@register.simple_tag
def customer_links(customer, user, deal=None):
    """``{% customer_links customer user deal as panel %}``: the customer's links (for a
    deal: the links to its invoices and the customer's statement), their latest
    answers, and the invoices a new link may point to. Four queries."""
    invoices = Invoice.objects.visible_to(user).filter(
        deal__customer=customer, voided_at__isnull=True
    )
    if deal is not None:
        invoices = invoices.filter(deal=deal)
    choices = list(invoices.order_by("-number").only("id", "number", "deal_id"))
    shown = links.links_for(user=user, customer_id=customer.pk)
    if deal is not None:
        shown = [link for link in shown if link.invoice_id is None or link.invoice in choices]
    return {
        "links": shown,
        "responses": links.responses_for(
            user=user,
            customer_id=customer.pk,
            invoices=choices if deal is not None else None,
            limit=5,
        ),
        "invoices": choices,
    }
