"""Rotating pass tokens: what a cashier's scan accepts and refuses, online and offline, across key
rotation and revocation; and the pass-token endpoint."""
import base64
import time

import pytest
from cryptography.fernet import InvalidToken

from tests.api.conftest import client_for
from tests.factories import build_world, make_card, make_customer
from wallet.models.passes import PassSigningKey
from wallet.passes import keys, tokens
from wallet.services import leave_program

pytestmark = pytest.mark.django_db

NOW = 1_749_999_995.0  # 5 s into a 30 s period (steps start at multiples of 30 s)
assert NOW % 30 == 5


def offline_keys(merchant) -> dict:
    return {k["key_id"]: base64.urlsafe_b64decode(k["public_key"] + "==") for k in keys.public_keys(merchant)}


def flip_bit(token: str, bit: int) -> str:
    raw = bytearray(keys.b64url_decode(token))
    raw[bit // 8] ^= 1 << (bit % 8)
    return keys.b64url(bytes(raw))


def test_fresh_token_verifies_online_and_is_compact(world):
    token = tokens.issue_token(world.card, NOW)
    assert len(token) <= 120 and keys.b64url_decode(token)[0] == tokens.VERSION
    check = tokens.verify_token(token, NOW + 1, merchant=world.merchant)
    assert check.ok and check.card == world.card


def test_token_changes_each_period_so_a_screenshot_goes_stale(world):
    first = tokens.issue_token(world.card, NOW)
    assert tokens.issue_token(world.card, NOW + 20) == first  # same period, same QR
    assert tokens.issue_token(world.card, NOW + 30) != first
    period, drift = world.program.token_period_seconds, world.program.token_drift_steps
    assert tokens.verify_token(first, NOW + period * drift).ok  # one step of drift is tolerated
    assert tokens.verify_token(first, NOW + period * (drift + 1)).reason == tokens.EXPIRED
    assert tokens.verify_token(first, NOW - period * (drift + 1)).reason == tokens.EXPIRED  # from the future


def test_program_period_and_drift_are_honoured(db):
    world = build_world(token_period_seconds=60, token_drift_steps=0)
    token = tokens.issue_token(world.card, 1_750_000_025.0)  # the 60 s step [1_750_000_020, 1_750_000_080)
    assert tokens.verify_token(token, 1_750_000_079.0).ok
    assert tokens.verify_token(token, 1_750_000_081.0).reason == tokens.EXPIRED


@pytest.mark.parametrize("bit", [0, 8 * 3, 8 * 6, 8 * 9, 8 * 20, 8 * 60 + 5])
def test_any_flipped_bit_is_rejected(world, bit):
    token = tokens.issue_token(world.card, NOW)
    check = tokens.verify_token(flip_bit(token, bit), NOW)
    assert not check.ok
    assert check.reason in {tokens.MALFORMED, tokens.UNKNOWN_KEY, tokens.BAD_SIGNATURE}


def test_flipped_bit_in_card_id_or_signature_is_bad_signature(world):
    token = tokens.issue_token(world.card, NOW)
    assert tokens.verify_token(flip_bit(token, 8 * 5 + 1), NOW).reason == tokens.BAD_SIGNATURE  # card id
    assert tokens.verify_token(flip_bit(token, 8 * 30), NOW).reason == tokens.BAD_SIGNATURE  # signature
    offline = tokens.verify_token_offline(flip_bit(token, 8 * 5 + 1), offline_keys(world.merchant), 30, 1, NOW)
    assert offline.reason == tokens.BAD_SIGNATURE


@pytest.mark.parametrize("garbage", ["", "AQ", "not a token", "AQ" + "A" * 200, "AQ==", "\x00" * 100, None, 42])
def test_garbage_is_malformed(db, garbage):
    assert tokens.verify_token(garbage, NOW).reason == tokens.MALFORMED


def test_token_of_closed_card_is_rejected(world):
    token = tokens.issue_token(world.card, NOW)
    leave_program(world.card)
    assert tokens.verify_token(token, NOW).reason == tokens.CARD_CLOSED


def test_token_of_deleted_key_is_unknown_key(world):
    token = tokens.issue_token(world.card, NOW)
    PassSigningKey.objects.all().delete()
    assert tokens.verify_token(token, NOW).reason == tokens.UNKNOWN_KEY


def test_token_signed_by_revoked_key_is_rejected_and_a_new_key_takes_over(world):
    token = tokens.issue_token(world.card, NOW)
    old = keys.active_key(world.merchant)
    keys.revoke_key(old)
    assert tokens.verify_token(token, NOW).reason == tokens.REVOKED_KEY
    assert old.key_id not in {k["key_id"] for k in keys.public_keys(world.merchant)}  # devices drop it
    fresh = tokens.issue_token(world.card, NOW)
    assert keys.active_key(world.merchant).key_id != old.key_id
    assert tokens.verify_token(fresh, NOW).ok


def test_rotation_keeps_tokens_in_flight_valid(world):
    in_flight = tokens.issue_token(world.card, NOW)
    old = keys.active_key(world.merchant)
    new = keys.rotate_key(world.merchant)
    old.refresh_from_db()
    assert old.status == PassSigningKey.Status.RETIRED and old.retired_at is not None
    assert new.status == PassSigningKey.Status.ACTIVE and new.key_id != old.key_id
    assert PassSigningKey.objects.filter(merchant=world.merchant, status="active").count() == 1
    assert tokens.verify_token(in_flight, NOW + 2).ok  # rotated out a moment ago, still in its window
    assert tokens.verify_token_offline(in_flight, offline_keys(world.merchant), 30, 1, NOW + 2).ok
    assert tokens.verify_token(in_flight, NOW + 60).reason == tokens.EXPIRED  # then it ages out
    after = tokens.issue_token(world.card, NOW + 2)
    assert after != in_flight and tokens.verify_token(after, NOW + 2).key_id == new.key_id


def test_token_from_merchant_a_at_merchant_b_is_wrong_merchant(world):
    other = build_world()
    token = tokens.issue_token(world.card, NOW)
    assert tokens.verify_token(token, NOW, merchant=other.merchant).reason == tokens.WRONG_MERCHANT
    # and B's published keys cannot vouch for it offline
    keys.active_key(other.merchant)
    offline = tokens.verify_token_offline(token, offline_keys(other.merchant), 30, 1, NOW)
    assert offline.reason == tokens.UNKNOWN_KEY


def test_fresh_token_verifies_offline_with_only_the_public_key(world):
    token = tokens.issue_token(world.card, NOW)
    published = keys.public_keys(world.merchant)
    assert set(published[0]) == {"key_id", "public_key", "status"}
    check = tokens.verify_token_offline(token, {published[0]["key_id"]: published[0]["public_key"]}, 30, 1, NOW)
    assert check.ok and check.card_id == world.card.pk
    assert tokens.verify_token_offline(token, offline_keys(world.merchant), 30, 1, NOW + 90).reason == tokens.EXPIRED


def test_key_of_another_merchant_cannot_sign_for_this_card(world):
    """A key id swapped for another merchant's (still a genuine key) fails the signature."""
    other = build_world()
    token = tokens.issue_token(world.card, NOW)
    other_key = keys.active_key(other.merchant)
    raw = bytearray(keys.b64url_decode(token))
    raw[1:5] = bytes.fromhex(other_key.key_id)
    assert tokens.verify_token(keys.b64url(bytes(raw)), NOW).reason == tokens.BAD_SIGNATURE


def test_large_card_ids_round_trip(world):
    card_id = 2**63 - 1
    token = keys.b64url(
        tokens._payload(keys.active_key(world.merchant).key_id, card_id, tokens.time_step(NOW, 30))
        + keys.private_key_of(keys.active_key(world.merchant)).sign(
            tokens._payload(keys.active_key(world.merchant).key_id, card_id, tokens.time_step(NOW, 30))
        )
    )
    assert len(token) <= 120
    assert tokens.verify_token_offline(token, offline_keys(world.merchant), 30, 1, NOW).card_id == card_id
    assert tokens.verify_token(token, NOW).reason == tokens.UNKNOWN_CARD


def test_private_key_is_encrypted_at_rest_with_the_signing_key(world, settings):
    key = keys.active_key(world.merchant)
    stored = PassSigningKey.objects.get(pk=key.pk).private_key_encrypted
    raw_private = keys.private_key_of(key).private_bytes_raw()
    assert raw_private not in stored.encode() and keys.b64url(raw_private) not in stored
    settings.SIGNING_KEY = "another-signing-key-of-at-least-32-characters"
    with pytest.raises(InvalidToken):
        keys.private_key_of(key)


def test_first_key_is_created_once(world):
    first = keys.active_key(world.merchant)
    assert keys.active_key(world.merchant).pk == first.pk
    assert PassSigningKey.objects.filter(merchant=world.merchant).count() == 1


# The endpoint ---------------------------------------------------------------------------------------

def test_owner_gets_a_token_that_verifies_now(world):
    response = client_for(world.customer.user).get(f"/api/v1/cards/{world.card.pk}/pass-token/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"token", "expires_at", "period_seconds", "qr_png_url", "qr_svg_url"}
    assert body["period_seconds"] == 30
    assert response["Cache-Control"] == "no-store"
    check = tokens.verify_token(body["token"], merchant=world.merchant)
    assert check.ok and check.card == world.card
    from django.utils.dateparse import parse_datetime

    left = parse_datetime(body["expires_at"]).timestamp() - time.time()
    assert -1 < left <= 30  # the period may end between the answer and this line


def test_another_customers_card_is_not_found(world):
    response = client_for(make_customer().user).get(f"/api/v1/cards/{world.card.pk}/pass-token/")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert client_for().get(f"/api/v1/cards/{world.card.pk}/pass-token/").status_code == 401


def test_two_cards_of_one_customer_get_tokens_for_themselves(world):
    other = build_world()
    second = make_card(other.program, world.customer)
    response = client_for(world.customer.user).get(f"/api/v1/cards/{second.pk}/pass-token/")
    check = tokens.verify_token(response.json()["token"], merchant=other.merchant)
    assert check.ok and check.card == second
