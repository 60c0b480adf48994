import itertools

import pytest

from pipeline import services
from pipeline.models import Deal, StageEvent
from pipeline.stages import (
    MANAGER,
    REP,
    SYSTEM,
    TRANSITIONS,
    IllegalMove,
    LostReason,
    Stage,
    check_move,
    find_transition,
    next_moves,
)
from pipeline.terms import PaymentOption
from tests.factories import DealFactory

pytestmark = pytest.mark.django_db


class FakeDeal:
    """Just what check_move reads: a stage and which stages the deal needs."""

    def __init__(self, stage, needs_deposit=True, needs_audit=True):
        self.stage = stage
        self._needs = {Stage.DEPOSIT: needs_deposit, Stage.AUDIT_CONFIRMED: needs_audit}

    def needs_stage(self, stage):
        return self._needs.get(stage, True)

    def why_stage_needed(self, stage):
        return "needed"

    def why_stage_not_needed(self, stage):
        return "not needed"


ALL_PAIRS = [(a, b) for a, b in itertools.product(Stage, Stage) if a != b]


@pytest.mark.parametrize(("source", "target"), ALL_PAIRS)
def test_every_pair_of_stages_is_allowed_exactly_when_the_table_says(source, target):
    deal = FakeDeal(source)
    transition = find_transition(source, target)
    if transition is None:
        with pytest.raises(IllegalMove):
            check_move(deal, target, SYSTEM)
        with pytest.raises(IllegalMove):
            check_move(deal, target, MANAGER)
    else:
        # A deal that needs every stage may only take the next one on the path.
        skips_a_needed_stage = (
            source == Stage.PROMISED
            and target
            in (
                Stage.AUDIT_CONFIRMED,
                Stage.DELIVERED,
            )
            or (source == Stage.DEPOSIT and target == Stage.DELIVERED)
        )
        role = sorted(transition.by)[0]
        if skips_a_needed_stage:
            with pytest.raises(IllegalMove, match="must reach"):
                check_move(deal, target, role)
        else:
            assert check_move(deal, target, role) == transition


def test_nothing_moves_out_of_lost_or_written_off():
    for closed in (Stage.LOST, Stage.WRITTEN_OFF):
        for target in Stage:
            if target != closed:
                with pytest.raises(IllegalMove, match="closed"):
                    check_move(FakeDeal(closed), target, MANAGER)


def test_an_upfront_deal_skips_the_audit_and_may_not_enter_it():
    deal = FakeDeal(Stage.DEPOSIT, needs_audit=False)
    assert check_move(deal, Stage.DELIVERED, REP).target == Stage.DELIVERED
    with pytest.raises(IllegalMove, match="not needed"):
        check_move(deal, Stage.AUDIT_CONFIRMED, SYSTEM)


def test_an_invoice_deal_for_a_good_payer_skips_the_deposit():
    deal = FakeDeal(Stage.PROMISED, needs_deposit=False)
    assert check_move(deal, Stage.AUDIT_CONFIRMED, SYSTEM).target == Stage.AUDIT_CONFIRMED
    with pytest.raises(IllegalMove):
        check_move(deal, Stage.DEPOSIT, REP)


@pytest.mark.parametrize("source", [Stage.PROMISED, Stage.DEPOSIT])
@pytest.mark.parametrize("role", [REP, MANAGER])
def test_nobody_confirms_an_audit_by_hand(source, role):
    # Only an auditor's confirmed call moves a deal there, as the system.
    deal = FakeDeal(source, needs_deposit=False)
    with pytest.raises(IllegalMove, match="from the facts"):
        check_move(deal, Stage.AUDIT_CONFIRMED, role)
    assert Stage.AUDIT_CONFIRMED not in {t.target for t in next_moves(deal, role)}


def test_only_a_manager_writes_a_deal_off():
    deal = FakeDeal(Stage.DELIVERED)
    with pytest.raises(IllegalMove, match="Only a manager"):
        check_move(deal, Stage.WRITTEN_OFF, REP)
    assert check_move(deal, Stage.WRITTEN_OFF, MANAGER).target == Stage.WRITTEN_OFF


@pytest.mark.parametrize("target", [Stage.DEPOSIT, Stage.PAYMENT_CLEARED])
@pytest.mark.parametrize("role", [REP, MANAGER])
def test_nobody_moves_a_deal_into_money_stages_by_hand(target, role):
    # Deposit and Payment cleared follow recorded money (billing.services.deal_sync_stage).
    source = Stage.PROMISED if target == Stage.DEPOSIT else Stage.DELIVERED
    with pytest.raises(IllegalMove, match="from the facts"):
        check_move(FakeDeal(source), target, role)
    assert check_move(FakeDeal(source), target, SYSTEM).target == target


def test_a_bounce_is_the_only_way_back_from_payment_cleared():
    deal = FakeDeal(Stage.PAYMENT_CLEARED)
    with pytest.raises(IllegalMove, match="from the facts"):
        check_move(deal, Stage.DELIVERED, MANAGER)
    assert check_move(deal, Stage.DELIVERED, SYSTEM).target == Stage.DELIVERED


def test_a_forged_stage_name_is_refused():
    with pytest.raises(IllegalMove, match="not a stage"):
        check_move(FakeDeal(Stage.PROMISED), "paid_in_gold", REP)


def test_next_moves_offers_only_legal_moves():
    # The deposit is recorded as money (billing), not clicked: a rep may only lose the deal.
    targets = {t.target for t in next_moves(FakeDeal(Stage.PROMISED), REP)}
    assert targets == {Stage.LOST}
    assert Stage.DEPOSIT in {t.target for t in next_moves(FakeDeal(Stage.PROMISED), SYSTEM)}
    targets = {t.target for t in next_moves(FakeDeal(Stage.DELIVERED), REP)}
    assert Stage.WRITTEN_OFF not in targets


def test_every_transition_names_who_may_make_it():
    for transition in TRANSITIONS:
        assert transition.by <= {REP, MANAGER, SYSTEM} and transition.by


def test_a_move_writes_one_stage_event_in_the_same_transaction(rep):
    deal = DealFactory(rep=rep)
    moved = services.deal_move(
        deal_id=deal.pk,
        to_stage=Stage.DEPOSIT,
        actor=rep,
        reason="Deposit by check",
        as_role=SYSTEM,
    )
    assert moved.stage == Stage.DEPOSIT
    assert moved.version == deal.version + 1
    event = StageEvent.objects.filter(deal=deal).first()
    assert (event.from_stage, event.to_stage, event.actor, event.reason) == (
        Stage.PROMISED,
        Stage.DEPOSIT,
        rep,
        "Deposit by check",
    )


def test_an_illegal_move_changes_nothing(rep):
    deal = DealFactory(rep=rep, payment_option=PaymentOption.INVOICE, deposit_required=False)
    events_before = StageEvent.objects.count()
    with pytest.raises(IllegalMove, match="Audit confirmed"):
        services.deal_move(deal_id=deal.pk, to_stage=Stage.DELIVERED, actor=rep)
    deal.refresh_from_db()
    assert deal.stage == Stage.PROMISED and deal.version == 1
    assert StageEvent.objects.count() == events_before


def test_losing_a_deal_needs_a_reason_from_the_list(rep):
    deal = DealFactory(rep=rep)
    with pytest.raises(IllegalMove, match="why"):
        services.deal_move(deal_id=deal.pk, to_stage=Stage.LOST, actor=rep)
    lost = services.deal_move(
        deal_id=deal.pk, to_stage=Stage.LOST, actor=rep, lost_reason=LostReason.COMPETITOR
    )
    assert lost.stage == Stage.LOST and lost.lost_reason == LostReason.COMPETITOR


def test_a_move_on_an_old_version_is_refused_as_stale(rep):
    deal = DealFactory(rep=rep)
    services.deal_move(
        deal_id=deal.pk, to_stage=Stage.DEPOSIT, actor=rep, expected_version=1, as_role=SYSTEM
    )
    with pytest.raises(services.StaleDeal, match="now in Deposit"):
        services.deal_move(
            deal_id=deal.pk,
            to_stage=Stage.LOST,
            actor=rep,
            lost_reason=LostReason.OTHER,
            expected_version=1,
        )
    assert Deal.objects.get(pk=deal.pk).stage == Stage.DEPOSIT


def test_stage_events_cannot_be_edited_or_deleted(deal):
    event = deal.stage_events.get()
    event.reason = "rewritten"
    with pytest.raises(TypeError):
        event.save()
    with pytest.raises(TypeError):
        event.delete()
    with pytest.raises(TypeError):
        StageEvent.objects.filter(pk=event.pk).update(reason="x")
    with pytest.raises(TypeError):
        StageEvent.objects.filter(pk=event.pk).delete()
