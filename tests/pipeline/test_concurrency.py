"""Two people moving the same deal at once: exactly one wins (PostgreSQL row locks)."""

import pytest

from pipeline import services
from pipeline.models import Deal, StageEvent
from pipeline.stages import IllegalMove, Stage
from tests.factories import DealFactory
from tests.race import race

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.needs_postgres("row-lock races: SQLite has no row locks"),
]


def test_two_people_moving_one_deal_from_the_same_page_end_with_one_move(rep, manager):
    deal = DealFactory(rep=rep)
    results = race(
        # Deposit follows recorded money now (billing): the rep's move is losing the deal.
        lambda: services.deal_move(
            deal_id=deal.pk,
            to_stage=Stage.LOST,
            actor=rep,
            lost_reason="buyers_remorse",
            expected_version=1,
        ),
        lambda: services.deal_move(
            deal_id=deal.pk,
            to_stage=Stage.LOST,
            actor=manager,
            lost_reason="other",
            expected_version=1,
        ),
    )
    winners = [r for r in results if isinstance(r, Deal)]
    losers = [r for r in results if isinstance(r, services.StaleDeal)]
    assert len(winners) == 1 and len(losers) == 1, results
    fresh = Deal.objects.get(pk=deal.pk)
    assert fresh.stage == winners[0].stage and fresh.version == 2
    # The opening event plus exactly one move.
    assert StageEvent.objects.filter(deal=deal).count() == 2
    assert str(fresh.get_stage_display()) in str(losers[0])


def test_two_moves_without_a_version_still_cannot_both_apply(rep, manager):
    deal = DealFactory(rep=rep)
    results = race(
        lambda: services.deal_move(
            deal_id=deal.pk, to_stage=Stage.LOST, actor=rep, lost_reason="other"
        ),
        lambda: services.deal_move(
            deal_id=deal.pk, to_stage=Stage.LOST, actor=manager, lost_reason="competitor"
        ),
    )
    assert sum(isinstance(r, Deal) for r in results) == 1, results
    assert sum(isinstance(r, IllegalMove) for r in results) == 1, results
    assert StageEvent.objects.filter(deal=deal, to_stage=Stage.LOST).count() == 1
