"""Billing merchants through Stripe: starting Checkout, opening the billing portal, and keeping each
merchant's `MerchantSubscription` current from Stripe's webhook events.

Stripe is the source of truth for a subscription; we hold a copy good enough to decide, on every
purchase, whether earning is paused (policy.py). Stripe delivers each event at least once and in no
promised order, so applying one is:
- once per event id: the `StripeEvent` row is inserted first, under its unique id, in the same
  transaction as the change; a redelivery, even a concurrent one, fails that insert and changes nothing;
- never backwards: an event created before the last one applied to the same subscription does not
  move it, and neither do transitions Stripe never makes (a cancelled subscription never comes back,
  and `incomplete` is only ever a subscription's first status);
- for the merchant's current subscription: a live subscription replaces an ended one (the owner
  subscribed again after cancelling), or a live one when its event is newer; the end, or the late
  news, of some other subscription is not the merchant's.
Events for customers we do not know are recorded with their outcome, not refused: answering an error
would only make Stripe retry them for days.
"""
import datetime as dt
import logging
from collections.abc import Mapping
from urllib.parse import urlencode, urlsplit, urlunsplit

from django.db import IntegrityError, transaction

from core.errors import Conflict, NotFound
from merchants.billing.client import MERCHANT_METADATA_KEY, CustomerDetails, CustomerGone, billing_client
from merchants.billing.policy import earning_paused_reason
from merchants.models import BillingPlan, Merchant, MerchantSubscription, StripeEvent

logger = logging.getLogger(__name__)

Status = MerchantSubscription.Status
DUPLICATE = "duplicate"
# Stripe never moves a subscription out of these: a new subscription starts instead.
ENDED_STATUSES = frozenset({Status.CANCELED, Status.INCOMPLETE_EXPIRED})
# A subscription that is still billing the merchant: a second Checkout would charge them twice.
LIVE_STATUSES = frozenset({Status.ACTIVE, Status.TRIALING, Status.PAST_DUE, Status.UNPAID, Status.PAUSED})
SUBSCRIPTION_EVENTS = ("customer.subscription.created", "customer.subscription.updated",
                       "customer.subscription.deleted")
INVOICE_EVENTS = ("invoice.paid", "invoice.payment_failed")


class AlreadySubscribed(Conflict):
    code = "already_subscribed"
    default_message = "This merchant already has a subscription: change or cancel it in the billing portal."


class NoBillingAccount(Conflict):
    code = "no_billing_account"
    default_message = "This merchant has no Stripe billing account yet: subscribe to a plan first."


class MalformedEvent(ValueError):
    """A signed event we cannot read: nothing is written, and Stripe will retry it."""


# Starting Checkout and the portal -----------------------------------------------------------------

def get_subscription(merchant: Merchant) -> MerchantSubscription | None:
    return MerchantSubscription.objects.filter(merchant=merchant).select_related("plan").first()


def start_checkout(merchant: Merchant, plan: BillingPlan, *, return_url: str, email: str = "") -> str:
    """The Stripe Checkout URL where the owner subscribes `merchant` to `plan`. `return_url` is the
    billing page; Checkout sends the owner back to it, flagged as done or cancelled."""
    if not plan.is_active:
        raise NotFound("This plan is no longer offered.")
    subscription = _subscription_row(merchant)
    if subscription.status in LIVE_STATUSES:
        raise AlreadySubscribed()
    client = billing_client()

    def session(customer_id: str) -> str:
        return client.create_checkout_session(
            customer_id=customer_id, price_id=plan.stripe_price_id, merchant_id=merchant.pk,
            success_url=_with_query(return_url, checkout="success"),
            cancel_url=_with_query(return_url, checkout="cancelled"),
        )

    customer_id = _ensure_customer(client, subscription, email)
    try:
        return session(customer_id)
    except CustomerGone:
        # Deleted in Stripe's dashboard: forget it, and subscribe through a new customer.
        _forget_customer(subscription, customer_id)
        return session(_ensure_customer(client, subscription, email, replaces=customer_id))


def billing_portal_url(merchant: Merchant, *, return_url: str) -> str:
    """A billing portal session for the merchant's Stripe customer (card, invoices, plan, cancel)."""
    subscription = get_subscription(merchant)
    if subscription is None or not subscription.stripe_customer_id:
        raise NoBillingAccount()
    try:
        return billing_client().create_portal_session(
            customer_id=subscription.stripe_customer_id, return_url=return_url
        )
    except CustomerGone:
        _forget_customer(subscription, subscription.stripe_customer_id)
        raise NoBillingAccount() from None


def _subscription_row(merchant: Merchant) -> MerchantSubscription:
    subscription, _created = MerchantSubscription.objects.get_or_create(merchant=merchant)
    return subscription


def _ensure_customer(client, subscription: MerchantSubscription, email: str, replaces: str = "") -> str:
    """The merchant's Stripe customer, created once. No row lock is held across the HTTP call: the
    customer's idempotency key makes concurrent first clicks create one customer, and the first to
    store it wins. `replaces`: the id of a customer Stripe no longer has (its key differs, or Stripe
    would answer the replay of the old creation for a day)."""
    if subscription.stripe_customer_id:
        return subscription.stripe_customer_id
    merchant = subscription.merchant
    customer_id = client.create_customer(
        CustomerDetails(merchant_id=merchant.pk, name=merchant.name, email=email, replaces=replaces)
    )
    MerchantSubscription.objects.filter(pk=subscription.pk, stripe_customer_id="").update(
        stripe_customer_id=customer_id
    )
    subscription.refresh_from_db(fields=["stripe_customer_id"])
    return subscription.stripe_customer_id


def _forget_customer(subscription: MerchantSubscription, customer_id: str) -> None:
    """Unlink a customer Stripe no longer has (deleted in its dashboard; its subscriptions went with it),
    unless another request already replaced it."""
    logger.warning("Stripe billing customer %s of merchant %s is gone: unlinked", customer_id, subscription.merchant_id)
    MerchantSubscription.objects.filter(pk=subscription.pk, stripe_customer_id=customer_id).update(
        stripe_customer_id=""
    )
    subscription.refresh_from_db(fields=["stripe_customer_id"])


def _with_query(url: str, **params) -> str:
    parts = urlsplit(url)
    query = "&".join(part for part in (parts.query, urlencode(params)) if part)
    return urlunsplit(parts._replace(query=query))


# Applying webhook events --------------------------------------------------------------------------

def apply_stripe_event(event: Mapping) -> str:
    """Apply one verified Stripe event (a snapshot event as a plain dict) once; returns the outcome
    recorded on its `StripeEvent`, or DUPLICATE when that event id was already applied."""
    event_id, event_type, created, stripe_object = _read_event(event)
    handler = _HANDLERS.get(event_type, _not_used)
    with transaction.atomic():
        try:
            with transaction.atomic():
                record = StripeEvent.objects.create(event_id=event_id, event_type=event_type, created=created)
        except IntegrityError:
            return DUPLICATE  # applied already, or being applied by a concurrent delivery that committed first
        merchant_id, outcome = handler(event_type, stripe_object, created)
        record.merchant_id, record.outcome = merchant_id, outcome[:255]
        record.save(update_fields=["merchant", "outcome"])
    logger.info("Stripe billing event %s (%s): %s", event_id, event_type, outcome)
    return outcome


def _read_event(event: Mapping) -> tuple[str, str, dt.datetime, dict]:
    try:
        event_id, event_type, created = event["id"], event["type"], event["created"]
        stripe_object = event["data"]["object"]
    except (KeyError, TypeError):
        raise MalformedEvent("not a Stripe snapshot event (id, type, created, data.object)") from None
    if not (isinstance(event_id, str) and event_id and isinstance(event_type, str) and isinstance(stripe_object, dict)
            and isinstance(created, int)):
        raise MalformedEvent("a Stripe event's id, type, created or data.object has the wrong type")
    return event_id[:255], event_type[:100], _from_timestamp(created), stripe_object


def _not_used(event_type: str, stripe_object: dict, created: dt.datetime) -> tuple[int | None, str]:
    return None, "ignored: Tessera does not use this event type"


def _checkout_completed(event_type: str, session: dict, created: dt.datetime) -> tuple[int | None, str]:
    """Links the merchant's Stripe customer (and a first subscription) to the merchant. The status is
    left to the subscription events: Checkout's own payment status does not say active or trialing."""
    if session.get("mode") != "subscription":
        return None, "ignored: not a subscription checkout"
    customer_id, subscription_id = _object_id(session.get("customer")), _object_id(session.get("subscription"))
    row = _locked_row_for(customer_id, session.get("client_reference_id"))
    if row is None:
        return None, f"unknown customer {customer_id or '(none)'}"
    if subscription_id and not row.stripe_subscription_id:
        # Only a first one: replacing a subscription whose status we hold would pair its status with
        # another subscription's id. A replacement arrives with its own subscription events.
        row.stripe_subscription_id = subscription_id
        row.save(update_fields=["stripe_subscription_id", "updated_at"])
    return row.merchant_id, f"checkout completed for {subscription_id or '(no subscription)'}"


def _subscription_changed(event_type: str, subscription: dict, created: dt.datetime) -> tuple[int | None, str]:
    customer_id, subscription_id = _object_id(subscription.get("customer")), _object_id(subscription.get("id"))
    status = subscription.get("status")
    if not subscription_id or status not in Status.values or status == Status.NONE:
        # A status a later API version may add must not make Stripe retry this event for days.
        return None, f"ignored: subscription {subscription_id or '(no id)'} has an unknown status {status!r}"
    metadata = subscription.get("metadata") or {}
    row = _locked_row_for(customer_id, metadata.get(MERCHANT_METADATA_KEY))
    if row is None:
        return None, f"unknown customer {customer_id or '(none)'}"
    refusal = _why_not_applied(row, subscription_id, status, created)
    if refusal:
        return row.merchant_id, f"ignored: {refusal}"
    if row.stripe_subscription_id != subscription_id:
        row.last_event_created = None  # another subscription's history says nothing about this one's order
    before = row.status
    row.stripe_subscription_id = subscription_id
    if status != before:
        row.status, row.status_since = status, created
    price_id, period_end = _price_and_period_end(subscription)
    plan = BillingPlan.objects.filter(stripe_price_id=price_id).first() if price_id else None
    row.plan = plan
    row.current_period_end = period_end or row.current_period_end
    row.cancel_at_period_end = bool(subscription.get("cancel_at_period_end"))
    row.last_event_created = max(created, row.last_event_created or created)
    row.save()
    change = f"{before} -> {status}" if status != before else f"still {status}"
    unknown_price = f"; unknown price {price_id}" if price_id and plan is None else ""
    return row.merchant_id, f"{subscription_id} {change}{unknown_price}{_replay_held_pos_sales(row)}"


def _replay_held_pos_sales(row: MerchantSubscription) -> str:
    """Once the merchant earns again, the POS sales refused while it could not are replayed, after
    this commit (the task must see the new status). Checked on every applied event rather than only
    on a change to active, so a replay lost with a broker outage starts again with the next event.
    Returns a note for the event's outcome, which the admin shows."""
    from pos_integration.processing import held_deliveries  # POS builds on billing, not the reverse

    if earning_paused_reason(row.merchant):
        return ""
    held = held_deliveries(row.merchant_id).count()
    if not held:
        return ""
    merchant_id = row.merchant_id
    transaction.on_commit(lambda: _enqueue_held_pos_replay(merchant_id), robust=True)
    return f"; replaying {held} POS deliveries held while earning was paused"


def _enqueue_held_pos_replay(merchant_id: int) -> None:
    from pos_integration.tasks import replay_held_deliveries_task

    replay_held_deliveries_task.delay(merchant_id)


def _why_not_applied(row: MerchantSubscription, subscription_id: str, status: str, created: dt.datetime) -> str:
    """Why this subscription event must not change the merchant's copy; empty when it may."""
    current = row.stripe_subscription_id
    if current and current != subscription_id:
        if status in ENDED_STATUSES:
            return f"{subscription_id} ended, but the merchant's subscription is {current}"
        # A live subscription takes over from an ended one, or from a live one with older news; a late
        # event of a subscription since replaced must not take the merchant back to it.
        if row.status not in ENDED_STATUSES and row.last_event_created and created < row.last_event_created:
            return f"{subscription_id} is older than the last event of the merchant's subscription {current}"
        return ""
    if row.last_event_created and created < row.last_event_created:
        return "older than the last event applied to this subscription"
    if row.status in ENDED_STATUSES and status != row.status and row.stripe_subscription_id:
        return f"a {row.status} subscription never changes status again"
    if status == Status.INCOMPLETE and row.status not in (Status.NONE, Status.INCOMPLETE, *ENDED_STATUSES):
        return "incomplete is only a subscription's first status"
    return ""


def _invoice(event_type: str, invoice: dict, created: dt.datetime) -> tuple[int | None, str]:
    """Recorded for the merchant's history; the status change itself arrives as a subscription event."""
    customer_id = _object_id(invoice.get("customer"))
    row = _locked_row_for(customer_id, None)
    if row is None:
        return None, f"unknown customer {customer_id or '(none)'}"
    currency = str(invoice.get("currency") or "").upper()
    if event_type == "invoice.paid":
        return row.merchant_id, f"invoice {invoice.get('id')} paid ({invoice.get('amount_paid')} {currency})"
    money = f"{invoice.get('amount_due')} {currency}"
    attempt, next_at = invoice.get("attempt_count"), invoice.get("next_payment_attempt")
    retry = f"; Stripe retries at {_from_timestamp(next_at):%Y-%m-%d %H:%M} UTC" if isinstance(next_at, int) else ""
    return row.merchant_id, f"payment failed for invoice {invoice.get('id')} ({money}, attempt {attempt}){retry}"


_HANDLERS = {
    "checkout.session.completed": _checkout_completed,
    **dict.fromkeys(SUBSCRIPTION_EVENTS, _subscription_changed),
    **dict.fromkeys(INVOICE_EVENTS, _invoice),
}


def _locked_row_for(customer_id: str, merchant_ref) -> MerchantSubscription | None:
    """The merchant's subscription row, locked for this transaction: by Stripe customer id, or by the
    merchant id we put in the metadata when that merchant has no other customer linked yet."""
    rows = MerchantSubscription.objects.select_for_update()
    if customer_id:
        found = rows.filter(stripe_customer_id=customer_id).first()
        if found is not None:
            return found
    merchant_id = str(merchant_ref or "")
    if not merchant_id.isdigit() or not Merchant.objects.filter(pk=int(merchant_id)).exists():
        return None
    row, _created = rows.get_or_create(merchant_id=int(merchant_id))
    if row.stripe_customer_id and row.stripe_customer_id != customer_id:
        return None
    if customer_id and not row.stripe_customer_id:
        row.stripe_customer_id = customer_id
        row.save(update_fields=["stripe_customer_id", "updated_at"])
    return row


def _price_and_period_end(subscription: dict) -> tuple[str, dt.datetime | None]:
    """The first item's price, and the period end: on the subscription before API version
    2025-03-31.basil, on each item since then (the latest item's end is the subscription's)."""
    items = [item for item in ((subscription.get("items") or {}).get("data") or []) if isinstance(item, dict)]
    price = items[0].get("price") if items else None
    price_id = _object_id(price)
    ends = [value for value in [subscription.get("current_period_end")] + [i.get("current_period_end") for i in items]
            if isinstance(value, int)]
    return price_id, (_from_timestamp(max(ends)) if ends else None)


def _object_id(value) -> str:
    """Stripe sends a related object as its id, or as the object when expanded."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) else ""


def _from_timestamp(seconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
