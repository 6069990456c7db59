"""The CRM delivery engine against a fake CRM on a real socket: fan-out, batches, retries with
backoff and Retry-After, dead letters, per-customer order, pause, and shipping on commit.

The stand-in connector (`crm_test_connector`) keeps vendor details out; the engine is driven as the
worker drives it (`fan_out`, then `deliver_batch`), with `now=` moved forward instead of sleeping.
"""
import datetime as dt
import email.utils
import random
from collections import Counter

import pytest
from django.db import transaction
from django.utils import timezone

from config.celery import app as celery_app
from core.errors import ValidationFailed
from crm_sync import fanout, registry
from crm_sync.connections import set_paused
from crm_sync.delivery import (
    BACKOFF_BASE_SECONDS,
    BACKOFF_CAP_SECONDS,
    backoff_seconds,
    deliver_batch,
    retry_dead_letters,
)
from crm_sync.fanout import SETTLE, fan_out
from crm_sync.models import CrmDelivery
from crm_sync.outbox import forget_connected_merchants
from crm_sync.tasks import deliver_merchant_task
from tests.crm.crm_test_connector import DOTTED_PATH, connect
from tests.crm.fake_crm import FakeCrm
from tests.factories import build_world, make_card
from tests.wallet.helpers import buy
from wallet.models import Card, DomainEvent

API_KEY = "sk-test-0123456789"
SECOND = dt.timedelta(seconds=1)


@pytest.fixture
def crm(settings):
    """A running fake CRM, with the stand-in connector installed for this test only."""
    settings.TESSERA_CRM_CONNECTORS = [DOTTED_PATH]
    registry.reset()
    forget_connected_merchants()
    fake = FakeCrm(api_key=API_KEY).start()
    yield fake
    fake.stop()
    registry.reset()
    forget_connected_merchants()


def event_ids(merchant, **filters) -> list[int]:
    return list(DomainEvent.objects.filter(merchant=merchant, **filters).order_by("id").values_list("id", flat=True))


def statuses(connection) -> dict[str, int]:
    return dict(Counter(CrmDelivery.objects.filter(connection=connection).values_list("status", flat=True)))


def deliver_everything(connection, now: dt.datetime, *, rounds: int = 500) -> dt.datetime:
    """Fan out, then send batches, jumping the clock to the next due retry, until nothing is pending."""
    fan_out(connection.pk, now=now)
    for _ in range(rounds):
        report = deliver_batch(connection.pk, now=now)
        pending = CrmDelivery.objects.filter(connection=connection, status=CrmDelivery.Status.PENDING)
        if not pending.exists():
            return now
        if report.sent == 0:
            later = pending.filter(next_attempt_at__gt=now).order_by("next_attempt_at").first()
            assert later is not None, f"due deliveries are never sent: {statuses(connection)}"
            now = later.next_attempt_at
    raise AssertionError(f"deliveries never settled: {statuses(connection)}")


def received(crm) -> list[int]:
    return sorted(int(i) for i in crm.receipts)


# -- fan-out -------------------------------------------------------------------------------------


def test_fan_out_creates_one_delivery_per_event_of_the_enabled_types(crm, world):
    purchases_only = connect(world.merchant, crm.url, API_KEY, event_types=["wallet.purchase.recorded"])
    everything = connect(world.merchant, crm.url, API_KEY)
    buy(world.card, 1000)
    buy(world.card, 2000)
    other = build_world()
    buy(other.card, 500)

    later = timezone.now() + SETTLE + SECOND
    assert fan_out(purchases_only.pk, now=later) == 2
    assert fan_out(everything.pk, now=later) == len(event_ids(world.merchant))
    assert fan_out(everything.pk, now=later) == 0  # nothing twice

    assert list(CrmDelivery.objects.filter(connection=purchases_only).values_list("event_id", flat=True)) == \
        event_ids(world.merchant, event_type="wallet.purchase.recorded")
    assert list(CrmDelivery.objects.filter(connection=everything).values_list("event_id", flat=True)) == \
        event_ids(world.merchant)


def _late_event(card, event_id: int, **fields) -> DomainEvent:
    return DomainEvent.objects.create(
        id=event_id, event_type="wallet.points.changed", merchant_id=card.merchant_id,
        customer_id=card.wallet.customer_id, card_id=card.pk, payload={"delta": 1}, occurred_at=timezone.now(),
        **fields,
    )


def test_fan_out_does_not_move_its_mark_past_events_younger_than_settle(crm, world):
    connection = connect(world.merchant, crm.url, API_KEY)
    buy(world.card, 1000)
    settled_ids = event_ids(world.merchant)
    young = _late_event(world.card, settled_ids[-1] + 10, recorded_at=timezone.now() + dt.timedelta(minutes=2))

    fan_out(connection.pk, now=timezone.now() + SETTLE + SECOND)

    connection.refresh_from_db()
    assert connection.scanned_event_id == settled_ids[-1]  # up to the settled ones, not the young one
    assert CrmDelivery.objects.filter(connection=connection, event=young).exists()  # but it is sent already


def test_an_event_committed_late_with_a_lower_id_is_still_fanned_out(crm, world):
    connection = connect(world.merchant, crm.url, API_KEY)
    now = timezone.now()
    highest = event_ids(world.merchant)[-1]
    seen_first = _late_event(world.card, highest + 1_000_000)
    fan_out(connection.pk, now=now)

    committed_late = _late_event(world.card, highest + 500_000)  # its id was taken before seen_first's
    fan_out(connection.pk, now=now)
    assert CrmDelivery.objects.filter(connection=connection, event=committed_late).exists()
    fan_out(connection.pk, now=now + SETTLE + SECOND)

    connection.refresh_from_db()
    assert connection.scanned_event_id == seen_first.pk
    fanned_out = set(CrmDelivery.objects.filter(connection=connection).values_list("event_id", flat=True))
    assert fanned_out == set(event_ids(world.merchant))
    assert {committed_late.pk, seen_first.pk} <= fanned_out


def test_fan_out_counts_only_the_deliveries_it_created(crm, world):
    connection = connect(world.merchant, crm.url, API_KEY)
    now = timezone.now()  # every event is younger than SETTLE, so both scans read them
    assert fan_out(connection.pk, now=now) == len(event_ids(world.merchant))

    assert fan_out(connection.pk, now=now) == 0


def test_fan_out_sees_events_beyond_one_scan_page_before_they_settle(crm, world, monkeypatch):
    connection = connect(world.merchant, crm.url, API_KEY)
    for amount in (100, 200, 300):
        buy(world.card, amount)
    monkeypatch.setattr(fanout, "SCAN_LIMIT", 3)  # stands for 5,000 events written within a minute
    now = timezone.now()

    assert fan_out(connection.pk, now=now) == len(event_ids(world.merchant)) == 7  # one call reads every page
    assert fan_out(connection.pk, now=now) == 0


# -- failures and retries ------------------------------------------------------------------------


def test_a_crm_failing_with_500_then_recovering_gets_every_event_once_in_order(crm, world):
    connection = connect(world.merchant, crm.url, API_KEY)
    second = make_card(world.program)
    for amount in (1200, 800, 3000):
        buy(world.card, amount)
        buy(second, amount // 2)
    crm.fail(500, times=3)

    deliver_everything(connection, timezone.now())

    assert statuses(connection) == {"delivered": len(event_ids(world.merchant))}
    assert received(crm) == event_ids(world.merchant)
    assert set(crm.receipts.values()) == {1}
    for card in (world.card, second):
        card.refresh_from_db()
        customer_id = card.wallet.customer_id
        assert crm.arrivals_of(customer_id) == [str(i) for i in event_ids(world.merchant, customer_id=customer_id)]
        assert crm.state()["contacts"][str(customer_id)]["card"]["balance"] == card.balance
    assert len(crm.batch_requests()) > 3  # three refusals, then the batches that went through
    # What each row says afterwards: the tries it took (all four for the first batch's events, one
    # for the rest), when it arrived, and no error left over from the refusals.
    rows = CrmDelivery.objects.filter(connection=connection)
    assert not rows.filter(delivered_at__isnull=True).exists() and not rows.exclude(last_error="").exists()
    assert set(rows.values_list("attempts", flat=True)) <= {1, 4} and rows.filter(attempts=4).exists()


def _http_date_in(seconds: int, now: dt.datetime) -> str:
    """An HTTP-date at least `seconds` after `now` (the format has whole seconds: round up)."""
    return email.utils.format_datetime(now.replace(microsecond=0) + dt.timedelta(seconds=seconds + 1), usegmt=True)


@pytest.mark.parametrize("retry_after", ["7", "http-date"])
def test_a_429_holds_the_next_attempt_back_for_retry_after(crm, world, retry_after):
    connection = connect(world.merchant, crm.url, API_KEY)
    buy(world.card, 1000)
    now = timezone.now()
    # The date is read against the clock when the answer arrives: one second of slack for the test's pace.
    wait = 7 if retry_after == "7" else 30
    crm.fail(429, retry_after=retry_after if retry_after == "7" else _http_date_in(31, now))
    fan_out(connection.pk, now=now)

    report = deliver_batch(connection.pk, now=now)

    pending = CrmDelivery.objects.filter(connection=connection)
    assert report.retrying == report.sent == pending.count() > 0
    assert all(d.next_attempt_at >= now + dt.timedelta(seconds=wait) for d in pending)
    assert deliver_batch(connection.pk, now=now + dt.timedelta(seconds=wait) - SECOND).sent == 0
    assert len(crm.batch_requests()) == 1
    deliver_everything(connection, now)
    assert received(crm) == event_ids(world.merchant)


@pytest.mark.parametrize("attempts", [0, 1, 3, 6, 12])
def test_full_jitter_backoff_stays_within_its_bound_and_is_not_constant(attempts):
    bound = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** attempts)
    rng = random.Random(attempts)
    samples = [backoff_seconds(attempts, rng=rng) for _ in range(1000)]

    assert all(0 <= s <= bound for s in samples)
    assert len(set(samples)) > 990  # no synchronised herd of retries
    assert max(samples) > 0.9 * bound and min(samples) < 0.1 * bound  # spread over the whole range
    assert min(backoff_seconds(attempts, retry_after=bound + 7, rng=rng) for _ in range(100)) == bound + 7


def test_a_crm_that_stays_down_dead_letters_then_retry_delivers_each_event_once(crm, world):
    connection = connect(world.merchant, crm.url, API_KEY, max_attempts=3)
    buy(world.card, 1000)
    crm.down(503)

    now = deliver_everything(connection, timezone.now())

    dead = CrmDelivery.objects.filter(connection=connection)
    assert {(d.status, d.attempts) for d in dead} == {("dead", 3)}
    assert all("Unavailable: The CRM answered 503" in d.last_error for d in dead)
    assert crm.receipts == {}

    crm.up()
    assert retry_dead_letters(connection.pk, now=now) == dead.count()
    deliver_everything(connection, now)
    assert statuses(connection) == {"delivered": dead.count()}
    assert received(crm) == event_ids(world.merchant)
    assert set(crm.receipts.values()) == {1}


def test_bad_credentials_dead_letter_the_whole_batch_at_once_with_a_clear_error(crm, world):
    connection = connect(world.merchant, crm.url, "sk-revoked")
    buy(world.card, 1000)
    fan_out(connection.pk)

    report = deliver_batch(connection.pk)

    assert report.dead == report.sent == len(event_ids(world.merchant))
    assert {d.last_error for d in CrmDelivery.objects.filter(connection=connection)} == {
        'Rejected: The CRM answered 401: {"error": "unauthorized"}'
    }
    connection.refresh_from_db()
    assert "401" in connection.last_error
    assert crm.receipts == {}


def test_a_timeout_is_retried_and_not_dead_lettered(crm, world):
    connection = connect(world.merchant, crm.url, API_KEY, timeout_seconds=0.3)
    buy(world.card, 1000)
    crm.hang(1.5)
    now = timezone.now()
    fan_out(connection.pk, now=now)

    report = deliver_batch(connection.pk, now=now)

    assert report.retrying == report.sent > 0
    assert {d.last_error for d in CrmDelivery.objects.filter(connection=connection)} == {
        "Unavailable: No answer within 0.3 s (ReadTimeout)."
    }
    deliver_everything(connection, now)
    assert received(crm) == event_ids(world.merchant)


def test_the_engine_never_sends_more_than_the_connectors_batch_size(crm, world):
    connection = connect(world.merchant, crm.url, API_KEY, batch_size=2)
    for amount in (100, 200, 300):
        buy(world.card, amount)

    deliver_everything(connection, timezone.now())

    assert [len(batch) for batch in crm.batches] == [2, 2, 2, 1]  # 7 events: enrolled + 3 x (points, purchase)
    assert [i for batch in crm.batches for i in batch] == [str(i) for i in event_ids(world.merchant)]
    assert {r["headers"]["authorization"] for r in crm.requests} == {f"Bearer {API_KEY}"}


def test_connection_settings_are_checked_and_name_the_bad_field(crm, world):
    with pytest.raises(ValidationFailed) as missing:
        connect(world.merchant, crm.url, "")
    assert missing.value.fields == {"api_key": ["This field is required."]}
    with pytest.raises(ValidationFailed) as too_big:
        connect(world.merchant, crm.url, API_KEY, batch_size=101)
    assert list(too_big.value.fields) == ["batch_size"]


# -- per-customer order and pausing --------------------------------------------------------------


def test_a_customer_waiting_for_a_retry_holds_back_their_later_events_but_not_others(crm, world):
    connection = connect(world.merchant, crm.url, API_KEY)
    other = make_card(world.program)
    alice, bob = world.customer.pk, other.wallet.customer_id
    crm.reject_customer(alice)
    now = timezone.now()
    fan_out(connection.pk, now=now)
    deliver_batch(connection.pk, now=now)
    assert crm.arrivals_of(alice) == [] and crm.arrivals_of(bob) != []

    buy(world.card, 1000)
    buy(other, 1000)
    fan_out(connection.pk, now=now)
    deliver_batch(connection.pk, now=now)

    assert crm.arrivals_of(alice) == []  # Alice's new events wait behind her first one
    assert crm.arrivals_of(bob) == [str(i) for i in event_ids(world.merchant, customer_id=bob)]
    deliver_everything(connection, now)
    assert crm.arrivals_of(alice) == [str(i) for i in event_ids(world.merchant, customer_id=alice)]


def test_a_customer_with_many_queued_events_does_not_block_other_customers(crm, world):
    connection = connect(world.merchant, crm.url, API_KEY, batch_size=1)
    for amount in (100, 200, 300):
        buy(world.card, amount)  # Alice: enrolled + 6 events
    other = make_card(world.program)  # Bob: enrolled, after all of Alice's
    crm.reject_customer(world.customer.pk)
    now = timezone.now()
    fan_out(connection.pk, now=now)
    deliver_batch(connection.pk, now=now)  # Alice's first event fails: she waits for its retry

    deliver_batch(connection.pk, now=now)

    assert crm.arrivals_of(other.wallet.customer_id) != []  # found past Alice's 6 queued events
    assert len(crm.arrivals_of(world.customer.pk)) == 0


def test_a_paused_connection_sends_nothing_and_sends_everything_in_order_on_resume(crm, world):
    connection = connect(world.merchant, crm.url, API_KEY)
    set_paused(connection, True)
    buy(world.card, 1000)
    buy(world.card, 2500)
    now = timezone.now()

    assert fan_out(connection.pk, now=now) == len(event_ids(world.merchant))  # events keep queueing
    assert deliver_batch(connection.pk, now=now).sent == 0
    assert crm.requests == []

    set_paused(connection, False)
    deliver_everything(connection, now)
    assert crm.arrivals == [str(i) for i in event_ids(world.merchant)]


# -- shipping on commit --------------------------------------------------------------------------


@pytest.fixture
def enqueued(monkeypatch):
    """Merchant ids the outbox listener enqueued; the task then runs in-process (eager), for real."""
    calls = []
    original = deliver_merchant_task.delay

    def delay(merchant_id):
        calls.append(merchant_id)
        return original(merchant_id)

    monkeypatch.setattr(deliver_merchant_task, "delay", delay)
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
    return calls


def test_events_are_shipped_only_after_commit_and_only_for_connected_merchants(
    crm, world, enqueued, django_capture_on_commit_callbacks
):
    connect(world.merchant, crm.url, API_KEY)
    unconnected = build_world()

    with django_capture_on_commit_callbacks(execute=True):
        buy(world.card, 1000)
        assert enqueued == [] and crm.requests == []
    with django_capture_on_commit_callbacks(execute=True):
        buy(unconnected.card, 1000)

    assert set(enqueued) == {world.merchant.pk}
    assert received(crm) == event_ids(world.merchant)


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_purchase_leaves_no_outbox_row_no_delivery_and_sends_nothing(crm, enqueued):
    world = build_world()
    connection = connect(world.merchant, crm.url, API_KEY)
    forget_connected_merchants()  # the enrolment's commit already asked, before the connection existed
    before = event_ids(world.merchant)

    with pytest.raises(RuntimeError), transaction.atomic():
        buy(world.card, 1000)
        raise RuntimeError("the till crashed before commit")

    assert event_ids(world.merchant) == before
    assert enqueued == []
    fan_out(connection.pk)
    assert set(CrmDelivery.objects.filter(connection=connection).values_list("event_id", flat=True)) == set(before)
    assert Card.objects.get(pk=world.card.pk).balance == 0

    buy(world.card, 1000)  # the control: a committed purchase is shipped at once
    assert enqueued and received(crm) == event_ids(world.merchant)
