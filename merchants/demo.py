"""Demo data for `make run`: two merchants, their owners, a customer with a card at each, a device.

Built only through the services, so the demo's history is a real ledger that check_ledger accepts.
Running it again changes nothing but the demo device key, which is re-issued so it can be shown.
"""
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from merchants.models import Merchant, Program, Reward, StaffMember, Store, Tier
from merchants.opening_hours import WEEKDAYS
from merchants.services import grant_staff_access
from pos_integration.cashiers import set_pin
from pos_integration.models import PosDevice
from pos_integration.services import register_device, rotate_device_key
from wallet.models import Card, Customer
from wallet.services import PurchaseRequest, create_customer, enroll, record_purchase, redeem_reward

DEMO_CASHIER_PIN = "2468"
DEMO_PASSWORD = "tessera-demo"  # noqa: S105 - demo data only; seed_demo refuses to run in production
CUSTOMER_USERNAME = "demo-customer"

MERCHANTS = [
    {
        "slug": "cafe-lumen", "name": "Café Lumen", "currency": "EUR", "time_zone": "Europe/Paris",
        "brand_color": "#7C3F00", "owner": "cafe-owner",
        "store": {"name": "Café Lumen Marais", "address_line": "12 Rue des Archives", "city": "Paris",
                  "postal_code": "75004", "country": "FR", "latitude": Decimal("48.857500"),
                  "longitude": Decimal("2.356000"), "time_zone": "Europe/Paris",
                  "opening_hours": {day: [["07:30", "19:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat")}},
        "program": {"name": "Lumen Beans", "points_per_currency_unit": Decimal("10"), "welcome_bonus": 50,
                    "points_validity_days": 365, "refund_policy": Program.RefundPolicy.ALLOW_NEGATIVE},
        "tiers": [("Regular", 0, Decimal("1")), ("Gold", 1000, Decimal("1.5"))],
        "rewards": [("Free espresso", Reward.Kind.FREE_ITEM, 0, 100), ("Free pastry", Reward.Kind.FREE_ITEM, 0, 150),
                    ("€5 off", Reward.Kind.AMOUNT_OFF, 500, 400)],
        "purchases": [("LUMEN-0001", 450), ("LUMEN-0002", 1280)],
    },
    {
        "slug": "pageturner-books", "name": "Pageturner Books", "currency": "USD", "time_zone": "America/New_York",
        "brand_color": "#1E3A8A", "owner": "books-owner",
        "store": {"name": "Pageturner Brooklyn", "address_line": "210 Court St", "city": "Brooklyn",
                  "postal_code": "11201", "country": "US", "latitude": Decimal("40.686000"),
                  "longitude": Decimal("-73.993500"), "time_zone": "America/New_York",
                  "opening_hours": {day: [["10:00", "21:00"]] for day in WEEKDAYS}},
        "program": {"name": "Pageturner Rewards", "points_per_currency_unit": Decimal("1"), "welcome_bonus": 20,
                    "points_validity_days": None, "refund_policy": Program.RefundPolicy.FLOOR_AT_ZERO},
        "tiers": [("Reader", 0, Decimal("1")), ("Bookworm", 500, Decimal("2"))],
        "rewards": [("Free tote bag", Reward.Kind.FREE_ITEM, 0, 50), ("10% off", Reward.Kind.PERCENT_OFF, 10, 200)],
        "purchases": [("PT-1001", 3499), ("PT-1002", 1850)],
    },
]


@dataclass(frozen=True)
class DemoSummary:
    owners: list[tuple[str, str]]
    customer: str
    card_numbers: list[str]
    device_name: str
    device_key: str
    cashier: str
    cashier_pin: str


def seed_demo() -> DemoSummary:
    User = get_user_model()
    card_numbers = []
    with transaction.atomic():
        customer_user, created = User.objects.get_or_create(
            username=CUSTOMER_USERNAME, defaults={"email": "demo.customer@example.com", "first_name": "Dana"}
        )
        if created:
            customer_user.set_password(DEMO_PASSWORD)
            customer_user.save()
        customer = Customer.objects.filter(user=customer_user).first() or create_customer(
            customer_user, time_zone="Europe/Paris", locale="en"
        )
        for spec in MERCHANTS:
            merchant, store, program = _seed_merchant(spec, User)
            card = _seed_card(customer, program, store, spec)
            card_numbers.append(card.number)
        first_store = Store.objects.get(merchant__slug=MERCHANTS[0]["slug"])
        cashier = _demo_cashier(first_store.merchant, User)
    issued = _demo_device_key(first_store)
    return DemoSummary(
        owners=[(spec["owner"], DEMO_PASSWORD) for spec in MERCHANTS],
        customer=CUSTOMER_USERNAME,
        card_numbers=card_numbers,
        device_name=issued.device.name,
        device_key=issued.key,
        cashier=cashier.display_name,
        cashier_pin=DEMO_CASHIER_PIN,
    )


def _demo_cashier(merchant, User) -> StaffMember:
    """A cashier with a known PIN, so the web till can be tried at once (a demo secret, like the passwords)."""
    user, _ = User.objects.get_or_create(username="cafe-cashier", defaults={"first_name": "Camille"})
    staff = grant_staff_access(merchant, user, StaffMember.Role.CASHIER)
    if not staff.pin_hash:
        set_pin(staff, DEMO_CASHIER_PIN)
    return staff


def _seed_merchant(spec, User):
    merchant, _ = Merchant.objects.get_or_create(
        slug=spec["slug"],
        defaults={key: spec[key] for key in ("name", "currency", "time_zone", "brand_color")},
    )
    store, _ = Store.objects.get_or_create(merchant=merchant, name=spec["store"]["name"], defaults=spec["store"])
    program, _ = Program.objects.get_or_create(
        merchant=merchant, name=spec["program"]["name"], defaults=spec["program"]
    )
    for name, threshold, multiplier in spec["tiers"]:
        Tier.objects.get_or_create(
            program=program, threshold=threshold, defaults={"name": name, "multiplier": multiplier}
        )
    for name, kind, value, cost in spec["rewards"]:
        Reward.objects.get_or_create(
            program=program, name=name, defaults={"kind": kind, "value": value, "points_cost": cost}
        )
    owner, created = User.objects.get_or_create(
        username=spec["owner"], defaults={"email": f"{spec['owner']}@example.com", "first_name": "Owner"}
    )
    if created:
        owner.set_password(DEMO_PASSWORD)
        owner.save()
    grant_staff_access(merchant, owner, StaffMember.Role.OWNER)
    return merchant, store, program


def _seed_card(customer, program, store, spec) -> Card:
    card = enroll(customer, program, occurred_at=timezone.now() - dt.timedelta(days=30)).card
    for external_id, amount in spec["purchases"]:
        record_purchase(
            card,
            PurchaseRequest(external_id=external_id, amount=amount, currency=spec["currency"], store_id=store.pk),
            idempotency_key=f"demo-{external_id}",
            source="pos",
        )
    cheapest = program.rewards.order_by("points_cost").first()
    redeem_reward(card, cheapest, idempotency_key=f"demo-redeem-{program.pk}")
    card.refresh_from_db()
    return card


def _demo_device_key(store):
    device = PosDevice.objects.filter(store=store, name="Demo counter").first()
    if device is None:
        return register_device(store, "Demo counter")
    return rotate_device_key(device)
