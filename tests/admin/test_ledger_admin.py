"""The ledger in the admin: adjusting points with a reason, reversing an entry, filtering and exporting."""
import csv
import datetime as dt
import io

import pytest
from django.urls import reverse
from django.utils import timezone

from engagement.models import Offer
from pos_integration.models import CounterAction
from tests.admin.tenant_world import build_tenant
from wallet.models import LedgerEntry
from wallet.services import PurchaseRequest, adjust_points, record_purchase

pytestmark = pytest.mark.django_db


@pytest.fixture
def alpha():
    return build_tenant("ALPHA")


def _adjust(client, card, **data):
    url = reverse("admin:wallet_card_adjust", args=[card.pk])
    key = client.get(url).context["form"].initial["idempotency_key"]
    return client.post(url, {"idempotency_key": key, **data}), key


def test_adjusting_points_needs_a_reason_and_records_who_did_it(client, alpha):
    card = alpha.cards[1]
    client.force_login(alpha.manager)
    before = card.entries.count()
    response, _ = _adjust(client, card, delta=25, reason="   ")
    assert response.status_code == 200 and "reason" in response.context["form"].errors
    assert card.entries.count() == before

    response, key = _adjust(client, card, delta=25, reason="Ticket 4411: missed scan", store=alpha.store.pk)
    assert response.status_code == 302
    entry = card.entries.order_by("-id").first()
    assert (entry.kind, entry.delta, entry.actor, entry.source, entry.store, entry.reason) == (
        "adjust", 25, alpha.manager, "admin", alpha.store, "Ticket 4411: missed scan")
    # The same form sent twice (a double click, a reload) adjusts once.
    client.post(reverse("admin:wallet_card_adjust", args=[card.pk]),
                {"idempotency_key": key, "delta": 25, "reason": "Ticket 4411: missed scan", "store": alpha.store.pk})
    assert card.entries.count() == before + 1
    card.refresh_from_db()
    assert card.balance == sum(card.entries.values_list("delta", flat=True))


def test_removing_more_points_than_the_card_holds_is_refused_and_writes_nothing(client, alpha):
    card = alpha.cards[1]
    card.refresh_from_db()
    client.force_login(alpha.owner)
    response, _ = _adjust(client, card, delta=-(card.balance + 1), reason="Typo")
    assert response.status_code == 200
    assert "only" in " ".join(response.context["form"].non_field_errors())
    assert not card.entries.filter(kind="adjust", delta__lt=0).exists()


def test_reversing_an_entry_once_with_a_reason(client, alpha):
    card = alpha.cards[1]
    entry = card.entries.get(kind="adjust")
    client.force_login(alpha.owner)
    url = reverse("admin:wallet_ledgerentry_reverse", args=[entry.pk])
    key = client.get(url).context["form"].initial["idempotency_key"]
    assert client.post(url, {"idempotency_key": key, "reason": ""}).status_code == 200
    assert client.post(url, {"idempotency_key": key, "reason": "Given twice"}).status_code == 302
    reversal = LedgerEntry.objects.get(reverses=entry)
    assert (reversal.kind, reversal.delta, reversal.actor, reversal.reason) == (
        "reversal", -5, alpha.owner, "Given twice")

    again = client.get(url).context["form"].initial["idempotency_key"]
    response = client.post(url, {"idempotency_key": again, "reason": "Once more"})
    assert "already been reversed" in " ".join(response.context["form"].non_field_errors())
    assert LedgerEntry.objects.filter(reverses=entry).count() == 1


def test_a_redemption_entry_cannot_be_reversed_from_the_ledger(client, alpha):
    redeem = alpha.cards[0].entries.get(kind="redeem")
    client.force_login(alpha.owner)
    url = reverse("admin:wallet_ledgerentry_reverse", args=[redeem.pk])
    key = client.get(url).context["form"].initial["idempotency_key"]
    response = client.post(url, {"idempotency_key": key, "reason": "Try"})
    assert "cancel a redemption" in " ".join(response.context["form"].non_field_errors())


def test_ledger_filters_by_store_kind_source_device_and_cashier(client, alpha):
    client.force_login(alpha.owner)
    changelist = reverse("admin:wallet_ledgerentry_changelist")

    def ids(**params):
        return {entry.pk for entry in client.get(changelist, params).context["cl"].result_list}

    earn = LedgerEntry.objects.get(merchant=alpha.merchant, kind="earn")
    adjust = LedgerEntry.objects.get(merchant=alpha.merchant, kind="adjust")
    assert ids(kind="earn") == {earn.pk}
    assert ids(store__id__exact=alpha.store.pk) == {earn.pk}
    assert ids(source="admin") == {adjust.pk}
    device_entries = set(CounterAction.objects.filter(device=alpha.device).values_list("ledger_entry", flat=True))
    assert ids(device=alpha.device.pk) == device_entries == {adjust.pk}
    assert ids(actor__id__exact=alpha.owner.pk) == {adjust.pk}


def test_ledger_csv_export_neutralises_formulas(client, alpha):
    card = alpha.cards[1]
    adjust_points(card, delta=3, reason="=HYPERLINK(\"http://evil\")", actor=alpha.owner, idempotency_key="csv-1")
    client.force_login(alpha.owner)
    ids = list(LedgerEntry.objects.filter(card=card).values_list("pk", flat=True))
    response = client.post(reverse("admin:wallet_ledgerentry_changelist"),
                           {"action": "export_csv", "_selected_action": ids, "index": 0})
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == len(ids)
    assert {row["reason"] for row in rows} >= {"'=HYPERLINK(\"http://evil\")", "ALPHA goodwill"}
    assert {row["delta"] for row in rows} >= {"3", "5"}


def test_cashiers_cannot_adjust_even_by_url(client, alpha):
    cashier = alpha.cashier.user
    cashier.is_staff = True
    cashier.save()
    client.force_login(cashier)
    response = client.get(reverse("admin:wallet_card_adjust", args=[alpha.cards[1].pk]))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_the_ledger_names_the_offer_that_boosted_a_purchase_in_the_list_and_the_csv(client, alpha):
    Offer.objects.create(merchant=alpha.merchant, title="ALPHA happy hour", kind=Offer.Kind.MULTIPLIER,
                         multiplier=2, valid_from=timezone.now() - dt.timedelta(days=1))
    record_purchase(alpha.cards[1], PurchaseRequest(external_id="happy-1", amount=1000, currency="EUR",
                                                    store_id=alpha.store.pk), idempotency_key="happy-1")
    entry = LedgerEntry.objects.get(purchase__external_id="happy-1")
    client.force_login(alpha.owner)

    listing = client.get(reverse("admin:wallet_ledgerentry_changelist"), {"q": "happy hour"})
    exported = client.post(reverse("admin:wallet_ledgerentry_changelist"),
                           {"action": "export_csv", "_selected_action": [entry.pk], "index": 0})

    assert "ALPHA happy hour" in listing.content.decode()
    [row] = csv.DictReader(io.StringIO(exported.content.decode()))
    assert row["offer"] == "ALPHA happy hour" and row["delta"] == "20"
