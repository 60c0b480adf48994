"""No card number in any table: not through the log-in throttle, not as a person's
username or email, and the scanner reads every table of the database (issue 19)."""

import pytest
from axes.models import AccessAttempt, AccessFailureLog
from django.core import mail
from django.db import connection
from django.test import Client
from django.urls import reverse

from pipeline.card_scan import find_card_numbers
from pipeline.masking import contains_card_number
from pipeline.models import User
from tests.conftest import _client_for
from tests.factories import UserFactory
from tests.pipeline.test_masking import FORMATS

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
IDS = [row[0] for row in FORMATS]


def _guess(client, username, address="10.0.0.9", **headers):
    return client.post(
        LOGIN, {"username": username, "password": "wrong"}, REMOTE_ADDR=address, **headers
    )


# --- The log-in throttle ---------------------------------------------------------


@pytest.mark.parametrize(("what", "number", "last4"), FORMATS, ids=IDS)
def test_a_card_number_typed_as_a_username_is_stored_masked_by_the_throttle(
    what, number, last4, settings
):
    settings.AXES_ENABLE_ACCESS_FAILURE_LOG = True
    client = Client()
    response = client.post(
        f"{LOGIN}?next=/deals/%3Fq%3D{number}",
        {"username": number, "password": "wrong", "next": f"/deals/?q={number}"},
        REMOTE_ADDR="10.0.0.9",
        HTTP_USER_AGENT=f"Mozilla/5.0 card {number}",
        HTTP_ACCEPT=f"text/html;q={number}",
    )
    assert response.status_code == 200
    attempt = AccessAttempt.objects.get()
    assert attempt.username.endswith(last4) and "••••" in attempt.username
    for value in (attempt.user_agent, attempt.http_accept, attempt.get_data, attempt.post_data):
        assert not contains_card_number(value), value
    assert not contains_card_number(AccessFailureLog.objects.get().username)
    assert find_card_numbers() == []


def test_the_throttle_still_locks_a_card_number_username_out_and_no_one_else(rep, settings):
    number = "4111-1111-1111-1111"
    attacker = Client()
    answers = [_guess(attacker, number).status_code for _ in range(settings.AXES_FAILURE_LIMIT)]
    assert answers[:-1] == [200] * (settings.AXES_FAILURE_LIMIT - 1)
    assert _guess(attacker, number).status_code == 429
    assert AccessAttempt.objects.get().username == "•••• 1111", "one row: one key per username"
    # Another username from the same address is counted on its own.
    ok = Client().post(LOGIN, {"username": "rep", "password": "pw"}, REMOTE_ADDR="10.0.0.9")
    assert ok.status_code == 302
    assert find_card_numbers() == []


def test_a_successful_log_in_keeps_the_username_and_forgets_the_failures(rep, settings):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        _guess(client, "rep")
    assert AccessAttempt.objects.get().username == "rep", "ordinary usernames stay readable"
    ok = client.post(LOGIN, {"username": "rep", "password": "pw"}, REMOTE_ADDR="10.0.0.9")
    assert ok.status_code == 302
    assert not AccessAttempt.objects.exists()


# --- A person's username and email --------------------------------------------------


def _invite(client, **data):
    return client.post(reverse("team_invite"), {"email": "sam@example.com", **data})


@pytest.mark.parametrize(("what", "number", "last4"), FORMATS, ids=IDS)
def test_an_invitation_with_a_card_number_as_username_or_email_is_refused(
    what, number, last4, manager_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        as_username = _invite(manager_client, username=number)
        as_email = _invite(manager_client, email=f"{number}@example.com")
    assert as_username.status_code == 422
    assert as_username.context["invite_form"].errors["username"]
    assert as_email.status_code == 422
    assert as_email.context["invite_form"].errors["email"]
    assert not User.objects.filter(email__endswith="@example.com", manager__isnull=False).exists()
    assert mail.outbox == []


def test_the_invitation_says_why_next_to_the_field(manager_client):
    response = _invite(manager_client, username="4111111111111111")
    assert response.context["invite_form"].errors["username"] == [
        "This looks like a card number: a username or email address can't contain one."
    ]
    assert 'id="id_username_error"' in response.text


def test_an_operator_cannot_create_or_rename_a_user_to_a_card_number(db):
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    operator = _client_for(root)
    response = operator.post(
        "/admin/pipeline/user/add/",
        {
            "username": "4111111111111111",
            "usable_password": "false",
            "password1": "",
            "password2": "",
        },
    )
    assert response.status_code == 200
    assert "This looks like a card number" in response.text
    assert not User.objects.filter(username="4111111111111111").exists()
    sam = UserFactory(username="sam")
    response = operator.post(
        f"/admin/pipeline/user/{sam.pk}/change/",
        {
            "username": "sam",
            "email": "4111-1111-1111-1111@example.com",
            "first_name": "Sam",
            "last_name": "Ortiz",
            "is_active": "on",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "10:00:00",
            "time_zone": "Europe/London",
        },
    )
    assert response.status_code == 200
    assert "This looks like a card number" in response.text
    sam.refresh_from_db()
    assert sam.email == "sam@example.com"


# --- The scanner reads every table -------------------------------------------------------


@pytest.mark.stores_card_numbers
def test_the_scanner_finds_numbers_in_the_libraries_tables_too(rep):
    """Rows written behind every mask, as a library of ours could: each is found."""
    planted = {
        ("axes_accessattempt", "username"): "4111111111111111",
        ("django_admin_log", "change_message"): "changed card to 4111 1111 1111 1111",
        ("auth_group", "name"): "group 5555-5555-5555-4444",
        ("pipeline_user", "username"): "378282246310005",
    }
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO axes_accessattempt (user_agent, ip_address, username, http_accept, "
            "path_info, attempt_time, get_data, post_data, failures_since_start) "
            "VALUES ('ua', '10.0.0.1', %s, '', '/', CURRENT_TIMESTAMP, '', '', 1)",
            [planted[("axes_accessattempt", "username")]],
        )
        cursor.execute(
            "INSERT INTO django_admin_log (action_time, object_id, object_repr, action_flag, "
            "change_message, content_type_id, user_id) "
            "VALUES (CURRENT_TIMESTAMP, '1', 'x', 2, %s, NULL, %s)",
            [planted[("django_admin_log", "change_message")], rep.pk],
        )
        cursor.execute(
            "INSERT INTO auth_group (name) VALUES (%s)", [planted[("auth_group", "name")]]
        )
        cursor.execute(
            "UPDATE pipeline_user SET username = %s WHERE id = %s",
            [planted[("pipeline_user", "username")], rep.pk],
        )
    found = {(finding.table, finding.column) for finding in find_card_numbers()}
    assert found == set(planted)
