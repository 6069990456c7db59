"""The benchmark's world, seeded once per run into its scratch database, and the credentials the load
generator sends: pass tokens (minted just before each scenario, since they rotate), customer JWTs.

One merchant, store and program (tiers Silver and Gold, three rewards), one till (device key) and
one cashier with a PIN per connection, and --cards customers with a card each. Customers, wallets and
cards are written in bulk; each card opens with one adjustment of OPENING_POINTS in the ledger (so
redemptions have points to spend and the balance equals the sum of the entries), and the first
HISTORY_CARDS cards get HISTORY_ENTRIES more entries so a history page has a page to show.
"""
import secrets
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

OPENING_POINTS = 1_000_000
HISTORY_CARDS = 500
HISTORY_ENTRIES = 40
PIN = "4817"
AMOUNT = 1234  # minor units: 12 points, 24 on Gold


@dataclass
class Device:
    pk: int
    key: str
    cashier_id: int


@dataclass
class World:
    merchant_id: int
    store_id: int
    program_id: int
    currency: str
    reward_id: int
    signing_key_pk: int
    card_ids: list[int]  # contiguous, ascending
    card_numbers: dict[int, str]
    user_ids: dict[int, int]  # card id -> user id
    devices: list[Device] = field(default_factory=list)

    @property
    def hot_card(self) -> int:
        return self.card_ids[-1]


def card_number(n: int) -> str:
    from wallet import rules

    body = "9" + f"{n:014d}"  # a prefix of its own: never one new_card_number() draws
    return body + rules.luhn_check_digit(body)


def seed(cards: int, devices: int) -> World:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.db import connection, transaction

    from merchants.models import Reward, StaffMember, Tier
    from pos_integration.cashiers import set_pin
    from pos_integration.services import register_device
    from tests.factories import make_merchant, make_program, make_store
    from wallet.models import Card, Customer, LedgerEntry, Wallet
    from wallet.passes import keys

    user_model = get_user_model()
    merchant = make_merchant(name="Bench counter")
    store = make_store(merchant)
    program = make_program(merchant)
    Tier.objects.create(program=program, name="Silver", threshold=0, multiplier=Decimal("1"))
    gold = Tier.objects.create(program=program, name="Gold", threshold=500, multiplier=Decimal("2"))
    rewards = [Reward.objects.create(program=program, name=name, points_cost=cost)
               for name, cost in (("Coffee", 100), ("Cake", 250), ("Lunch", 1000))]
    signing_key = keys.active_key(merchant)

    issued, cashier_hash = [], None
    for n in range(devices):
        device = register_device(store, f"Till {n + 1}")
        user = user_model.objects.create_user(username=f"bench-cashier-{n}-{uuid.uuid4().hex[:6]}")
        staff = StaffMember.objects.create(merchant=merchant, user=user, role=StaffMember.Role.CASHIER)
        if cashier_hash is None:  # one argon2 hash, shared: hashing 32 PINs would only slow the seed
            set_pin(staff, PIN)
            cashier_hash = StaffMember.objects.values_list("pin_hash", flat=True).get(pk=staff.pk)
        else:
            StaffMember.objects.filter(pk=staff.pk).update(pin_hash=cashier_hash)
        issued.append(Device(device.device.pk, device.key, staff.pk))

    unusable = make_password(None)
    tag = secrets.token_hex(3)
    with transaction.atomic():
        users = user_model.objects.bulk_create(
            [user_model(username=f"bench-{tag}-{n}", first_name=f"Ada{n}", password=unusable) for n in range(cards)],
            batch_size=5000,
        )
        customers = Customer.objects.bulk_create([Customer(user=user) for user in users], batch_size=5000)
        wallets = Wallet.objects.bulk_create([Wallet(customer=c) for c in customers], batch_size=5000)
        created = Card.objects.bulk_create(
            [Card(wallet=wallet, program=program, merchant_id=merchant.pk, number=card_number(n), tier=gold,
                  balance=OPENING_POINTS, lifetime_points=OPENING_POINTS)
             for n, wallet in enumerate(wallets)],
            batch_size=5000,
        )
    card_ids = sorted(card.pk for card in created)
    assert card_ids == list(range(card_ids[0], card_ids[0] + len(card_ids))), "cards must have contiguous ids"
    table = LedgerEntry._meta.db_table
    with connection.cursor() as cursor:
        # The opening balance, then +7/-7 pairs for the history pages: balances stay OPENING_POINTS.
        cursor.execute(
            f"""
            INSERT INTO {table} (merchant_id, card_id, kind, delta, balance_after, reason, source, occurred_at,
                                 created_at, offer_title)
            SELECT %(merchant)s, id, 'adjust', %(opening)s, %(opening)s, 'Bench opening balance', 'system',
                   now() - interval '30 days', now(), ''
            FROM {Card._meta.db_table} WHERE merchant_id = %(merchant)s
            """,
            {"merchant": merchant.pk, "opening": OPENING_POINTS},
        )
        cursor.execute(
            f"""
            INSERT INTO {table} (merchant_id, card_id, kind, delta, balance_after, reason, source, occurred_at,
                                 created_at, offer_title)
            SELECT %(merchant)s, c.id, 'adjust', CASE WHEN i %% 2 = 1 THEN 7 ELSE -7 END,
                   %(opening)s + CASE WHEN i %% 2 = 1 THEN 7 ELSE 0 END, 'Bench history', 'system',
                   now() - interval '29 days' + make_interval(hours => i), now(), ''
            FROM (SELECT id FROM {Card._meta.db_table} WHERE merchant_id = %(merchant)s ORDER BY id LIMIT %(cards)s) c
            CROSS JOIN generate_series(1, %(entries)s) AS i
            """,
            {"merchant": merchant.pk, "opening": OPENING_POINTS, "cards": HISTORY_CARDS, "entries": HISTORY_ENTRIES},
        )
        cursor.execute("VACUUM ANALYZE")
    rows = Card.objects.filter(pk__in=card_ids).values_list("pk", "number", "wallet__customer__user_id")
    numbers = {pk: number for pk, number, _ in rows}
    users_by_card = {pk: user for pk, _, user in rows}
    connection.close()
    return World(
        merchant_id=merchant.pk, store_id=store.pk, program_id=program.pk, currency=merchant.currency,
        reward_id=rewards[0].pk, signing_key_pk=signing_key.pk, card_ids=card_ids, card_numbers=numbers,
        user_ids=users_by_card, devices=issued,
    )


def mint_tokens(world: World, card_ids: list[int], step_offset: int = 0) -> list[str]:
    """Pass tokens of these cards for the current time step (+ offset), signed with the merchant's key:
    what `tokens.issue_token` makes, with the key loaded once instead of once per card."""
    from merchants.models import Merchant, Program
    from wallet.passes import keys, tokens

    period = Program.objects.values_list("token_period_seconds", flat=True).get(pk=world.program_id)
    key = keys.active_key(Merchant.objects.get(pk=world.merchant_id))
    private = keys.private_key_of(key)
    step = tokens.time_step(None, period) + step_offset
    minted = []
    for card_id in card_ids:
        signed = tokens._payload(key.key_id, card_id, step)  # noqa: SLF001 - the token format, made in bulk
        minted.append(keys.b64url(signed + private.sign(signed)))
    return minted


def mint_jwts(world: World, card_ids: list[int]) -> list[str]:
    from django.contrib.auth import get_user_model
    from rest_framework_simplejwt.tokens import AccessToken

    users = get_user_model().objects.in_bulk([world.user_ids[card_id] for card_id in card_ids])
    return [str(AccessToken.for_user(users[world.user_ids[card_id]])) for card_id in card_ids]
