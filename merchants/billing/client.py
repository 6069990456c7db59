"""The few calls Tessera makes to its own Stripe account to bill merchants, through the Stripe SDK.

This is Tessera's platform key (`STRIPE_BILLING`), not a merchant's: the POS connector under
pos_integration/connectors/stripe reads merchants' own Stripe accounts with their keys.

Every call has a connect and a read timeout and a couple of SDK retries on network errors, 409 and
5xx; the SDK sends an Idempotency-Key with every POST, so its retries never create twice. A Stripe
failure becomes `BillingApiError` with a message a merchant can read; the detail (Stripe's error
code and request id, never the key or a session URL, which is a bearer link) goes to the log.
"""
import hashlib
import hmac
import logging
from dataclasses import dataclass
from functools import cache

import stripe
from django.conf import settings

from core.errors import TesseraError

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 20
NETWORK_RETRIES = 2
# Stripe metadata key naming the merchant on customers, subscriptions and Checkout Sessions.
MERCHANT_METADATA_KEY = "tessera_merchant_id"


class BillingNotConfigured(TesseraError):
    code = "billing_not_configured"
    http_status = 503
    default_message = "Billing through Stripe is not configured on this Tessera."


class BillingApiError(TesseraError):
    code = "billing_unavailable"
    http_status = 502
    default_message = "Stripe could not be reached. Please try again in a minute."


class CustomerGone(BillingApiError):
    """Stripe no longer has the merchant's customer (deleted in the dashboard, or another account's)."""

    code = "billing_customer_gone"


@dataclass(frozen=True)
class CustomerDetails:
    merchant_id: int
    name: str
    email: str = ""
    replaces: str = ""  # the customer id Stripe no longer has, when this one replaces it


@cache
def _http_client() -> stripe.HTTPClient:
    """One pooled HTTP client per process. The SDK's requests-based client: its httpx client warns on
    every call with httpx 0.28 (it passes the form body as `data=`)."""
    return stripe.RequestsClient(timeout=(CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS))


class StripeBilling:
    def __init__(self, secret_key: str, *, api_base: str):
        if not secret_key:
            raise BillingNotConfigured()
        self._client = stripe.StripeClient(
            secret_key,
            base_addresses={"api": api_base},
            max_network_retries=NETWORK_RETRIES,
            http_client=_http_client(),
        )

    def create_customer(self, details: CustomerDetails) -> str:
        """A new Stripe customer for the merchant; its id. The Idempotency-Key is derived from the merchant
        (and what we send), so two owners clicking "Subscribe" at once, or a retry after a lost answer,
        get the same customer rather than two."""
        params = {"name": details.name, "metadata": {MERCHANT_METADATA_KEY: str(details.merchant_id)}}
        if details.email:
            params["email"] = details.email
        customer = self._call(
            "create the billing customer",
            lambda: self._client.v1.customers.create(
                params=params, options={"idempotency_key": customer_idempotency_key(details)}
            ),
        )
        return customer.id

    def create_checkout_session(self, *, customer_id: str, price_id: str, merchant_id: int, success_url: str,
                                cancel_url: str) -> str:
        """A Checkout Session that subscribes the customer to one price; the URL to send the owner to.
        The merchant id rides on the session (client_reference_id) and on the subscription it creates
        (metadata), so the webhook can tell whose it is even before the customer is linked."""
        merchant_ref = str(merchant_id)
        params = {
            "mode": "subscription",
            "customer": customer_id,
            "line_items": [{"price": price_id, "quantity": 1}],
            "client_reference_id": merchant_ref,
            "metadata": {MERCHANT_METADATA_KEY: merchant_ref},
            "subscription_data": {"metadata": {MERCHANT_METADATA_KEY: merchant_ref}},
            "success_url": success_url,
            "cancel_url": cancel_url,
        }
        session = self._call("start Checkout", lambda: self._client.v1.checkout.sessions.create(params=params))
        return session.url

    def create_portal_session(self, *, customer_id: str, return_url: str) -> str:
        """A short-lived billing portal session (card, invoices, plan, cancellation); its URL."""
        params = {"customer": customer_id, "return_url": return_url}
        session = self._call("open the billing portal",
                             lambda: self._client.v1.billing_portal.sessions.create(params=params))
        return session.url

    @staticmethod
    def _call(action: str, call):
        try:
            return call()
        except stripe.StripeError as error:
            logger.warning(
                "Stripe billing: could not %s: %s %s (code %s, request %s)", action, type(error).__name__,
                error.http_status, error.code, error.request_id,
            )
            if error.code == "resource_missing" and getattr(error, "param", None) == "customer":
                raise CustomerGone(f"Stripe could not {action}: its billing customer no longer exists.") from None
            raise BillingApiError(f"Stripe could not {action}. Please try again in a minute.") from None


def customer_idempotency_key(details: CustomerDetails) -> str:
    """Stable for one merchant and one set of details, unique to this installation (keyed with the
    Django secret), so two Tessera deployments sharing a Stripe test account never share a customer,
    and a renamed merchant is not refused by Stripe for reusing a key with other parameters."""
    replacing = f":replaces:{details.replaces}" if details.replaces else ""
    material = f"billing-customer:{details.merchant_id}:{details.name}:{details.email}{replacing}".encode()
    digest = hmac.new(settings.SECRET_KEY.encode(), material, hashlib.sha256).hexdigest()[:32]
    return f"tessera-customer-{details.merchant_id}-{digest}"


def billing_client() -> StripeBilling:
    config = settings.STRIPE_BILLING
    return StripeBilling(config["SECRET_KEY"], api_base=config["API_BASE"])
