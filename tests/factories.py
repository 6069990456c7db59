"""Builders for test data, made through the real services wherever money is involved."""
import itertools
import uuid
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth import get_user_model

from merchants.models import Merchant, Program, Reward, Store, Tier
from wallet.models import Card, Customer
from wallet.services import create_customer, enroll

_sequence = itertools.count(1)


def make_merchant(*, currency="EUR", time_zone="Europe/Paris", name=None) -> Merchant:
    n = next(_sequence)
    return Merchant.objects.create(
        name=name or f"Merchant {n}", slug=f"merchant-{n}-{uuid.uuid4().hex[:8]}", currency=currency,
        time_zone=time_zone,
    )


def make_store(merchant: Merchant) -> Store:
    return Store.objects.create(
        merchant=merchant, name=f"Store {next(_sequence)}", time_zone=merchant.time_zone,
        latitude=Decimal("48.8566"), longitude=Decimal("2.3522"),
    )


def make_program(merchant: Merchant, **overrides) -> Program:
    fields = {"name": f"Program {next(_sequence)}", "points_per_currency_unit": Decimal("1"), "welcome_bonus": 0}
    fields.update(overrides)
    return Program.objects.create(merchant=merchant, **fields)


def make_customer(time_zone="UTC") -> Customer:
    n = f"{next(_sequence)}-{uuid.uuid4().hex[:8]}"
    user = get_user_model().objects.create_user(username=f"customer{n}", email=f"c{n}@example.com", password="x")
    return create_customer(user, time_zone=time_zone)


def make_card(program: Program, customer: Customer | None = None) -> Card:
    return enroll(customer or make_customer(), program).card


@dataclass
class World:
    merchant: Merchant
    store: Store
    program: Program
    silver: Tier
    gold: Tier
    coffee: Reward
    customer: Customer
    card: Card


def build_world(**program_overrides) -> World:
    merchant = make_merchant()
    store = make_store(merchant)
    program = make_program(merchant, **program_overrides)
    silver = Tier.objects.create(program=program, name="Silver", threshold=0, multiplier=Decimal("1"))
    gold = Tier.objects.create(program=program, name="Gold", threshold=500, multiplier=Decimal("2"))
    coffee = Reward.objects.create(program=program, name="Coffee", points_cost=100)
    customer = make_customer()
    card = make_card(program, customer)
    return World(merchant, store, program, silver, gold, coffee, customer, card)
