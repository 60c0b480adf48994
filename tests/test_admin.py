"""The admin is the operators' tool: superusers only, whatever a staff flag says."""

import importlib
from decimal import Decimal

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Group
from django.test import RequestFactory
from django.urls import reverse

from dashboards.demo import seed_people
from pipeline.admin import ActionsLikeEdits
from pipeline.models import Deal, Role, User
from tests.conftest import _client_for
from tests.factories import UserFactory
from tests.test_layers import APPS

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_manager(db, other_rep):
    """A manager of the other team who was made staff, as the demo used to do,
    with every permission the role migrations give managers."""
    manager = other_rep.manager
    manager.is_staff = True
    manager.save()
    return manager


def test_a_staff_manager_cannot_list_read_or_change_another_teams_deal_in_the_admin(
    staff_manager, deal
):
    client = _client_for(staff_manager)
    for url in (
        reverse("admin:index"),
        reverse("admin:pipeline_deal_changelist"),
        reverse("admin:pipeline_deal_change", args=[deal.pk]),
        reverse("admin:pipeline_customer_changelist"),
        reverse("admin:billing_payment_changelist"),
        reverse("admin:billing_invoice_changelist"),
        reverse("admin:audits_audit_changelist"),
    ):
        response = client.get(url)
        assert response.status_code in (302, 403), url
        assert deal.title.encode() not in response.content
        assert deal.customer.name.encode() not in response.content
    response = client.post(
        reverse("admin:pipeline_deal_change", args=[deal.pk]),
        {"title": deal.title, "amount": "1.00", "customer": deal.customer_id, "rep": deal.rep_id},
    )
    assert response.status_code in (302, 403)
    deal.refresh_from_db()
    assert deal.amount == Decimal("1000.00")


def test_a_staff_manager_is_sent_to_the_admin_login_page_not_shown_data(staff_manager):
    response = _client_for(staff_manager).get(reverse("admin:index"), follow=True)
    assert response.redirect_chain[-1][0].startswith(reverse("admin:login"))
    assert b"not authorized" in response.content


def test_a_superuser_uses_the_admin(deal):
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    client = _client_for(root)
    assert client.get(reverse("admin:pipeline_deal_changelist")).status_code == 200
    page = client.get(reverse("admin:pipeline_deal_change", args=[deal.pk]))
    assert page.status_code == 200 and deal.title.encode() in page.content


def test_no_model_in_the_admin_answers_a_staff_user_who_is_not_a_superuser(deal):
    staff = UserFactory(username="staff", is_staff=True, role=Role.MANAGER)
    staff.groups.add(*Group.objects.all())
    client = _client_for(staff)
    for model in admin.site._registry:
        opts = model._meta
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        assert client.get(url).status_code in (302, 403), url


def test_the_demo_does_not_make_managers_staff():
    people = seed_people()
    assert not people["manager"].is_staff
    assert not User.objects.filter(is_staff=True, is_superuser=False).exists()


def test_the_superuser_check_is_the_only_way_in_even_with_a_staff_flag(staff_manager, deal):
    assert Deal.objects.visible_to(staff_manager).filter(pk=deal.pk).count() == 0


def test_the_migration_takes_staff_off_everyone_but_superusers(staff_manager):
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    migration = importlib.import_module("pipeline.migrations.0011_managers_are_not_staff")
    migration.unstaff_non_superusers(apps, None)
    staff_manager.refresh_from_db()
    root.refresh_from_db()
    assert (staff_manager.is_staff, root.is_staff) == (False, True)


def test_every_admin_of_ours_that_deletes_logs_a_bulk_deletion_row_by_row():
    """A bulk deletion's log entries are what wakes the reminders of the deals it
    touched (reminders.receivers), as one deletion's entry does: each is saved,
    never bulk-created without a signal, in the deletion's transaction
    (pipeline.admin.ActionsLikeEdits)."""
    request = RequestFactory().get("/admin/")
    request.user = UserFactory(username="root", is_staff=True, is_superuser=True)
    deleting = {
        model._meta.label: isinstance(model_admin, ActionsLikeEdits)
        for model, model_admin in admin.site._registry.items()
        if model._meta.app_label in APPS and model_admin.has_delete_permission(request)
    }
    assert {"pipeline.Deal", "pipeline.Touch"} <= deleting.keys()
    assert [label for label, logged in deleting.items() if not logged] == []
