"""API tokens: shown once, stored hashed, last used kept, revocable, scoped."""

import hashlib
import secrets
import string

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client

from api.models import ApiToken, Scope
from api.services import api_token_create, api_token_revoke, new_prefix
from pipeline.masking import contains_card_number
from tests.api.conftest import ApiClient, api_for

pytestmark = pytest.mark.django_db


def test_a_token_is_stored_as_a_digest_never_as_itself(rep):
    new = api_token_create(user=rep, name="Sync", scope=Scope.READ, verified=False)
    row = ApiToken.objects.get(pk=new.token.pk)
    assert row.digest == hashlib.sha256(new.secret.encode()).hexdigest()
    assert new.secret not in str(ApiToken.objects.filter(pk=row.pk).values().first())
    assert new.secret.startswith(f"clr_{row.prefix}_")


def test_a_token_acts_as_its_person_and_records_when_it_was_used(rep, deal):
    new = api_token_create(user=rep, name="Sync", scope=Scope.READ, verified=False)
    assert new.token.last_used_at is None
    response = ApiClient(new.secret).get(f"/deals/{deal.pk}")
    assert response.status_code == 200
    assert response.json()["id"] == deal.pk
    assert ApiToken.objects.get(pk=new.token.pk).last_used_at is not None


def test_no_token_or_a_wrong_one_is_a_401_problem(deal):
    for headers in ({}, {"Authorization": "Bearer clr_nope_nope"}, {"Authorization": "Basic x"}):
        response = Client().get(f"/api/v1/deals/{deal.pk}", headers=headers)
        assert response.status_code == 401
        assert response["Content-Type"] == "application/problem+json"
        assert response["WWW-Authenticate"].startswith("Bearer")
        assert response.json()["status"] == 401


def test_a_token_with_the_right_prefix_and_a_wrong_secret_is_refused(rep, deal):
    new = api_token_create(user=rep, name="Sync", scope=Scope.READ, verified=False)
    forged = new.secret[:-4] + ("AAAA" if not new.secret.endswith("AAAA") else "BBBB")
    assert ApiClient(forged).get(f"/deals/{deal.pk}").status_code == 401


def test_a_revoked_token_is_a_401(rep, deal):
    new = api_token_create(user=rep, name="Sync", scope=Scope.READ, verified=False)
    assert api_token_revoke(user=rep, token_id=new.token.pk)
    assert ApiClient(new.secret).get(f"/deals/{deal.pk}").status_code == 401


def test_nobody_revokes_another_persons_token(rep, other_rep, deal):
    new = api_token_create(user=rep, name="Sync", scope=Scope.READ, verified=False)
    assert not api_token_revoke(user=other_rep, token_id=new.token.pk)
    assert ApiClient(new.secret).get(f"/deals/{deal.pk}").status_code == 200


def test_an_inactive_persons_token_stops_working(rep, deal):
    client = api_for(rep)
    rep.is_active = False
    rep.save()
    assert client.get(f"/deals/{deal.pk}").status_code == 401


def test_a_read_token_cannot_write(rep, deal):
    client = api_for(rep, Scope.READ)
    response = client.post(f"/deals/{deal.pk}/move", {"to_stage": "lost", "version": 1})
    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"
    deal.refresh_from_db()
    assert deal.stage == "promised"


def test_a_manager_without_a_verified_second_factor_cannot_create_a_token(manager):
    with pytest.raises(PermissionDenied):
        api_token_create(user=manager, name="Sync", scope=Scope.READ, verified=False)
    assert not ApiToken.objects.exists()


def test_a_manager_session_not_verified_by_two_factor_gets_no_token(manager):
    client = Client()
    client.force_login(manager)  # signed in, the code step not passed
    response = client.post("/accounts/security/api-tokens/new/", {"name": "Sync", "scope": "read"})
    assert response.status_code in (302, 403)
    assert not ApiToken.objects.exists()


def test_the_security_page_creates_a_token_and_shows_it_once(rep_client, rep):
    response = rep_client.post(
        "/accounts/security/api-tokens/new/", {"name": "Accounting sync", "scope": "write"}
    )
    assert response.status_code == 302
    shown = rep_client.get(response["Location"])
    token = ApiToken.objects.get(user=rep)
    secret = shown.context["secret"]
    assert (
        secret
        and secret in shown.text
        and token.digest == hashlib.sha256(secret.encode()).hexdigest()
    )
    again = rep_client.get(response["Location"])
    assert secret not in again.text
    security = rep_client.get("/accounts/security/").text
    assert "Accounting sync" in security and secret not in security and "never" in security


def test_a_verified_manager_creates_a_token_on_the_security_page(manager_client, manager):
    response = manager_client.post(
        "/accounts/security/api-tokens/new/", {"name": "Board", "scope": "read"}
    )
    assert response.status_code == 302
    assert ApiToken.objects.filter(user=manager).count() == 1


def test_a_nameless_token_is_refused_with_the_message_next_to_the_field(rep_client):
    response = rep_client.post("/accounts/security/api-tokens/new/", {"name": " ", "scope": "read"})
    assert response.status_code == 422
    assert "Name the token" in response.text
    assert not ApiToken.objects.exists()


def test_revoking_from_the_security_page(rep_client, rep, deal):
    new = api_token_create(user=rep, name="Sync", scope=Scope.READ, verified=False)
    response = rep_client.post(f"/accounts/security/api-tokens/{new.token.pk}/revoke/")
    assert response.status_code == 302
    assert ApiClient(new.secret).get(f"/deals/{deal.pk}").status_code == 401
    assert "revoked" in rep_client.get("/accounts/security/").text


def test_an_operator_sees_tokens_in_the_admin_and_revokes_one_never_seeing_a_secret(rep, deal):
    from tests.conftest import _client_for
    from tests.factories import UserFactory

    new = api_token_create(user=rep, name="Sync", scope=Scope.READ, verified=False)
    operator = _client_for(UserFactory(username="root", is_superuser=True, is_staff=True))
    listing = operator.get("/admin/api/apitoken/")
    assert listing.status_code == 200 and "Sync" in listing.text
    assert new.secret not in listing.text and new.token.digest not in listing.text
    operator.post(
        "/admin/api/apitoken/",
        {"action": "revoke", "_selected_action": [new.token.pk]},
    )
    assert ApiClient(new.secret).get(f"/deals/{deal.pk}").status_code == 401


def test_a_prefix_never_holds_a_card_number_even_when_the_random_draw_is_all_digits(
    rep, deal, monkeypatch
):
    # Twelve digits that pass the Luhn check: a prefix made of them would be
    # taken for a card number (and fail the scan after this test).
    drawn = "401288888803"
    assert contains_card_number(drawn)
    monkeypatch.setattr(secrets, "token_hex", lambda n: drawn[: 2 * n])
    new = api_token_create(user=rep, name="Sync", scope=Scope.READ, verified=False)
    assert len(new.token.prefix) == 12 and new.token.prefix[0] in "abcdef"
    assert not contains_card_number(new.token.prefix)
    assert ApiClient(new.secret).get(f"/deals/{deal.pk}").status_code == 200
    monkeypatch.undo()
    prefixes = {new_prefix() for _ in range(2000)}
    assert len(prefixes) == 2000
    assert all(
        len(p) == 12 and p[0] in "abcdef" and set(p) <= set(string.hexdigits.lower())
        for p in prefixes
    )
