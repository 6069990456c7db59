"""A merchant with a row in every table the admin shows, each named with a marker, so a page that leaks
one merchant's data into another's admin is caught by searching for the marker."""
import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.contrib.auth import get_user_model

from core.standard_webhooks import generate_secret
from crm_sync.connections import create_connection as create_crm_connection
from crm_sync.models import CrmDelivery
from engagement.models import Audience, Campaign, MerchantEngagement, Message, Offer, SendLog
from merchants.models import BillingPlan, Merchant, MerchantSubscription, Program, Reward, StaffMember, Store, Tier
from merchants.services import grant_staff_access
from pos_integration.connections import create_connection as create_pos_connection
from pos_integration.models import CounterAction, WebhookDelivery
from pos_integration.services import register_device
from wallet.models import DomainEvent, Redemption
from wallet.services import PurchaseRequest, adjust_points, create_customer, enroll, record_purchase, redeem_reward
from wallet.services.unmatched import record_unmatched_purchase


@dataclass
class Tenant:
    marker: str
    merchant: Merchant
    owner: object
    manager: object
    cashier: StaffMember
    store: Store
    program: Program
    reward: Reward
    cards: list
    device: object
    pos_connection: object
    crm_connection: object
    rows: dict = field(default_factory=dict)  # model label -> primary keys of this tenant's rows

    def texts(self) -> list[str]:
        """Strings that only this tenant's pages may contain."""
        values = [self.marker, *(card.number for card in self.cards), str(self.pos_connection.pk),
                  str(self.crm_connection.pk), self.device.key_prefix, self.owner.username, self.manager.username,
                  self.cashier.user.username]
        return [value for value in values if value]


def _user(username: str, **extra):
    return get_user_model().objects.create_user(username=username, email=f"{username}@example.com",
                                                password="pw-123456", **extra)


def build_tenant(marker: str) -> Tenant:
    """Every admin-visible model gets rows for this merchant, named with `marker`."""
    merchant = Merchant.objects.create(name=f"{marker} Coffee", slug=marker.lower(), currency="EUR",
                                       time_zone="Europe/Paris")
    store = Store.objects.create(merchant=merchant, name=f"{marker} Store", city=f"{marker}ville",
                                 time_zone="Europe/Paris")
    program = Program.objects.create(merchant=merchant, name=f"{marker} Points", points_validity_days=365)
    gold = Tier.objects.create(program=program, name=f"{marker} Gold", threshold=500, multiplier=Decimal("2"))
    reward = Reward.objects.create(program=program, name=f"{marker} Croissant", points_cost=10)
    owner, manager = _user(f"{marker.lower()}-owner"), _user(f"{marker.lower()}-manager")
    grant_staff_access(merchant, owner, "owner")
    grant_staff_access(merchant, manager, "manager")
    cashier = grant_staff_access(merchant, _user(f"{marker.lower()}-cashier"), "cashier")

    cards = []
    for n in range(2):
        user = _user(f"{marker.lower()}-customer{n}")
        cards.append(enroll(create_customer(user), program).card)
    issued = register_device(store, f"{marker} Till")
    record_purchase(cards[0], PurchaseRequest(external_id=f"{marker}-sale-1", amount=4200, currency="EUR",
                                              store_id=store.pk), idempotency_key=f"{marker}-k1", source="pos")
    redeem_reward(cards[0], reward, idempotency_key=f"{marker}-k2")
    adjust = adjust_points(cards[1], delta=5, reason=f"{marker} goodwill", actor=owner, idempotency_key=f"{marker}-k3")
    record_unmatched_purchase(merchant, PurchaseRequest(external_id=f"{marker}-sale-2", amount=990, currency="EUR"),
                              receipt_code=f"{marker}RC", idempotency_key=f"{marker}-k4", source="webhook")
    CounterAction.objects.create(merchant=merchant, device=issued.device, cashier=cashier, kind="adjust",
                                 card=cards[1], ledger_entry_id=adjust.entry_id)
    pos_connection = create_pos_connection(merchant, "generic", f"{marker} POS",
                                           {"signing_secret": generate_secret()}, store=store)
    WebhookDelivery.objects.create(connection=pos_connection, headers={}, body=f'{{"id": "{marker}"}}'.encode(),
                                   status="failed", error=f"{marker} failure", vendor_event_id=f"{marker}-evt")
    crm_connection = create_crm_connection(merchant, "webhook", f"{marker} CRM", {
        "url": "http://127.0.0.1:9/hook", "signing_secret": generate_secret()})
    event = DomainEvent.objects.filter(merchant=merchant).first()
    CrmDelivery.objects.create(connection=crm_connection, event=event, customer_id=event.customer_id,
                               next_attempt_at=event.occurred_at, status="dead", last_error=f"{marker} dead")
    plan, _ = BillingPlan.objects.get_or_create(stripe_price_id="price_shared", defaults={
        "name": "Standard", "amount": 2900, "currency": "EUR"})
    MerchantSubscription.objects.create(merchant=merchant, plan=plan, stripe_customer_id=f"cus_{marker}",
                                        stripe_subscription_id=f"sub_{marker}", status="active")
    _engagement(marker, merchant, store, gold, cards[0], owner)
    assert Redemption.objects.filter(merchant=merchant).exists()
    return Tenant(marker=marker, merchant=merchant, owner=owner, manager=manager, cashier=cashier, store=store,
                  program=program, reward=reward, cards=cards, device=issued.device, pos_connection=pos_connection,
                  crm_connection=crm_connection)


def _engagement(marker: str, merchant, store, tier, card, owner) -> None:
    """An audience (by tier), an offer limited to the store, a campaign with one planned message and its
    send-log line, and the merchant's frequency caps."""
    audience = Audience.objects.create(merchant=merchant, name=f"{marker} Regulars")
    audience.tiers.set([tier])
    offer = Offer.objects.create(merchant=merchant, title=f"{marker} Double points", kind=Offer.Kind.MULTIPLIER,
                                 multiplier=Decimal("2"), valid_from=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
                                 audience=audience, coupon_code=f"{marker}-OFFER")
    offer.stores.set([store])
    campaign = Campaign.objects.create(merchant=merchant, name=f"{marker} Spring news", offer=offer, audience=audience,
                                       channels=["email"], subject=f"{marker} double points",
                                       message=f"{marker}: double points all week.", send_on=dt.date(2030, 3, 2),
                                       send_at=dt.time(10), created_by=owner)
    customer = card.wallet.customer
    message = Message.objects.create(merchant=merchant, customer=customer, card=card, kind=Message.Kind.CAMPAIGN,
                                     campaign=campaign, offer=offer, channels=["email"],
                                     due_at=dt.datetime(2030, 3, 2, 9, tzinfo=dt.UTC))
    SendLog.objects.create(merchant=merchant, customer=customer, message=message, campaign=campaign, channel="email",
                           decision=SendLog.Decision.SKIPPED, reason=SendLog.Reason.NO_CONSENT,
                           detail=f"{marker} not opted in", local_time="2030-03-02 10:00 CET",
                           decided_at=dt.datetime(2030, 3, 2, 9, tzinfo=dt.UTC))
    MerchantEngagement.objects.create(merchant=merchant, sender_name=f"{marker} Coffee team")
