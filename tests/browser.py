"""Headless Chromium for browser tests, driven by Playwright's sync API.

Debian's chromium is used (Playwright's own browser download does not work
on these machines). In CI a missing browser is a failure, never a skip.
"""

import os
import shutil

import pytest

from pipeline.models import User
from tests.two_factor import code_for, device_for

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def chromium_path() -> str | None:
    return (
        os.environ.get("CHROMIUM_PATH")
        or shutil.which("chromium")
        or shutil.which("chromium-browser")
    )


@pytest.fixture(scope="session")
def browser():
    path = chromium_path()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is not installed: browser tests must run in CI.")
        pytest.skip("Chromium is not installed (apt-get install chromium).")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id="UTC")
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


def log_in(page, live_server, username: str, password: str = "pw") -> None:
    """Log in through the login page, then type the two-factor code if asked.

    A user who needs two-factor (a manager, a superuser) gets a device first,
    and the code is computed from its secret, as an authenticator app would.
    """
    device = device_for(User.objects.get(username=username))
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    if device is not None:
        page.wait_for_url(f"{live_server.url}/accounts/two-factor/**")
        page.get_by_label("Code").fill(code_for(device))
        page.get_by_role("button", name="Continue").click()
    page.wait_for_url(f"{live_server.url}/")


def open_menu(page, name: str) -> None:
    """Open one of the nav's menus (Reports, Manage, or the account menu, named by the username)."""
    page.locator("nav details.nav-menu > summary").get_by_text(name, exact=True).click()
