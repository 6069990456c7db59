"""The .pkpass: a zip whose manifest covers every file, whose signature verifies, with a store card pass.json."""
import hashlib
import io
import json
import shutil
import subprocess
import zipfile
from decimal import Decimal

import pytest
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID
from django.core.management import CommandError, call_command
from PIL import Image

from merchants.models import Store
from tests.wallet.helpers import buy
from wallet.passes.apple.certificates import load_pass_credentials
from wallet.passes.apple.pkpass import authentication_token, build_pass_json, build_pkpass


@pytest.fixture
def pass_certificates(settings, tmp_path):
    settings.APPLE_WALLET = {
        **settings.APPLE_WALLET,
        "PASS_TYPE_IDENTIFIER": "pass.test.tessera.loyalty",
        "TEAM_IDENTIFIER": "TEAMTEST42",
        "CERTIFICATE_PATH": str(tmp_path / "pass-certificate.pem"),
        "KEY_PATH": str(tmp_path / "pass-key.pem"),
        "KEY_PASSWORD": "",
        "WWDR_CERTIFICATE_PATH": str(tmp_path / "wwdr.pem"),
    }
    call_command("make_dev_pass_certificates", stdout=io.StringIO())
    return tmp_path


def unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_dev_certificates_have_apple_subject_and_refuse_overwrite(pass_certificates):
    credentials = load_pass_credentials()
    subject = credentials.certificate.subject
    assert subject.get_attributes_for_oid(NameOID.USER_ID)[0].value == "pass.test.tessera.loyalty"
    assert subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == "TEAMTEST42"
    assert credentials.certificate.issuer == credentials.wwdr_certificate.subject
    before = (pass_certificates / "pass-key.pem").read_bytes()
    with pytest.raises(CommandError, match="--force"):
        call_command("make_dev_pass_certificates", stdout=io.StringIO())
    assert (pass_certificates / "pass-key.pem").read_bytes() == before
    call_command("make_dev_pass_certificates", "--force", stdout=io.StringIO())
    assert (pass_certificates / "pass-key.pem").read_bytes() != before


def test_manifest_hashes_every_file(world, pass_certificates):
    files = unzip(build_pkpass(world.card))
    manifest = json.loads(files["manifest.json"])
    payload = set(files) - {"manifest.json", "signature"}
    assert set(manifest) == payload
    assert {"pass.json", "icon.png", "icon@2x.png", "icon@3x.png", "logo.png"} <= payload
    for name in payload:
        assert manifest[name] == hashlib.sha1(files[name], usedforsecurity=False).hexdigest(), name
    assert Image.open(io.BytesIO(files["icon@2x.png"])).size == (58, 58)
    assert Image.open(io.BytesIO(files["icon@3x.png"])).size == (87, 87)


def test_signature_is_detached_pkcs7_with_wwdr(world, pass_certificates):
    files = unzip(build_pkpass(world.card))
    certificates = pkcs7.load_der_pkcs7_certificates(files["signature"])
    credentials = load_pass_credentials()
    assert credentials.certificate in certificates
    assert credentials.wwdr_certificate in certificates


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_signature_verifies_against_the_wwdr_chain(world, pass_certificates, tmp_path):
    files = unzip(build_pkpass(world.card))
    (tmp_path / "manifest.json").write_bytes(files["manifest.json"])
    (tmp_path / "signature").write_bytes(files["signature"])

    def verify(content: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["openssl", "smime", "-verify", "-inform", "DER", "-binary", "-in", str(tmp_path / "signature"),
             "-content", str(tmp_path / content), "-CAfile", str(pass_certificates / "wwdr.pem"),
             "-purpose", "any", "-out", "/dev/null"],
            capture_output=True, text=True, check=False,
        )

    good = verify("manifest.json")
    assert good.returncode == 0, good.stderr
    (tmp_path / "tampered.json").write_bytes(files["manifest.json"].replace(b"pass.json", b"pass.jsoN"))
    assert verify("tampered.json").returncode != 0
    # Another CA (not the one that issued the pass certificate) must not validate the chain.
    other = tmp_path / "other"
    other.mkdir()
    from wallet.passes.apple.certificates import generate_dev_set
    (other / "wwdr.pem").write_bytes(generate_dev_set("pass.x", "T").wwdr_pem)
    wrong_ca = subprocess.run(
        ["openssl", "smime", "-verify", "-inform", "DER", "-binary", "-in", str(tmp_path / "signature"),
         "-content", str(tmp_path / "manifest.json"), "-CAfile", str(other / "wwdr.pem"), "-purpose", "any",
         "-out", "/dev/null"],
        capture_output=True, text=True, check=False,
    )
    assert wrong_ca.returncode != 0


def test_pass_json_is_a_store_card_with_balance_and_tier(world, pass_certificates, settings):
    settings.TESSERA_PUBLIC_URL = "https://wallet.example.test"
    world.merchant.brand_color = "#2E2118"
    world.merchant.save()
    buy(world.card, 60000)  # 600.00 EUR, 600 points: Gold from 500 lifetime points
    world.card.refresh_from_db()
    world.card.pass_message = "Double points this weekend"
    world.card.save()
    data = json.loads(unzip(build_pkpass(world.card))["pass.json"])

    assert data["formatVersion"] == 1
    assert data["passTypeIdentifier"] == "pass.test.tessera.loyalty"
    assert data["teamIdentifier"] == "TEAMTEST42"
    assert data["serialNumber"] == world.card.number
    assert data["organizationName"] == world.merchant.name
    assert data["description"]
    assert data["backgroundColor"] == "rgb(46, 33, 24)"
    assert data["foregroundColor"] == "rgb(255, 255, 255)"
    assert data["labelColor"].startswith("rgb(")
    assert data["webServiceURL"] == "https://wallet.example.test/passkit/"
    assert len(data["authenticationToken"]) >= 16
    assert data["authenticationToken"] == authentication_token(world.card.number)

    card = data["storeCard"]
    assert card["primaryFields"][0]["value"] == world.card.balance == 600
    assert card["secondaryFields"][0]["value"] == "Gold"
    assert card["auxiliaryFields"][0]["value"] == world.card.number
    message = next(f for f in card["backFields"] if f["key"] == "message")
    assert message == {"key": "message", "label": "Message", "value": "Double points this weekend",
                       "changeMessage": "%@"}
    keys = [f["key"] for group in card.values() for f in group]
    assert len(keys) == len(set(keys))
    for group in ("primaryFields", "backFields"):
        assert all("textAlignment" not in f for f in card[group])

    formats = [(b["format"], b["message"]) for b in data["barcodes"]]
    assert formats == [("PKBarcodeFormatCode128", world.card.number), ("PKBarcodeFormatQR", world.card.number)]
    assert data["locations"] == [
        {"latitude": 48.8566, "longitude": 2.3522, "relevantText": f"{world.store.name} is nearby"}
    ]
    assert "voided" not in data


def test_authentication_token_depends_on_signing_key_and_serial(settings):
    token = authentication_token("6000000000000001")
    assert token != authentication_token("6000000000000002")
    settings.SIGNING_KEY = settings.SIGNING_KEY + "x"
    assert token != authentication_token("6000000000000001")


def test_locations_are_the_ten_nearest_active_stores(world, pass_certificates):
    Store.objects.filter(pk=world.store.pk).update(latitude=Decimal("10"), longitude=Decimal("10"))
    for i in range(12):
        Store.objects.create(
            merchant=world.merchant, name=f"Near {i}", time_zone="Europe/Paris",
            latitude=Decimal("48.80") + Decimal(i) / 100, longitude=Decimal("2.30"),
        )
    Store.objects.create(merchant=world.merchant, name="Closed", time_zone="Europe/Paris", is_active=False,
                         latitude=Decimal("48.80"), longitude=Decimal("2.30"))
    Store.objects.create(merchant=world.merchant, name="Nowhere", time_zone="Europe/Paris")

    without_home = build_pass_json(world.card)["locations"]
    assert len(without_home) == 10
    assert without_home[0]["latitude"] == 10.0  # the first stores by creation, nearest unknown

    customer = world.card.wallet.customer
    customer.home_latitude, customer.home_longitude = Decimal("48.95"), Decimal("2.30")
    customer.save()
    world.card.refresh_from_db()
    names = [loc["relevantText"] for loc in build_pass_json(world.card)["locations"]]
    assert names == [f"Near {i} is nearby" for i in range(11, 1, -1)]
