"""Verification records are kept (about two years): operators read them, never change them.

Stages and audit states move only through audits.services; call scripts get a
new version instead of an edit.
"""

from django.contrib import admin

from audits.models import Audit, CallAttempt, CallScript, WrapUpChecklist
from pipeline.admin import ReadOnlyAdmin


class CallAttemptInline(admin.TabularInline):
    model = CallAttempt
    extra = 0
    can_delete = False
    fields = ("at", "auditor", "outcome", "script", "answers", "recording_ref", "notes")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Audit)
class AuditAdmin(ReadOnlyAdmin):
    list_display = ("id", "deal", "state", "call_window_start", "next_call_at", "claimed_by")
    list_filter = ("state",)
    list_select_related = ("deal", "deal__customer", "claimed_by")
    search_fields = ("deal__customer__name", "deal__title")
    inlines = [CallAttemptInline]


@admin.register(WrapUpChecklist)
class WrapUpChecklistAdmin(ReadOnlyAdmin):
    list_display = ("deal", "call_window_start", "call_window_end", "completed_by", "completed_at")
    list_select_related = ("deal", "deal__customer", "completed_by")


@admin.register(CallAttempt)
class CallAttemptAdmin(ReadOnlyAdmin):
    list_display = ("audit", "auditor", "outcome", "script", "at")
    list_filter = ("outcome",)
    list_select_related = ("audit", "auditor", "script")


@admin.register(CallScript)
class CallScriptAdmin(admin.ModelAdmin):
    """A new script is a new version; an existing one is never edited or deleted."""

    list_display = ("version", "created_at")

    def has_change_permission(self, request, obj=None):
        return obj is None

    def has_delete_permission(self, request, obj=None):
        return False
