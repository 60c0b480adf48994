"""The card on file: the customer puts it on file from a link (a SetupIntent), and once
the audit confirmed the sale and delivery is recorded, it is charged off-session for
what is left to pay (DOMAIN.md, seed 000: "charged once the service is rendered").

A charge row (``OnFileCharge``) is written under the deal's lock before the
processor is asked, and its id is the idempotency key: a double click, two tabs or
a retried worker find the charge in flight and never charge twice. The processor's
answer records a pending payment (billing) which clears, bounces (the reminder
follows at once, as for every bounce) or waits on the customer to authenticate
(an email with a link to the authentication page).
"""

import contextlib
import secrets
from datetime import datetime, timedelta

from celery import shared_task
from django.conf import settings
from django.core import signing
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from billing import services as billing
from billing.models import EventSource, MethodKind, PaymentKind, PaymentMethodKind, PaymentStatus
from billing.policy import billing_refusal
from online import processor, refunds
from online.models import Intent, IntentPayment, IntentPurpose
from online.on_file_models import OnFileCharge, OnFileSetup, TeamCharging
from pipeline.models import Deal, User
from pipeline.stages import Stage
from pipeline.terms import PaymentOption, money_text

SETUP_SALT = "cleared.online.card-on-file"
AUTH_SALT = "cleared.online.authenticate"
# The processor's PaymentMethod ids: a card the customer put on file, not one typed in.
PM_PREFIX = "pm_"
# How long the customer's links work.
LINK_MAX_AGE = timedelta(days=30)


# --- the customer's links -------------------------------------------


def setup_token(setup: OnFileSetup) -> str:
    return signing.dumps(setup.key, salt=SETUP_SALT)


def setup_for_token(token: str) -> OnFileSetup | None:
    """The setup a signed token names, or None (forged, tampered or too old: one 404)."""
    try:
        key = signing.loads(token, salt=SETUP_SALT, max_age=LINK_MAX_AGE)
    except signing.BadSignature:
        return None
    return OnFileSetup.objects.select_related("deal__customer").filter(key=key).first()


def auth_token(charge: OnFileCharge) -> str:
    return signing.dumps(charge.pk, salt=AUTH_SALT)


def charge_for_token(token: str) -> OnFileCharge | None:
    try:
        charge_id = signing.loads(token, salt=AUTH_SALT, max_age=LINK_MAX_AGE)
    except signing.BadSignature:
        return None
    return (
        OnFileCharge.objects.select_related("deal__customer", "intent", "payment")
        .filter(pk=charge_id)
        .first()
    )


def customer_address(deal: Deal) -> str:
    return deal.customer.billing_email or deal.customer.email


# --- putting a card on file -------------------------------------------


@transaction.atomic
def on_file_link_send(*, deal_id: int, actor: User) -> OnFileSetup:
    """Send the customer a link to put their card on file for an On-file deal.

    The caller checked that ``actor`` may see the deal (pipeline.access). Refused:
    another payment option, a lost or written-off deal, a dispute at audit, no
    email address for the customer. The email leaves after commit.
    """
    deal = Deal.objects.select_for_update().select_related("customer").get(pk=deal_id)
    if deal.payment_option != PaymentOption.ON_FILE:
        raise billing.BillingError("Only an On-file deal takes a card on file.")
    if deal.stage in (Stage.LOST, Stage.WRITTEN_OFF):
        raise billing.BillingError(f"This deal is {deal.get_stage_display().lower()}.")
    if deal.is_disputed:
        raise billing.BillingError(billing_refusal(deal))
    address = customer_address(deal)
    if not address:
        raise billing.BillingError(
            "The customer has no email address: add one on the customer's page first."
        )
    setup = OnFileSetup.objects.create(
        deal=deal, key=secrets.token_urlsafe(24), sent_to=address, created_by=actor
    )
    transaction.on_commit(lambda: on_file_email_task.delay("setup", setup.pk))
    return setup


def setup_intent_for(setup: OnFileSetup):
    """The link's SetupIntent, made once (the row's id is its idempotency key)."""
    if setup.processor_id:
        return processor.setup_intent_retrieve(setup.processor_id)
    made = processor.setup_intent_create(
        customer_id=processor.customer_for(setup.deal.customer),
        metadata=processor.Metadata(deal_id=setup.deal_id, purpose=f"setup:{setup.pk}"),
        idempotency_key=f"cleared-setup-{setup.pk}",
    )
    if OnFileSetup.objects.filter(pk=setup.pk, processor_id="").update(processor_id=made.id):
        setup.processor_id = made.id
        return made
    # Another page load stored its SetupIntent first: that one is the link's.
    setup.refresh_from_db(fields=["processor_id"])
    return processor.setup_intent_retrieve(setup.processor_id)


def on_file_setup_complete(*, setup_id: int, found=None):
    """The customer's card is on file: keep what the processor says of it.

    From the return page or the processor's ``setup_intent.succeeded`` event
    (``found``: the SetupIntent). Only the PaymentMethod's id (masked, as every
    processor token), brand and last 4 are kept, through
    ``billing.services.payment_method_add`` (the deal moves to Deposit when its
    deposit is the card on file). Once per link: None if not succeeded yet.
    """
    setup = OnFileSetup.objects.select_related("deal").get(pk=setup_id)
    if setup.completed_at is not None:
        return setup.method
    found = found or processor.setup_intent_retrieve(setup.processor_id)
    if found.status != "succeeded" or not found.payment_method:
        return None
    method_id = found.payment_method
    method_id = method_id if isinstance(method_id, str) else method_id.id
    card = processor.payment_method_retrieve(method_id).card
    with transaction.atomic():
        setup = OnFileSetup.objects.select_for_update().get(pk=setup_id)
        if setup.completed_at is not None:
            return setup.method
        method = billing.payment_method_add(
            deal_id=setup.deal_id,
            recorded_by=setup.created_by,
            kind=MethodKind.CARD,
            processor_token=method_id,
            brand=card.brand.title(),
            last4=card.last4,
        )
        setup.completed_at, setup.method = timezone.now(), method
        setup.save(update_fields=["completed_at", "method"])
    return method


def setup_from_event(found: dict) -> str:
    """The processor's ``setup_intent.succeeded``: the card is on file even if the
    customer closed the page before coming back. Returns what happened, in words."""
    purpose = str((found.get("metadata") or {}).get("cleared_purpose", ""))
    setup = OnFileSetup.objects.filter(processor_id=str(found.get("id", ""))).first()
    if not purpose.startswith("setup:") or setup is None:
        return "Not a card-on-file link of Cleared's."
    method = on_file_setup_complete(setup_id=setup.pk)
    return f"Card on file for deal #{setup.deal_id}: {method}." if method else "Not set up yet."


# --- charging it -------------------------------------------


def processor_method(deal: Deal):
    """The newest card the customer put on file through the processor, or None."""
    return deal.payment_methods.filter(processor_token__startswith=PM_PREFIX).first()


def charge_in_flight(deal: Deal) -> OnFileCharge | None:
    """A charge not answered yet or waiting on the customer (its payment pending)."""
    return (
        deal.on_file_charges.filter(payment__isnull=True).first()
        or deal.on_file_charges.filter(payment__status=PaymentStatus.PENDING).first()
    )


def left_to_charge(deal: Deal):
    """What is left to pay: the amount less the money in (pending or cleared, less
    refunds) — the open balance ``billing.services.payment_record`` allows."""
    return deal.amount - billing.live_money(deal.pk)


def charge_refusal(deal: Deal) -> str | None:
    """Why the card on file cannot be charged now, or None.

    Nothing is charged before the audit confirmed the sale (``billing_refusal``)
    and delivery is recorded; then only what is left, once at a time.
    """
    if deal.payment_option != PaymentOption.ON_FILE:
        return "Only an On-file deal's card is charged."
    if refusal := billing_refusal(deal):
        return refusal
    if charge_in_flight(deal) is not None:
        return "A charge of the card is already under way."
    if left_to_charge(deal) <= 0:
        return "Nothing is left to pay."
    if deal.stage != Stage.DELIVERED or deal.delivered_at is None:
        return "The card is charged once delivery is recorded."
    if processor_method(deal) is None:
        return "No card is on file yet: send the customer the link to put one on file."
    return None


def on_file_charge(*, deal_id: int, actor: User | None) -> OnFileCharge:
    """Charge the card on file, off-session, for what is left to pay (``actor`` None:
    the team's auto-charge on delivery). Refused (``BillingError``) as
    ``charge_refusal`` says; the charge row commits before the processor is asked."""
    with transaction.atomic():
        deal = Deal.objects.select_for_update().get(pk=deal_id)
        if refusal := charge_refusal(deal):
            raise billing.BillingError(refusal)
        charge = OnFileCharge.objects.create(
            deal=deal,
            method=processor_method(deal),
            amount=left_to_charge(deal),
            charged_by=actor,
        )
    charge_send(charge.pk)
    charge.refresh_from_db()
    return charge


def charge_send(charge_id: int) -> str:
    """Ask the processor for a charge not answered yet (again, after a crash: the same
    key returns the same PaymentIntent) and record its answer. Returns the outcome."""
    charge = OnFileCharge.objects.select_related("deal__customer", "method").get(pk=charge_id)
    if charge.payment_id is not None:
        return "answered"
    try:
        found = processor.charge_off_session(
            amount=charge.amount,
            customer_id=processor.customer_for(charge.deal.customer),
            payment_method_id=charge.method.processor_token,
            metadata=processor.Metadata(deal_id=charge.deal_id, purpose=IntentPurpose.OFF_SESSION),
            idempotency_key=f"cleared-onfile-{charge.pk}",
            description=f"Deal #{charge.deal_id}: {charge.deal.title}",
        )
    except processor.CardDeclined as exc:
        if exc.code == "authentication_required" and exc.intent:
            return _charge_record(charge, exc.intent["id"], "requires_action")
        return _charge_declined(charge, str(exc))
    except processor.ProcessorError:
        return "unreachable"
    return _charge_record(charge, found.id, found.status)


def _card(charge: OnFileCharge) -> str:
    return f"Card on file {charge.method.brand} •••• {charge.method.last4}"


@transaction.atomic
def _pending_payment(charge: OnFileCharge):
    return billing.payment_record(
        deal_id=charge.deal_id,
        recorded_by=charge.charged_by or charge.deal.rep,
        kind=PaymentKind.FINAL,
        method=PaymentMethodKind.CARD,
        amount=charge.amount,
        reference=_card(charge),
    )


def _charge_record(charge: OnFileCharge, intent_id: str, status: str) -> str:
    with transaction.atomic():
        charge = OnFileCharge.objects.select_for_update().get(pk=charge.pk)
        if charge.payment_id is not None:
            return "answered"
        intent = Intent.objects.create(
            processor_id=intent_id,
            purpose=IntentPurpose.OFF_SESSION,
            deal_id=charge.deal_id,
            amount=charge.amount,
            currency=processor.currency(),
        )
        payment = _pending_payment(charge)
        IntentPayment.objects.create(intent=intent, payment=payment)
        charge.intent, charge.payment = intent, payment
        fields = ["intent", "payment"]
        if status == "succeeded":
            billing.payment_clear(
                payment_id=payment.pk,
                actor=None,
                source=EventSource.WEBHOOK,
                reason="The card on file was charged.",
            )
        elif status == "requires_action":
            charge.needs_action_at = timezone.now()
            fields.append("needs_action_at")
            transaction.on_commit(lambda: on_file_email_task.delay("authenticate", charge.pk))
        charge.save(update_fields=fields)
    return status


def _charge_declined(charge: OnFileCharge, message: str) -> str:
    with transaction.atomic():
        charge = OnFileCharge.objects.select_for_update().get(pk=charge.pk)
        if charge.payment_id is not None:
            return "answered"
        payment = _pending_payment(charge)
        billing.payment_bounce(
            payment_id=payment.pk,
            actor=None,
            source=EventSource.WEBHOOK,
            reason=f"The card on file was declined: {message}",
        )
        charge.payment, charge.declined = payment, message[:300]
        charge.save(update_fields=["payment", "declined"])
    return "declined"


def charge_after_authentication(charge: OnFileCharge) -> str:
    """The customer came back from authenticating: clear or bounce by the processor's word
    (its ``payment_intent.*`` event does the same; whichever comes first wins)."""
    payment = charge.payment
    payment.refresh_from_db()
    if payment.status != PaymentStatus.PENDING:
        return payment.status
    found = processor.payment_intent_retrieve(charge.intent.processor_id)
    mover = {"succeeded": billing.payment_clear, "requires_payment_method": billing.payment_bounce}
    if found.status in mover:
        # The processor's event may have moved it meanwhile: then nothing to do.
        with contextlib.suppress(billing.BillingError):
            mover[found.status](
                payment_id=payment.pk,
                actor=None,
                source=EventSource.WEBHOOK,
                reason="The customer authenticated the charge."
                if found.status == "succeeded"
                else "The customer's bank refused the authentication.",
            )
    return found.status


def on_file_reconcile(now: datetime | None = None) -> int:
    """Charges written but never answered (the worker died in between): ask again."""
    stale = (now or timezone.now()) - timedelta(seconds=settings.ONLINE_RECONCILE_AFTER_SECONDS)
    ids = OnFileCharge.objects.filter(payment__isnull=True, created_at__lt=stale).values_list(
        "pk", flat=True
    )
    return sum(charge_send(charge_id) != "unreachable" for charge_id in ids[:100])


# --- the team's setting -------------------------------------------


def team_charging_set(*, manager: User, on: bool) -> TeamCharging:
    """A manager turns "charge the card on file on delivery" on or off for their team."""
    setting, _ = TeamCharging.objects.update_or_create(
        manager=manager, defaults={"charge_on_delivery": on, "changed_at": timezone.now()}
    )
    return setting


def charge_describe(charge: OnFileCharge) -> str:
    """The charge's state as the rep reads it."""
    if charge.payment_id is None:
        return f"Charging {money_text(charge.amount)}: waiting for the processor."
    if charge.payment.status == PaymentStatus.PENDING and charge.needs_action_at:
        return (
            f"{money_text(charge.amount)}: waiting on the customer to authenticate with their bank."
        )
    return f"{money_text(charge.amount)}: {charge.payment.get_status_display().lower()}."


def authenticate_url(charge: OnFileCharge) -> str:
    return settings.CLEARED_SITE_URL + reverse("on_file:authenticate", args=[auth_token(charge)])


def setup_url(setup: OnFileSetup) -> str:
    return settings.CLEARED_SITE_URL + reverse("on_file:card_setup", args=[setup_token(setup)])


# --- the customer's emails -------------------------------------------

EMAILS = {
    "setup": (
        "Put your card on file for {title}",
        "Hello {name},\n\n{rep} asked us to secure your card (or bank account) on file for "
        "{title} ({amount}). It is charged only once the service is rendered.\n\n"
        "Put it on file here (the number goes to our payment processor, never to us):\n{url}\n",
    ),
    "authenticate": (
        "Please confirm the payment of {amount} with your bank",
        "Hello {name},\n\nWe charged your card on file {amount} for {title}, and your bank "
        "asks you to confirm it. Please confirm it here:\n{url}\n",
    ),
}


def on_file_email_send(kind: str, row_id: int) -> None:
    """Email the customer their link: to put a card on file, or to authenticate a charge."""
    if kind == "setup":
        setup = OnFileSetup.objects.select_related("deal__customer", "created_by").get(pk=row_id)
        deal, url, to, amount = setup.deal, setup_url(setup), setup.sent_to, setup.deal.amount
        rep = setup.created_by
    else:
        charge = OnFileCharge.objects.select_related("deal__customer", "deal__rep").get(pk=row_id)
        deal, url, to, amount = charge.deal, authenticate_url(charge), "", charge.amount
        to, rep = customer_address(deal), deal.rep
    subject, body = EMAILS[kind]
    values = {
        "name": deal.customer.name,
        "title": deal.title,
        "amount": money_text(amount),
        "url": url,
        "rep": rep,
    }
    send_mail(subject.format(**values), body.format(**values), None, [to])
    if kind == "authenticate":
        OnFileCharge.objects.filter(pk=row_id).update(emailed_at=timezone.now())


# --- tasks (thin) -------------------------------------------


@shared_task(name="online.on_file_email")
def on_file_email_task(kind: str, row_id: int) -> None:
    on_file_email_send(kind, row_id)


@shared_task(name="online.on_file_charge")
def on_file_charge_task(deal_id: int) -> str:
    """The team's auto-charge on delivery: the same service, as nobody (``actor`` None)."""
    try:
        return on_file_charge(deal_id=deal_id, actor=None).deal.get_stage_display()
    except billing.BillingError as refused:
        return str(refused)


@shared_task(name="online.on_file_reconcile")
def on_file_reconcile_task() -> int:
    return on_file_reconcile() + refunds.refunds_reconcile()
