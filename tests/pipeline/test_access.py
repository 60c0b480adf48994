import pytest
from django.test import Client

from pipeline.models import Deal
from pipeline.stages import Stage
from tests.factories import CustomerFactory, DealFactory

pytestmark = pytest.mark.django_db

DEAL_PAGES = ["deal_detail", "deal_edit"]


def test_every_page_requires_login(deal):
    client = Client()
    for url in [
        "/",
        "/deals/",
        "/deals/board/",
        "/deals/new/",
        f"/deals/{deal.pk}/",
        "/customers/",
        f"/customers/{deal.customer_id}/",
        "/customers/new/",
    ]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/?next="), url


def test_healthz_needs_no_login():
    response = Client().get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert {k: body[k] for k in ("status", "database", "broker", "cache")} == {
        "status": "ok",
        "database": "ok",
        "broker": "ok",
        "cache": "ok",
    }


def test_rep_can_open_their_own_deal(rep_client, deal):
    response = rep_client.get(f"/deals/{deal.pk}/")
    assert response.status_code == 200
    assert deal.title in response.text


@pytest.mark.parametrize("path", ["/deals/{pk}/", "/deals/{pk}/edit/"])
def test_rep_cannot_open_another_reps_deal(other_rep_client, deal, path):
    assert other_rep_client.get(path.format(pk=deal.pk)).status_code == 404


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/deals/{pk}/move/", {"to_stage": "lost", "lost_reason": "other", "version": 1}),
        (
            "/deals/{pk}/touches/",
            {
                "kind": "call",
                "discussed": "x",
                "agreed_to": "y",
                "next_step": "z",
                "next_step_date": "2099-01-01",
                "happened_at": "2020-01-01T10:00",
            },
        ),
        (
            "/deals/{pk}/edit/",
            {
                "title": "stolen",
                "amount": "1",
                "version": 1,
                "expected_delivery_date": "2099-01-01",
                "next_step": "x",
                "next_step_date": "2099-01-01",
            },
        ),
    ],
)
def test_a_forged_post_on_another_reps_deal_is_404_and_changes_nothing(
    other_rep_client, deal, path, data
):
    response = other_rep_client.post(path.format(pk=deal.pk), data)
    assert response.status_code == 404
    fresh = Deal.objects.get(pk=deal.pk)
    assert (fresh.stage, fresh.title, fresh.version) == (Stage.PROMISED, deal.title, 1)
    assert not fresh.touches.exists()


def test_manager_sees_their_teams_deals_but_not_another_teams(manager_client, deal, other_rep):
    foreign = DealFactory(rep=other_rep)
    assert manager_client.get(f"/deals/{deal.pk}/").status_code == 200
    assert manager_client.get(f"/deals/{foreign.pk}/").status_code == 404
    listing = manager_client.get("/deals/").text
    assert f"#{deal.pk} " in listing and f"#{foreign.pk} " not in listing


def test_auditor_sees_no_deal_pages(auditor_client, deal):
    assert auditor_client.get(f"/deals/{deal.pk}/").status_code == 404
    assert auditor_client.get("/deals/").status_code == 404
    assert auditor_client.get(f"/customers/{deal.customer_id}/").status_code == 404


def test_auditor_gets_no_terms_panel_for_a_customer(auditor_client, deal):
    response = auditor_client.get(
        f"/deals/terms/?customer={deal.customer_id}", headers={"HX-Request": "true"}
    )
    assert response.status_code == 404


def test_deal_list_shows_only_the_reps_own_deals(rep_client, rep, other_rep):
    mine = DealFactory(rep=rep, title="Mine")
    theirs = DealFactory(rep=other_rep, title="Theirs")
    text = rep_client.get("/deals/").text
    assert f"#{mine.pk} Mine" in text and "Theirs" not in text
    assert f"#{theirs.pk} " not in rep_client.get("/deals/board/").text


def test_rep_cannot_open_another_reps_customer(other_rep_client, customer):
    assert other_rep_client.get(f"/customers/{customer.pk}/").status_code == 404
    assert other_rep_client.get(f"/customers/{customer.pk}/edit/").status_code == 404


def test_rep_sees_a_customer_they_sell_to_even_if_someone_else_added_it(rep_client, rep, other_rep):
    shared = CustomerFactory(owner=other_rep)
    DealFactory(rep=rep, customer=shared)
    assert rep_client.get(f"/customers/{shared.pk}/").status_code == 200


def test_deal_list_costs_a_fixed_number_of_queries(rep_client, rep, django_assert_max_num_queries):
    for _ in range(30):
        DealFactory(rep=rep)
    with django_assert_max_num_queries(8):
        response = rep_client.get("/deals/")
    assert response.status_code == 200


def test_board_costs_a_fixed_number_of_queries(rep_client, rep, django_assert_max_num_queries):
    for _ in range(30):
        DealFactory(rep=rep)
    with django_assert_max_num_queries(8):
        assert rep_client.get("/deals/board/").status_code == 200


def test_the_deal_list_pages_keep_the_filters(rep_client, rep):
    for _ in range(30):
        DealFactory(rep=rep)
    text = rep_client.get("/deals/?stage=promised").text
    assert "Page 1 of 2" in text
    assert 'href="?stage=promised&amp;page=2"' in text
    second = rep_client.get("/deals/?stage=promised&page=2").text
    assert second.count("<tr>") == 1 + 5  # header row and the last five deals


def test_a_deal_links_to_its_own_page_under_any_script_prefix(deal):
    from django.urls import reverse, set_script_prefix

    assert deal.get_absolute_url() == reverse("deal_detail", args=[deal.pk])
    try:
        set_script_prefix("/cleared/")
        assert deal.get_absolute_url() == f"/cleared/deals/{deal.pk}/"
        assert deal.get_absolute_url() == reverse("deal_detail", args=[deal.pk])
    finally:
        set_script_prefix("/")
