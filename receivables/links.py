"""The customer's own link: a signed, expiring, revocable URL that needs no login.

A rep or manager makes a link for one invoice or for the customer's
statement (``customer_link_create``) and sends its URL (``customer_link_url``)
in an email. The customer opens it, sees what they owe and how to pay, and
answers "I've paid" (with their reference) or "I'll pay on …" (a date):
``customer_respond`` records each answer on the deal as a touch and the
reminder rules (reminders/rules/receivables.py) make the rep check the money or chase
again — a promise is not a payment.

The URL carries the link's random ``key`` signed with ``SECRET_KEY`` under its
own salt (``django.core.signing``): a forged or tampered token fails the
signature; the row decides the rest (revoked, expired). Every refusal is the
same 404 and changes nothing (``link_for_token``). The page is rate-limited
per token and per client address in the cache (``link_rate_limited``).
"""

import hashlib
import logging
import uuid
from dataclasses import dataclass
from datetime import date, timedelta

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.db import transaction
from django.db.models import F, Q
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from billing.models import Invoice
from billing.services import BillingError
from pipeline import services as pipeline_services
from pipeline.access import can_manage, team_members
from pipeline.models import Deal, TouchKind, User
from pipeline.terms import money_text
from receivables.models import CustomerLink, CustomerResponse, ResponseKind
from receivables.selectors import open_invoices

logger = logging.getLogger(__name__)

SALT = "cleared.billing.customer-link"
# An answer the customer sends twice (a double click, a reload) within this
# long is the same answer: recorded once.
SAME_ANSWER_WINDOW = timedelta(hours=1)


# --- making, showing and revoking links ------------------------------------------


def customer_link_create(
    *, customer, invoice: Invoice | None = None, created_by: User, days: int | None = None
) -> CustomerLink:
    """A new link to ``invoice`` (or, without one, the customer's statement), working
    for ``days`` (default ``CLEARED_LINK_DAYS``). The caller has checked that
    ``created_by`` may see the customer and the invoice (pipeline.access)."""
    if invoice is not None and invoice.deal.customer_id != customer.pk:
        raise BillingError("That invoice is not this customer's.")
    if invoice is not None and invoice.is_void:
        raise BillingError("That invoice is void: there is nothing to ask for.")
    days = settings.CLEARED_LINK_DAYS if days is None else days
    if days < 1:
        raise BillingError("A link must work for at least a day.")
    now = timezone.now()
    return CustomerLink.objects.create(
        customer=customer,
        invoice=invoice,
        created_by=created_by,
        created_at=now,
        expires_at=now + timedelta(days=days),
    )


def customer_link_for_email(
    *, customer, invoice: Invoice | None = None, created_by: User, min_days_left: int = 7
) -> CustomerLink:
    """The link to put in an email: the newest live one for this customer, invoice and
    maker that still has ``min_days_left`` days to run, or a new one. So a chase
    email and its reminders reuse one link instead of scattering many."""
    now = timezone.now()
    live = (
        CustomerLink.objects.filter(
            customer=customer,
            invoice=invoice,
            created_by=created_by,
            revoked_at__isnull=True,
            expires_at__gt=now + timedelta(days=min_days_left),
        )
        .order_by("-created_at", "-id")
        .first()
    )
    return live or customer_link_create(customer=customer, invoice=invoice, created_by=created_by)


def customer_link_token(link: CustomerLink) -> str:
    """The signed token in the link's URL: its key, signed under SALT."""
    return signing.dumps(link.key.hex, salt=SALT)


def customer_link_path(link: CustomerLink) -> str:
    return reverse("billing:customer_link", args=[customer_link_token(link)])


def customer_link_url(link: CustomerLink) -> str:
    """The absolute URL to put in an email: ``CLEARED_SITE_URL`` + the link's path."""
    return f"{settings.CLEARED_SITE_URL}{customer_link_path(link)}"


def pay_now_path(link: CustomerLink, invoice: Invoice) -> str | None:
    """The page where the customer pays ``invoice`` by card from this link ("Pay now"),
    when paying online (online/, which stands on receivables) is installed: found
    by its URL name, so receivables never imports it."""
    try:
        return reverse("online:pay", args=[customer_link_token(link), invoice.pk])
    except NoReverseMatch:
        return None


def pay_now_url(link: CustomerLink, invoice: Invoice) -> str | None:
    path = pay_now_path(link, invoice)
    return f"{settings.CLEARED_SITE_URL}{path}" if path else None


def customer_link_revoke(*, link_id: int, actor: User) -> CustomerLink:
    """Revoke a link at once: its URL answers 404 from now on. Revoking twice is harmless."""
    with transaction.atomic():
        # The row lock waits for an answer being recorded on this link: the link is
        # revoked after it, never under it (customer_respond takes the same lock).
        link = CustomerLink.objects.select_for_update().get(pk=link_id)
        if link.revoked_at is None:
            link.revoked_at = timezone.now()
            link.revoked_by = actor
            link.save(update_fields=["revoked_at", "revoked_by"])
    return link


def link_for_token(token: str, *, now=None) -> CustomerLink | None:
    """The live link a token names, or None: forged, tampered, unknown, revoked or expired."""
    try:
        raw = signing.loads(token, salt=SALT)
        key = uuid.UUID(hex=str(raw))
    except (signing.BadSignature, ValueError, TypeError):
        return None
    link = (
        CustomerLink.objects.select_related("customer", "invoice", "invoice__deal", "created_by")
        .filter(key=key)
        .first()
    )
    if link is None or not link.is_live(now):
        return None
    return link


# --- rate limit ----------------------------------------------------------------------


def _hit(key: str, window: int) -> int:
    """Count one request in a fixed window; how many so far. 0 when the cache is down
    (config/cache.py forgives Redis being down)."""
    cache.add(key, 0, timeout=window)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr: a new window
        cache.add(key, 1, timeout=window)
        return 1


def _window_slot(window: int) -> int:
    """Which fixed window of ``window`` seconds it is now."""
    return int(timezone.now().timestamp()) // window


def link_rate_limited(token: str, address: str | None) -> bool:
    """True when this token, or this client address, has opened link pages more than
    ``CLEARED_LINK_RATE_LIMIT`` times in the current window of
    ``CLEARED_LINK_RATE_WINDOW_SECONDS``. Counted before the token is checked,
    so guessing tokens is limited too. Fails open while the cache is down: the
    page itself only reads, and its answers are deduplicated."""
    window = settings.CLEARED_LINK_RATE_WINDOW_SECONDS
    slot = _window_slot(window)
    try:  # one link, whenever its URL was signed (the signature carries the second)
        name = str(signing.loads(token, salt=SALT))
    except (signing.BadSignature, ValueError, TypeError):
        name = token  # a guess counts as itself
    digest = hashlib.sha256(name.encode("utf-8", "replace")).hexdigest()[:32]
    by_token = _hit(f"link-rate:t:{digest}:{slot}", window)
    by_address = _hit(f"link-rate:a:{address or '-'}:{slot}", window)
    return max(by_token, by_address) > settings.CLEARED_LINK_RATE_LIMIT


# --- what the link shows --------------------------------------------------------------


def link_deals(link: CustomerLink):
    """The deals a statement link may show: the customer's, as far as the person who
    made the link may see them (a rep's link never shows a colleague's deals)."""
    return Deal.objects.visible_to(link.created_by).filter(customer_id=link.customer_id)


def link_open_invoices(link: CustomerLink) -> list[Invoice]:
    """The invoices an answer on this link is about: its invoice if still unpaid, or
    every unpaid invoice on the statement."""
    invoices = open_invoices(link.customer_id, deals=link_deals(link))
    if link.invoice_id is not None:
        invoices = invoices.filter(pk=link.invoice_id)
    return list(invoices.select_related("deal", "deal__rep"))


# --- the customer's answer --------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    responses: list[CustomerResponse]
    repeated: bool  # the same answer came again: nothing new was written


class LinkGone(Exception):
    """The link was revoked or expired while the answer was on its way: a 404."""


def customer_respond(
    *,
    link_id: int,
    kind: str,
    reference: str = "",
    promised_for: date | None = None,
    today: date | None = None,
) -> Answer:
    """Record the customer's "I've paid" or "I'll pay on …" for the link's unpaid invoices.

    One ``CustomerResponse`` per invoice and one touch per deal, written as
    the deal's rep (kind "Customer's own answer") so the rep sees it on the
    timeline; the touch's next step is to check the money (at once) or to
    chase again after the promised day. A promise must be for today or a day
    within ``CLEARED_PROMISE_MAX_DAYS``. The same answer again within
    ``SAME_ANSWER_WINDOW`` writes nothing.
    """
    today = today or timezone.localdate()
    if kind not in ResponseKind.values:
        raise BillingError("Choose an answer.", field="kind")
    if kind == ResponseKind.PROMISE:
        if promised_for is None:
            raise BillingError("Give the date you will pay on.", field="promised_for")
        if promised_for < today:
            raise BillingError(
                "That date has passed: give today or a later day.", field="promised_for"
            )
        latest = today + timedelta(days=settings.CLEARED_PROMISE_MAX_DAYS)
        if promised_for > latest:
            raise BillingError(
                f"Please pick a day by {latest:%-d %B %Y}, or call us to agree a plan.",
                field="promised_for",
            )
        reference = ""
    else:
        promised_for = None
        reference = reference.strip()
    with transaction.atomic():
        link = CustomerLink.objects.select_for_update().filter(pk=link_id).first()
        if link is None or not link.is_live():
            raise LinkGone
        invoices = link_open_invoices(link)
        if not invoices:
            raise BillingError("Nothing is owed on this link any more: thank you.")
        same = CustomerResponse.objects.filter(
            link=link,
            kind=kind,
            promised_for=promised_for,
            created_at__gte=timezone.now() - SAME_ANSWER_WINDOW,
        )
        if kind == ResponseKind.PAID:
            same = same.filter(reference=reference)
        repeated = list(same.select_related("invoice"))
        CustomerLink.objects.filter(pk=link.pk).update(last_used_at=timezone.now())
        if repeated:
            return Answer(responses=repeated, repeated=True)
        responses = CustomerResponse.objects.bulk_create(
            [
                CustomerResponse(
                    link=link,
                    invoice=invoice,
                    kind=kind,
                    reference=reference,
                    promised_for=promised_for,
                )
                for invoice in invoices
            ]
        )
        by_deal: dict[int, list[Invoice]] = {}
        for invoice in invoices:
            by_deal.setdefault(invoice.deal_id, []).append(invoice)
        for deal_invoices in by_deal.values():
            _touch_for(deal_invoices, kind, reference, promised_for, today)
    return Answer(responses=responses, repeated=False)


def _touch_for(invoices: list[Invoice], kind, reference, promised_for, today) -> None:
    deal = invoices[0].deal
    names = ", ".join(
        f"{invoice.display_number} ({money_text(invoice.amount - invoice.cleared)})"
        for invoice in invoices
    )
    if kind == ResponseKind.PAID:
        said = f"says they have paid {names}" + (
            f", reference “{reference}”." if reference else ", no reference given."
        )
        agreed = "Says it is paid: check that the money came in."
        next_step = "Check the money came in (only cleared money counts)"
        next_day = today
    else:
        said = f"promises to pay {names} on {promised_for:%A %-d %B %Y}."
        agreed = f"To pay on {promised_for:%-d %b %Y}"
        next_step = "Chase again if the money is not in after the promised day"
        next_day = promised_for + timedelta(days=1)
    pipeline_services.touch_record(
        deal=deal,
        author=deal.rep,
        kind=TouchKind.CUSTOMER_LINK,
        discussed=f"From the customer, through their payment link: {deal.customer.name} {said}",
        agreed_to=agreed,
        next_step=next_step,
        next_step_date=next_day,
    )


def links_visible_to(user: User):
    """The links a person may see, copy and revoke (pipeline.access's rule, for links):
    a link to an invoice they may see; a statement link they made, or (a manager)
    one their team made — a statement link shows its maker's deals."""
    makers = team_members(user) if can_manage(user) else User.objects.filter(pk=user.pk)
    return CustomerLink.objects.filter(
        Q(invoice__in=Invoice.objects.visible_to(user))
        | Q(invoice__isnull=True, created_by__in=makers)
    )


def responses_for(*, user: User, customer_id: int, invoices=None, limit: int = 10) -> list:
    """The customer's latest answers about invoices ``user`` may see (the link panels)."""
    rows = CustomerResponse.objects.filter(
        link__customer_id=customer_id, invoice__in=Invoice.objects.visible_to(user)
    ).select_related("invoice", "link")
    if invoices is not None:
        rows = rows.filter(invoice__in=invoices)
    return list(rows.order_by("-created_at", "-id")[:limit])


def links_for(*, user: User, customer_id: int, limit: int = 10) -> list[CustomerLink]:
    """The customer's links ``user`` may see, live ones first, newest first (with their URL)."""
    rows = (
        links_visible_to(user)
        .filter(customer_id=customer_id)
        .select_related("invoice", "created_by")
    )
    now = timezone.now()
    rows = list(rows.order_by(F("revoked_at").desc(nulls_first=True), "-created_at")[:limit])
    for link in rows:
        link.live = link.is_live(now)
        link.path = customer_link_path(link)
        link.url = customer_link_url(link)
    return rows
