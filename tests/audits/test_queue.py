from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from audits import selectors, services
from audits.models import Outcome
from pipeline.stages import Stage
from tests.audits.conftest import checklist, record
from tests.factories import CustomerFactory, DealFactory

pytestmark = pytest.mark.django_db


def _queued(rep, *, start, end, name="Customer"):
    customer = CustomerFactory(owner=rep, name=name)
    deal = DealFactory(rep=rep, customer=customer, stage=Stage.DEPOSIT)
    wrap = checklist(call_window_start=start, call_window_end=end)
    return services.wrap_up_hand_over(
        deal_id=deal.pk, rep=rep, now=start - timedelta(minutes=1), **wrap
    )


@pytest.fixture
def mixed_queue(rep, auditor):
    now = timezone.now()
    hour = timedelta(hours=1)
    due = _queued(rep, start=now - 10 * timedelta(minutes=1), end=now + hour, name="Due Dana")
    coming = _queued(rep, start=now + 2 * hour, end=now + 3 * hour, name="Coming Cole")
    later = _queued(rep, start=now + 5 * hour, end=now + 6 * hour, name="Later Lou")
    overdue = _queued(rep, start=now - 3 * hour, end=now - 2 * hour, name="Overdue Olga")
    retry = _queued(rep, start=now - 2 * hour, end=now - hour, name="Retry Rita")
    record(retry, auditor, Outcome.NO_ANSWER, now=now - 90 * timedelta(minutes=1))
    callback = _queued(rep, start=now - 4 * hour, end=now - 3 * hour, name="Callback Cal")
    record(callback, auditor, Outcome.CALL_BACK, callback_at=now + hour, now=now - 3 * hour)
    return {
        "due": due,
        "coming": coming,
        "later": later,
        "overdue": overdue,
        "retry": retry,
        "callback": callback,
        "now": now,
    }


def test_the_queue_is_split_into_sections_ordered_by_call_window(mixed_queue, auditor):
    q = mixed_queue
    sections = selectors.audit_queue(auditor=auditor, now=q["now"])
    assert sections["due_now"] == [q["due"]]
    assert sections["coming"] == [q["coming"], q["later"]]
    assert sections["overdue"] == [q["overdue"]]
    assert [a.pk for a in sections["callbacks"]] == [q["retry"].pk, q["callback"].pk]


def test_closed_audits_leave_the_queue(mixed_queue, auditor):
    record(mixed_queue["due"], auditor, Outcome.DISPUTED, notes="Who are you?")
    sections = selectors.audit_queue(auditor=auditor, now=timezone.now())
    assert mixed_queue["due"] not in sections["due_now"]


def test_the_queue_page_shows_every_section(mixed_queue, auditor_client):
    html = auditor_client.get(reverse("audits:queue")).content.decode()
    for name in ("Due Dana", "Coming Cole", "Overdue Olga", "Retry Rita", "Callback Cal"):
        assert name in html
    assert html.index("Due Dana") < html.index("Overdue Olga") < html.index("Coming Cole")
    # It polls only while the tab is visible (static/js/cleared.js; no eval under the CSP).
    assert 'hx-trigger="every 15s, visibilitychange from:document" data-poll-visible' in html


def test_the_queue_refreshes_as_a_partial_over_htmx(mixed_queue, auditor_client):
    response = auditor_client.get(reverse("audits:queue"), headers={"HX-Request": "true"})
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="queue"') and "<html" not in html
    assert "Due Dana" in html


def test_the_queue_page_costs_a_fixed_number_of_queries(
    mixed_queue, auditor_client, rep, django_assert_max_num_queries
):
    with django_assert_max_num_queries(6):
        auditor_client.get(reverse("audits:queue"))
    for n in range(10):
        now = timezone.now()
        _queued(rep, start=now + timedelta(hours=n + 1), end=now + timedelta(hours=n + 2))
    with django_assert_max_num_queries(6):
        response = auditor_client.get(reverse("audits:queue"))
    assert response.content.decode().count('<li class="audit-card') == 16


def test_claiming_from_the_queue_opens_the_call_screen(mixed_queue, auditor_client, auditor):
    audit = mixed_queue["due"]
    response = auditor_client.post(reverse("audits:claim", args=[audit.pk]))
    assert response["Location"] == reverse("audits:call", args=[audit.pk])
    page = auditor_client.get(response["Location"]).content.decode()
    assert "Due Dana" in page and "+1 555 0199" in page and 'name="outcome"' in page
    assert "Website redesign" in page and "$1,000.00" in page


def test_the_auditors_home_summarises_the_queue(mixed_queue, auditor_client):
    html = auditor_client.get("/").content.decode()
    assert "Open the audit queue" in html and "Due Dana" in html


def test_an_outcome_with_a_no_is_returned_with_the_answers_kept(mixed_queue, auditor_client):
    audit = mixed_queue["due"]
    auditor_client.post(reverse("audits:claim", args=[audit.pk]))
    data = {
        "outcome": Outcome.CONFIRMED,
        "version": 1,
        "script_version": 1,
        "answer_identity": "yes",
        "answer_purchase": "yes",
        "answer_price": "no",
        "answer_terms": "yes",
        "answer_right_to_cancel": "yes",
        "recording_ref": "rec-991",
    }
    response = auditor_client.post(reverse("audits:attempt_new", args=[audit.pk]), data)
    assert response.status_code == 422
    html = response.content.decode()
    assert "The customer said no" in html
    assert 'value="rec-991"' in html
    assert 'value="no" id="id_answer_price_1" checked' in html or "checked" in html


def test_a_confirmed_call_over_the_call_screen_confirms_the_deal(mixed_queue, auditor_client):
    audit = mixed_queue["due"]
    auditor_client.post(reverse("audits:claim", args=[audit.pk]))
    data = {"outcome": Outcome.CONFIRMED, "version": 1, "script_version": 1}
    data.update(
        {
            f"answer_{k}": "yes"
            for k in ("identity", "purchase", "price", "terms", "right_to_cancel")
        }
    )
    response = auditor_client.post(
        reverse("audits:attempt_new", args=[audit.pk]), data, headers={"HX-Request": "true"}
    )
    assert response["HX-Redirect"] == reverse("audits:queue")
    audit.deal.refresh_from_db()
    assert audit.deal.stage == Stage.AUDIT_CONFIRMED


def test_the_manager_report_counts_per_rep_and_per_auditor(
    mixed_queue, auditor, rep, manager_client
):
    record(
        mixed_queue["due"],
        auditor,
        Outcome.CONFIRMED,
        answers=dict.fromkeys(("identity", "purchase", "price", "terms", "right_to_cancel"), "yes"),
    )
    record(mixed_queue["overdue"], auditor, Outcome.DISPUTED, notes="Never heard of you")
    response = manager_client.get(reverse("audits:report"))
    report = response.context["report"]
    row = next(r for r in report["reps"] if r["rep"] == rep)
    assert (row["confirmed"], row["disputed"], row["queued"]) == (1, 1, 4)
    assert row["confirm_rate"] == 0.5 and row["flake_rate"] == 0.0
    assert row["avg_to_confirmation"] is not None
    auditor_row = report["auditors"][0]
    assert auditor_row["auditor"] == auditor and auditor_row["calls"] == 4
    html = response.content.decode()
    assert "Needs your attention" in html and "Overdue Olga" in html


def test_a_deal_lost_meanwhile_leaves_the_queue_and_the_reminders(mixed_queue, auditor, rep):
    from pipeline import services as pipeline_services
    from pipeline.stages import LostReason

    due = mixed_queue["due"]
    pipeline_services.deal_move(
        deal_id=due.deal_id, to_stage=Stage.LOST, actor=rep, lost_reason=LostReason.COMPETITOR
    )
    now = timezone.now()
    assert due not in selectors.audit_queue(auditor=auditor, now=now)["due_now"]
    assert due not in selectors.audits_due(now)


def test_the_report_shows_only_the_managers_own_team(
    mixed_queue, auditor, other_rep, manager, manager_client
):
    customer = CustomerFactory(owner=other_rep, name="Outsider Otto")
    deal = DealFactory(rep=other_rep, customer=customer, stage=Stage.DEPOSIT)
    outsider = services.wrap_up_hand_over(deal_id=deal.pk, rep=other_rep, **checklist())
    record(outsider, auditor, Outcome.DISPUTED, notes="Who?")
    response = manager_client.get(reverse("audits:report"))
    reps = [row["rep"] for row in response.context["report"]["reps"]]
    assert other_rep not in reps
    assert "Outsider Otto" not in response.content.decode()
    since = timezone.now() - timedelta(days=1)
    assert outsider not in selectors.audits_escalated(manager=manager, since=since)
    assert outsider in selectors.audits_escalated(manager=other_rep.manager, since=since)


def test_the_call_screen_costs_a_fixed_number_of_queries(
    mixed_queue, auditor, auditor_client, django_assert_max_num_queries
):
    audit = mixed_queue["retry"]
    for _ in range(3):
        record(audit, auditor, Outcome.CALL_BACK, callback_at=timezone.now() + timedelta(hours=1))
    with django_assert_max_num_queries(8):
        response = auditor_client.get(reverse("audits:call", args=[audit.pk]))
    assert response.content.decode().count("Call back</strong>") == 3
