"""Demo data for the pipeline: the people, customers, deals and touches.

Every deal is written through the services, so its stage events and terms are
the real ones; deals past Delivered get their money from billing's demo, which
is why this builder lives in dashboards, above every app. Other apps add their
own records after this (``manage.py seed_demo``).
"""

import base64
import random
from datetime import timedelta
from decimal import Decimal

from django.contrib.auth.models import Group
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from billing import demo as billing_demo
from pipeline import services
from pipeline.models import Customer, Deal, Role, TouchKind, User
from pipeline.stages import HAPPY_PATH, IllegalMove, LostReason, Stage
from pipeline.terms import PaymentOption

PASSWORD = "demo"  # noqa: S105 - demo logins, refused when DEBUG is off
# Managers must use two-factor: the demo manager's authenticator key, printed in
# the README and by `make run`; `manage.py demo_code` prints the current code.
DEMO_TOTP_SECRET = "CLEAREDDEMOMANAGERTWOFACTORCODES"  # noqa: S105 - demo only

PEOPLE = [
    # username, first, last, role, phone
    ("manager", "Morgan", "Reyes", Role.MANAGER, "+1 555 0100"),
    ("rep", "Riley", "Park", Role.REP, "+1 555 0101"),
    ("rep2", "Sam", "Okafor", Role.REP, "+1 555 0102"),
    ("auditor", "Avery", "Lindqvist", Role.AUDITOR, "+1 555 0103"),
]

CUSTOMERS = [
    (
        "Dana Whitfield",
        "Whitfield Dental",
        25,
        "Opening a second practice in spring.",
        "Dentrix, Windows 10",
    ),
    (
        "Luis Ortega",
        "Ortega Landscaping",
        20,
        "Wants online booking for the busy season.",
        "Paper diary, iPhone",
    ),
    (
        "Priya Nair",
        "Nair & Co Accountants",
        28,
        "Moving all clients to e-filing.",
        "Xero, Microsoft 365",
    ),
    ("Tom Becker", "Becker Bakery", None, "Second shop downtown next year.", "Square POS"),
    ("Grace Kim", "Kim Family Pharmacy", 15, "Replacing the old till system.", "PioneerRx"),
    ("Omar Haddad", "Haddad Motors", 30, "Expanding the service bay.", "Dealer management on-prem"),
    ("Elena Rossi", "Rossi Architects", 25, "Hiring three juniors.", "AutoCAD, Dropbox"),
    ("Ben Carter", "Carter Plumbing", None, "Fleet of vans to track.", "Google Sheets"),
    ("Hannah Yoon", "Yoon Yoga Studio", 10, "Launching memberships.", "Mindbody"),
    ("Victor Mensah", "Mensah Logistics", 20, "New warehouse in the fall.", "SAP Business One"),
    ("Zoe Laurent", "Laurent Florist", None, "Weddings are 60% of revenue.", "Shopify"),
    ("Ivan Petrov", "Petrov Print Shop", 25, "Buying a large-format printer.", "Adobe CC"),
]

PRODUCTS = [
    ("Website redesign", "4800.00"),
    ("Annual support plan", "1200.00"),
    ("POS hardware bundle", "3250.00"),
    ("Online booking setup", "950.00"),
    ("Network upgrade", "6400.00"),
    ("Security cameras (8)", "2875.50"),
    ("Cloud backup, 1 year", "600.00"),
    ("Staff training day", "1500.00"),
]

NEXT_STEPS = [
    "Call to confirm delivery slot",
    "Send the signed order form",
    "Check in on how the team likes it",
    "Chase the deposit",
    "Book the installation",
    "Ask about their accounting cut-off",
]

# Where each demo deal ends up; repeated to about 60 deals.
TARGETS = [
    Stage.PROMISED,
    Stage.PROMISED,
    Stage.DEPOSIT,
    Stage.AUDIT_CONFIRMED,
    Stage.DELIVERED,
    Stage.DELIVERED,
    Stage.PAYMENT_CLEARED,
    Stage.PAYMENT_CLEARED,
    Stage.LOST,
    Stage.DEPOSIT,
]


def seed_people() -> dict[str, User]:
    people = {}
    for username, first, last, role, phone in PEOPLE:
        user, _ = User.objects.get_or_create(username=username)
        user.first_name, user.last_name = first, last
        user.email = f"{username}@cleared.example"
        user.direct_phone = phone
        user.set_password(PASSWORD)
        user.save()
        user.groups.set([Group.objects.get(name=role)])
        people[username] = user
    for username in ("rep", "rep2"):
        User.objects.filter(username=username).update(manager=people["manager"])
    return people


def seed_two_factor(manager: User) -> None:
    """The demo manager's authenticator, with the fixed key (reset on each run)."""
    TOTPDevice.objects.update_or_create(
        user=manager,
        name="Demo authenticator",
        defaults={
            "key": base64.b32decode(DEMO_TOTP_SECRET).hex(),
            "confirmed": True,
            "last_t": -1,
            "throttling_failure_count": 0,
        },
    )


def seed(stdout=None) -> None:
    people = seed_people()
    seed_two_factor(people["manager"])
    if Deal.objects.filter(rep__username__in=["rep", "rep2"]).exists():
        return  # deals were seeded before: the demo is idempotent
    rng = random.Random(20261122)  # noqa: S311 - demo data, not security
    now = timezone.now()
    reps = [people["rep"], people["rep2"]]
    customers = []
    for index, (name, company, cutoff, plans, tech) in enumerate(CUSTOMERS):
        customers.append(
            Customer.objects.create(
                name=name,
                company=company,
                phone=f"+1 555 01{index:02d}",
                email=f"{name.split()[0].lower()}@{company.split()[0].lower()}.example",
                billing_contact=f"Accounts, {company}",
                accounting_cutoff_day=cutoff,
                plans_notes=plans,
                technology_notes=tech,
                owner=reps[index % 2],
            )
        )
    options = list(PaymentOption.values)
    for number in range(60):
        rep = reps[number % 2]
        customer = customers[(number * 5 + number // 12) % len(customers)]
        if customer.owner != rep and number % 3:
            customer = next(c for c in customers if c.owner == rep)
        title, price = PRODUCTS[number % len(PRODUCTS)]
        days_ago = rng.randint(0, 130)
        promised_at = now - timedelta(days=days_ago, hours=rng.randint(0, 8))
        deal = services.deal_promise(
            rep=rep,
            customer=customer,
            title=title,
            amount=Decimal(price) * rng.choice([1, 1, 2, 3]),
            payment_option=options[number % 3],
            expected_delivery_date=(promised_at + timedelta(days=rng.randint(7, 40))).date(),
            next_step=rng.choice(NEXT_STEPS),
            next_step_date=(now + timedelta(days=rng.randint(-5, 14))).date(),
            promised_at=promised_at,
        )
        services.touch_record(
            deal=deal,
            author=rep,
            kind=rng.choice([k for k in TouchKind.values if k != TouchKind.CUSTOMER_LINK]),
            discussed="Walked through the proposal and the delivery plan.",
            agreed_to="Go ahead with the order as quoted.",
            next_step=deal.next_step,
            next_step_date=deal.next_step_date,
            happened_at=promised_at + timedelta(hours=1),
        )
        _advance(deal, TARGETS[number % len(TARGETS)], promised_at, days_ago, rng)
    if stdout:
        stdout.write(
            f"  pipeline: {Deal.objects.count()} deals, {Customer.objects.count()} customers"
        )


def _advance(deal: Deal, target: Stage, promised_at, days_ago: int, rng: random.Random) -> None:
    """Walk a fresh deal along every stage it needs up to ``target``."""
    if target == Stage.LOST:
        services.deal_move(
            deal_id=deal.pk,
            to_stage=Stage.LOST,
            actor=deal.rep,
            lost_reason=rng.choice(LostReason.values),
            reason="Customer went quiet after the promise.",
            at=promised_at + timedelta(days=min(days_ago, 3)),
        )
        return
    step = 0
    for stage in HAPPY_PATH[1 : HAPPY_PATH.index(target) + 1]:
        if not deal.needs_stage(stage):
            continue
        step += 1
        at = promised_at + timedelta(days=min(days_ago, step * 4))
        try:
            if stage in (Stage.DEPOSIT, Stage.PAYMENT_CLEARED):
                # Money moves these stages: billing records it and moves the deal.
                deal = billing_demo.record_money_for(deal, stage, at)
            else:
                deal = services.deal_move(
                    deal_id=deal.pk, to_stage=stage, actor=None, reason="Demo history.", at=at
                )
        except IllegalMove:
            return
