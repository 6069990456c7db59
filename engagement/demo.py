"""Engagement demo data for `make run`: offers, an audience and a draft campaign for the demo merchants,
and the demo customer's consent to hear from the café by email and on the pass. Idempotent."""
import datetime as dt
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from engagement.models import Audience, Campaign, MerchantEngagement, Offer
from merchants.models import Merchant
from wallet.models import Customer
from wallet.services.preferences import set_channel_consent

DEMO_CUSTOMER_USERNAME = "demo-customer"


def seed_engagement_demo() -> list[str]:
    """Returns the titles of the demo offers (created now or already there)."""
    cafe = Merchant.objects.filter(slug="cafe-lumen").first()
    books = Merchant.objects.filter(slug="pageturner-books").first()
    if cafe is None or books is None:
        return []
    now = timezone.now()
    with transaction.atomic():
        MerchantEngagement.objects.get_or_create(merchant=cafe, defaults={"sender_name": "Café Lumen"})
        store = cafe.stores.order_by("pk").first()
        nearby, _ = Audience.objects.get_or_create(
            merchant=cafe, name="Neighbours (2 km)", defaults={"near_store": store, "radius_km": Decimal("2")}
        )
        offers = [
            _offer(cafe, "Double beans on weekday mornings", kind=Offer.Kind.MULTIPLIER, multiplier=Decimal("2"),
                   weekdays=[0, 1, 2, 3, 4], daily_start=dt.time(7, 30), daily_end=dt.time(10), valid_from=now,
                   description="Every purchase before 10:00, Monday to Friday, earns twice the beans."),
            _offer(cafe, "A pastry on us", kind=Offer.Kind.DISCOUNT, discount_text="Free pastry with any coffee",
                   coupon_code="WELCOME-PASTRY", is_welcome=True, welcome_valid_days=30, valid_from=now,
                   description="Welcome to Café Lumen: show this at the counter with your first coffee."),
            _offer(books, "Bookworm Tuesdays", kind=Offer.Kind.BONUS_POINTS, bonus_points=50, weekdays=[1],
                   valid_from=now, description="50 bonus points on any purchase on Tuesdays."),
        ]
        morning = Offer.objects.get(merchant=cafe, title="Double beans on weekday mornings")
        Campaign.objects.get_or_create(
            merchant=cafe, name="Mornings are double", defaults={
                "offer": morning, "audience": nearby, "channels": ["email", "wallet_pass"],
                "subject": "Double beans before 10", "message": "Come by before 10:00 on weekdays: double beans.",
                "send_on": (now + dt.timedelta(days=1)).date(), "send_at": dt.time(9),
            })
        customer = Customer.objects.filter(user__username=DEMO_CUSTOMER_USERNAME).first()
        if customer is not None:
            set_channel_consent(customer, cafe, {"email": True, "wallet_pass": True})
    return offers


def _offer(merchant, title, **fields) -> str:
    Offer.objects.get_or_create(merchant=merchant, title=title, defaults=fields)
    return title
