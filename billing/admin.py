"""Billing in the admin: ledgers are read-only and nothing is ever deleted."""

from django.contrib import admin

from billing.models import (
    CommissionEntry,
    CommissionRate,
    Instalment,
    Invoice,
    InvoiceSequence,
    Payment,
    PaymentEvent,
    PaymentMethod,
    PaymentPlan,
    TermsException,
    WebhookEvent,
)
from pipeline.admin import ReadOnlyAdmin


class PaymentEventInline(admin.TabularInline):
    model = PaymentEvent
    extra = 0
    can_delete = False
    fields = ("at", "from_status", "to_status", "actor", "source", "reason")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "deal",
        "kind",
        "method",
        "amount",
        "status",
        "recorded_by",
        "recorded_at",
    )
    list_filter = ("status", "kind", "method")
    search_fields = ("reference", "deal__title", "deal__customer__name")
    list_select_related = ("deal", "deal__customer", "recorded_by")
    date_hierarchy = "recorded_at"
    inlines = [PaymentEventInline]


@admin.register(PaymentEvent)
class PaymentEventAdmin(ReadOnlyAdmin):
    list_display = ("payment", "from_status", "to_status", "actor", "source", "at")
    list_filter = ("to_status", "source")
    list_select_related = ("payment", "actor")


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdmin):
    list_display = ("display_number", "deal", "amount", "issue_date", "due_date", "voided_at")
    list_filter = ("issue_date",)
    search_fields = ("number", "deal__customer__name")
    list_select_related = ("deal", "deal__customer")


@admin.register(InvoiceSequence)
class InvoiceSequenceAdmin(ReadOnlyAdmin):
    list_display = ("id", "last_number")


@admin.register(PaymentMethod)
class PaymentMethodAdmin(ReadOnlyAdmin):
    list_display = ("customer", "deal", "kind", "brand", "last4", "recorded_by", "recorded_at")
    list_select_related = ("customer", "deal", "recorded_by")


class InstalmentInline(admin.TabularInline):
    model = Instalment
    extra = 0
    can_delete = False
    readonly_fields = ("sequence", "due_date", "amount")

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(PaymentPlan)
class PaymentPlanAdmin(ReadOnlyAdmin):
    list_display = ("deal", "created_by", "created_at")
    list_select_related = ("deal", "created_by")
    inlines = [InstalmentInline]


@admin.register(TermsException)
class TermsExceptionAdmin(ReadOnlyAdmin):
    list_display = ("kind", "customer", "deal", "granted_by", "granted_at", "valid_until")
    list_filter = ("kind",)
    list_select_related = ("customer", "deal", "granted_by")


@admin.register(CommissionEntry)
class CommissionEntryAdmin(ReadOnlyAdmin):
    list_display = ("rep", "kind", "deal", "base", "rate", "amount", "at")
    list_filter = ("kind", "rep")
    list_select_related = ("rep", "deal")


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = ("event_id", "type", "payment", "outcome", "received_at")
    search_fields = ("event_id",)


@admin.register(CommissionRate)
class CommissionRateAdmin(ReadOnlyAdmin):
    """A history: managers set rates on the Team page (billing.services.commission_rate_set)."""

    list_display = ("rep", "rate", "effective_from", "set_by", "set_at")
    list_select_related = ("rep", "set_by")
