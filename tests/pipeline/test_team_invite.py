"""A manager invites a rep by email; the rep sets a password from the link."""

import re

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from pipeline import team
from pipeline.models import User

pytestmark = pytest.mark.django_db


def _invite(client, **data):
    return client.post(reverse("team_invite"), {"email": "sam@example.com", **data})


def _link(message) -> str:
    return re.search(r"https?://[^/\s]+(/team/join/\S+/)", message.body).group(1)


def test_a_manager_invites_a_rep_who_joins_their_team_with_no_password_yet(
    manager, manager_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = _invite(manager_client, first_name="Sam", last_name="Ortiz")
    assert response.status_code == 302
    sam = User.objects.get(email="sam@example.com")
    assert (sam.username, sam.manager, sam.is_rep, sam.is_active) == (
        "sam@example.com",
        manager,
        True,
        True,
    )
    assert not sam.has_usable_password()
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["sam@example.com"]
    assert "/team/join/" in mail.outbox[0].body
    assert "Invited" in manager_client.get(reverse("team")).content.decode()


def test_the_invited_rep_sets_a_password_from_the_link_once(
    manager, manager_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        _invite(manager_client, username="sam")
    link = _link(mail.outbox[0])
    visitor = Client()
    page = visitor.get(link)
    assert page.status_code == 200 and "Set my password" in page.content.decode()
    done = visitor.post(
        link, {"new_password1": "a long pass phrase 42", "new_password2": "a long pass phrase 42"}
    )
    assert done.status_code == 302 and done.url == reverse("login")
    assert User.objects.get(username="sam").check_password("a long pass phrase 42")
    again = Client().get(link)
    assert again.status_code == 400 and "no longer works" in again.content.decode()
    assert b"new_password1" not in again.content


def test_a_mismatched_password_comes_back_with_a_message(manager, manager_client):
    sam = team.team_invite(manager=manager, email="sam@example.com")
    response = Client().post(
        team.invitation_path(sam), {"new_password1": "a long pass 42", "new_password2": "other 42"}
    )
    assert response.status_code == 422
    assert "didn’t match" in response.content.decode()
    sam.refresh_from_db()
    assert not sam.has_usable_password()


@pytest.mark.parametrize(
    "path",
    ["/team/join/MQ/forged-token/", "/team/join/!!!/x/", "/team/join/OTk5OTk5/abc-def/"],
)
def test_a_forged_invitation_link_answers_a_clear_page_not_the_form(path, rep):
    response = Client().get(path)
    assert response.status_code == 400
    assert "no longer works" in response.content.decode()
    assert b"new_password1" not in response.content


def test_an_expired_invitation_link_answers_a_clear_page(manager, settings):
    sam = team.team_invite(manager=manager, email="sam@example.com")
    settings.PASSWORD_RESET_TIMEOUT = -1
    response = Client().get(team.invitation_path(sam))
    assert response.status_code == 400 and b"new_password1" not in response.content


def test_an_email_already_in_use_is_refused_next_to_the_field(manager_client, rep):
    response = _invite(manager_client, email=rep.email.upper())
    assert response.status_code == 422
    assert response.context["invite_form"].errors["email"] == [
        "Someone already has an account with this email."
    ]
    assert 'value="REP@EXAMPLE.COM"' in response.content.decode()


def test_a_taken_or_bad_username_is_refused_next_to_the_field(manager_client, rep):
    taken = _invite(manager_client, username="REP")
    assert taken.context["invite_form"].errors["username"] == [
        "This username is taken: type another."
    ]
    bad = _invite(manager_client, username="no spaces please")
    assert bad.status_code == 422 and "username" in bad.context["invite_form"].errors
    assert not User.objects.filter(email="sam@example.com").exists()


def test_a_bad_email_is_refused_next_to_the_field(manager_client):
    response = _invite(manager_client, email="not an email")
    assert response.status_code == 422 and "email" in response.context["invite_form"].errors


def test_only_a_manager_invites(rep):
    with pytest.raises(team.TeamError):
        team.team_invite(manager=rep, email="sam@example.com")
