"""The points liability report and its page, on a seeded merchant whose figures are computed by hand.

Café Lumen (EUR, Paris) on NOW = 15 June 2026, 12:00 UTC (14:00 in Paris):

  "Café" program, a point worth 0.5 cent, points valid 30 days, refunds may go below zero:
    a1  earns 1001 (12 June); redeems a coffee (100) and cancels it    -> 1001, expiring 12 July 22:00 UTC
    a2  earns 200 (21 May); redeems a coffee                           -> 100, expiring 20 June 22:00 UTC
    a3  earns 150 (5 June); redeems a coffee; the purchase is refunded -> -100 (in debt)
    a4  earns 400 (7 March); redeems a coffee; 300 expire (16 April)   -> 0
    a5  earns 1000 and 1000 expire, both more than 365 days ago        -> 0 (outside the history)
  "Books" program, a point worth 1.25 cents, points never expire, no redemption yet:
    b1  earns 333                                                      -> 333

  Café:  outstanding 1001 + 100 = 1101 points; value 1101 x 0.5 = 550.5 -> 551 cents (half up) = 5.51 EUR.
         History (365 days): 300 expired (a4), 300 redeemed net (a2, a3, a4; a1's was cancelled)
         -> breakage rate 300 / (300 + 300) = 50 %; expected breakage 1101 x 0.5 = 550.5 -> 551 points,
         worth 551 x 0.5 = 275.5 -> 276 cents; net liability 551 - 276 = 275 cents.
         Expiring: by 22 June 100 (a2's rest), by 15 July and 13 Sept 1101 (a1 too); a3 is in debt: 0.
  Books: 333 points x 1.25 = 416.25 -> 416 cents; no history, so no breakage estimate (full value).
  Total: 1434 points, 967 cents; 1 card at -100; breakage 551 points / 276 cents; net 275 + 416 = 691.
"""
import datetime as dt
import re
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from backoffice.liability import Breakage, Money, build_liability, estimate_breakage
from merchants.models import Program, Reward, StaffMember
from tests.factories import make_card, make_merchant, make_program
from tests.wallet.helpers import buy
from wallet.models import Purchase, Redemption
from wallet.services import adjust_points, cancel_redemption, expire_points, redeem_reward, refund_purchase

NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=dt.UTC)
URL = "/admin/reports/liability/"


def days_ago(days):
    return NOW - dt.timedelta(days=days)


def redeem(card, reward, key, days):
    return redeem_reward(card, reward, idempotency_key=key, occurred_at=days_ago(days))


def seed_cafe(name="Café Lumen"):
    merchant = make_merchant(name=name)
    cafe = make_program(merchant, name="Café", point_value=Decimal("0.5"), points_validity_days=30,
                        refund_policy=Program.RefundPolicy.ALLOW_NEGATIVE)
    books = make_program(merchant, name="Books", point_value=Decimal("1.25"), points_validity_days=None)
    coffee = Reward.objects.create(program=cafe, name="Coffee", points_cost=100)
    a1, a2, a3, a4, a5 = (make_card(cafe) for _ in range(5))

    buy(a1, 100100, occurred_at=days_ago(3))
    redemption = redeem(a1, coffee, f"{name}-a1", 2)
    cancel_redemption(Redemption.objects.get(pk=redemption.redemption_id), idempotency_key=f"{name}-a1-cancel",
                      occurred_at=days_ago(1))
    buy(a2, 20000, occurred_at=days_ago(25))
    redeem(a2, coffee, f"{name}-a2", 20)
    sale = buy(a3, 15000, occurred_at=days_ago(10))
    redeem(a3, coffee, f"{name}-a3", 9)
    refund_purchase(Purchase.objects.get(pk=sale.purchase_id), amount=None, idempotency_key=f"{name}-a3-refund",
                    occurred_at=days_ago(8))
    buy(a4, 40000, occurred_at=days_ago(100))
    redeem(a4, coffee, f"{name}-a4", 90)
    assert expire_points(a4, now=days_ago(60)).points_expired == 300
    buy(a5, 100000, occurred_at=days_ago(450))
    assert expire_points(a5, now=days_ago(400)).points_expired == 1000
    buy(make_card(books), 33300, occurred_at=days_ago(5))
    return merchant


@pytest.fixture
def cafe_lumen(db):
    merchant = seed_cafe()
    seed_cafe(name="Another Café")  # the same activity at another merchant must never show
    return merchant


def owner_of(*merchants, role="owner"):
    user = get_user_model().objects.create_user(username=f"staff-{merchants[0].slug}-{role}", password="x",
                                                is_staff=True)
    for merchant in merchants:
        StaffMember.objects.create(merchant=merchant, user=user, role=role)
    return user


# The figures -------------------------------------------------------------------------------------

def test_liability_per_program_matches_the_hand_computed_figures(cafe_lumen):
    report = build_liability(cafe_lumen, now=NOW)
    books, cafe = report.programs
    assert (books.title, cafe.title) == ("Books", "Café")

    assert cafe.cards_with_points == 2 and cafe.outstanding_points == 1101
    assert cafe.value == Money(551, "EUR") and str(cafe.value) == "5.51 EUR"
    assert (cafe.negative_balance_cards, cafe.negative_balance_points) == (1, -100)
    assert cafe.breakage == Breakage(Decimal("0.5"), expired_points=300, redeemed_points=300)
    assert cafe.breakage.percent == Decimal("50.0")
    assert cafe.expected_breakage_points == 551
    assert cafe.expected_breakage_value == Money(276, "EUR")
    assert cafe.net_value == Money(275, "EUR")
    assert cafe.expiring_points == {7: 100, 30: 1101, 90: 1101}

    assert books.cards_with_points == 1 and books.outstanding_points == 333
    assert str(books.value) == "4.16 EUR"
    assert books.breakage.rate is None and not books.breakage.has_history
    assert books.breakage.note == "No points expired or were redeemed in the last 365 days."
    assert books.expected_breakage_points is None and books.expected_breakage_value is None
    assert books.net_value == books.value
    assert books.expiring_points == {7: 0, 30: 0, 90: 0}


def test_the_total_adds_the_program_lines_and_names_what_was_not_estimated(cafe_lumen):
    report = build_liability(cafe_lumen, now=NOW)
    total = report.total
    assert (total.cards_with_points, total.outstanding_points) == (3, 1434)
    assert str(total.value) == "9.67 EUR"
    assert (total.negative_balance_cards, total.negative_balance_points) == (1, -100)
    assert total.expected_breakage_points == 551 and str(total.expected_breakage_value) == "2.76 EUR"
    assert str(total.net_value) == "6.91 EUR"
    assert total.expiring_points == {7: 100, 30: 1101, 90: 1101}
    assert report.unestimated_programs == ["Books"]


def test_points_expiring_count_what_leaves_by_each_horizon(cafe_lumen):
    def expiring_within_a_week(now):
        return build_liability(cafe_lumen, now=now).total.expiring_points[7]

    # a2's 100 points expire at 22:00 UTC on 20 June: inside the 7-day figure from 22:00 UTC on 13 June on.
    assert expiring_within_a_week(dt.datetime(2026, 6, 13, 21, 59, tzinfo=dt.UTC)) == 0
    assert expiring_within_a_week(dt.datetime(2026, 6, 13, 22, 0, tzinfo=dt.UTC)) == 100
    # On 6 July a1's lot (12 July) is inside too; a2's points, past their expiry but not yet removed by
    # the hourly expiry job, still leave the books within the week.
    assert expiring_within_a_week(dt.datetime(2026, 7, 6, tzinfo=dt.UTC)) == 1101


def test_breakage_history_is_the_trailing_365_days():
    program = Program(points_validity_days=30)
    assert estimate_breakage(program, expired=0, redeemed=0, matured=True).rate is None
    # Redemptions but no lot has reached its expiry yet: history cannot say what share expires.
    young = estimate_breakage(program, expired=0, redeemed=500, matured=False)
    assert young.rate is None and young.note.startswith("No points reached their expiry date")
    # Lots did reach their expiry and customers had spent them all: a true 0 %.
    assert estimate_breakage(program, expired=0, redeemed=500, matured=True).rate == 0
    assert estimate_breakage(program, expired=1, redeemed=2, matured=True).rate == Decimal(1) / Decimal(3)
    never = estimate_breakage(Program(points_validity_days=None), expired=0, redeemed=500, matured=False)
    assert never.rate == 0 and never.note == "Points of this program never expire."


def test_a_program_with_no_activity_reports_zeros_and_no_breakage(db):
    merchant = make_merchant(currency="JPY", time_zone="Asia/Tokyo")
    make_program(merchant, name="Quiet", points_validity_days=90)
    [line] = build_liability(merchant, now=NOW).programs
    assert (line.cards_with_points, line.outstanding_points, str(line.value)) == (0, 0, "0 JPY")
    assert line.breakage.rate is None and line.expiring_points == {7: 0, 30: 0, 90: 0}


def test_money_is_shown_in_major_units_of_its_currency():
    assert str(Money(123456789, "EUR")) == "1,234,567.89 EUR"
    assert str(Money(1234, "JPY")) == "1,234 JPY"
    assert str(Money(1500, "KWD")) == "1.500 KWD"
    assert str(Money(-5, "USD")) == "-0.05 USD"


def test_value_is_rounded_half_up_once_per_program_not_per_card(db):
    merchant = make_merchant(currency="JPY", time_zone="Asia/Tokyo")
    program = make_program(merchant, name="Half yen", point_value=Decimal("0.5"))
    for index in range(5):
        adjust_points(make_card(program), delta=1, reason="seed", actor=None, idempotency_key=f"seed-{index}")
    [line] = build_liability(merchant).programs
    # 5 points x 0.5 yen = 2.5 yen -> 3 yen (half up; banker's rounding would say 2, per-card rounding 5).
    assert line.outstanding_points == 5 and line.value == Money(3, "JPY")


# The page ----------------------------------------------------------------------------------------

def test_the_owner_sees_the_figures_and_how_breakage_is_estimated(client, cafe_lumen):
    client.force_login(owner_of(cafe_lumen))
    response = client.get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert response.context["report"].merchant == cafe_lumen
    for figure in ("5.51 EUR", "4.16 EUR", "9.67 EUR", "2.76 EUR", "6.91 EUR", "50.0%", "Not enough history"):
        assert figure in html, figure
    assert "points that expired divided by" in html
    assert "Another Café" not in html
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "no inline script under a strict CSP"


def test_the_merchant_selector_lists_only_the_users_merchants(client, cafe_lumen):
    second, foreign = make_merchant(name="Second Shop"), make_merchant(name="Foreign Shop")
    client.force_login(owner_of(cafe_lumen, second, role="manager"))
    response = client.get(URL, {"merchant": second.pk})
    assert response.status_code == 200 and response.context["report"].merchant == second
    assert list(response.context["merchants"]) == [cafe_lumen, second]
    assert foreign.name not in response.content.decode()


@pytest.mark.parametrize("requested", ["foreign", "missing", "junk"])
def test_a_merchant_outside_the_users_set_is_a_404(client, cafe_lumen, requested):
    foreign = cafe_lumen.__class__.objects.get(name="Another Café")
    client.force_login(owner_of(cafe_lumen))
    value = {"foreign": foreign.pk, "missing": 999999, "junk": "1;drop"}[requested]
    assert client.get(URL, {"merchant": value}).status_code == 404


def test_the_page_needs_an_admin_login(client, cafe_lumen):
    response = client.get(URL)
    assert response.status_code == 302 and reverse("admin:login") in response["Location"]
    client.force_login(owner_of(cafe_lumen, role="cashier"))
    assert client.get(URL).status_code == 302


def test_a_superuser_may_pick_any_merchant(client, cafe_lumen):
    foreign = cafe_lumen.__class__.objects.get(name="Another Café")
    admin_user = get_user_model().objects.create_superuser(username="root", password="x", email="r@example.com")
    client.force_login(admin_user)
    response = client.get(URL, {"merchant": foreign.pk})
    assert response.status_code == 200 and response.context["report"].merchant == foreign
