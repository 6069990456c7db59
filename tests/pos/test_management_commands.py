"""Setting up a till from the shell: a device key printed once, a cashier PIN read without echo."""
import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from pos_integration.cashiers import verify_cashier
from pos_integration.models import PosDevice
from pos_integration.services import authenticate_device
from tests.factories import build_world

pytestmark = pytest.mark.django_db


def run(*args, stdin: str = "") -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_register_prints_a_working_key_once_and_revoke_stops_it():
    world = build_world()
    output = run("pos_device", "register", "--store", str(world.store.pk), "--name", "Front counter")
    key = output.split("store it in the till now): ")[1].strip()
    device = authenticate_device(key)
    assert device is not None and device.name == "Front counter" and device.store == world.store
    rotated = run("pos_device", "rotate", "--device", str(device.pk)).split("now): ")[1].strip()
    assert authenticate_device(key) is None and authenticate_device(rotated) == device
    run("pos_device", "revoke", "--device", str(device.pk))
    assert authenticate_device(rotated) is None
    with pytest.raises(CommandError):
        run("pos_device", "register", "--store", "999999", "--name", "x")


def test_set_cashier_pin_makes_a_cashier_who_can_sign_in(monkeypatch):
    world = build_world()
    get_user_model().objects.create_user(username="noor", first_name="Noor")
    monkeypatch.setattr("sys.stdin", io.StringIO("5831\n"))
    output = run("set_cashier_pin", "--merchant", world.merchant.slug, "--user", "noor", "--pin-stdin")
    assert "PIN set for Noor" in output and "5831" not in output
    device = PosDevice.objects.create(merchant=world.merchant, store=world.store, name="t", key_prefix="p", key_hash="")
    staff_id = int(output.split("cashier id ")[1].split(")")[0])
    assert verify_cashier(device, staff_id, "5831").user.username == "noor"
    monkeypatch.setattr("sys.stdin", io.StringIO("1111\n"))
    with pytest.raises(CommandError, match="repeated or running"):
        run("set_cashier_pin", "--merchant", world.merchant.slug, "--user", "noor", "--pin-stdin")
