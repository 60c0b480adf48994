"""Business rules of billing that write: payments, their clearing, invoices, plans.

Every money write locks the deal row first (``select_for_update``), then the
payment or the invoice counter: one fixed order, so two clerks never
deadlock, and the sums a rule checks cannot change under it. Stages move only
through ``pipeline.services.deal_move`` as the system, naming the person whose
recorded fact moved the deal (``deal_sync_stage``). Billing keeps the pipeline's
copies of its facts (the deal's received and cleared money, the customer's
standing and allow-invoicing exception) in the same transaction as the fact,
and every write announces ``pipeline.events.deal_changed``; the pipeline never
calls back into billing.

The rules live in one module per subject (``errors``, ``standing``, ``payments``,
``commission``, ``invoices``, ``plans``, ``refunds``, ``asks``, ``webhook``); every public
service is importable from ``billing.services`` as before.
"""

from billing.services.asks import (
    deposit_waive,
    deposit_waiver_ask,
    exception_request_decide,
    invoicing_allow,
    invoicing_ask,
)
from billing.services.commission import (
    commission_claw_back,
    commission_earn,
    commission_rate_for,
    commission_rate_set,
)
from billing.services.errors import AlreadyDecided, BillingError, NotAllowed, refuse_full_number
from billing.services.invoices import (
    _next_invoice_number,
    invoice_issue,
    invoice_void,
    invoiceable_money,
    invoiced_money,
)
from billing.services.payments import (
    PAYMENT_MOVES,
    payment_bounce,
    payment_charge_back,
    payment_clear,
    payment_method_add,
    payment_move_service,
    payment_record,
)
from billing.services.plans import payment_plan_create
from billing.services.refunds import (
    RefundSender,
    payment_refund,
    refund_fail,
    refund_sender_register,
    refund_settle,
    refundable,
)
from billing.services.standing import (
    customer_copy_invoicing_exception,
    customer_refresh_standing,
    deal_copy_money,
    deal_sync_stage,
    deposit_is_in,
    live_money,
)
from billing.services.webhook import WebhookOutcome, webhook_event_apply

__all__ = [
    "BillingError",
    "NotAllowed",
    "refuse_full_number",
    "AlreadyDecided",
    "live_money",
    "deposit_is_in",
    "deal_copy_money",
    "deal_sync_stage",
    "customer_refresh_standing",
    "customer_copy_invoicing_exception",
    "payment_record",
    "payment_clear",
    "payment_bounce",
    "payment_charge_back",
    "PAYMENT_MOVES",
    "payment_move_service",
    "payment_method_add",
    "commission_rate_for",
    "commission_rate_set",
    "commission_earn",
    "commission_claw_back",
    "payment_refund",
    "refundable",
    "refund_settle",
    "refund_fail",
    "RefundSender",
    "refund_sender_register",
    "invoiced_money",
    "invoiceable_money",
    "_next_invoice_number",
    "invoice_issue",
    "invoice_void",
    "payment_plan_create",
    "deposit_waive",
    "invoicing_allow",
    "invoicing_ask",
    "deposit_waiver_ask",
    "exception_request_decide",
    "WebhookOutcome",
    "webhook_event_apply",
]
