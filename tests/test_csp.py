"""Content-Security-Policy on every page, and pages that break none of it.

The header is checked on each role's pages; headless Chromium then loads
the main pages of each role, polls and drags, and fails on any violation the
browser reports (an inline script or style, an on*= handler, an eval).
"""

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from playwright.sync_api import expect

from billing.services import invoice_issue
from online.views import processor_csp
from pipeline.stages import Stage
from tests.browser import log_in, open_menu
from tests.factories import DealFactory

STRICT = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}

REP_PAGES = ["/", "/deals/", "/deals/new/", "/deals/board/", "/customers/", "/reminders/"]
REP_PAGES += ["/billing/payments/", "/billing/invoices/", "/billing/commission/"]
MANAGER_PAGES = ["/", "/board/", "/board/charts/", "/deals/", "/audits/report/"]
AUDITOR_PAGES = ["/", "/audits/"]


def _policy(response) -> dict[str, str]:
    header = response["Content-Security-Policy"]
    return {
        directive.split(" ", 1)[0]: directive.split(" ", 1)[1]
        for directive in (part.strip() for part in header.split(";"))
    }


def _assert_strict(response, url: str) -> None:
    policy = _policy(response)
    for directive, value in STRICT.items():
        assert policy.get(directive) == value, (url, directive, policy)
    assert "unsafe-inline" not in response["Content-Security-Policy"], url
    assert "unsafe-eval" not in response["Content-Security-Policy"], url


@pytest.mark.django_db
def test_every_page_of_each_role_is_sent_with_a_strict_policy(
    rep_client, manager_client, auditor_client, deal
):
    pages = [(Client(), "/accounts/login/"), (Client(), "/healthz"), (Client(), "/nowhere/")]
    pages += [(rep_client, url) for url in [*REP_PAGES, deal.get_absolute_url()]]
    pages += [(manager_client, url) for url in [*MANAGER_PAGES, deal.get_absolute_url()]]
    pages += [(auditor_client, url) for url in AUDITOR_PAGES]
    for client, url in pages:
        response = client.get(url)
        assert response.status_code in (200, 404), url
        _assert_strict(response, url)


def test_no_template_has_an_inline_script_style_or_event_handler():
    inline = re.compile(
        r"<script(?![^>]*\bsrc=)[^>]*>|<style\b|\sstyle=|\son[a-z]+=|hx-on|\[[^\]]*document\."
    )
    found = []
    for path in Path(settings.BASE_DIR, "templates").rglob("*.html"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if inline.search(line):
                found.append(f"{path.name}:{number}: {line.strip()}")
    assert not found, "\n".join(found)


# --- In the browser -------------------------------------------------------------------

# Registered before any page script: every violation the browser reports,
# whatever the console says.
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(e.violatedDirective + " " + (e.blockedURI || "inline") + " " + e.sourceFile);
});
"""


class Violations:
    def __init__(self, page):
        self.page = page
        self.console: list[str] = []
        page.add_init_script(RECORD_VIOLATIONS)
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.console.append(f"page error: {error}"))

    def _on_console(self, message) -> None:
        if "Content Security Policy" in message.text or message.type == "error":
            self.console.append(f"{message.type}: {message.text}")

    def visit(self, url: str) -> None:
        response = self.page.goto(url)
        assert response.status == 200, url
        self.page.wait_for_load_state("networkidle")
        self.check(url)

    def check(self, where: str) -> None:
        reported = self.page.evaluate("window.__csp || []")
        assert not reported and not self.console, (where, reported, self.console)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_rep_uses_the_main_pages_polls_and_drags_without_a_csp_violation(
    page, live_server, rep, manager, settings
):
    settings.REMINDERS_POLL_SECONDS = 1
    upfront = DealFactory(
        rep=rep, payment_option="upfront", stage=Stage.DEPOSIT, customer__name="Upfront Ursula"
    )
    # Invoiced after its audit (issue 15): billed deals wait for the auditor's call.
    billed = DealFactory(rep=rep, customer__name="Billed Bob", stage=Stage.AUDIT_CONFIRMED)
    invoice = invoice_issue(deal_id=billed.pk, issued_by=rep)
    violations = Violations(page)
    log_in(page, live_server, "rep")
    violations.check("login")
    for url in [*REP_PAGES, billed.get_absolute_url(), f"/billing/invoices/{invoice.pk}/"]:
        violations.visit(live_server.url + url)

    # Home: the reminders panel and the badge poll by themselves (no eval'd filter)...
    violations.visit(live_server.url + "/")
    with page.expect_request("**/reminders/panel/**", timeout=5000):
        pass
    with page.expect_request("**/reminders/badge/**", timeout=5000):
        pass
    # ...the panel pauses while a "pick a time" form is open, the badge does not.
    # The polls kept the panel (a poll sent to the login page once replaced it).
    expect(page.locator("#reminders-panel"), page.url).to_have_count(1)
    page.evaluate(
        "document.querySelector('#reminders-panel').append(document.createElement('details'));"
        "document.querySelector('#reminders-panel details').open = true;"
    )
    polled: list[str] = []
    page.on("request", lambda request: polled.append(request.url))
    page.wait_for_timeout(2500)
    assert any("/reminders/badge/" in url for url in polled)
    assert not any("/reminders/panel/" in url for url in polled)

    # The pipeline board's drag and drop.
    violations.visit(live_server.url + "/deals/board/")
    board = page.locator("#pipeline-board")
    delivered = board.locator('.board-column[data-stage="delivered"]')
    board.locator(f'.deal-card[data-deal="{upfront.pk}"]').drag_to(delivered)
    page.get_by_text("Upfront Ursula moved to Delivered").wait_for()
    violations.check("after the drag")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_manager_and_an_auditor_use_their_pages_without_a_csp_violation(
    page, live_server, rep, manager, auditor
):
    deal = DealFactory(rep=rep)
    violations = Violations(page)
    log_in(page, live_server, "manager")
    for url in [*MANAGER_PAGES, deal.get_absolute_url()]:
        violations.visit(live_server.url + url)
    page.goto(live_server.url + "/board/")
    page.locator("#charts svg").first.wait_for()  # the charts arrive by htmx, SVG styled by CSS
    violations.check("board charts")
    open_menu(page, "manager")
    page.get_by_role("button", name=re.compile("Log out")).click()
    page.wait_for_url("**/accounts/login/**")

    log_in(page, live_server, "auditor")
    for url in AUDITOR_PAGES:
        violations.visit(live_server.url + url)


def test_only_the_pay_page_allows_the_processor_and_nothing_else(settings):
    """The pay page (online/views.py) adds the processor's script, frames and API to the
    strict policy, nothing more; every other page keeps the strict one (above)."""
    settings.STRIPE_TEST_MODE = False
    settings.STRIPE_API_BASE = ""
    real = processor_csp()
    assert real["script-src"] == ["'self'", "https://js.stripe.com"]
    assert real["frame-src"] == ["https://js.stripe.com", "https://hooks.stripe.com"]
    assert real["connect-src"] == ["'self'", "https://api.stripe.com"]
    settings.STRIPE_TEST_MODE = True
    settings.STRIPE_API_BASE = "http://127.0.0.1:8420"
    settings.STRIPE_JS_URL = "http://127.0.0.1:8420/js.stripe.com/v3/"
    test = processor_csp()
    assert test["script-src"] == ["'self'", "http://127.0.0.1:8420"]
    assert test["frame-src"] == ["http://127.0.0.1:8420"]
    assert test["connect-src"] == ["'self'", "http://127.0.0.1:8420"]
    for policy in (real, test):
        rest = {
            k: v for k, v in policy.items() if k not in ("script-src", "connect-src", "frame-src")
        }
        assert rest == {k: list(v) for k, v in settings.SECURE_CSP.items() if k != "script-src"}
        assert "'unsafe-inline'" not in str(policy) and "'unsafe-eval'" not in str(policy)
    assert "frame-src" not in settings.SECURE_CSP and "connect-src" not in settings.SECURE_CSP
