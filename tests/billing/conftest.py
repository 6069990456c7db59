"""Billing fixtures: Tessera's Stripe account faked on a local socket and pointed at through settings,
billing switched on, a plan whose price the fake knows, and signed webhook posting."""
import pytest

from merchants.models import BillingPlan
from tests.billing.helpers import SECRET_KEY, STARTER_PRICE, WEBHOOK_SECRET
from tests.billing.stripe_fake import FakeStripeBilling

# The POS suite's fixtures, for webhooks that reach a paused merchant: a connection and a real post.
from tests.pos.conftest import eager_celery, make_connection, post_webhook  # noqa: F401


@pytest.fixture
def stripe_billing(settings):
    fake = FakeStripeBilling(secret_key=SECRET_KEY).start()
    fake.prices.add(STARTER_PRICE)
    settings.STRIPE_BILLING = {"SECRET_KEY": SECRET_KEY, "WEBHOOK_SECRET": WEBHOOK_SECRET, "API_BASE": fake.url}
    settings.TESSERA_BILLING_ENABLED = True
    settings.TESSERA_BILLING_GRACE_DAYS = 7
    yield fake
    fake.stop()


@pytest.fixture
def plan(db):
    return BillingPlan.objects.create(
        name="Starter", stripe_price_id=STARTER_PRICE, amount=2900, currency="EUR", interval="month",
        description="One store, unlimited cards",
    )
