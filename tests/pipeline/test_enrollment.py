"""Two-factor from the first log-in: the link that sets the password sets up the
code, and an operator resets a lost phone with a new link (issue 19)."""

import re
import time
from io import StringIO

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from pipeline import enrollment, team
from pipeline.models import Role, User
from tests.conftest import _client_for
from tests.factories import UserFactory
from tests.two_factor import code_from_secret, device_for

pytestmark = pytest.mark.django_db

PASSWORD = "Marigold-Ledger-42"  # noqa: S105 - a test password


@pytest.fixture
def operator(db):
    return UserFactory(username="root", is_staff=True, is_superuser=True)


@pytest.fixture
def newcomer(db):
    """A manager an operator just made in the admin: no password, no device yet."""
    user = UserFactory(username="nina", first_name="Nina", role=Role.MANAGER)
    user.set_unusable_password()
    user.save(update_fields=["password"])
    return user


def _path(link: str) -> str:
    return re.search(r"https?://[^/\s]+(/accounts/two-factor/enroll/\S+/)", link).group(1)


def _secret(html: str) -> str:
    return re.search(r'id="two-factor-secret">([A-Z2-7 ]+)<', html).group(1)


def _reset(operator_client, user):
    return operator_client.post(
        "/admin/pipeline/user/",
        {"action": "reset_two_factor", "_selected_action": [user.pk]},
        follow=True,
    )


def test_an_operators_link_sets_a_new_managers_password_and_code_together(
    operator, newcomer, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        shown = _reset(_client_for(operator), newcomer).content.decode()
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [newcomer.email]
    link = _path(mail.outbox[0].body)
    assert link in shown, "the operator sees the link too"
    visitor = Client()
    page = visitor.get(link)
    html = page.content.decode()
    assert page.status_code == 200
    assert 'name="new_password1"' in html and 'name="code"' in html and "<svg" in html
    secret = _secret(html)

    done = visitor.post(
        link,
        {
            "new_password1": PASSWORD,
            "new_password2": PASSWORD,
            "code": code_from_secret(secret),
        },
    )
    assert done["Location"] == "/accounts/two-factor/recovery-codes/"
    codes = re.findall(r'class="recovery-code">(\w+)<', visitor.get(done["Location"]).text)
    assert len(codes) == 10
    assert set(codes) == set(
        StaticToken.objects.filter(device__user=newcomer).values_list("token", flat=True)
    )
    assert visitor.get("/board/").status_code == 200, "logged in, past the code"
    newcomer.refresh_from_db()
    assert newcomer.check_password(PASSWORD)
    assert TOTPDevice.objects.get(user=newcomer).confirmed
    again = Client().get(link)
    assert again.status_code == 400 and "no longer works" in again.text


def test_a_wrong_code_on_the_link_sets_nothing(newcomer):
    link = enrollment.enrollment_path(newcomer)
    visitor = Client()
    visitor.get(link)
    response = visitor.post(
        link, {"new_password1": PASSWORD, "new_password2": PASSWORD, "code": "000000"}
    )
    assert response.status_code == 422
    assert "That code didn" in response.text
    assert 'id="id_code_error"' in response.text
    newcomer.refresh_from_db()
    assert not newcomer.has_usable_password()
    assert not TOTPDevice.objects.filter(user=newcomer, confirmed=True).exists()
    assert "_auth_user_id" not in visitor.session


def test_a_weak_password_on_the_link_is_refused_next_to_the_field(newcomer):
    link = enrollment.enrollment_path(newcomer)
    visitor = Client()
    secret = _secret(visitor.get(link).text)
    response = visitor.post(
        link,
        {"new_password1": "123", "new_password2": "123", "code": code_from_secret(secret)},
    )
    assert response.status_code == 422
    assert 'id="id_new_password2_error"' in response.text
    assert not TOTPDevice.objects.filter(user=newcomer, confirmed=True).exists()


def test_a_manager_with_only_a_password_is_told_to_ask_an_operator(newcomer):
    newcomer.set_password("pw")
    newcomer.save()
    client = Client()
    client.post("/accounts/login/", {"username": "nina", "password": "pw"})
    response = client.get("/board/", follow=True)
    assert response.status_code == 403
    assert "ask an operator" in response.text
    assert client.post("/accounts/two-factor/setup/", {"code": "123456"}).status_code == 403
    assert not TOTPDevice.objects.filter(user=newcomer, confirmed=True).exists()


def test_an_operator_resets_a_lost_phone_and_the_link_needs_the_password_too(
    operator, manager, django_capture_on_commit_callbacks
):
    old = device_for(manager)
    manager_session = _client_for(manager)
    assert manager_session.get("/board/").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        _reset(_client_for(operator), manager)
    assert not TOTPDevice.objects.filter(pk=old.pk).exists()
    assert manager_session.get("/board/").status_code == 302, "their sessions ended"
    link = _path(mail.outbox[0].body)

    visitor = Client()
    html = visitor.get(link).text
    assert 'name="password"' in html and 'name="new_password1"' not in html
    secret = _secret(html)
    wrong = visitor.post(link, {"password": "not mine", "code": code_from_secret(secret)})
    assert wrong.status_code == 422 and "That isn&#x27;t your password." in wrong.text
    assert not TOTPDevice.objects.filter(user=manager, confirmed=True).exists()

    done = visitor.post(link, {"password": "pw", "code": code_from_secret(secret)})
    assert done["Location"] == "/accounts/two-factor/recovery-codes/"
    assert visitor.get("/board/").status_code == 200
    assert Client().get(link).status_code == 400, "the link works once"


def test_the_link_expires(newcomer, settings):
    link = enrollment.enrollment_path(newcomer)
    settings.PASSWORD_RESET_TIMEOUT = -1
    response = Client().get(link)
    assert response.status_code == 400 and 'name="code"' not in response.text


@pytest.mark.parametrize(
    "path", ["/accounts/two-factor/enroll/MQ/forged-token/", "/accounts/two-factor/enroll/!!/x/"]
)
def test_a_forged_link_answers_a_clear_page(path, newcomer):
    response = Client().get(path)
    assert response.status_code == 400 and "no longer works" in response.text


def test_a_second_reset_spends_the_first_link(operator, newcomer):
    first = enrollment.two_factor_reset_by_operator(user=newcomer, operator=operator)
    time.sleep(0.01)
    second = enrollment.two_factor_reset_by_operator(user=newcomer, operator=operator)
    assert Client().get(_path(first)).status_code == 400
    assert Client().get(_path(second)).status_code == 200


def test_an_operator_cannot_reset_their_own_and_a_manager_cannot_reset_anyones(
    operator, manager, newcomer
):
    with pytest.raises(enrollment.EnrollmentRefused, match="another operator"):
        enrollment.two_factor_reset_by_operator(user=operator, operator=operator)
    with pytest.raises(enrollment.EnrollmentRefused):
        enrollment.two_factor_reset_by_operator(user=newcomer, operator=manager)
    shown = _reset(_client_for(operator), operator).content.decode()
    assert "ask another operator" in shown
    assert device_for(operator) is not None


def test_an_invited_rep_made_a_manager_before_joining_sets_up_the_code_with_the_password(
    manager, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        sam = team.team_invite(manager=manager, email="sam@example.com", first_name="Sam")
    sam.groups.add(Group.objects.get_or_create(name=Role.MANAGER)[0])
    join = re.search(r"https?://[^/\s]+(/team/join/\S+/)", mail.outbox[0].body).group(1)
    visitor = Client()
    response = visitor.get(join)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/two-factor/enroll/")
    page = visitor.get(response["Location"]).text
    assert 'name="new_password1"' in page and 'name="code"' in page
    # Setting a password alone through the join form is not offered.
    direct = visitor.post(join, {"new_password1": PASSWORD, "new_password2": PASSWORD})
    assert direct.status_code == 302 and "/two-factor/enroll/" in direct["Location"]
    sam.refresh_from_db()
    assert not sam.has_usable_password()


def test_the_command_line_prints_the_first_operators_link(operator):
    TOTPDevice.objects.filter(user=operator).delete()
    out = StringIO()
    call_command("two_factor_link", "root", stdout=out)
    link = _path(out.getvalue())
    assert Client().get(link).status_code == 200
    device_for(operator)
    with pytest.raises(CommandError, match="--reset"):
        call_command("two_factor_link", "root", stdout=StringIO())
    call_command("two_factor_link", "root", "--reset", stdout=StringIO())
    assert not TOTPDevice.objects.filter(user=operator, confirmed=True).exists()


def test_the_invitation_says_how_long_the_link_works(
    manager, settings, django_capture_on_commit_callbacks
):
    settings.PASSWORD_RESET_TIMEOUT = 3 * 3600
    with django_capture_on_commit_callbacks(execute=True):
        team.team_invite(manager=manager, email="sam@example.com")
    assert "the link works once, for 3 hours" in mail.outbox[0].body
    assert User.objects.filter(email="sam@example.com").exists()
    assert reverse("two_factor_enroll", args=["MQ", "x"]).startswith("/accounts/")
