"""A counter downloads its merchant's public keys and verifies customers' QR tokens offline."""
import pytest
from rest_framework.test import APIClient

from pos_integration.services import register_device, revoke_device
from tests.factories import build_world
from wallet.passes.keys import b64url_decode, rotate_key
from wallet.passes.tokens import issue_token, verify_token_offline

pytestmark = pytest.mark.django_db


def device_client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Device {key}")
    return client


def offline_check(body, token):
    keys = {k["key_id"]: b64url_decode(k["public_key"]) for k in body["keys"]}
    program = body["programs"][0]
    return verify_token_offline(token, keys, program["token_period_seconds"], program["token_drift_steps"])


def test_device_verifies_its_merchants_tokens_offline_and_not_another_merchants():
    ours, theirs = build_world(), build_world()
    device = register_device(ours.store, "Till 1")
    response = device_client(device.key).get("/api/pos/v1/pass-keys/")
    assert response.status_code == 200
    body = response.json()
    assert "private" not in str(body).lower()
    assert offline_check(body, issue_token(ours.card)).card_id == ours.card.pk
    assert not offline_check(body, issue_token(theirs.card)).ok


def test_rotated_key_is_still_listed_so_passes_in_flight_verify():
    world = build_world()
    device = register_device(world.store, "Till 1")
    token_before_rotation = issue_token(world.card)
    rotate_key(world.merchant)
    body = device_client(device.key).get("/api/pos/v1/pass-keys/").json()
    assert {k["status"] for k in body["keys"]} == {"active", "retired"}
    assert offline_check(body, token_before_rotation).card_id == world.card.pk


def test_without_a_valid_device_key_the_answer_is_401():
    world = build_world()
    device = register_device(world.store, "Till 1")
    revoke_device(device.device)
    for client in (APIClient(), device_client(device.key), device_client("tsk_0000_nope")):
        response = client.get("/api/pos/v1/pass-keys/")
        assert response.status_code == 401 and response.json()["error"]["code"] in {
            "not_authenticated", "authentication_failed"
        }
