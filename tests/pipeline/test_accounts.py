"""Accounts: guessing is throttled, passwords are reset by email, managers use two-factor."""

import re
from datetime import timedelta
from io import StringIO

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import Group
from django.core import mail
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from dashboards import demo as pipeline_demo
from pipeline.accounts import two_factor_required
from pipeline.models import Role, User
from tests.conftest import _client_for
from tests.factories import UserFactory
from tests.two_factor import code_for, code_from_secret, device_for

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
HOME = "/"


def _log_in(client, username, password, address="10.0.0.1"):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=address)


def _is_logged_in(client) -> bool:
    return "_auth_user_id" in client.session


# --- Throttling ---------------------------------------------------------------


def test_fifty_wrong_passwords_then_the_right_one_is_refused_with_a_message(rep):
    client = Client()
    answers = [_log_in(client, "rep", f"guess{n}") for n in range(50)]
    assert all(a.status_code in (200, 429) for a in answers)
    assert answers[-1].status_code == 429
    response = _log_in(client, "rep", "pw")
    assert response.status_code == 429
    assert not _is_logged_in(client)
    text = response.content.decode()
    assert "Too many failed attempts" in text
    assert "Try again after" in text


def test_the_fifth_wrong_password_locks_and_earlier_ones_are_answered_normally(rep, settings):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = _log_in(client, "rep", "wrong")
        assert response.status_code == 200
        assert "didn't match" in response.content.decode()
    assert _log_in(client, "rep", "wrong").status_code == 429
    assert _log_in(client, "rep", "pw").status_code == 429


def test_a_lockout_is_per_username_and_address_so_an_office_is_not_locked_out(
    rep, teammate, settings
):
    attacker = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _log_in(attacker, "rep", "wrong", address="10.0.0.66")
    assert _log_in(attacker, "rep", "pw", address="10.0.0.66").status_code == 429
    # The same person from another address, and a colleague from the same one.
    elsewhere = Client()
    assert _log_in(elsewhere, "rep", "pw", address="10.0.0.7").status_code == 302
    colleague = Client()
    assert _log_in(colleague, "rep2", "pw", address="10.0.0.66").status_code == 302


def test_the_lockout_ends_after_the_cool_off(rep, settings):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _log_in(client, "rep", "wrong")
    assert _log_in(client, "rep", "pw").status_code == 429
    AccessAttempt.objects.update(
        attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1)
    )
    response = _log_in(client, "rep", "pw")
    assert response.status_code == 302 and _is_logged_in(client)


def test_a_successful_log_in_forgets_the_earlier_failures(rep, settings):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        _log_in(client, "rep", "wrong")
    assert _log_in(client, "rep", "pw").status_code == 302
    again = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        _log_in(again, "rep", "wrong")
    assert _log_in(again, "rep", "pw").status_code == 302


def test_a_guess_is_refused_without_any_cache(rep, settings):
    # A cache that keeps nothing: a throttle that counted in the cache (Redis)
    # would never lock anyone out; the database counts.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _log_in(client, "rep", "wrong")
    assert _log_in(client, "rep", "pw").status_code == 429


def test_the_login_page_links_to_the_password_reset(client):
    html = client.get(LOGIN).content.decode()
    assert 'href="/accounts/password/reset/"' in html
    assert "Forgot your password?" in html


# --- Password reset by email ------------------------------------------------------


def _reset_link(message) -> str:
    return re.search(r"https?://[^/\s]+(/accounts/reset/\S+/)", message.body).group(1)


def test_a_forgotten_password_is_reset_by_email_end_to_end(rep):
    client = Client()
    assert client.get("/accounts/password/reset/").status_code == 200
    response = client.post("/accounts/password/reset/", {"email": rep.email})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/password/reset/done/"
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [rep.email]
    assert not message.alternatives, "the reset email is plain text"
    assert "<" not in message.body
    link = _reset_link(message)
    form_url = client.get(link)["Location"]  # Django swaps the token for a session key
    page = client.get(form_url)
    assert page.status_code == 200 and "New password" in page.content.decode()
    done = client.post(
        form_url, {"new_password1": "Tangerine-Ledger-42", "new_password2": "Tangerine-Ledger-42"}
    )
    assert done["Location"] == "/accounts/reset/done/"
    assert _log_in(Client(), "rep", "pw").status_code == 200  # the old one no longer works
    assert _log_in(Client(), "rep", "Tangerine-Ledger-42").status_code == 302
    # The link works once.
    assert "invalid" in Client().get(link, follow=True).content.decode().lower()


def _without_csrf(content: bytes) -> str:
    return re.sub(r'"X-CSRFToken": "\w+"', "", content.decode())


def test_an_unknown_address_gets_the_same_answer_and_no_email(rep):
    known = Client().post("/accounts/password/reset/", {"email": rep.email}, follow=True)
    unknown = Client().post(
        "/accounts/password/reset/", {"email": "nobody@example.com"}, follow=True
    )
    assert known.redirect_chain == unknown.redirect_chain
    assert _without_csrf(known.content) == _without_csrf(unknown.content)
    assert [m.to for m in mail.outbox] == [[rep.email]]


def test_a_password_reset_by_email_lifts_the_lockout(rep, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _log_in(Client(), "rep", "wrong")
    assert _log_in(Client(), "rep", "pw").status_code == 429
    client = Client()
    client.post("/accounts/password/reset/", {"email": rep.email})
    form_url = client.get(_reset_link(mail.outbox[0]))["Location"]
    client.post(
        form_url, {"new_password1": "Tangerine-Ledger-42", "new_password2": "Tangerine-Ledger-42"}
    )
    assert _log_in(Client(), "rep", "Tangerine-Ledger-42").status_code == 302


def test_a_reset_password_must_pass_the_validators_and_keeps_what_was_typed(rep):
    client = Client()
    client.post("/accounts/password/reset/", {"email": rep.email})
    form_url = client.get(_reset_link(mail.outbox[0]))["Location"]
    page = client.post(form_url, {"new_password1": "123", "new_password2": "123"})
    assert page.status_code == 200
    assert "too short" in page.content.decode()


def test_a_logged_in_user_changes_their_password_and_stays_logged_in(rep):
    client = _client_for(rep)
    assert client.get("/accounts/password/change/").status_code == 200
    response = client.post(
        "/accounts/password/change/",
        {
            "old_password": "pw",
            "new_password1": "Marigold-Invoice-77",
            "new_password2": "Marigold-Invoice-77",
        },
    )
    assert response["Location"] == "/accounts/password/change/done/"
    assert client.get("/deals/").status_code == 200
    rep.refresh_from_db()
    assert rep.check_password("Marigold-Invoice-77")


# --- Two-factor -------------------------------------------------------------------


def _password_only(user) -> Client:
    """A client past the password step only, as right after the login form."""
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("path", ["/board/", "/deals/", "/admin/", "/accounts/security/"])
def test_a_manager_without_a_device_must_set_one_up_before_anything_else(manager, path):
    response = _password_only(manager).get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/two-factor/setup/?next=")


def test_a_superuser_needs_a_verified_session_for_the_admin(db):
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    assert _password_only(root).get("/admin/")["Location"].startswith("/accounts/two-factor/setup/")
    assert _client_for(root).get("/admin/").status_code == 200


def test_a_manager_with_a_device_is_asked_for_a_code_after_the_password(manager):
    device = device_for(manager)
    client = Client()
    response = client.post(LOGIN, {"username": "manager", "password": "pw", "next": "/board/"})
    assert response["Location"] == "/board/"
    response = client.get("/board/")
    assert response["Location"] == "/accounts/two-factor/?next=/board/"
    assert client.get("/admin/")["Location"].startswith("/accounts/two-factor/")
    page = client.get(response["Location"])
    assert page.status_code == 200 and 'autocomplete="one-time-code"' in page.content.decode()
    response = client.post("/accounts/two-factor/?next=/board/", {"code": code_for(device)})
    assert response["Location"] == "/board/"
    assert client.get("/board/").status_code == 200


def test_a_wrong_code_is_refused_with_a_message(manager):
    device_for(manager)
    client = _password_only(manager)
    response = client.post("/accounts/two-factor/", {"code": "000000"})
    assert response.status_code == 200
    assert "That code didn" in response.content.decode()
    assert client.get("/board/").status_code == 302


def test_repeated_wrong_codes_are_slowed_down(manager):
    right_code = code_for(device_for(manager))
    client = _password_only(manager)
    for _ in range(3):
        client.post("/accounts/two-factor/", {"code": "000000"})
    # Even the right code waits until the pause is over.
    response = client.post("/accounts/two-factor/", {"code": right_code})
    assert "Too many wrong codes" in response.content.decode()
    assert client.get("/board/").status_code == 302


def test_the_verify_page_refuses_a_next_on_another_site(manager):
    device = device_for(manager)
    client = _password_only(manager)
    response = client.post(
        "/accounts/two-factor/?next=https://evil.example/", {"code": code_for(device)}
    )
    assert response["Location"] == HOME


def test_a_manager_without_a_device_cannot_set_one_up_with_the_password_alone(manager):
    client = _password_only(manager)
    page = client.get("/accounts/two-factor/setup/?next=/board/")
    assert page.status_code == 403
    assert "ask an operator" in page.content.decode()
    assert "two-factor-secret" not in page.content.decode()
    response = client.post("/accounts/two-factor/setup/", {"code": "123456"})
    assert response.status_code == 403
    assert not TOTPDevice.objects.filter(user=manager).exists()
    assert client.get("/board/")["Location"].startswith("/accounts/two-factor/setup/")


def test_a_password_alone_cannot_replace_a_managers_device(manager):
    device = device_for(manager)
    client = _password_only(manager)
    response = client.get("/accounts/two-factor/setup/")
    assert response["Location"] == "/accounts/two-factor/"
    response = client.post("/accounts/two-factor/setup/", {"code": "123456"})
    assert response["Location"] == "/accounts/two-factor/"
    assert list(TOTPDevice.objects.filter(user=manager)) == [device]


def test_a_recovery_code_works_once(manager):
    device_for(manager)
    static = StaticDevice.objects.create(user=manager, name="Recovery codes", confirmed=True)
    static.token_set.create(token="recover1")
    first = _password_only(manager)
    assert first.post("/accounts/two-factor/", {"code": "recover1"})["Location"] == HOME
    assert first.get("/board/").status_code == 200
    second = _password_only(manager)
    response = second.post("/accounts/two-factor/", {"code": "recover1"})
    assert response.status_code == 200
    assert second.get("/board/").status_code == 302


def test_a_rep_without_two_factor_reaches_every_page(rep):
    client = _password_only(rep)
    assert client.get("/deals/").status_code == 200
    assert client.get("/accounts/security/").status_code == 200


def test_a_rep_made_a_manager_must_set_up_two_factor_on_the_next_page(rep_client, rep):
    assert rep_client.get("/").status_code == 200
    rep.groups.add(Group.objects.get_or_create(name=Role.MANAGER)[0])
    assert rep_client.get("/")["Location"].startswith("/accounts/two-factor/setup/")


def test_a_rep_may_turn_on_two_factor_and_is_asked_for_a_code_at_the_next_log_in(rep):
    client = _password_only(rep)
    html = client.get("/accounts/two-factor/setup/").content.decode()
    secret = re.search(r'id="two-factor-secret">([A-Z2-7 ]+)<', html).group(1)
    client.post("/accounts/two-factor/setup/", {"code": code_from_secret(secret)})
    assert client.get("/deals/").status_code == 200  # this session is verified
    later = Client()
    later.post(LOGIN, {"username": "rep", "password": "pw"})
    assert later.get("/deals/")["Location"] == "/accounts/two-factor/?next=/deals/"


def test_a_rep_may_turn_two_factor_off_but_a_manager_may_not(rep, manager):
    device_for(rep) or TOTPDevice.objects.create(user=rep, name="Phone", confirmed=True)
    rep_client = _client_for(rep)
    response = rep_client.post("/accounts/security/two-factor/remove/")
    assert response["Location"] == "/accounts/security/"
    assert not TOTPDevice.objects.filter(user=rep).exists()
    assert _password_only(rep).get("/deals/").status_code == 200

    manager_client = _client_for(manager)
    response = manager_client.post("/accounts/security/two-factor/remove/")
    assert response.status_code == 403
    assert TOTPDevice.objects.filter(user=manager, confirmed=True).exists()


def test_regenerating_recovery_codes_replaces_the_old_ones(manager):
    client = _client_for(manager)
    static = StaticDevice.objects.create(user=manager, name="Recovery codes", confirmed=True)
    static.token_set.create(token="oldcode1")
    response = client.post("/accounts/security/recovery-codes/")
    assert response["Location"] == "/accounts/two-factor/recovery-codes/"
    tokens = set(StaticToken.objects.filter(device__user=manager).values_list("token", flat=True))
    assert len(tokens) == 10 and "oldcode1" not in tokens
    html = client.get(response["Location"]).content.decode()
    assert all(token in html for token in tokens)


@pytest.mark.parametrize(
    "path",
    ["/healthz", "/accounts/password/reset/", "/accounts/two-factor/", "/static/css/cleared.css"],
)
def test_pages_before_the_code_stay_reachable(manager, path):
    device_for(manager)
    response = _password_only(manager).get(path)
    assert response.status_code in (200, 503, 404)
    assert "two-factor" not in response.get("Location", "")


def test_logging_out_works_before_the_code(manager):
    device_for(manager)
    client = _password_only(manager)
    assert client.post("/accounts/logout/")["Location"] == LOGIN
    assert not _is_logged_in(client)


def test_an_htmx_request_without_the_code_is_sent_to_the_code_page(manager):
    device_for(manager)
    response = _password_only(manager).get("/board/", headers={"HX-Request": "true"})
    assert response.headers["HX-Redirect"].startswith("/accounts/two-factor/")


# --- Log out everywhere -------------------------------------------------------------


@pytest.mark.parametrize(
    "engine", ["django.contrib.sessions.backends.db", "django.contrib.sessions.backends.cached_db"]
)
def test_log_out_everywhere_ends_every_session_of_the_user(rep, teammate, settings, engine):
    settings.SESSION_ENGINE = engine
    phone, laptop, colleague = _client_for(rep), _client_for(rep), _client_for(teammate)
    assert phone.get("/deals/").status_code == 200
    response = laptop.post("/accounts/security/log-out-everywhere/")
    assert response["Location"] == LOGIN
    assert phone.get("/deals/")["Location"].startswith(LOGIN)
    assert laptop.get("/deals/")["Location"].startswith(LOGIN)
    assert colleague.get("/deals/").status_code == 200
    assert _log_in(Client(), "rep", "pw").status_code == 302  # the password still works


def test_the_security_page_offers_each_action(rep):
    html = _client_for(rep).get("/accounts/security/").content.decode()
    for text in ("Turn on two-factor", "Change password", "Log out everywhere"):
        assert text in html


def test_the_shared_test_clients_are_verified_for_managers(manager_client, rep_client):
    assert manager_client.get("/board/").status_code == 200
    assert rep_client.get("/deals/").status_code == 200


def test_role_needs_two_factor_only_for_managers_and_superusers(db):
    assert two_factor_required(UserFactory(role=Role.MANAGER))
    assert two_factor_required(UserFactory(is_superuser=True))
    assert not two_factor_required(UserFactory(role=Role.REP))
    assert not two_factor_required(UserFactory(role=Role.AUDITOR))


# --- The demo ---------------------------------------------------------------------


def test_the_demo_manager_logs_in_with_the_code_printed_by_demo_code(settings):
    settings.DEBUG = True
    pipeline_demo.seed_people()
    pipeline_demo.seed_two_factor(User.objects.get(username="manager"))
    out = StringIO()
    call_command("demo_code", "manager", stdout=out)
    code = out.getvalue().split()[0]
    assert code == code_from_secret(pipeline_demo.DEMO_TOTP_SECRET)
    client = Client()
    client.post(LOGIN, {"username": "manager", "password": "demo"})
    assert client.post("/accounts/two-factor/", {"code": code})["Location"] == HOME
    assert client.get("/board/").status_code == 200
