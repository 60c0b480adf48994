"""The one place that talks to the card processor, Stripe, through its library.

Everything else in Cleared calls these small functions; none imports ``stripe``.
Settings (config/settings.py, README "Paying online"): ``STRIPE_SECRET_KEY``,
``STRIPE_PUBLISHABLE_KEY``, ``STRIPE_WEBHOOK_SECRET``, ``STRIPE_API_BASE``. With no
secret key Cleared is in test mode: it calls localstripe (the fake Stripe server,
``python -m online.localstripe_server``) at ``STRIPE_API_BASE`` with placeholder
``sk_test_``/``pk_test_`` keys, and the pages say no real money moves.

Money crosses here exactly: a Decimal amount becomes integer cents
(``to_cents``) and back (``from_cents``), never through a float. Every create
carries an idempotency key, so a retried request (a worker killed after Stripe
answered) finds the object Stripe made the first time instead of a second one.
The errors callers see are ``ProcessorError`` (the processor is down or refused
the request; its message is safe to show) and ``CardDeclined`` (the card said no).
"""

import hashlib
import hmac
from dataclasses import dataclass
from decimal import Decimal

import stripe
from django.conf import settings
from django.db import IntegrityError, transaction

from online.models import ProcessorCustomer
from pipeline.models import Customer

# Stripe's zero-decimal currencies: their amounts are whole units, not cents.
_ZERO_DECIMAL = frozenset(
    [
        "bif",
        "clp",
        "djf",
        "gnf",
        "jpy",
        "kmf",
        "krw",
        "mga",
        "pyg",
        "rwf",
        "ugx",
        "vnd",
        "vuv",
        "xaf",
        "xof",
        "xpf",
    ]
)


class ProcessorError(Exception):
    """The processor could not be reached or refused the request (message safe to show)."""


class CardDeclined(ProcessorError):
    """The card was declined; ``code`` is Stripe's (``card_declined``…), ``intent`` its PI."""

    def __init__(self, message: str, code: str = "", intent=None):
        super().__init__(message)
        self.code = code
        self.intent = intent


class BadSignature(Exception):
    """A webhook request that is not a validly signed, fresh Stripe event."""


# --- configuration -------------------------------------------------------------


def test_mode() -> bool:
    """No real key: localstripe, placeholder keys, "Test payments — no real money moves"."""
    return settings.STRIPE_TEST_MODE


def publishable_key() -> str:
    return settings.STRIPE_PUBLISHABLE_KEY


def js_url() -> str:
    """Stripe.js: Stripe's own, or localstripe's copy in test mode."""
    return settings.STRIPE_JS_URL


def api_origin() -> str:
    """The origin Stripe.js calls (CSP connect-src): Stripe's API or localstripe."""
    return settings.STRIPE_API_BASE or "https://api.stripe.com"


def currency() -> str:
    return settings.CURRENCY.lower()


def client() -> stripe.StripeClient:
    """A client for the configured processor (cheap to make: settings may change in tests)."""
    base = {"api": settings.STRIPE_API_BASE} if settings.STRIPE_API_BASE else None
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY,
        base_addresses=base,
        max_network_retries=2,
        http_client=stripe.RequestsClient(timeout=settings.STRIPE_TIMEOUT_SECONDS),
    )


# --- money ---------------------------------------------------------------------


def to_cents(amount: Decimal, currency_code: str | None = None) -> int:
    """``Decimal("12.34")`` → ``1234``, exactly; a fraction of a cent is refused."""
    code = (currency_code or currency()).lower()
    scale = 0 if code in _ZERO_DECIMAL else 2
    units = Decimal(amount).scaleb(scale)
    if units != units.to_integral_value():
        raise ValueError(f"{amount} is not a whole number of the currency's smallest unit.")
    return int(units)


def from_cents(cents: int, currency_code: str | None = None) -> Decimal:
    """``1234`` → ``Decimal("12.34")``, exactly."""
    code = (currency_code or currency()).lower()
    if code in _ZERO_DECIMAL:
        return Decimal(int(cents))
    return Decimal(int(cents)).scaleb(-2).quantize(Decimal("0.01"))


# --- calling Stripe ------------------------------------------------------------


def _call(method, *args, **kwargs):
    """Run one library call; its errors become ``CardDeclined`` or ``ProcessorError``."""
    try:
        return method(*args, **kwargs)
    except stripe.CardError as exc:
        error = exc.error
        raise CardDeclined(
            exc.user_message or "The card was declined.",
            code=(error.code if error else "") or "card_declined",
            intent=error.payment_intent if error else None,
        ) from None
    except stripe.StripeError as exc:
        raise ProcessorError(
            exc.user_message or "The card processor did not answer; please try again shortly."
        ) from None


def _options(idempotency_key: str | None) -> dict:
    return {"idempotency_key": idempotency_key} if idempotency_key else {}


def customer_for(customer: Customer) -> str:
    """The processor's customer id (``cus_…``) for a Cleared customer, made once.

    The id is kept on ``online.ProcessorCustomer`` (never on pipeline's Customer).
    Made with an idempotency key per Cleared customer, so two requests racing get
    the same Stripe customer and the second insert loses to the unique row.
    """
    known = ProcessorCustomer.objects.filter(customer=customer).first()
    if known is not None:
        return known.processor_id
    made = _call(
        client().v1.customers.create,
        {
            "name": customer.company or customer.name,
            "metadata": {"cleared_customer": str(customer.pk)},
        },
        _options(f"cleared-customer-{customer.pk}"),
    )
    try:
        with transaction.atomic():
            ProcessorCustomer.objects.create(customer=customer, processor_id=made.id)
    except IntegrityError:
        return ProcessorCustomer.objects.get(customer=customer).processor_id
    return made.id


@dataclass(frozen=True)
class Metadata:
    """The Cleared ids an intent carries to Stripe and back (strings, as Stripe keeps them)."""

    deal_id: int
    invoice_id: int | None = None
    instalment_id: int | None = None
    purpose: str = ""

    def as_stripe(self) -> dict[str, str]:
        data = {"cleared_deal": str(self.deal_id), "cleared_purpose": self.purpose}
        if self.invoice_id is not None:
            data["cleared_invoice"] = str(self.invoice_id)
        if self.instalment_id is not None:
            data["cleared_instalment"] = str(self.instalment_id)
        return data


def payment_intent_create(
    *,
    amount: Decimal,
    customer_id: str,
    metadata: Metadata,
    idempotency_key: str,
    description: str = "",
    save_card: bool = False,
):
    """A PaymentIntent for ``amount`` (exact cents, ``CURRENCY``), to be confirmed by
    the customer's browser (Stripe Elements). ``save_card``: keep the card for
    off-session charges later (``setup_future_usage``)."""
    params = {
        "amount": to_cents(amount),
        "currency": currency(),
        "customer": customer_id,
        "metadata": metadata.as_stripe(),
        "payment_method_types": ["card"],
    }
    if description:
        params["description"] = description
    if save_card:
        params["setup_future_usage"] = "off_session"
    return _call(client().v1.payment_intents.create, params, _options(idempotency_key))


def payment_intent_retrieve(intent_id: str):
    return _call(client().v1.payment_intents.retrieve, intent_id)


def payment_intent_set_amount(intent_id: str, amount: Decimal):
    """Change what a not-yet-paid intent asks for (the amount due changed meanwhile)."""
    return _call(client().v1.payment_intents.update, intent_id, {"amount": to_cents(amount)})


def charge_off_session(
    *,
    amount: Decimal,
    customer_id: str,
    payment_method_id: str,
    metadata: Metadata,
    idempotency_key: str,
    description: str = "",
):
    """Charge a card on file with the customer away (after delivery).

    Returns the PaymentIntent: ``succeeded``, ``processing`` or
    ``requires_action`` (the customer must authenticate: send them its link).
    A decline raises ``CardDeclined`` carrying the intent.
    """
    params = {
        "amount": to_cents(amount),
        "currency": currency(),
        "customer": customer_id,
        "payment_method": payment_method_id,
        "off_session": True,
        "confirm": True,
        "metadata": metadata.as_stripe(),
        "payment_method_types": ["card"],
    }
    if description:
        params["description"] = description
    return _call(client().v1.payment_intents.create, params, _options(idempotency_key))


def setup_intent_create(*, customer_id: str, metadata: Metadata, idempotency_key: str):
    """A SetupIntent: the customer puts a card on file from their browser, for later."""
    params = {
        "customer": customer_id,
        "usage": "off_session",
        "metadata": metadata.as_stripe(),
        "payment_method_types": ["card"],
    }
    return _call(client().v1.setup_intents.create, params, _options(idempotency_key))


def setup_intent_retrieve(setup_intent_id: str):
    return _call(client().v1.setup_intents.retrieve, setup_intent_id)


def payment_method_retrieve(payment_method_id: str):
    """A saved payment method: ``.card.brand`` and ``.card.last4`` (never the number)."""
    return _call(client().v1.payment_methods.retrieve, payment_method_id)


def refund_create(
    *,
    intent_id: str,
    idempotency_key: str,
    amount: Decimal | None = None,
    metadata: dict[str, str] | None = None,
):
    """Refund a paid intent, all of it or ``amount`` (exact cents)."""
    params: dict = {"payment_intent": intent_id}
    if amount is not None:
        params["amount"] = to_cents(amount)
    if metadata:
        params["metadata"] = metadata
    return _call(client().v1.refunds.create, params, _options(idempotency_key))


def charge_retrieve(charge_id: str):
    return _call(client().v1.charges.retrieve, charge_id)


# --- the processor's webhook ---------------------------------------------------


def event_construct(payload: bytes, signature_header: str | None):
    """Verify ``Stripe-Signature`` (``t=…,v1=…``, fresh, our secret) and parse the event.

    Raises ``BadSignature`` for anything that is not a signed Stripe event:
    missing or wrong signature, stale timestamp, a body that is not JSON.
    """
    if not signature_header or not settings.STRIPE_WEBHOOK_SECRET:
        raise BadSignature("Missing Stripe-Signature header.")
    try:
        return stripe.Webhook.construct_event(
            payload, signature_header, settings.STRIPE_WEBHOOK_SECRET
        )
    except stripe.SignatureVerificationError:
        raise BadSignature("Wrong or stale Stripe signature.") from None
    except (ValueError, UnicodeDecodeError, TypeError, AttributeError, RecursionError):
        raise BadSignature("The body is not a Stripe event.") from None


def event_sign(payload: bytes, secret: str, timestamp: int) -> str:
    """The ``Stripe-Signature`` header Stripe would send for ``payload`` (tests, bench)."""
    signed = str(timestamp).encode() + b"." + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"
