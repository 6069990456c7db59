"""Reconciliation: after a seeded day, the report's totals match figures computed by hand and every planted
discrepancy is listed exactly once; the page and its CSV are for the merchant's own owners and managers.

The day is seeded through the real services (purchases, redemptions, a cancelled coupon, a refund, an
expiry, an adjustment, a claimed receipt); the problems are planted with the ORM, as a bug or a
hand edit of the database would leave them.
"""
import csv
import datetime as dt
import io
import zoneinfo
from collections import Counter
from dataclasses import dataclass
from html.parser import HTMLParser

import pytest
from django.contrib.auth import get_user_model
from django.db.models import F
from django.urls import reverse

from backoffice.reconciliation import build_reconciliation, local_today
from backoffice.reconciliation_views import safe_cell
from merchants.models import Merchant, Reward, StaffMember, Store
from pos_integration.models import PosConnection, WebhookDelivery
from tests.factories import make_customer, make_merchant, make_program, make_store
from wallet.models import Card, LedgerEntry, Purchase, Redemption
from wallet.services import (
    PurchaseRequest,
    adjust_points,
    cancel_redemption,
    claim_purchase,
    enroll,
    expire_points,
    record_purchase,
    record_unmatched_purchase,
    redeem_reward,
    refund_purchase,
)

PARIS = zoneinfo.ZoneInfo("Europe/Paris")
DAY = dt.date(2025, 3, 10)
PAGE = "/admin/reports/reconciliation/"
CSV_URL = "/admin/reports/reconciliation.csv"


def at(day: dt.date, hour: int, minute: int = 0, zone=PARIS) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=zone)


def sale(card, external_id, amount, when, store=None):
    return record_purchase(
        card,
        PurchaseRequest(external_id=external_id, amount=amount, currency=card.merchant.currency,
                        store_id=store.pk if store else None, occurred_at=when),
        idempotency_key=f"key-{external_id}",
    )


def staff_user(merchant: Merchant, role="owner", username=None):
    user = get_user_model().objects.create_user(username=username or f"{role}-{merchant.slug}", is_staff=True)
    StaffMember.objects.create(merchant=merchant, user=user, role=role)
    return user


def failed_delivery(connection, when, error="Unknown customer 4411\nTraceback (most recent call last): ..."):
    delivery = WebhookDelivery.objects.create(
        connection=connection, headers={}, body=b"{}", status=WebhookDelivery.Status.FAILED, error=error, attempts=3
    )
    WebhookDelivery.objects.filter(pk=delivery.pk).update(received_at=when)  # received_at is auto_now_add
    return delivery


@dataclass
class SeededDay:
    merchant: Merchant
    shop: Store  # S1
    market: Store  # S2
    owner: object
    alice: Card  # buys at the shop, redeems at its till, gets a goodwill adjustment; cached balance corrupted
    bob: Card  # buys at the market, refunds half, redeems in the app and cancels
    eve: Card  # her January points expire on the day
    gus: Card  # an earn entry with no purchase planted on him, balance kept consistent
    nina: Card  # joins on the day (welcome bonus) and claims a receipt
    ghost: Purchase  # planted: a purchase row without its earn entry
    orphan_entry: LedgerEntry  # planted: an earn entry pointing to no purchase
    walk_in: Purchase  # planted: an unmatched, unclaimed purchase
    failed: WebhookDelivery  # planted: a failed POS webhook delivery
    other_merchant: Merchant


@pytest.fixture
def seeded(db) -> SeededDay:
    merchant = make_merchant(currency="EUR", time_zone="Europe/Paris", name="Café Lumen")
    shop, market = make_store(merchant), make_store(merchant)
    program = make_program(merchant, welcome_bonus=50, points_validity_days=30)
    croissant = Reward.objects.create(program=program, name="Croissant", points_cost=30)
    owner = staff_user(merchant)

    january = at(dt.date(2025, 1, 1), 12)
    alice, bob, eve, gus = (enroll(make_customer(), program, occurred_at=january).card for _ in range(4))
    sale(eve, "jan-eve", 2000, at(dt.date(2025, 1, 5), 12), shop)  # 20 points, expired by March

    # The day, through the services.
    nina = enroll(make_customer(), program, occurred_at=at(DAY, 9)).card  # +50 welcome
    sale(alice, "sale-a1", 4250, at(DAY, 9, 30), shop)  # +42 (floor of 42.50)
    bob_sale = sale(bob, "sale-b1", 12000, at(DAY, 10), market)  # +120
    redeem_reward(alice, croissant, idempotency_key="r-alice", occurred_at=at(DAY, 11), store_id=shop.pk)  # -30
    in_app = redeem_reward(bob, croissant, idempotency_key="r-bob", occurred_at=at(DAY, 11, 30))  # -30, no store
    cancel_redemption(Redemption.objects.get(pk=in_app.redemption_id), idempotency_key="c-bob",
                      occurred_at=at(DAY, 11, 45))  # +30
    refund_purchase(Purchase.objects.get(pk=bob_sale.purchase_id), amount=6000, idempotency_key="refund-b1",
                    occurred_at=at(DAY, 12))  # -60: half the money back, half the points
    assert expire_points(eve, now=at(DAY, 13)).points_expired == 70  # January's welcome 50 + 20 earned
    adjust_points(alice, delta=15, reason="Goodwill: cold coffee", actor=owner, idempotency_key="adj-alice",
                  occurred_at=at(DAY, 14), store_id=shop.pk)  # +15
    record_unmatched_purchase(
        merchant, PurchaseRequest(external_id="claimed-1", amount=500, currency="EUR", store_id=market.pk,
                                  occurred_at=at(DAY, 8)),
        receipt_code="R-2000", idempotency_key="u-claimed-1", source="webhook",
    )
    claim_purchase(nina, receipt_code="R-2000", amount=500, idempotency_key="claim-1", now=at(DAY, 19))  # +5

    # The planted problems.
    ghost = Purchase.objects.create(
        merchant=merchant, store=shop, card=bob, external_id="ghost-1", amount=1000, currency="EUR",
        points_earned=10, occurred_at=at(DAY, 15),
    )
    gus_balance = Card.objects.get(pk=gus.pk).balance
    orphan_entry = LedgerEntry.objects.create(
        merchant=merchant, card=gus, kind=LedgerEntry.Kind.EARN, delta=25, balance_after=gus_balance + 25,
        occurred_at=at(DAY, 16),
    )
    Card.objects.filter(pk=gus.pk).update(balance=gus_balance + 25)
    walk_in = Purchase.objects.create(
        merchant=merchant, store=market, card=None, external_id="walk-in-1", amount=850, currency="EUR",
        receipt_code="R-1042", occurred_at=at(DAY, 17),
    )
    Card.objects.filter(pk=alice.pk).update(balance=F("balance") + 5)
    pos = PosConnection.objects.create(merchant=merchant, connector="generic", name="Front POS")
    failed = failed_delivery(pos, at(DAY, 18))

    # Noise that must not show: fine deliveries, a failure outside the period, another merchant's mess.
    WebhookDelivery.objects.create(connection=pos, headers={}, body=b"{}", status=WebhookDelivery.Status.PROCESSED)
    failed_delivery(pos, at(DAY - dt.timedelta(days=5), 12))
    other = make_merchant(currency="EUR", time_zone="Europe/Paris", name="Pageturner")
    other_program = make_program(other, welcome_bonus=10)
    other_card = enroll(make_customer(), other_program, occurred_at=at(DAY, 9)).card
    sale(other_card, "other-sale", 9900, at(DAY, 10))
    Purchase.objects.create(merchant=other, card=None, external_id="other-walk-in", amount=100, currency="EUR",
                            occurred_at=at(DAY, 12))
    Card.objects.filter(pk=other_card.pk).update(balance=F("balance") + 1)
    failed_delivery(PosConnection.objects.create(merchant=other, connector="generic", name="Other POS"), at(DAY, 12))

    return SeededDay(merchant, shop, market, owner, alice, bob, eve, gus, nina, ghost, orphan_entry, walk_in,
                     failed, other)


def listed(report) -> Counter:
    return Counter((item.kind, item.subject) for item in report.discrepancies)


# The acceptance test -----------------------------------------------------------------------------


def test_a_seeded_day_adds_up_to_hand_computed_totals_and_lists_each_planted_discrepancy_once(seeded):
    report = build_reconciliation(seeded.merchant, DAY, DAY)

    # Purchases: a1 42.50 + b1 120.00 + ghost 10.00 + walk-in 8.50 + claimed 5.00; b1 half refunded.
    assert (report.sales.count, report.sales.amount) == (5, 18600)
    assert (report.sales.refunded_count, report.sales.refunded_amount) == (1, 6000)
    # Points: issued = welcome 50 + 42 + 120 + planted 25 + claimed 5; redeemed = 30 + 30 - 30 cancelled;
    # expired = Eve's 70; reversed = the refund's 60; adjusted = +15.
    points = report.points
    assert (points.issued, points.redeemed, points.expired, points.reversed, points.adjusted) == (242, 30, 70, 60, 15)
    assert points.net == 242 - 30 - 70 - 60 + 15 == 97
    assert points.identity_holds

    assert listed(report) == Counter({
        ("missing_earn_entry", "Purchase ghost-1"): 1,
        ("entry_without_purchase", f"Ledger entry #{seeded.orphan_entry.pk}"): 1,
        ("unmatched_purchase", "Purchase walk-in-1"): 1,
        ("balance_mismatch", f"Card {seeded.alice.number}"): 1,
        ("webhook_failed", f"Webhook delivery #{seeded.failed.pk}"): 1,
    })
    assert report.discrepancy_total == 5 and report.unlisted_discrepancies == 0
    assert not report.adds_up
    by_kind = {item.kind: item for item in report.discrepancies}
    assert by_kind["balance_mismatch"].detail == "Cached balance 82, its entries sum to 77 (difference +5)."
    assert by_kind["balance_mismatch"].day is None  # as of now, whatever the period
    assert by_kind["missing_earn_entry"].day == DAY
    assert by_kind["missing_earn_entry"].admin_url == reverse("admin:wallet_purchase_change", args=[seeded.ghost.pk])
    assert "Unknown customer 4411" in by_kind["webhook_failed"].detail
    assert "Traceback" not in by_kind["webhook_failed"].detail  # the first line, not the whole dump
    assert "R-1042" in by_kind["unmatched_purchase"].detail


def test_per_day_rows_cover_every_local_day_of_the_period_and_sum_to_the_totals(seeded):
    report = build_reconciliation(seeded.merchant, DAY - dt.timedelta(days=1), DAY + dt.timedelta(days=1))

    assert [row.day for row in report.days] == [DAY - dt.timedelta(days=1), DAY, DAY + dt.timedelta(days=1)]
    before, day, after = report.days
    assert before.sales.count == after.sales.count == 0 and before.points.net == after.points.net == 0
    assert (day.sales.count, day.points.issued, day.points.net) == (5, 242, 97)
    assert report.points == day.points


def test_a_clean_merchant_adds_up(db):
    merchant = make_merchant()
    card = enroll(make_customer(), make_program(merchant, welcome_bonus=20), occurred_at=at(DAY, 9)).card
    sale(card, "clean-1", 1500, at(DAY, 10))

    report = build_reconciliation(merchant, DAY, DAY)

    assert (report.points.issued, report.points.net, report.discrepancies) == (35, 35, [])
    assert report.adds_up


def test_a_clean_period_says_so_on_the_page(client, db):
    merchant = make_merchant()
    enroll(make_customer(), make_program(merchant, welcome_bonus=20), occurred_at=at(DAY, 9))
    client.force_login(staff_user(merchant))

    html = client.get(PAGE, query(merchant)).content.decode()

    assert '<li id="verdict" class="success">The numbers add up' in html
    assert "None: every purchase has its entry" in html


def test_store_filter_keeps_that_stores_purchases_and_entries(seeded):
    shop = build_reconciliation(seeded.merchant, DAY, DAY, seeded.shop)
    # The shop: a1 and ghost; +42 earned, -30 at its till, +15 adjusted at it. Welcome, expiry, app
    # redemptions and the planted earn have no store.
    assert (shop.sales.count, shop.sales.amount, shop.sales.refunded_count) == (2, 5250, 0)
    p = shop.points
    assert (p.issued, p.redeemed, p.expired, p.reversed, p.adjusted, p.net) == (42, 30, 0, 0, 15, 27)
    assert set(listed(shop)) == {
        ("missing_earn_entry", "Purchase ghost-1"),
        ("balance_mismatch", f"Card {seeded.alice.number}"),  # merchant-wide
        ("webhook_failed", f"Webhook delivery #{seeded.failed.pk}"),  # its connection has no store
    }

    market = build_reconciliation(seeded.merchant, DAY, DAY, seeded.market)
    # The market: b1, walk-in, claimed; +120 and +5 earned, -60 refunded.
    assert (market.sales.count, market.sales.amount) == (3, 13350)
    assert (market.sales.refunded_count, market.sales.refunded_amount) == (1, 6000)
    p = market.points
    assert (p.issued, p.redeemed, p.expired, p.reversed, p.adjusted, p.net) == (125, 0, 0, 60, 0, 65)
    assert {kind for kind, _ in listed(market)} == {"unmatched_purchase", "balance_mismatch", "webhook_failed"}


def test_a_cancelled_counter_redemption_counts_at_the_store_of_the_redemption_it_undoes(seeded):
    croissant = Reward.objects.get(program__merchant=seeded.merchant)
    result = redeem_reward(seeded.bob, croissant, idempotency_key="r-bob-shop", occurred_at=at(DAY, 20),
                           store_id=seeded.shop.pk)
    cancel_redemption(Redemption.objects.get(pk=result.redemption_id), idempotency_key="c-bob-shop",
                      occurred_at=at(DAY, 20, 5))

    assert build_reconciliation(seeded.merchant, DAY, DAY, seeded.shop).points.redeemed == 30  # unchanged


def test_a_sale_at_half_past_eleven_at_night_belongs_to_that_local_day(db):
    new_york = zoneinfo.ZoneInfo("America/New_York")
    merchant = make_merchant(currency="USD", time_zone="America/New_York")
    card = enroll(make_customer(), make_program(merchant), occurred_at=at(DAY, 9, zone=new_york)).card
    sale(card, "late", 2300, at(DAY, 23, 30, zone=new_york))  # 03:30 UTC the next day
    sale(card, "early", 700, at(DAY + dt.timedelta(days=1), 0, 30, zone=new_york))

    day = build_reconciliation(merchant, DAY, DAY)
    assert (day.sales.count, day.sales.amount, day.points.issued) == (1, 2300, 23)

    both = build_reconciliation(merchant, DAY, DAY + dt.timedelta(days=1))
    assert [(row.day, row.sales.amount, row.points.issued) for row in both.days] == [
        (DAY, 2300, 23), (DAY + dt.timedelta(days=1), 700, 7),
    ]


def test_the_report_refuses_a_period_ending_before_it_starts_or_another_merchants_store(seeded):
    with pytest.raises(ValueError):
        build_reconciliation(seeded.merchant, DAY, DAY - dt.timedelta(days=1))
    with pytest.raises(ValueError):
        build_reconciliation(seeded.merchant, DAY, DAY, make_store(seeded.other_merchant))


# The page ----------------------------------------------------------------------------------------


class InlineCode(HTMLParser):
    """Inline scripts, styles and event handlers: a strict CSP blocks all three."""

    def __init__(self):
        super().__init__()
        self.found, self._in = [], None

    def handle_starttag(self, tag, attrs):
        names = dict(attrs)
        self.found += [f"{tag} {name}=" for name in names if name.startswith("on") or name == "style"]
        if tag == "style" or (tag == "script" and "src" not in names):
            self._in = tag

    def handle_data(self, data):
        if self._in and data.strip():
            self.found.append(f"<{self._in}>")

    def handle_endtag(self, tag):
        self._in = None


def query(merchant, start=DAY, end=DAY, store=None):
    return {"merchant": merchant.pk, "start": start.isoformat(), "end": end.isoformat(),
            "store": store.pk if store else ""}


def test_owner_sees_totals_discrepancies_with_admin_links_and_a_chart_under_a_strict_csp(client, seeded):
    client.force_login(seeded.owner)
    response = client.get(PAGE, query(seeded.merchant))

    assert response.status_code == 200
    html = response.content.decode()
    report = response.context["report"]
    assert (report.points.net, report.discrepancy_total) == (97, 5)
    assert '<td id="points-net">97</td>' in html and '<td id="total-purchase-amount">186.00 EUR</td>' in html
    assert "242 − 30 − 70 − 60 + 15 = <strong>97</strong>" in html
    assert '<li id="verdict" class="error">5 discrepancies listed below.</li>' in html
    for item in report.discrepancies:
        assert f'<a href="{item.admin_url}">{item.subject}</a>' in html
    assert client.get(reverse("admin:wallet_purchase_change", args=[seeded.ghost.pk])).status_code == 200
    assert html.count('class="bar bar-issued"') == 1 and html.count('class="bar bar-redeemed"') == 1
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp and "unsafe-inline" not in csp
    parser = InlineCode()
    parser.feed(html)
    assert parser.found == []
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert f"{CSV_URL}?merchant={seeded.merchant.pk}&amp;store=&amp;start=2025-03-10&amp;end=2025-03-10" in html


def test_the_page_defaults_to_the_last_thirty_local_days_of_the_users_first_merchant(client, seeded):
    client.force_login(seeded.owner)
    report = client.get(PAGE).context["report"]

    today = local_today(seeded.merchant)
    assert (report.merchant, report.start, report.end) == (seeded.merchant, today - dt.timedelta(days=29), today)
    assert len(report.days) == 30


def test_a_manager_may_open_it_and_sees_only_their_merchants_in_the_selector(client, seeded):
    third = make_merchant(name="Third Shop")
    manager = staff_user(seeded.merchant, "manager")
    StaffMember.objects.create(merchant=third, user=manager, role="owner")
    client.force_login(manager)

    response = client.get(PAGE, query(third))

    assert response.status_code == 200 and response.context["report"].merchant == third
    choices = dict(response.context["form"].fields["merchant"].choices)
    assert set(choices) == {seeded.merchant.pk, third.pk}  # not the other merchant
    stores = list(response.context["form"].fields["store"].queryset)
    assert stores == [] and seeded.other_merchant.name not in response.content.decode()


def test_another_merchants_id_is_a_404_for_the_page_and_the_csv(client, seeded):
    client.force_login(seeded.owner)
    for url in (PAGE, CSV_URL):
        assert client.get(url, query(seeded.other_merchant)).status_code == 404
        assert client.get(url, {"merchant": "not-a-number"}).status_code == 404
        assert client.get(url, {"merchant": "999999"}).status_code == 404


def test_another_merchants_store_is_a_form_error_and_shows_nothing(client, seeded):
    client.force_login(seeded.owner)
    foreign = make_store(seeded.other_merchant)
    response = client.get(PAGE, query(seeded.merchant, store=foreign))

    assert response.status_code == 200 and "report" not in response.context
    assert "Choose one of this merchant&#x27;s stores." in response.content.decode()
    assert client.get(CSV_URL, query(seeded.merchant, store=foreign)).status_code == 400


@pytest.mark.parametrize(("start", "end", "message"), [
    ("2025-02-30", "2025-03-10", "Enter a valid date."),
    ("yesterday", "2025-03-10", "Enter a valid date."),
    ("2025-03-10", "2025-03-09", "The end date is before the start date."),
    ("2024-03-09", "2025-03-10", "A report covers at most 366 days."),  # 367 days, both ends included
])
def test_bad_periods_show_the_error_on_the_form(client, seeded, start, end, message):
    client.force_login(seeded.owner)
    response = client.get(PAGE, {"merchant": seeded.merchant.pk, "start": start, "end": end})

    assert response.status_code == 200 and "report" not in response.context
    assert message in response.content.decode()
    csv_response = client.get(CSV_URL, {"merchant": seeded.merchant.pk, "start": start, "end": end})
    assert csv_response.status_code == 400 and message in csv_response.content.decode()


def test_a_full_year_of_366_days_is_allowed(client, seeded):
    client.force_login(seeded.owner)
    response = client.get(PAGE, query(seeded.merchant, dt.date(2024, 3, 10), dt.date(2025, 3, 10)))
    assert len(response.context["report"].days) == 366


@pytest.mark.parametrize("url", [PAGE, CSV_URL])
def test_the_page_and_csv_need_an_admin_login(client, seeded, url):
    response = client.get(url, query(seeded.merchant))
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")

    cashier = staff_user(seeded.merchant, "cashier")  # staff flag, but no admin role
    client.force_login(cashier)
    response = client.get(url, query(seeded.merchant))
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


# The CSV -----------------------------------------------------------------------------------------


def csv_rows(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.content.decode())))


def test_csv_has_per_day_rows_totals_identity_and_every_discrepancy_with_links(client, seeded):
    client.force_login(seeded.owner)
    response = client.get(CSV_URL, query(seeded.merchant, DAY - dt.timedelta(days=1), DAY))

    assert response.status_code == 200 and response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == (
        f'attachment; filename="reconciliation-{seeded.merchant.slug}-2025-03-09-2025-03-10.csv"'
    )
    rows = csv_rows(response)
    assert ["period", "2025-03-09", "2025-03-10"] in rows and ["time zone", "Europe/Paris"] in rows
    header = rows.index(["date", "purchases", "purchase amount", "refunded purchases", "refunded amount",
                         "points issued", "points redeemed", "points expired", "points reversed",
                         "points adjusted", "net points change"])
    assert rows[header + 1] == ["2025-03-09", "0", "0.00", "0", "0.00", "0", "0", "0", "0", "0", "0"]
    assert rows[header + 2] == ["2025-03-10", "5", "186.00", "1", "60.00", "242", "30", "70", "60", "15", "97"]
    assert rows[header + 3] == ["total", "5", "186.00", "1", "60.00", "242", "30", "70", "60", "15", "97"]
    assert ["identity", "issued - redeemed - expired - reversed + adjusted", "97", "net", "97", "adds up"] in rows
    start = rows.index(["kind", "date", "object", "detail", "link"])
    discrepancies = rows[start + 1:]
    assert len(discrepancies) == 5
    assert {row[2] for row in discrepancies} == {
        "Purchase ghost-1", f"Ledger entry #{seeded.orphan_entry.pk}", "Purchase walk-in-1",
        f"Card {seeded.alice.number}", f"Webhook delivery #{seeded.failed.pk}",
    }
    ghost = next(row for row in discrepancies if row[2] == "Purchase ghost-1")
    assert ghost[1] == "2025-03-10"
    assert ghost[4] == "http://testserver" + reverse("admin:wallet_purchase_change", args=[seeded.ghost.pk])
    assert seeded.other_merchant.name not in response.content.decode()


def test_csv_neutralises_formula_injection_but_keeps_negative_numbers(client, db):
    merchant = make_merchant(name="=HYPERLINK(\"http://evil.example/\",\"Click\")")
    store = Store.objects.create(merchant=merchant, name="@SUM(1+1)", time_zone=merchant.time_zone)
    card = enroll(make_customer(), make_program(merchant, welcome_bonus=40), occurred_at=at(DAY, 9)).card
    sale(card, "s-1", 1000, at(DAY, 10), store)
    owner = staff_user(merchant)
    adjust_points(card, delta=-25, reason="Duplicate scan", actor=owner, idempotency_key="neg",
                  occurred_at=at(DAY, 11), store_id=store.pk)
    client.force_login(owner)

    rows = csv_rows(client.get(CSV_URL, query(merchant, store=store)))

    assert ["merchant", "'=HYPERLINK(\"http://evil.example/\",\"Click\")"] in rows
    assert ["store", "'@SUM(1+1)"] in rows
    total = next(row for row in rows if row and row[0] == "total")
    assert total[-2:] == ["-25", "-15"]  # adjusted and net stay numbers: 10 earned, 25 taken back


@pytest.mark.parametrize("dangerous", ["=1+1", "+1", "-1+1", "@A1", "\tx", "\rx"])
def test_safe_cell_prefixes_text_a_spreadsheet_would_evaluate(dangerous):
    assert safe_cell(dangerous) == "'" + dangerous
    assert safe_cell("Café") == "Café" and safe_cell(-30) == -30 and safe_cell("") == ""
