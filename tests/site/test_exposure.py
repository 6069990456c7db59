"""Exposure: public serializers never write server-owned fields, and no secret ever leaves the server.

1. Every writable operation of the customer API (/api/v1/) and the POS API (/api/pos/v1/), found in
   the OpenAPI schema so a new endpoint is walked too, gets a valid request plus server-owned fields
   (balance, merchant, tier, is_staff, ...). A body is refused with a 400 naming exactly the smuggled
   fields and nothing is written; where there is no body to refuse, the request may succeed but no
   row takes a smuggled value.
2. A world where every kind of secret holds a recognisable value (device key, cashier PIN, customer
   password, pass signing key, every POS and CRM connector's secrets, Stripe billing secrets, the
   signing keys) is read through every GET of the customer API, the POS API's reads and writes, the
   admin as a superuser (every changelist; change and history pages of every row that holds a secret
   and of the newest rows of the rest), the exports, and failing requests (wrong PIN, wrong password,
   wrong device key, badly signed webhooks of every connector). No response body, header, cookie or
   log line (captured at DEBUG) contains a secret, nor its stored hash or sealed form.
"""
import base64
import datetime as dt
import functools
import json
import logging
import re
import uuid
from dataclasses import dataclass
from urllib.parse import urlencode

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import transaction
from django.urls import reverse
from rest_framework.test import APIClient

from core import secret_box
from crm_sync import registry as crm_registry
from crm_sync.connections import create_connection as create_crm_connection
from engagement.push_devices import register_push_device
from merchants.models import StaffMember
from pos_integration import registry as pos_registry
from pos_integration.connections import create_connection as create_pos_connection
from pos_integration.models import PosDevice
from pos_integration.services import register_device
from tests.admin.tenant_world import build_tenant
from tests.api.conftest import client_for
from tests.factories import build_world, make_program
from tests.pos.helpers import as_cashier, make_cashier
from tests.wallet.helpers import buy
from wallet.models import Card
from wallet.models.passes import PassSigningKey
from wallet.passes import keys as pass_keys
from wallet.passes.apple.pkpass import authentication_token
from wallet.passes.tokens import issue_token
from wallet.services import (
    ExternalCardDraft,
    PurchaseRequest,
    accounts,
    add_external_card,
    create_customer,
    enroll,
    redeem_reward,
)
from wallet.services.unmatched import record_unmatched_purchase

pytestmark = pytest.mark.django_db

API_PREFIXES = ("/api/v1/", "/api/pos/v1/")
WRITE_METHODS = ("post", "put", "patch", "delete")
PROJECT_APPS = {"core", "merchants", "wallet", "pos_integration", "crm_sync", "engagement"}
# Bookkeeping a request may touch even when it is refused: when a device or user was last seen.
BOOKKEEPING_COLUMNS = {"last_used_at", "last_login"}


@pytest.fixture(autouse=True)
def clear_cache():
    """Throttle counters live in the cache: every operation starts with none."""
    cache.clear()
    yield
    cache.clear()


@functools.cache
def api_schema() -> dict:
    response = APIClient().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return json.loads(response.content)


def writable_operations(schema: dict) -> list[tuple[str, str, dict]]:
    return [(path, method, operation) for path, methods in schema["paths"].items() if path.startswith(API_PREFIXES)
            for method, operation in methods.items() if method in WRITE_METHODS]


def request_properties(schema: dict, operation: dict) -> set[str]:
    body = operation.get("requestBody")
    if not body:
        return set()
    reference = body["content"]["application/json"]["schema"]["$ref"]
    return set(schema["components"]["schemas"][reference.rsplit("/", 1)[-1]].get("properties", {}))


# --- 1. server-owned fields ------------------------------------------------------------------------------

PASSWORD = "x"  # tests.factories.make_customer's
NEW_PASSWORD = "Another-Strong-Pass-42"
SMUGGLED_POINTS = 987_654
SMUGGLED_ID = 424_242
SMUGGLED_STATUS = "smuggled"
SMUGGLED_MOMENT = "2001-02-03T04:05:06Z"


@dataclass
class Counter:
    """A customer with points, a coupon, a third-party card and a push device at a merchant with a
    till, a cashier, a second program, a sale to refund and a receipt to claim; and another merchant
    and customer whose ids are the values smuggled in."""

    world: object
    other: object
    customer_client: APIClient
    till_key: str
    cashier: StaffMember
    coupon: object
    external_card: object
    push_token: str
    refresh: str
    second_program: object
    sale_id: str
    receipt_code: str

    def smuggled(self) -> dict:
        """Server-owned fields, each with a value the caller would love to set."""
        other = self.other
        return {
            "balance": SMUGGLED_POINTS, "lifetime_points": SMUGGLED_POINTS, "points_earned": SMUGGLED_POINTS,
            "merchant": other.merchant.pk, "merchant_id": other.merchant.pk,
            "tier": self.world.gold.pk, "tier_id": self.world.gold.pk,  # a tier the card has not reached
            "is_staff": True, "is_superuser": True, "status": SMUGGLED_STATUS, "id": SMUGGLED_ID,
            "created_at": SMUGGLED_MOMENT, "customer": other.customer.pk, "wallet": other.customer.wallet.pk,
        }

    def stored_as(self) -> dict:
        """Column -> the smuggled value as it would be stored, had it been written."""
        values = self.smuggled()
        return {
            "balance": values["balance"], "lifetime_points": values["lifetime_points"],
            "points_earned": values["points_earned"], "merchant_id": values["merchant"], "tier_id": values["tier"],
            "is_staff": True, "is_superuser": True, "status": SMUGGLED_STATUS, "id": SMUGGLED_ID,
            "created_at": dt.datetime.fromisoformat(SMUGGLED_MOMENT), "customer_id": values["customer"],
            "wallet_id": values["wallet"],
        }


@pytest.fixture
def counter(db):
    world, other = build_world(), build_world()
    buy(world.card, 25000, store_id=world.store.pk)  # 250 points: Silver, Gold (500) not reached
    sale_id = "till-sale-1"
    buy(world.card, 1000, sale_id, store_id=world.store.pk)
    record_unmatched_purchase(world.merchant, PurchaseRequest(external_id="till-sale-2", amount=990, currency="EUR",
                                                              store_id=world.store.pk),
                              receipt_code="RC7788", idempotency_key="unmatched-1", source="webhook")
    coupon = redeem_reward(world.card, world.coffee, idempotency_key="coupon-1")
    external_card = add_external_card(world.customer.wallet, ExternalCardDraft(
        name="City Gym", barcode_value="4006381333931", barcode_format="ean13"))
    push_token = "f" * 64
    register_push_device(world.customer, "apns", push_token)
    till_key = register_device(world.store, "Till").key
    return Counter(
        world=world, other=other, customer_client=client_for(world.customer.user), till_key=till_key,
        cashier=make_cashier(world.merchant), coupon=coupon, external_card=external_card, push_token=push_token,
        refresh=accounts.issue_token_pair(world.customer.user).refresh, second_program=make_program(world.merchant),
        sale_id=sale_id, receipt_code="RC7788",
    )


def _key() -> dict:
    return {"HTTP_IDEMPOTENCY_KEY": uuid.uuid4().hex}


# operationId -> (counter) -> (path parameters, valid body, extra headers, caller). A new writable
# operation fails test_every_writable_operation_has_a_valid_request until it gets a line here.
def _customer(path=None, body=None, headers=None):
    return path or {}, body, headers or {}, "customer"


def _anonymous(body):
    return {}, body, {}, "anonymous"


def _till(body, headers=None):
    return {}, body, headers or {}, "device"


VALID_REQUESTS = {
    "auth_register": lambda c: _anonymous({"email": "newcomer@example.com", "password": NEW_PASSWORD}),
    "auth_token": lambda c: _anonymous({"login": c.world.customer.user.email, "password": PASSWORD}),
    "auth_token_refresh": lambda c: _anonymous({"refresh": c.refresh}),
    "auth_logout": lambda c: _customer(body={"refresh": c.refresh}),
    "auth_password_change": lambda c: _customer(body={"current_password": PASSWORD, "new_password": NEW_PASSWORD}),
    "me_update": lambda c: _customer(body={"first_name": "Ann"}),
    "me_erase": lambda c: _customer(body={"password": PASSWORD}),
    "cards_enroll": lambda c: _customer(body={"program_id": c.second_program.pk}),
    "cards_leave": lambda c: _customer({"id": c.world.card.pk}),
    "cards_redeem": lambda c: _customer({"id": c.world.card.pk}, {"reward_id": c.world.coffee.pk}, _key()),
    "cards_claim_purchase": lambda c: _customer(
        {"id": c.world.card.pk}, {"receipt_code": c.receipt_code, "amount": 990}, _key()),
    "coupons_cancel": lambda c: _customer({"id": c.coupon.redemption_id}, None, _key()),
    "v1_external_cards_create": lambda c: _customer(body={
        "name": "Library", "barcode_value": "4006381333931", "barcode_format": "ean13"}),
    "v1_external_cards_partial_update": lambda c: _customer({"id": c.external_card.pk}, {"name": "Gym"}),
    "v1_external_cards_destroy": lambda c: _customer({"id": c.external_card.pk}),
    "v1_preferences_partial_update": lambda c: _customer(body={"communication_paused": True}),
    "v1_preferences_merchants_partial_update": lambda c: _customer(
        {"merchant_id": c.world.merchant.pk}, {"push": True}),
    "push_devices_register": lambda c: _customer(body={"platform": "fcm", "token": "fcm-token-" + "a" * 64}),
    "push_devices_unregister": lambda c: _customer({"token": c.push_token}),
    "pos_v1_scan_create": lambda c: _till({"code": c.world.card.number}),
    "pos_v1_purchases_create": lambda c: _till(
        {"code": c.world.card.number, "external_id": "till-sale-3", "amount": 1200, "currency": "EUR"}, _key()),
    "pos_v1_redemptions_create": lambda c: _till(
        {"code": issue_token(c.world.card), "reward_id": c.world.coffee.pk}, {**_key(), **as_cashier(c.cashier)}),
    "pos_v1_refunds_create": lambda c: _till(
        {"external_id": c.sale_id, "amount": 500}, {**_key(), **as_cashier(c.cashier)}),
    "pos_v1_adjustments_create": lambda c: _till(
        {"code": c.world.card.number, "delta": 5, "reason": "Goodwill"}, {**_key(), **as_cashier(c.cashier)}),
    "pos_v1_cashiers_check_create": lambda c: _till(None, as_cashier(c.cashier)),
    "pos_v1_offline_batches_create": lambda c: _till({"purchases": [{
        "idempotency_key": uuid.uuid4().hex, "code": issue_token(c.world.card), "external_id": "till-sale-4",
        "amount": 800, "currency": "EUR", "occurred_at": dt.datetime.now(dt.UTC).isoformat()}]}),
}


def _client(counter: Counter, caller: str) -> APIClient:
    if caller == "customer":
        return counter.customer_client
    client = APIClient()
    if caller == "device":
        client.credentials(HTTP_AUTHORIZATION=f"Device {counter.till_key}")
    return client


def _send(counter: Counter, path: str, method: str, spec, extra: dict | None = None):
    parameters, body, headers, caller = spec
    url = path
    for name, value in parameters.items():
        url = url.replace("{" + name + "}", str(value))
    assert "{" not in url, f"{method.upper()} {path}: a path parameter has no value"
    if extra:
        body = {**(body or {}), **extra}
    data = json.dumps(body) if body is not None else ""
    return _client(counter, caller).generic(method.upper(), url, data, content_type="application/json", **headers)


def _tracked_models():
    return [model for model in apps.get_models() if model._meta.app_label in PROJECT_APPS]


def _snapshot() -> dict:
    """Every row of every project table, bookkeeping columns left out: (model, pk) -> values."""
    rows = {}
    for model in _tracked_models():
        columns = [f.attname for f in model._meta.concrete_fields if f.attname not in BOOKKEEPING_COLUMNS]
        for values in model._default_manager.values(*columns):
            rows[(model._meta.label, values[model._meta.pk.attname])] = values
    return rows


def _written(before: dict, after: dict) -> dict:
    return {key: values for key, values in after.items() if before.get(key) != values}


def _smuggled_values_stored(counter: Counter, written: dict) -> list[str]:
    stored_as = counter.stored_as()
    return [f"{label} {pk}: {column}={values[column]!r}" for (label, pk), values in written.items()
            for column, smuggled in stored_as.items() if column in values and values[column] == smuggled]


def _in_savepoint(check, *args):
    """Run one operation from the same starting world: everything it wrote is rolled back after."""
    with transaction.atomic():
        check(*args)
        transaction.set_rollback(True)
    cache.clear()


def test_every_writable_operation_has_a_valid_request():
    operations = {operation["operationId"] for _p, _m, operation in writable_operations(api_schema())}
    assert operations - set(VALID_REQUESTS) == set(), "add a valid request to VALID_REQUESTS for these"
    assert set(VALID_REQUESTS) - operations == set(), "these operations are gone from the schema"


def _refused_by_name_then_accepted(counter: Counter, path: str, method: str, operation: dict, extra: dict):
    label = f"{method.upper()} {path}"
    spec = VALID_REQUESTS[operation["operationId"]](counter)
    before = _snapshot()
    refused = _send(counter, path, method, spec, extra)
    assert refused.status_code == 400, (label, refused.status_code, refused.content[:300])
    assert set(refused.json()["error"]["fields"]) == set(extra), (label, refused.json())
    assert _written(before, _snapshot()) == {}, label
    valid = _send(counter, path, method, spec)
    assert 200 <= valid.status_code < 300, (label, valid.status_code, valid.content[:300])


def _refused_or_ignored(counter: Counter, path: str, method: str, operation: dict):
    label = f"{method.upper()} {path}"
    before = _snapshot()
    response = _send(counter, path, method, VALID_REQUESTS[operation["operationId"]](counter), counter.smuggled())
    written = _written(before, _snapshot())
    if response.status_code == 400:
        assert set(response.json()["error"]["fields"]) == set(counter.smuggled()), (label, response.json())
        assert written == {}, label
    else:
        assert 200 <= response.status_code < 300, (label, response.status_code, response.content[:300])
        assert _smuggled_values_stored(counter, written) == [], label


def test_server_owned_fields_in_a_body_are_refused_by_name_and_nothing_is_written(counter):
    """Every body the two APIs parse refuses server-owned fields with a 400 naming each, and the
    same request without them succeeds: the 400 was about those fields and nothing else."""
    schema = api_schema()
    walked = []
    for path, method, operation in writable_operations(schema):
        accepted = request_properties(schema, operation)
        if accepted:
            extra = {name: value for name, value in counter.smuggled().items() if name not in accepted}
            _in_savepoint(_refused_by_name_then_accepted, counter, path, method, operation, extra)
            walked.append(f"{method.upper()} {path}")
    assert len(walked) >= 20, walked


def test_server_owned_fields_sent_where_no_body_is_read_are_never_stored(counter):
    """Operations without a request body (leave, cancel, delete, the PIN check) either refuse a body
    or ignore it; when they succeed, no row they wrote holds a value smuggled in the body."""
    schema = api_schema()
    walked = []
    for path, method, operation in writable_operations(schema):
        if not request_properties(schema, operation):
            _in_savepoint(_refused_or_ignored, counter, path, method, operation)
            walked.append(f"{method.upper()} {path}")
    assert len(walked) >= 4, walked


def test_a_nested_server_owned_field_in_an_offline_purchase_is_refused(counter):
    spec = VALID_REQUESTS["pos_v1_offline_batches_create"](counter)
    body = spec[1]
    body["purchases"][0].update({"points_earned": SMUGGLED_POINTS, "balance": SMUGGLED_POINTS})
    before = _snapshot()
    response = _send(counter, "/api/pos/v1/offline-batches/", "post", spec)
    assert response.status_code == 400, response.content
    assert "points_earned" in json.dumps(response.json()["error"]["fields"])
    assert _written(before, _snapshot()) == {}
    assert Card.objects.get(pk=counter.world.card.pk).balance != SMUGGLED_POINTS


# --- 2. no secret in any response or log line ------------------------------------------------------------

CANARY = "Canary7q"  # every planted secret contains it, so a leak is easy to trace by eye
CUSTOMER_PASSWORD = f"{CANARY}-pass-phrase-3b1d"
WRONG_PASSWORD = f"{CANARY}-wrong-pass-9e4c"
CASHIER_PIN, WRONG_PIN = "73918264", "51847362"
# DEBUG on the root logger (what LOG_LEVEL=DEBUG sets), Django's request and security loggers, ours and
# our vendors' SDKs. Not the rest of "django": settings.LOGGING keeps it at INFO even with LOG_LEVEL=DEBUG,
# and django.template's DEBUG lines dump whole template contexts (the admin's password-hash widget too).
LOGGERS = ("core", "merchants", "wallet", "pos_integration", "crm_sync", "engagement", "backoffice", "config",
           "django.request", "django.security", "stripe", "httpx", "celery")


def _canary(name: str) -> str:
    return f"{CANARY}-{name}-{uuid.uuid4().hex}"


def _whsec(name: str) -> str:
    return "whsec_" + base64.b64encode(f"{CANARY}{name}{uuid.uuid4().hex[:12]}".encode()).decode()


def _rsa_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


# Valid settings for every installed connector, each secret a planted value. A connector installed
# later fails test_every_connector_is_planted_with_its_secrets until it has a line here.
POS_SETTINGS = {
    "generic": lambda: {"signing_secret": _whsec("generic")},
    "square": lambda: {"signature_key": _canary("square-signature"), "access_token": _canary("square-token")},
    "shopify": lambda: {"shop_domain": "canary-shop.myshopify.com", "client_secret": _canary("shopify"),
                        "previous_client_secret": _canary("shopify-previous")},
    "stripe": lambda: {"webhook_secret": "whsec_" + _canary("stripe-pos"), "api_key": "sk_test_" + _canary("stripe")},
    "clover": lambda: {"clover_merchant_id": "CANARY7Q12345", "api_token": _canary("clover-token"),
                       "auth_code": _canary("clover-auth")},
}
CRM_SETTINGS = {
    "hubspot": lambda: {"access_token": _canary("hubspot-token"), "client_secret": _canary("hubspot-client")},
    "klaviyo": lambda: {"api_key": "pk_" + _canary("klaviyo")},
    "salesforce": lambda: {"auth_flow": "jwt_bearer", "consumer_key": "canary-consumer",
                           "username": "canary@example.com", "private_key": _rsa_pem(),
                           "client_secret": _canary("salesforce-client")},
    "webhook": lambda: {"url": "https://crm.example.com/hook", "signing_secret": _whsec("crm-webhook"),
                        "previous_signing_secret": _whsec("crm-webhook-previous")},
}


@dataclass
class SecretWorld:
    tenant: object
    customer: object
    card: object
    coupon_id: int
    device_key: str
    cashier: StaffMember
    pos_connections: list
    crm_connections: list
    secrets: dict  # what it is -> the value that must never be shown


def _forms(label: str, value, *, hashed: bool = False) -> dict:
    """A secret and the other spellings it could leak in: the key inside a whsec_ secret, a hash's
    digest without its algorithm and salt, each line of a PEM body."""
    value = str(value)
    forms = {label: value}
    if value.startswith("whsec_"):
        forms[f"{label} (base64 key)"] = value[len("whsec_"):]
    if hashed:
        forms[f"{label} (digest)"] = value.rsplit("$", 1)[-1]
    if "-----BEGIN" in value:
        lines = [line for line in value.splitlines() if line and not line.startswith("-----")]
        forms.update({f"{label} (PEM line {n})": line for n, line in enumerate(lines) if len(line) >= 40})
    return forms


def _raw_key_forms(label: str, raw: bytes) -> dict:
    return {f"{label} (hex)": raw.hex(), f"{label} (base64)": base64.b64encode(raw).decode().rstrip("="),
            f"{label} (base64url)": pass_keys.b64url(raw)}


@pytest.fixture
def secret_world(db, settings):
    settings.STRIPE_BILLING = {**settings.STRIPE_BILLING, "SECRET_KEY": "sk_test_" + _canary("billing"),
                               "WEBHOOK_SECRET": _whsec("billing"), "API_BASE": "http://127.0.0.1:9"}
    tenant = build_tenant("CANARY")  # a row in every table the admin shows
    user = get_user_model().objects.create_user(username="canary-customer", email="canary@example.com",
                                                password=CUSTOMER_PASSWORD)
    customer = create_customer(user)
    card = enroll(customer, tenant.program).card
    buy(card, 5000, store_id=tenant.store.pk)
    coupon = redeem_reward(card, tenant.reward, idempotency_key="canary-coupon")
    add_external_card(customer.wallet, ExternalCardDraft(name="Canary Gym", barcode_value="4006381333931",
                                                         barcode_format="ean13"))
    issued = register_device(tenant.store, "Canary till")
    cashier = make_cashier(tenant.merchant, first_name="Pia", pin=CASHIER_PIN)
    pass_key = pass_keys.active_key(tenant.merchant)
    pos_connections = [create_pos_connection(tenant.merchant, key, f"{key} canary", POS_SETTINGS[key](),
                                             store=tenant.store) for key in sorted(pos_registry.connectors())]
    crm_connections = [create_crm_connection(tenant.merchant, key, f"{key} canary", CRM_SETTINGS[key]())
                       for key in sorted(crm_registry.connectors())]

    secrets = {}
    secrets.update(_forms("customer password", CUSTOMER_PASSWORD))
    secrets.update(_forms("wrong password tried", WRONG_PASSWORD))
    secrets.update(_forms("customer password hash", get_user_model().objects.get(pk=user.pk).password, hashed=True))
    secrets.update(_forms("device key", issued.key))
    secrets.update(_forms("device key hash", PosDevice.objects.get(pk=issued.device.pk).key_hash, hashed=True))
    secrets.update(_forms("cashier PIN", CASHIER_PIN))
    secrets.update(_forms("wrong PIN tried", WRONG_PIN))
    secrets.update(_forms("cashier PIN hash", StaffMember.objects.get(pk=cashier.pk).pin_hash, hashed=True))
    private = pass_keys.private_key_of(pass_key).private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    secrets.update(_raw_key_forms("pass signing private key", private))
    secrets.update(_forms("sealed pass signing key", PassSigningKey.objects.get(pk=pass_key.pk).private_key_encrypted))
    secrets.update(_forms("Apple pass authentication token", authentication_token(card.number)))
    for connection in [*pos_connections, *crm_connections, tenant.pos_connection, tenant.crm_connection]:
        kind = f"{connection._meta.model_name} {connection.connector}"
        for name, value in _unsealed(connection).items():
            secrets.update(_forms(f"{kind} {name}", value))
        secrets.update(_forms(f"{kind} sealed secrets", connection.secrets_encrypted))
    for name in ("SECRET_KEY", "WEBHOOK_SECRET"):
        secrets.update(_forms(f"Stripe billing {name}", settings.STRIPE_BILLING[name]))
    secrets.update(_forms("Django SECRET_KEY", settings.SECRET_KEY))
    secrets.update(_forms("TESSERA_SIGNING_KEY", settings.SIGNING_KEY))
    short = {label: value for label, value in secrets.items() if len(value) < 8}
    assert short == {}, "too short to search for without false alarms"
    return SecretWorld(tenant=tenant, customer=customer, card=card, coupon_id=coupon.redemption_id,
                       device_key=issued.key, cashier=cashier, pos_connections=pos_connections,
                       crm_connections=crm_connections, secrets=secrets)


def _unsealed(connection) -> dict:
    return secret_box.unseal(connection.secrets_encrypted)


class Exchanges:
    """Every request made, with what came back, for the scan at the end."""

    def __init__(self):
        self.seen: list[tuple[str, str]] = []

    def record(self, label: str, response, *, expect=None):
        body = b"".join(response.streaming_content) if getattr(response, "streaming", False) else response.content
        headers = "\n".join(f"{name}: {value}" for name, value in response.items())
        text = f"{response.status_code}\n{headers}\n{response.cookies.output()}\n" + body.decode("utf-8", "replace")
        self.seen.append((label, text))
        assert response.status_code < 500, (label, response.status_code, body[:300])
        if expect is not None:
            assert response.status_code in expect, (label, response.status_code, body[:300])
        return response


def _customer_gets(schema: dict, world: SecretWorld, exchanges: Exchanges) -> int:
    client = client_for(world.customer.user)
    external_card = world.customer.wallet.external_cards.get()
    values = {"/api/v1/cards/": world.card.pk, "/api/v1/coupons/": world.coupon_id,
              "/api/v1/external-cards/": external_card.pk, "/api/v1/merchants/": world.tenant.merchant.pk,
              "/api/v1/preferences/merchants/": world.tenant.merchant.pk}
    walked = 0
    for path, methods in schema["paths"].items():
        if not path.startswith("/api/v1/") or "get" not in methods:
            continue
        url = path
        for prefix, value in values.items():
            if path.startswith(prefix):
                url = re.sub(r"\{[a-z_]+\}", str(value), url)
        assert "{" not in url, f"no value for a parameter of {path}"
        query = {"latitude": "48.8566", "longitude": "2.3522"} if "nearby" in path else {}
        exchanges.record(f"GET {url}", client.get(url, query), expect={200})
        walked += 1
    return walked


def _counter_requests(world: SecretWorld, exchanges: Exchanges) -> None:
    till = APIClient()
    till.credentials(HTTP_AUTHORIZATION=f"Device {world.device_key}")
    exchanges.record("GET device", till.get("/api/pos/v1/device/"), expect={200})
    exchanges.record("GET pass keys", till.get("/api/pos/v1/pass-keys/"), expect={200})
    exchanges.record("scan", till.post("/api/pos/v1/scan/", {"code": world.card.number}, format="json"),
                     expect={200})
    exchanges.record("PIN check", till.post("/api/pos/v1/cashiers/check/", **as_cashier(world.cashier, CASHIER_PIN)),
                     expect={200})
    exchanges.record("wrong PIN check", till.post("/api/pos/v1/cashiers/check/",
                                                  **as_cashier(world.cashier, WRONG_PIN)), expect={401, 403})
    sale = {"code": world.card.number, "external_id": "canary-sale", "amount": 1500, "currency": "EUR"}
    exchanges.record("purchase", till.post("/api/pos/v1/purchases/", sale, format="json", **_key(),
                                           **as_cashier(world.cashier, CASHIER_PIN)), expect={201})
    exchanges.record("adjust with a wrong PIN", till.post(
        "/api/pos/v1/adjustments/", {"code": world.card.number, "delta": 5, "reason": "x"}, format="json",
        **_key(), **as_cashier(world.cashier, WRONG_PIN)), expect={401, 403})
    impostor = APIClient()
    impostor.credentials(HTTP_AUTHORIZATION=f"Device {world.device_key}x")
    exchanges.record("wrong device key", impostor.get("/api/pos/v1/device/"), expect={401})


def _account_requests(world: SecretWorld, exchanges: Exchanges) -> None:
    anonymous = APIClient()
    email = world.customer.user.email
    exchanges.record("log in", anonymous.post("/api/v1/auth/token/", {"login": email, "password": CUSTOMER_PASSWORD},
                                              format="json"), expect={200})
    exchanges.record("wrong password", anonymous.post(
        "/api/v1/auth/token/", {"login": email, "password": WRONG_PASSWORD}, format="json"), expect={401})
    exchanges.record("wrong current password", client_for(world.customer.user).post(
        "/api/v1/auth/password/", {"current_password": WRONG_PASSWORD, "new_password": CUSTOMER_PASSWORD + "2"},
        format="json"), expect={400})
    exchanges.record("register with a taken email", anonymous.post(
        "/api/v1/auth/register/", {"email": email, "password": CUSTOMER_PASSWORD}, format="json"), expect={400})


def _webhook_requests(world: SecretWorld, exchanges: Exchanges) -> None:
    anonymous = APIClient()
    forged = {"HTTP_WEBHOOK_ID": "msg_canary", "HTTP_WEBHOOK_TIMESTAMP": "1700000000",
              "HTTP_WEBHOOK_SIGNATURE": "v1,AAAA", "HTTP_STRIPE_SIGNATURE": "t=1700000000,v1=00",
              "HTTP_X_SQUARE_HMACSHA256_SIGNATURE": "AAAA", "HTTP_X_SHOPIFY_HMAC_SHA256": "AAAA",
              "HTTP_X_HUBSPOT_SIGNATURE_V3": "AAAA", "HTTP_X_HUBSPOT_REQUEST_TIMESTAMP": "1700000000"}
    body = json.dumps({"id": "evt_canary", "type": "payment.updated"})
    for connection in world.pos_connections:
        headers = dict(forged)
        if connection.connector == "clover":  # Clover sends its auth code itself: stored, it must be masked
            headers["HTTP_X_CLOVER_AUTH"] = _unsealed(connection)["auth_code"]
        exchanges.record(f"POS webhook {connection.connector}", anonymous.generic(
            "POST", f"/hooks/pos/{connection.pk}/", body, content_type="application/json", **headers))
    for connection in world.crm_connections:
        exchanges.record(f"CRM webhook {connection.connector}", anonymous.generic(
            "POST", f"/hooks/crm/{connection.pk}/", body, content_type="application/json", **forged))
    exchanges.record("Stripe billing webhook", anonymous.generic(
        "POST", "/hooks/stripe/", body, content_type="application/json", **forged), expect={400})
    passkit = f"/passkit/v1/passes/pass.dev.tessera.loyalty/{world.card.number}"
    exchanges.record("PassKit wrong token", anonymous.get(passkit, HTTP_AUTHORIZATION="ApplePass wrong"),
                     expect={401, 404})


ROWS_PER_ADMIN = 3
# Every row of these is read (change page and history); of other models, the newest few.
SECRET_BEARING = {"core.User", "merchants.StaffMember", "pos_integration.PosDevice", "pos_integration.PosConnection",
                  "pos_integration.WebhookDelivery", "crm_sync.CrmConnection", "merchants.MerchantSubscription"}


def _admin_requests(world: SecretWorld, exchanges: Exchanges) -> int:
    superuser = get_user_model().objects.create_superuser("canary-root", "root@example.com", "root-pass-123")
    client = APIClient()
    client.force_login(superuser)
    pages = 0
    for model in admin.site._registry:
        label, name = model._meta.label, f"admin:{model._meta.app_label}_{model._meta.model_name}"
        exchanges.record(f"{label} list", client.get(reverse(f"{name}_changelist")), expect={200})
        rows = model._default_manager.order_by("-pk")
        for n, row in enumerate(rows if label in SECRET_BEARING else rows[:ROWS_PER_ADMIN]):
            exchanges.record(f"{label} {row.pk}", client.get(reverse(f"{name}_change", args=[row.pk])), expect={200})
            if n == 0 or label in SECRET_BEARING:
                exchanges.record(f"{label} {row.pk} history", client.get(reverse(f"{name}_history", args=[row.pk])),
                                 expect={200})
                pages += 1
            pages += 1
        pages += 1
    for connection in [*world.pos_connections, *world.crm_connections]:
        name = f"admin:{connection._meta.app_label}_{connection._meta.model_name}_change"
        exchanges.record(f"{connection} change", client.get(reverse(name, args=[connection.pk])), expect={200})
    entries = list(world.card.entries.values_list("pk", flat=True))
    exchanges.record("ledger CSV export", client.post(reverse("admin:wallet_ledgerentry_changelist"), {
        "action": "export_csv", "_selected_action": entries, "index": 0}), expect={200})
    merchant = {"merchant": world.tenant.merchant.pk}
    for name in ("backoffice:reconciliation", "backoffice:reconciliation-csv", "backoffice:liability",
                 "backoffice:billing"):
        exchanges.record(name, client.get(f"{reverse(name)}?{urlencode(merchant)}"), expect={200})
    return pages


def _leaks(secrets: dict, seen: list[tuple[str, str]]) -> list[str]:
    return [f"{what} in {where}" for where, text in seen for what, value in secrets.items() if value in text]


def test_every_connector_is_planted_with_its_secrets():
    assert set(pos_registry.connectors()) == set(POS_SETTINGS)
    assert set(crm_registry.connectors()) == set(CRM_SETTINGS)


def test_no_response_or_log_line_shows_a_secret_or_its_hash(secret_world, caplog):
    caplog.set_level(logging.DEBUG)
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    exchanges = Exchanges()
    schema = api_schema()

    assert _customer_gets(schema, secret_world, exchanges) >= 15
    _counter_requests(secret_world, exchanges)
    _account_requests(secret_world, exchanges)
    _webhook_requests(secret_world, exchanges)
    assert _admin_requests(secret_world, exchanges) >= 60

    # The walk reached the secrets: each connection's page shows the masked hint of its secrets.
    for connection in [*secret_world.pos_connections, *secret_world.crm_connections]:
        page = next(text for where, text in exchanges.seen if where == f"{connection} change")
        hints = [secret_box.mask(value) for value in _unsealed(connection).values() if str(value) == str(value).strip()]
        assert hints and all(hint in page for hint in hints), (str(connection), "no masked hint of its secrets")
    assert any("rejected" in record.getMessage() for record in caplog.records), "no webhook was refused"

    logs = [(f"log {record.name} {record.levelname}", record.getMessage()) for record in caplog.records]
    logs.append(("captured log text (with tracebacks)", caplog.text))
    assert _leaks(secret_world.secrets, exchanges.seen) == []
    assert _leaks(secret_world.secrets, logs) == []
