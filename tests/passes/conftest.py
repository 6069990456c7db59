"""Fixtures shared by the pass tests: a Google service account and the local Google Wallet fake."""
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.passes.google_fake import FakeGoogleWallet

ISSUER = "3388000000012345678"
EMAIL = "wallet-issuer@tessera-test.iam.gserviceaccount.com"


def rsa_pem_pair():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    return private, public


@pytest.fixture(scope="session")
def rsa_keys():
    return rsa_pem_pair()


@pytest.fixture
def service_account_file(tmp_path, rsa_keys):
    path = tmp_path / "service-account.json"
    path.write_text(json.dumps({
        "type": "service_account", "project_id": "tessera-test", "private_key_id": "k1",
        "private_key": rsa_keys[0], "client_email": EMAIL, "token_uri": "https://oauth2.googleapis.com/token",
    }))
    return path


@pytest.fixture
def fake(rsa_keys):
    server = FakeGoogleWallet(client_email=EMAIL, public_key_pem=rsa_keys[1]).start()
    yield server
    server.stop()


@pytest.fixture
def google_settings(settings, service_account_file, fake):
    settings.GOOGLE_WALLET = {
        "ISSUER_ID": ISSUER, "SERVICE_ACCOUNT_FILE": str(service_account_file),
        "API_BASE_URL": fake.api_base_url, "TOKEN_URL": fake.token_url, "ORIGINS": ["https://tessera.example"],
    }
    settings.TESSERA_PUBLIC_URL = "https://tessera.example"
    settings.SIGNING_KEY = "test-signing-key-0123456789abcdef0123456789"
    return settings


