"""Stripe billing events as Stripe documents them, signed the way Stripe signs them, and posted to
/hooks/stripe/. The signature is computed here with hmac, independently of the SDK that verifies it."""
import hashlib
import hmac
import itertools
import json
import time

from merchants.billing.services import start_checkout
from merchants.models import MerchantSubscription

SECRET_KEY = "sk_test_51TesseraBillingFakeKey"
WEBHOOK_SECRET = "whsec_7d1f0c3b9a4e8f2d6c5b1a0e9f8d7c6b"
API_VERSION = "2026-10-28.endive"
STARTER_PRICE = "price_1QbFakeStarterMonthly"

_sequence = itertools.count(1)


def stripe_signature(body: bytes, *, secret: str = WEBHOOK_SECRET, at: int | None = None) -> str:
    """`t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, Stripe's documented scheme."""
    at = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={digest}"


def event(event_type: str, stripe_object: dict, *, created: int | None = None, event_id: str | None = None) -> dict:
    return {
        "id": event_id or f"evt_1Q{next(_sequence):06d}BillingTest", "object": "event", "api_version": API_VERSION,
        "created": int(time.time()) if created is None else created, "type": event_type,
        "data": {"object": stripe_object}, "livemode": False, "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
    }


def subscription(*, customer: str, status: str, sub_id: str = "sub_1QbTesseraStarter", price: str = STARTER_PRICE,
                 period_end: int | None = None, merchant_id=None, cancel_at_period_end: bool = False,
                 period_on_items: bool = True) -> dict:
    """A Subscription object. Since API version 2025-03-31.basil the billing period is on each item;
    `period_on_items=False` gives the older shape with `current_period_end` on the subscription."""
    now = int(time.time())
    period_end = period_end or now + 30 * 86400
    item = {"id": f"si_{sub_id[4:]}", "object": "subscription_item", "quantity": 1, "subscription": sub_id,
            "price": {"id": price, "object": "price", "currency": "eur", "unit_amount": 2900,
                      "recurring": {"interval": "month", "interval_count": 1}}}
    body = {
        "id": sub_id, "object": "subscription", "customer": customer, "status": status, "created": now,
        "cancel_at_period_end": cancel_at_period_end, "livemode": False,
        "metadata": {"tessera_merchant_id": str(merchant_id)} if merchant_id else {},
        "items": {"object": "list", "data": [item], "has_more": False,
                  "url": f"/v1/subscription_items?subscription={sub_id}"},
    }
    if period_on_items:
        item.update(current_period_start=period_end - 30 * 86400, current_period_end=period_end)
    else:
        body.update(current_period_start=period_end - 30 * 86400, current_period_end=period_end)
    return body


def checkout_session(*, customer: str, merchant_id, sub_id: str = "sub_1QbTesseraStarter") -> dict:
    return {
        "id": f"cs_test_{next(_sequence):06d}", "object": "checkout.session", "mode": "subscription",
        "status": "complete", "payment_status": "paid", "customer": customer, "subscription": sub_id,
        "client_reference_id": str(merchant_id), "metadata": {"tessera_merchant_id": str(merchant_id)},
        "livemode": False,
    }


def invoice(*, customer: str, paid: bool, attempt: int = 1, next_attempt: int | None = None) -> dict:
    return {
        "id": f"in_1Q{next(_sequence):06d}", "object": "invoice", "customer": customer, "currency": "eur",
        "amount_due": 2900, "amount_paid": 2900 if paid else 0, "attempt_count": attempt,
        "next_payment_attempt": next_attempt, "status": "paid" if paid else "open",
    }


def post_event(client, stripe_event: dict, *, signature: str | None = None, **signing):
    body = json.dumps(stripe_event, indent=2).encode()  # Stripe sends pretty-printed JSON
    headers = {"HTTP_STRIPE_SIGNATURE": signature if signature is not None else stripe_signature(body, **signing)}
    if signature == "":
        headers = {}
    return client.generic("POST", "/hooks/stripe/", body, content_type="application/json", **headers)


def start_subscribing(merchant, plan) -> str:
    """What an owner's "Subscribe" click leaves behind (against the fake Stripe): the merchant's Stripe
    customer, linked. Returns its id."""
    start_checkout(merchant, plan, return_url="https://tessera.example/admin/reports/billing/")
    return MerchantSubscription.objects.get(merchant=merchant).stripe_customer_id


def subscription_state(merchant) -> tuple:
    row = MerchantSubscription.objects.filter(merchant=merchant).first()
    if row is None:
        return None
    return (row.status, row.status_since, row.stripe_subscription_id, row.current_period_end, row.plan_id,
            row.cancel_at_period_end, row.last_event_created)
