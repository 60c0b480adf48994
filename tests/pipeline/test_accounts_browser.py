"""Accounts in headless Chromium: a manager's first log-in sets up two-factor."""

import re

import pytest
from django.core import mail

from tests.browser import log_in
from tests.two_factor import code_from_secret

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_managers_first_log_in_sets_up_two_factor_by_keyboard(page, live_server, manager):
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("manager")
    page.get_by_label("Password").fill("pw")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/accounts/two-factor/setup/"))
    assert page.get_by_role("heading", level=1).inner_text() == "Set up two-factor"
    assert page.get_by_role("img", name=re.compile("QR image")).is_visible()
    secret = page.locator("#two-factor-secret").inner_text()
    # The code field has the focus: type the code and press Enter.
    page.keyboard.type(code_from_secret(secret))
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/accounts/two-factor/recovery-codes/"))
    assert page.locator(".recovery-code").count() == 10
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(f"{live_server.url}/")
    assert page.get_by_role("heading", level=1).first.inner_text().startswith("Your team")


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
