"""A customer can read or change only their own wallet.

Walks every /api/v1/ route that takes an object id, straight from the OpenAPI schema, so a new
route cannot slip past: each must be classified below. As a second customer, every method on
every route of the first customer's card, coupon and third-party card answers 404 in the error
shape (never 403, which would confirm the object exists), and nothing of the first customer changes.
"""
import io
import re

import pytest
import yaml
from django.apps import apps
from django.core.management import call_command

from engagement.models import PushDevice
from engagement.push_devices import register_push_device
from merchants.models import Reward
from tests.api.conftest import client_for
from tests.factories import build_world, make_customer
from tests.wallet.helpers import buy
from wallet.models import Card, ExternalCard, Redemption
from wallet.services import redeem_reward

pytestmark = pytest.mark.django_db

# Routes whose id is not a customer-owned object: the public directory, and my own preferences
# for a merchant (the id names the merchant, the preferences are always the caller's).
NOT_CUSTOMER_OWNED = {"/api/v1/merchants/{id}/", "/api/v1/preferences/merchants/{merchant_id}/"}

BODIES = {
    ("post", "/api/v1/cards/{pk}/redemptions/"): lambda objects: {"reward_id": objects["reward"].pk},
    ("patch", "/api/v1/external-cards/{pk}/"): lambda objects: {"name": "Hijacked"},
}


def schema_operations():
    out = io.StringIO()
    call_command("spectacular", stdout=out)
    paths = yaml.safe_load(out.getvalue())["paths"]
    return {
        (method, path)
        for path, item in paths.items()
        if path.startswith("/api/v1/") and "{" in path
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    }


def owner_of(path: str, objects) -> object:
    for prefix, key in (("/api/v1/cards/", "card"), ("/api/v1/coupons/", "coupon"),
                        ("/api/v1/external-cards/", "external_card"), ("/api/v1/push-devices/", "push_device")):
        if path.startswith(prefix):
            return objects[key]
    raise AssertionError(f"{path} takes an id but is not classified in this test")


def snapshot():
    """Everything a customer's request could change, as comparable values."""
    rows = {}
    for model in [*apps.get_app_config("wallet").get_models(), PushDevice]:
        rows[model.__name__] = sorted(map(repr, model.objects.values_list()))
    return rows


@pytest.fixture
def victim():
    world = build_world()
    buy(world.card, 30000)
    redemption = redeem_reward(world.card, world.coffee, idempotency_key="victim-redeem")
    external = ExternalCard.objects.create(
        wallet=world.customer.wallet, name="Gym", barcode_value="4006381333931", barcode_format="ean13"
    )
    return {
        "world": world,
        "card": world.card,
        "reward": Reward.objects.get(pk=world.coffee.pk),
        "coupon": Redemption.objects.get(pk=redemption.redemption_id),
        "external_card": external,
        "push_device": register_push_device(world.customer, "apns", "ab" * 32)[0],
    }


def test_every_id_route_is_classified():
    operations = schema_operations()
    assert operations, "the schema lists no routes with ids"
    for _method, path in operations:
        if path not in NOT_CUSTOMER_OWNED:
            owner_of(path, {"card": 1, "coupon": 1, "external_card": 1, "push_device": 1})


def test_another_customer_gets_404_everywhere_and_changes_nothing(victim):
    intruder = client_for(make_customer().user)
    before = snapshot()
    checked = 0
    for method, path in sorted(schema_operations()):
        if path in NOT_CUSTOMER_OWNED:
            continue
        target = owner_of(path, victim)
        url = re.sub(r"\{[^}]+\}", str(target.token if isinstance(target, PushDevice) else target.pk), path)
        body = BODIES.get((method, path), lambda objects: {})(victim)
        response = getattr(intruder, method)(url, body, format="json", HTTP_IDEMPOTENCY_KEY="intruder-key")
        assert response.status_code == 404, f"{method.upper()} {url} answered {response.status_code}"
        assert response.json()["error"]["code"] == "not_found"
        checked += 1
    assert checked >= 10
    assert snapshot() == before
    assert Card.objects.get(pk=victim["card"].pk).balance == 200


def test_the_owner_reaches_the_same_routes(victim):
    owner = client_for(victim["world"].customer.user)
    for path in ("/api/v1/cards/{}/", "/api/v1/cards/{}/history/", "/api/v1/cards/{}/rewards/"):
        assert owner.get(path.format(victim["card"].pk)).status_code == 200
    assert owner.get(f"/api/v1/coupons/{victim['coupon'].pk}/").status_code == 200
    assert owner.get(f"/api/v1/external-cards/{victim['external_card'].pk}/").status_code == 200
