"""The counter's per-process caches (offers, tiers, signing keys) never serve a rule that has changed.

Each test fills the cache through a real counter request, changes the rule the way a merchant does
(admin save, key service) or from "another process" (a new version row written directly), and
checks the very next request. The cache lives in this test process, as in a gunicorn worker.
"""
import datetime as dt
import uuid
from decimal import Decimal

import pytest
from django.db import connection, transaction

from engagement.models import Offer
from merchants import rules_cache
from merchants.models import RulesVersion
from tests.factories import build_world
from tests.pos.helpers import till
from wallet.models import Card, LedgerEntry
from wallet.passes import keys
from wallet.passes.tokens import issue_token

pytestmark = pytest.mark.django_db

LONG_AGO = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)


def purchase(client, world, amount=1000):
    sale = f"sale-{uuid.uuid4().hex}"
    response = client.post(
        "/api/pos/v1/purchases/",
        {"code": world.card.number, "external_id": sale, "amount": amount, "currency": world.merchant.currency},
        format="json", HTTP_IDEMPOTENCY_KEY=sale,
    )
    assert response.status_code == 201, response.content
    return response.json()["points_earned"]


def double_points(world) -> Offer:
    return Offer.objects.create(merchant=world.merchant, title="Double points", description="x2",
                                kind=Offer.Kind.MULTIPLIER, multiplier=2, valid_from=LONG_AGO)


def test_an_offer_switched_off_stops_applying_on_the_very_next_purchase():
    world = build_world()
    client = till(world)
    single = purchase(client, world)
    offer = double_points(world)
    assert purchase(client, world) == 2 * single  # the new offer applies at once, cache or not
    assert purchase(client, world) == 2 * single  # now served from the cache

    offer.is_active = False
    offer.save()  # as the admin saves it
    assert purchase(client, world) == single
    assert LedgerEntry.objects.filter(offer_id=offer.pk).count() == 2


def test_a_change_committed_by_another_process_is_seen_through_the_version_row():
    world = build_world()
    client = till(world)
    offer = double_points(world)
    doubled = purchase(client, world)
    # Another process switched the offer off: its rows and a new version, without this process's signals.
    Offer.objects.filter(pk=offer.pk).update(is_active=False)
    assert purchase(client, world) == doubled  # the version did not change: the cached rule still applies
    RulesVersion.objects.filter(merchant=world.merchant).update(version=12345)
    assert purchase(client, world) == doubled // 2


def test_a_tier_threshold_change_applies_to_the_next_earning():
    world = build_world()
    client = till(world)
    purchase(client, world)  # caches the tiers: Silver from 0, Gold from 500 (1000 cents earn less)
    assert Card.objects.get(pk=world.card.pk).tier_id == world.silver.pk
    world.gold.threshold = 1
    world.gold.save()
    purchase(client, world)
    assert Card.objects.get(pk=world.card.pk).tier_id == world.gold.pk


def test_a_revoked_signing_key_refuses_a_token_that_scanned_a_moment_ago():
    world = build_world()
    client = till(world)
    token = issue_token(world.card)
    assert client.post("/api/pos/v1/scan/", {"code": token}, format="json").status_code == 200
    keys.revoke_key(keys.active_key(world.merchant))
    refused = client.post("/api/pos/v1/scan/", {"code": token}, format="json")
    assert refused.status_code == 400, refused.content
    assert refused.json()["error"]["fields"]["reason"] == ["revoked_key"]


def test_rules_read_inside_a_rolled_back_change_are_not_served_afterwards():
    world = build_world()
    client = till(world)
    single = purchase(client, world)
    with pytest.raises(RuntimeError), transaction.atomic():
        double_points(world)  # bumps the version inside this transaction
        assert purchase(client, world) == 2 * single  # fills the cache with the uncommitted offer
        raise RuntimeError("the admin's save failed")
    assert not Offer.objects.exists()
    assert purchase(client, world) == single
    world.merchant.save()  # a later change: with old + 1 it would reuse the rolled-back number
    assert purchase(client, world) == single  # the rolled-back number is never current again


def test_every_change_gives_a_new_version_and_none_repeats():
    world = build_world()
    seen = set()
    for _ in range(20):
        rules_cache.bump(world.merchant.pk)
        seen.add(RulesVersion.objects.get(merchant=world.merchant).version)
    assert len(seen) == 20
    world.merchant.name = "Renamed"
    world.merchant.save()  # a merchant saved from a form never writes a version back
    assert RulesVersion.objects.get(merchant=world.merchant).version not in seen
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM merchants_rulesversion WHERE merchant_id = %s", [world.merchant.pk])
        assert cursor.fetchone()[0] == 1


def test_a_tier_multiplier_change_is_not_mistaken_for_the_cached_one():
    world = build_world()
    client = till(world)
    Card.objects.filter(pk=world.card.pk).update(lifetime_points=600, tier=world.gold)
    gold = purchase(client, world)
    world.gold.multiplier = Decimal("3")
    world.gold.save()
    assert purchase(client, world) == gold * 3 // 2
