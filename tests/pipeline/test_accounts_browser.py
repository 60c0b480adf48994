"""Accounts in headless Chromium: a manager's first log-in sets up two-factor."""

import os
import re
import tempfile
from pathlib import Path

import pytest
from django.conf import settings
from django.core import mail

from pipeline import enrollment
from pipeline.models import Role
from tests.browser import log_in
from tests.factories import UserFactory
from tests.two_factor import code_from_secret

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SCREENSHOTS = Path(os.environ.get("CLEARED_SCREENSHOTS", tempfile.gettempdir()))


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


def test_a_new_manager_sets_password_and_code_from_the_link_then_reaches_home(
    page, live_server, newcomer, operator
):
    link = enrollment.two_factor_reset_by_operator(user=newcomer, operator=operator)
    page.goto(live_server.url + link.removeprefix(settings.CLEARED_SITE_URL))
    assert page.get_by_role("heading", level=1).inner_text() == "Set up your account"
    assert page.get_by_role("img", name=re.compile("QR image")).is_visible()
    page.screenshot(path=str(SCREENSHOTS / "enroll.png"), full_page=True)
    # The password field has the focus: type it, then the code, then press Enter.
    page.keyboard.type("Tangerine-Ledger-42")
    page.get_by_label("New password confirmation").fill("Tangerine-Ledger-42")
    secret = page.locator("#two-factor-secret").inner_text()
    page.get_by_label("Code").fill(code_from_secret(secret))
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/accounts/two-factor/recovery-codes/"))
    assert page.locator(".recovery-code").count() == 10
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(f"{live_server.url}/")
    assert page.get_by_role("heading", level=1).first.inner_text().startswith("Your team")


def test_a_manager_with_only_a_password_is_sent_to_an_operator(page, live_server, newcomer):
    newcomer.set_password("pw")
    newcomer.save()
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("nina")
    page.get_by_label("Password").fill("pw")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/accounts/two-factor/setup/"))
    assert page.get_by_role("heading", level=1).inner_text() == "Two-factor needed"
    assert "ask an operator" in page.content()
    assert page.locator("#two-factor-secret").count() == 0
    page.screenshot(path=str(SCREENSHOTS / "ask_operator.png"), full_page=True)
    page.goto(f"{live_server.url}/board/")
    assert "/accounts/two-factor/setup/" in page.url


def test_the_log_in_helper_passes_the_code_step(page, live_server, manager):
    log_in(page, live_server, "manager")
    page.goto(f"{live_server.url}/board/")
    assert page.url == f"{live_server.url}/board/"


def test_a_locked_out_user_sees_when_to_try_again(page, live_server, rep, settings):
    page.goto(f"{live_server.url}/accounts/login/")
    for _ in range(settings.AXES_FAILURE_LIMIT + 1):
        page.get_by_label("Username").fill("rep")
        page.get_by_label("Password").fill("wrong")
        page.get_by_role("button", name="Log in").click()
    assert "Too many failed attempts" in page.get_by_role("alert").inner_text()


def test_a_password_is_reset_from_the_login_page(page, live_server, rep):
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_label("Email").fill(rep.email)
    page.get_by_role("button", name="Send the link").click()
    assert "Check your email" in page.get_by_role("heading", level=1).inner_text()
    link = re.search(r"https?://\S+/accounts/reset/\S+/", mail.outbox[0].body).group(0)
    page.goto(link)
    page.get_by_label("New password", exact=True).fill("Tangerine-Ledger-42")
    page.get_by_label("New password confirmation").fill("Tangerine-Ledger-42")
    page.get_by_role("button", name="Set the password").click()
    page.get_by_role("button", name="Log in").click()
    log_in(page, live_server, "rep", "Tangerine-Ledger-42")
