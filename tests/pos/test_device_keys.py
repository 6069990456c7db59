"""POS device keys: shown once, stored as argon2 hashes, revocable and rotatable."""
import pytest

from pos_integration.models import PosDevice
from pos_integration.services import authenticate_device, register_device, revoke_device, rotate_device_key
from tests.factories import build_world, make_merchant, make_store

pytestmark = pytest.mark.django_db


@pytest.fixture
def issued():
    return register_device(make_store(make_merchant()), "Till 1")


def test_key_authenticates_its_device_and_only_a_hash_is_stored(issued):
    assert authenticate_device(issued.key) == issued.device
    stored = PosDevice.objects.get(pk=issued.device.pk)
    assert stored.key_hash.startswith("$argon2")
    secret_part = issued.key.split("_", 2)[2]  # tsk_<prefix>_<secret>; the secret may itself hold "_"
    assert len(secret_part) >= 40
    assert secret_part not in stored.key_hash and secret_part not in str(stored.__dict__)


@pytest.mark.parametrize("mangle", [lambda k: k[:-1] + ("A" if k[-1] != "A" else "B"), lambda k: "", lambda k: "tsk_"])
def test_wrong_keys_authenticate_nothing(issued, mangle):
    assert authenticate_device(mangle(issued.key)) is None


def test_rotation_retires_the_old_key_at_once(issued):
    rotated = rotate_device_key(issued.device)
    assert authenticate_device(issued.key) is None
    assert authenticate_device(rotated.key) == issued.device


def test_revoked_device_key_stops_working(issued):
    revoke_device(issued.device)
    assert authenticate_device(issued.key) is None


def test_a_remembered_key_never_lets_a_forged_one_through():
    """The per-process memo of verified keys is keyed by the stored hash and compares the digest of
    the whole key: a key that shares the prefix but not the secret is still refused."""
    from pos_integration.keys import key_matches

    world = build_world()
    issued = register_device(world.store, "Till")
    assert authenticate_device(issued.key) == issued.device
    assert authenticate_device(issued.key) == issued.device  # from the memo
    forged = issued.key[:-4] + ("AAAA" if not issued.key.endswith("AAAA") else "BBBB")
    assert authenticate_device(forged) is None
    assert not key_matches(forged, issued.device.key_hash)
