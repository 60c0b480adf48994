"""The board's small lists read through compiled queries (issue 23's page ÷ its SQL):
the team's sellers, the sales disputed at audit, a person's roles. Each must be
what its queryset says, for whoever asks, after any change."""

import datetime
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from dashboards.board import disputed_awaiting_decision
from dashboards.board_rows import disputed_rows
from pipeline import access
from pipeline.models import Role, User
from pipeline.stages import AuditFlag
from tests.factories import DealFactory, UserFactory

pytestmark = pytest.mark.django_db


def _sellers(user) -> list[tuple[int, str]]:
    return [(seller.pk, str(seller)) for seller in access.team_seller_list(user)]


def _expected_sellers(user) -> list[tuple[int, str]]:
    return [(rep.pk, str(rep)) for rep in access.team_sellers(user).order_by("username")]


def test_the_seller_list_is_team_sellers_for_everyone_and_follows_changes(
    manager, rep, teammate, other_rep, auditor
):
    root = UserFactory(username="root", is_superuser=True)
    nameless = UserFactory(username="zz-nameless", first_name="", last_name="", role=Role.REP)
    nameless.manager = manager
    nameless.save()
    for user in (manager, other_rep.manager, root, rep, auditor, manager):
        assert _sellers(user) == _expected_sellers(user), user
    assert (nameless.pk, "zz-nameless") in _sellers(manager)  # no name: the username
    assert {pk for pk, _ in _sellers(manager)} == {rep.pk, teammate.pk, nameless.pk}
    assert _sellers(rep) == [] and _sellers(auditor) == []
    # A name changed, a rep moved to another team, the manager starting to sell.
    User.objects.filter(pk=rep.pk).update(first_name="Renamed")
    teammate.manager = other_rep.manager
    teammate.save()
    manager.groups.add(Group.objects.get_or_create(name=Role.REP)[0])
    for user in (manager, other_rep.manager):
        assert _sellers(user) == _expected_sellers(user)
    assert {pk for pk, _ in _sellers(manager)} == {rep.pk, nameless.pk, manager.pk}
    assert any(name.startswith("Renamed") for _, name in _sellers(manager))


def _dispute(deal, hours_ago: float):
    deal.audit_flag = AuditFlag.DISPUTED
    deal.audit_flag_at = timezone.now() - datetime.timedelta(hours=hours_ago)
    deal.save(update_fields=["audit_flag", "audit_flag_at"])
    return deal


def _rows(user) -> list[tuple]:
    return [
        (r.pk, r.title, r.amount, r.audit_flag_at, r.customer_name, r.rep_name)
        for r in disputed_rows(user)
    ]


def _expected_rows(user) -> list[tuple]:
    return [
        (d.pk, d.title, d.amount, d.audit_flag_at, d.customer.name, str(d.rep))
        for d in disputed_awaiting_decision(user)
    ]


def test_disputed_rows_are_the_disputed_list_of_each_team(manager, rep, teammate, other_rep):
    older = _dispute(DealFactory(rep=teammate, amount=Decimal("75.50")), 5)
    newer = _dispute(DealFactory(rep=rep), 1)
    _dispute(DealFactory(rep=other_rep), 2)
    DealFactory(rep=rep)  # not disputed
    root = UserFactory(username="root", is_superuser=True)
    for user in (manager, other_rep.manager, root, manager):
        assert _rows(user) == _expected_rows(user)
    assert [row[0] for row in _rows(manager)] == [older.pk, newer.pk]  # oldest first
    assert _rows(manager)[0][2] == Decimal("75.50")
    assert len(_rows(root)) == 3
    # Decided (no longer awaiting): gone at the next read.
    older.audit_flag, older.audit_flag_at = AuditFlag.NONE, None
    older.save(update_fields=["audit_flag", "audit_flag_at"])
    assert [row[0] for row in _rows(manager)] == [newer.pk]


def test_the_board_and_the_managers_home_list_the_disputed_sales(manager_client, rep):
    deal = _dispute(DealFactory(rep=rep, title="Disputed kiosk"), 3)
    for path in ("/board/", "/"):
        html = manager_client.get(path).content.decode()
        assert f"#{deal.pk} {deal.customer.name} — Disputed kiosk" in html, path
        assert str(rep) in html


def test_roles_are_read_once_an_instance_in_one_query_and_afresh_for_a_new_one(rep):
    fresh = User.objects.get(pk=rep.pk)
    with CaptureQueriesContext(connection) as read:
        assert fresh.is_rep and not fresh.is_manager and not fresh.is_auditor
    assert len(read.captured_queries) == 1
    rep.groups.add(Group.objects.get_or_create(name=Role.AUDITOR)[0])
    assert fresh.role_names == {Role.REP}  # read once an instance, as before
    assert User.objects.get(pk=rep.pk).role_names == {Role.REP, Role.AUDITOR}
    assert UserFactory(username="nobody").role_names == frozenset()
