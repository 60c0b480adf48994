"""API tokens in headless Chromium: made on the Security page, shown once, and it works."""

import json
import re
import urllib.request

import pytest

from api.models import ApiToken
from tests.browser import log_in
from tests.factories import DealFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _get(url: str, token: str) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_a_token_made_on_the_security_page_is_shown_once_and_works(
    page, live_server, rep, tmp_path
):
    deal = DealFactory(rep=rep, title="Clinic website")
    log_in(page, live_server, "rep")
    page.goto(f"{live_server.url}/accounts/security/")
    section = page.locator("#api-tokens")
    section.get_by_label("Name").fill("Accounting sync")
    section.get_by_label("Read and write").check()
    page.screenshot(path=str(tmp_path / "security.png"), full_page=True)
    section.get_by_role("button", name="Create a token").click()
    page.wait_for_url(re.compile(r"/api-tokens/created/"))
    secret = page.locator("#api-token").inner_text().strip()
    assert secret.startswith("clr_")
    page.screenshot(path=str(tmp_path / "created.png"), full_page=True)

    page.reload()
    assert secret not in page.content()
    assert page.get_by_text("already shown").is_visible()

    status, body = _get(f"{live_server.url}/api/v1/deals/{deal.pk}", secret)
    assert (status, body["title"]) == (200, "Clinic website")
    page.goto(f"{live_server.url}/accounts/security/")
    row = page.locator("#api-tokens tr", has_text="Accounting sync")
    assert "never" not in row.inner_text()
    assert secret not in page.content()

    row.get_by_role("button", name="Revoke").click()
    page.wait_for_url(re.compile(r"/accounts/security/"))
    assert _get(f"{live_server.url}/api/v1/deals/{deal.pk}", secret)[0] == 401
    assert ApiToken.objects.get().revoked_at is not None


def test_the_api_docs_page_loads_its_own_files_under_the_csp(page, live_server, rep, tmp_path):
    log_in(page, live_server, "rep")
    blocked = []
    page.on("console", lambda m: blocked.append(m.text) if "Content Security" in m.text else None)
    outside = []
    page.on(
        "request",
        lambda r: outside.append(r.url) if not r.url.startswith(live_server.url) else None,
    )
    page.goto(f"{live_server.url}/api/v1/docs")
    page.get_by_text("Cleared API").first.wait_for()
    page.get_by_text("/api/v1/deals").first.wait_for()
    page.screenshot(path=str(tmp_path / "docs.png"), full_page=False)
    assert [url for url in outside if not url.startswith("data:")] == []
    assert blocked == []
