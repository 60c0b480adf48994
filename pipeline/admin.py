from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.db import router, transaction

from pipeline import enrollment
from pipeline.account_forms import PersonFields
from pipeline.models import Customer, Deal, Reassignment, StageEvent, Touch, User


class ReadOnlyAdmin(admin.ModelAdmin):
    """Append-only records, changed only through the services: operators read, never edit."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ActionsLikeEdits:
    """An admin action (a bulk "Delete selected" above all) is logged and committed
    as a single edit is, so whoever follows the admin's edits through their log
    entries (reminders puts the deal an entry touched in its outbox) sees both alike.

    Django bulk-creates the log entries of a deletion of several rows, and a bulk
    insert sends no ``post_save``: each entry is saved here as a single deletion's
    is. And an action runs outside a transaction, its entries committed before its
    rows change: it runs in one here, as the change and delete views do, so the
    deal's reminders are decided from the rows the action left. Mixed into every
    admin of ours that can delete (tests/test_admin.py checks it)."""

    def log_deletions(self, request, queryset):
        return [entry for obj in queryset for entry in super().log_deletions(request, [obj])]

    def response_action(self, request, queryset, **kwargs):
        with transaction.atomic(using=router.db_for_write(self.model)):
            return super().response_action(request, queryset, **kwargs)


class UserAddForm(PersonFields, AdminUserCreationForm):
    pass


class UserEditForm(PersonFields, UserChangeForm):
    pass


@admin.register(User)
class ClearedUserAdmin(ActionsLikeEdits, UserAdmin):
    form = UserEditForm
    add_form = UserAddForm
    fieldsets = UserAdmin.fieldsets + (
        ("Cleared", {"fields": ("manager", "time_zone", "direct_phone")}),
    )
    list_display = ("username", "first_name", "last_name", "email", "manager", "is_staff")
    list_filter = ("groups", "is_staff", "is_active")
    actions = ["reset_two_factor"]

    @admin.action(description="Reset two-factor and send a link to set it up")
    def reset_two_factor(self, request, queryset):
        """A new manager's first link, or a lost phone: pipeline.enrollment."""
        for user in queryset.order_by("username"):
            try:
                link = enrollment.two_factor_reset_by_operator(user=user, operator=request.user)
            except enrollment.EnrollmentRefused as refused:
                self.message_user(request, f"{user.get_username()}: {refused}", messages.ERROR)
                continue
            sent = f"emailed to {user.email}" if user.email else "no email address: hand it over"
            self.message_user(
                request,
                f"{user.get_username()}: two-factor reset, every session ended. Their link "
                f"({sent}; it works once, for {enrollment.link_lifetime()}): {link}",
                messages.SUCCESS,
            )


@admin.register(Customer)
class CustomerAdmin(ActionsLikeEdits, admin.ModelAdmin):
    list_display = ("name", "company", "phone", "owner", "created_at")
    search_fields = ("name", "company", "email")
    list_select_related = ("owner",)
    raw_id_fields = ("owner",)


class TouchInline(admin.TabularInline):
    model = Touch
    extra = 0
    raw_id_fields = ("author",)


class StageEventInline(admin.TabularInline):
    model = StageEvent
    extra = 0
    can_delete = False
    readonly_fields = ("from_stage", "to_stage", "actor", "at", "reason")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Deal)
class DealAdmin(ActionsLikeEdits, admin.ModelAdmin):
    list_display = ("id", "title", "customer", "rep", "stage", "amount", "promised_at")
    list_filter = ("stage", "payment_option")
    search_fields = ("title", "customer__name", "customer__company")
    list_select_related = ("customer", "rep")
    raw_id_fields = ("customer", "rep")
    # The stage only moves through pipeline.services.deal_move, with its event.
    readonly_fields = (
        "stage",
        "stage_changed_at",
        "lost_reason",
        "version",
        "delivered_at",
        # Copies of billing's ledger, kept by billing.services.deal_copy_money.
        "cleared_amount",
        "received_amount",
    )
    inlines = [StageEventInline, TouchInline]


@admin.register(StageEvent)
class StageEventAdmin(ReadOnlyAdmin):
    list_display = ("deal", "from_stage", "to_stage", "actor", "at")
    list_filter = ("to_stage",)
    list_select_related = ("deal", "actor")


@admin.register(Touch)
class TouchAdmin(ActionsLikeEdits, admin.ModelAdmin):
    list_display = ("deal", "kind", "author", "happened_at", "next_step_date")
    list_filter = ("kind",)
    list_select_related = ("deal", "author")
    raw_id_fields = ("deal", "author")


@admin.register(Reassignment)
class ReassignmentAdmin(ReadOnlyAdmin):
    list_display = ("deal", "from_rep", "to_rep", "actor", "at")
    list_select_related = ("deal", "from_rep", "to_rep", "actor")
