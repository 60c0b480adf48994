"""The customer's link: the public page it opens, and the staff's buttons that make
and revoke links (receivables/links.py has the rules).

The public page is deliberately outside the login: the signed token in its
URL is the credential. It sets no cookie (no session, no CSRF cookie: a
cross-site form cannot post without the token, which is the secret), is
never cached or indexed, sends no referrer (the token must not leak to
another site), and answers every refusal with the same bare 404 page that
shows nothing of the business.
"""

from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from billing.models import Invoice
from billing.services import BillingError
from pipeline.access import get_customer_for, require_seller
from pipeline.accounts import client_address
from receivables import links, selectors
from receivables.forms import LinkNewForm, PaidForm, PromiseForm
from receivables.models import CustomerLink, ResponseKind


def public_page(view):
    """No login, no cookie, no cache, no index, no referrer."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        response = view(request, *args, **kwargs)
        response["X-Robots-Tag"] = "noindex, nofollow"
        response["Referrer-Policy"] = "no-referrer"
        return response

    return csrf_exempt(login_not_required(never_cache(wrapped)))


def link_gone(request: HttpRequest) -> HttpResponse:
    """The one bare 404 every refused link answers (online's pay page too)."""
    return render(request, "receivables/link_gone.html", status=404)


def link_limited(request: HttpRequest, token: str) -> HttpResponse | None:
    """The 429 page when this token or address opened links too often; None if not."""
    if not links.link_rate_limited(token, client_address(request)):
        return None
    response = render(request, "receivables/link_limited.html", status=429)
    response["Retry-After"] = str(settings.CLEARED_LINK_RATE_WINDOW_SECONDS)
    return response


@public_page
@require_http_methods(["GET", "POST"])
def customer_link(request: HttpRequest, token: str) -> HttpResponse:
    """The customer's page: the invoice or statement, how to pay, and their two answers."""
    if limited := link_limited(request, token):
        return limited
    link = links.link_for_token(token)
    if link is None:
        return link_gone(request)
    today = timezone.localdate()
    paid_form = PaidForm()
    promise_form = PromiseForm(today=today)
    status = 200
    if request.method == "POST":
        kind = request.POST.get("kind")
        if kind == ResponseKind.PAID:
            paid_form = form = PaidForm(request.POST)
        elif kind == ResponseKind.PROMISE:
            promise_form = form = PromiseForm(request.POST, today=today)
        else:
            return _page(request, link, paid_form, promise_form, 400)
        if form.is_valid():
            try:
                links.customer_respond(link_id=link.pk, kind=kind, today=today, **form.cleaned_data)
            except links.LinkGone:
                return link_gone(request)
            except BillingError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, str(exc))
            else:
                return redirect(f"{request.path}?done={kind}", permanent=False)
        status = 422
    else:
        CustomerLink.objects.filter(pk=link.pk).update(last_used_at=timezone.now())
    return _page(request, link, paid_form, promise_form, status)


def _page(request, link: CustomerLink, paid_form, promise_form, status: int) -> HttpResponse:
    today = timezone.localdate()
    done = request.GET.get("done", "")
    context = {
        "link": link,
        "paid_form": paid_form,
        "promise_form": promise_form,
        "done": done if done in ResponseKind.values else "",
        "contact": link.invoice.deal.rep if link.invoice_id else link.created_by,
        "pay_to": selectors.pay_to(),
        "today": today,
        "last_answer": link.responses.order_by("-created_at", "-id").first(),
    }
    if link.invoice_id:
        invoice, payments = selectors.invoice_for_customer(link.invoice_id, today)
        context.update(invoice=invoice, payments=payments, owed=invoice.outstanding)
        owing = [invoice] if invoice.outstanding else []
    else:
        statement = selectors.statement_context(link.customer, today, deals=links.link_deals(link))
        context["statement"] = statement
        context["owed"] = statement["total_due"]
        owing = statement["invoices"]
    # "Pay now" by card for each invoice still owed (paying online, online/).
    context["pay_now"] = [
        (invoice, path) for invoice in owing if (path := links.pay_now_path(link, invoice))
    ]
    return render(request, "receivables/customer_link.html", context, status=status)


# --- the staff's side ----------------------------------------------------------------


def _back(request: HttpRequest, customer_id: int, invoice: Invoice | None) -> HttpResponse:
    if invoice is not None and request.POST.get("back") == "deal":
        return redirect(f"{invoice.deal.get_absolute_url()}#customer-links")
    return redirect(f"{reverse('customer_detail', args=[customer_id])}#customer-links")


@require_POST
def link_new(request: HttpRequest, pk: int) -> HttpResponse:
    """Make a link for the customer: to one of their invoices, or to their statement."""
    require_seller(request.user)
    customer = get_customer_for(request.user, pk)
    form = LinkNewForm(request.POST, customer=customer, user=request.user)
    if not form.is_valid():
        messages.error(request, " ".join(form.errors.get("invoice", ["Choose an invoice."])))
        return _back(request, customer.pk, None)
    invoice = form.cleaned_data["invoice"]
    try:
        link = links.customer_link_create(
            customer=customer, invoice=invoice, created_by=request.user
        )
    except BillingError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            f"Link to the {link.subject} made: it works until "
            f"{timezone.localtime(link.expires_at):%-d %b %Y}. Copy it from the list below.",
        )
    return _back(request, customer.pk, invoice)


@require_POST
def link_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    """Revoke a link: it answers 404 from now on. A link the user may not see is a 404."""
    require_seller(request.user)
    link = get_object_or_404(
        links.links_visible_to(request.user).select_related("invoice", "invoice__deal"), pk=pk
    )
    links.customer_link_revoke(link_id=link.pk, actor=request.user)
    messages.success(request, f"Link to the {link.subject} revoked: it no longer opens.")
    return _back(request, link.customer_id, link.invoice)
