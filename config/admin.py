"""The Django admin is the operators' tool: superusers only.

Managers work in the app, where every page is scoped to their team (the Team
page replaces what they once did here). The admin knows nothing of teams, so a
staff flag alone must open nothing: ``has_permission`` asks for a superuser,
and a staff user who is not one gets the admin's login page, never data.
"""

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig


class OperatorsAdminSite(admin.AdminSite):
    site_header = "Cleared operations"
    site_title = "Cleared operations"

    def has_permission(self, request) -> bool:
        user = request.user
        return user.is_active and user.is_superuser


class OperatorsAdminConfig(AdminConfig):
    default_site = "config.admin.OperatorsAdminSite"
